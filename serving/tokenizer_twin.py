"""Pure-Python / NumPy twin of `keras_seq.pipelines.tokenize` (no TensorFlow).

It reads the same ``tokenizer.json`` and vocabulary files, through the same
contract (`keras_seq.contracts.tokenizer` / `vocab`: one validating reader
for both twins), and gives the same token ids byte for byte;
``tests/pipelines/test_tokenizer_twin.py`` checks that on real corpora. The rules are
documented in `keras_seq.pipelines.tokenize`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from keras_seq.contracts.tokenizer import (
    BR_PATTERN,
    PAD_ID,
    PUNCT_PATTERN,
    SPACE_PATTERN,
    UNK_ID,
    WINDOW_MARGIN,
    TokenizerSpec,
    valid_text,
    word_window,
)
from keras_seq.contracts.vocab import Vocabulary

_BR = re.compile(BR_PATTERN)
_PUNCT = re.compile(PUNCT_PATTERN)
_SPACE = re.compile(SPACE_PATTERN)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ZERO_DIGITS = str.maketrans("123456789", "000000000")
# Rules 3-4 (spaces around each punctuation mark, then split on runs of spaces) as one findall:
# a token is one character PUNCT_PATTERN matches, or a run of characters that are neither that nor
# SPACE_PATTERN's. The same tokens in one C pass, where `_PUNCT.sub(r" \1 ")` expands its template
# in Python at every match. Both classes are ASCII, read off the contract's patterns.
_PUNCT_CHARS = "".join(re.escape(chr(c)) for c in range(128) if _PUNCT.fullmatch(chr(c)))
_SPACE_CHARS = "".join(re.escape(chr(c)) for c in range(128) if _SPACE.fullmatch(chr(c)))
_TOKEN = re.compile(f"[{_PUNCT_CHARS}]|[^{_PUNCT_CHARS}{_SPACE_CHARS}]+")


def _ascii_lower(text: str) -> str:
    """Rule 2's lower-casing, ASCII letters only (str.lower where the text is all ASCII: the same, faster)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _as_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise TypeError(f"expected text (str or UTF-8 bytes), got {type(text).__name__}")
    return valid_text(text)


def pad_rows(rows: list[list[int]], min_len: int = 1) -> np.ndarray:
    """Right-padded (len(rows), max(min_len, longest)) int64 ids (0 = padding)."""
    out = np.zeros((len(rows), max([min_len, *(len(r) for r in rows)])), np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class TextTokenizer:
    """Raw text -> token strings and int64 ids, as the TF tokenizer does."""

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        spec = self.spec = TokenizerSpec.load(directory)
        self.level: str = spec.level
        self.lower: bool = spec.lower
        self.max_len: int | None = spec.max_len
        self.truncate_side: str = spec.truncate
        self.max_word_len: int = spec.max_word_len
        self.lower_words: bool = spec.level == "word" and spec.lower_words
        self.zero_digits: bool = spec.level == "word" and spec.zero_digits
        self.vocabulary = Vocabulary.load(directory / spec.vocab_file, spec.level)
        self.vocab = self.vocabulary.index
        self.char_vocab = (
            Vocabulary.load(directory / spec.char_vocab_file, "char").index if spec.char_vocab_file else None
        )

    def clean(self, text: str | bytes) -> str:
        text = _as_text(text)
        return _ascii_lower(text) if self.lower else text

    def tokens(self, text: str | bytes) -> list[str]:
        text = self.clean(text)
        if self.level == "char":
            return list(self._kept_end(text, self.max_len) if self.max_len is not None else text)
        if self.max_len is not None:  # rule 5's window (`word_window`): the same tokens, bounded work
            window = self._kept_end(text, word_window(self.max_len))
            tokens = self._split(window)
            if len(tokens) >= self.max_len + WINDOW_MARGIN or len(window) == len(text):
                return self.truncate(tokens)
        return self.truncate(self._split(text))

    @staticmethod
    def _split(text: str) -> list[str]:
        return _TOKEN.findall(_BR.sub(" ", text))

    def _kept_end(self, text: str, chars: int) -> str:
        return text[:chars] if self.truncate_side == "tail" else text[-chars:]

    def truncate(self, tokens: list) -> list:
        if self.max_len is None:
            return tokens
        return tokens[: self.max_len] if self.truncate_side == "tail" else tokens[-self.max_len :]

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        get = self.vocab.get
        if self.level == "char" or not (self.lower_words or self.zero_digits):  # rule 7 changes nothing
            ids = [get(t, UNK_ID) for t in tokens]
        else:
            ids = [get(self.word_key(t), UNK_ID) for t in tokens]
        return [UNK_ID if i == PAD_ID else i for i in ids]

    def word_key(self, token: str) -> str:
        """Rule 7: the vocabulary key of a word token."""
        if self.lower_words:
            token = _ascii_lower(token)
        if self.zero_digits:
            token = token.translate(_ZERO_DIGITS)
        return token

    def word_chars(self, tokens: Iterable[str]) -> list[list[int]]:
        """Character ids of each (already tokenized) word, rule 6."""
        if self.char_vocab is None:
            raise ValueError("this tokenizer has no character vocabulary (char_vocab_file)")
        get = self.char_vocab.get
        rows = []
        for token in tokens:
            ids = [get(c, UNK_ID) for c in token[: self.max_word_len]]
            rows.append([UNK_ID if i == PAD_ID else i for i in ids])
        return rows

    def encode(self, text: str | bytes) -> list[int]:
        return self.lookup(self.tokens(text))

    def given_tokens(self, tokens: Iterable[str | bytes]) -> list[str]:
        """Tokens split already (tagging corpora): rules 1-2 and 5 only, as `normalize_tokens`."""
        return self.truncate([self.clean(t) for t in tokens])

    def encode_tokens(self, tokens: Iterable[str | bytes]) -> list[int]:
        return self.lookup(self.given_tokens(tokens))

    def encode_batch(self, texts: Iterable[str | bytes], min_len: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded ids (batch, max(min_len, longest)) int64 and lengths (batch,)."""
        rows = [self.encode(t) for t in texts]
        return pad_rows(rows, min_len), np.array([len(r) for r in rows], dtype=np.int64)
