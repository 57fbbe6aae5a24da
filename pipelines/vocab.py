"""Vocabularies (top-V by frequency, ids 0 = padding and 1 = <UNK>) and the
`TextEncoder` that turns raw text into ids with a ``tf.lookup`` table.

File formats (plain text, one entry per line, line number = id; usable as
SavedModel assets):

* word / label vocabulary: the token itself (tokens never hold whitespace);
* char vocabulary: ``<code point>\\t<printable form>`` -- the code point is the
  key, so newline and tab characters are representable. Line 0 and 1 hold
  ``-1`` / ``-2`` for padding and ``<UNK>``.
"""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf

from pipelines.tokenize import (PAD, PAD_ID, UNK, UNK_ID, TokenizerSpec, normalize_tokens, tokenize, word_chars,
                                word_keys)

_CHAR_RESERVED_KEYS = {PAD: -1, UNK: -2}


class Vocabulary:
    """An ordered token list; ``tokens[i]`` has id ``i``."""

    def __init__(self, tokens: list[str], level: str = "word") -> None:
        if level not in ("word", "char", "label"):
            raise ValueError(f"vocabulary `level` must be word, char or label; received {level!r}.")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens = list(tokens)
        self.level = level
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def reserved(self) -> bool:
        return self.tokens[:2] == [PAD, UNK]

    @classmethod
    def build(
        cls,
        counts: collections.Counter,
        max_size: int | None = None,
        min_count: int = 1,
        level: str = "word",
        reserved: bool = True,
    ) -> "Vocabulary":
        """Top `max_size` entries (reserved ids included) with count >= `min_count`;
        ties are broken by the token's code points, so the result is deterministic."""
        if max_size is not None and max_size < (3 if reserved else 1):
            raise ValueError(f"vocabulary `max_size` is too small: {max_size}")
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in (PAD, UNK)),
                      key=lambda t: (-counts[t], t))
        head = [PAD, UNK] if reserved else []
        if max_size is not None:
            kept = kept[: max_size - len(head)]
        return cls(head + kept, level)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        unk = UNK_ID if self.reserved else None
        out = []
        for t in tokens:
            i = self.index.get(t, unk)
            if i is None:
                raise ValueError(f"label {t!r} is not in the label vocabulary {self.tokens}")
            out.append(UNK_ID if (self.reserved and i == PAD_ID) else i)
        return out

    # -- files ---------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if self.level == "char":
            bad = [t for t in self.tokens if len(t) != 1 and t not in _CHAR_RESERVED_KEYS]
            if bad:
                raise ValueError(f"char vocabulary tokens must be single characters: {bad[:5]!r}")
        else:
            bad = [t for t in self.tokens if not t or any(c in t for c in "\n\r")]
            if bad:
                raise ValueError(f"{self.level} vocabulary tokens cannot be empty or hold line breaks: {bad[:5]!r}")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for token in self.tokens:
                if self.level == "char":
                    key = _CHAR_RESERVED_KEYS.get(token, None)
                    key = ord(token) if key is None else key
                    f.write(f"{key}\t{token.encode('unicode_escape').decode('ascii') if key >= 0 else token}\n")
                else:
                    f.write(token + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, level: str = "word") -> "Vocabulary":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"no vocabulary file at {path}") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if level == "char":
            reverse = {v: k for k, v in _CHAR_RESERVED_KEYS.items()}
            tokens = []
            for n, line in enumerate(lines, 1):
                try:
                    key = int(line.split("\t", 1)[0])
                except ValueError:
                    raise ValueError(f"{path}:{n}: expected '<code point>\\t<char>'") from None
                tokens.append(reverse[key] if key < 0 else chr(key))
            return cls(tokens, level)
        return cls(lines, level)

    def lookup_table(self, path: str | Path) -> tf.lookup.StaticHashTable:
        """A table initialised from the saved file (so it can be a SavedModel asset)."""
        path = str(path)
        if self.level == "char":
            init = tf.lookup.TextFileInitializer(
                path, tf.int64, 0, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, delimiter="\t"
            )
        else:
            init = tf.lookup.TextFileInitializer(
                path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
            )
        default = UNK_ID if self.reserved else -1
        return tf.lookup.StaticHashTable(init, default_value=default)


class TextEncoder(tf.Module):
    """Raw text (or pre-split tokens) -> ragged int ids, in TF ops only.

    Reads ``tokenizer.json`` and the vocabulary file it names from `directory`.
    """

    def __init__(self, directory: str | Path, name: str | None = None) -> None:
        super().__init__(name=name)
        directory = Path(directory)
        self.spec = TokenizerSpec.load(directory / "tokenizer.json")
        self.vocab_path = directory / self.spec.vocab_file
        self.vocab = Vocabulary.load(self.vocab_path, level=self.spec.level)
        self.table = self.vocab.lookup_table(self.vocab_path)
        self.char_vocab = self.char_table = None
        if self.spec.char_vocab_file:
            char_path = directory / self.spec.char_vocab_file
            self.char_vocab = Vocabulary.load(char_path, level="char")
            self.char_table = self.char_vocab.lookup_table(char_path)

    @staticmethod
    def _ids(table, keys: tf.RaggedTensor, code_points: bool) -> tf.RaggedTensor:
        if code_points:  # one-character strings -> their code points (char vocabularies' keys)
            keys = tf.ragged.map_flat_values(
                lambda t: tf.cast(tf.strings.unicode_decode(t, "UTF-8", errors="replace").flat_values, tf.int64),
                keys,
            )
        ids = tf.ragged.map_flat_values(table.lookup, keys)
        # A literal "<PAD>" token in the data must not become padding.
        return tf.ragged.map_flat_values(lambda i: tf.where(i == PAD_ID, tf.constant(UNK_ID, tf.int64), i), ids)

    def lookup(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """Already tokenized (and normalised) tokens -> ids (rule 7 keys at word level)."""
        return self._ids(self.table, word_keys(tokens, self.spec), self.spec.level == "char")

    def tokens(self, texts) -> tf.RaggedTensor:
        return tokenize(texts, self.spec)

    def encode(self, texts) -> tf.RaggedTensor:
        """(batch,) raw strings -> ragged (batch, None) int64 ids."""
        return self.lookup(self.tokens(texts))

    def encode_tokens(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """(batch, None) pre-split tokens -> ragged ids (tagging corpora)."""
        return self.lookup(normalize_tokens(tokens, self.spec))

    def encode_chars(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """(batch, words) tokens (as `tokens`/normalised) -> (batch, words, chars) ids."""
        if self.char_table is None:
            raise ValueError("this tokenizer has no character vocabulary (char_vocab_file)")
        return self._ids(self.char_table, word_chars(tokens, self.spec), True)


def load_word_vectors(path: str | Path, vocab: Vocabulary, dim: int | None = None,
                      seed: int = 0) -> tuple[np.ndarray, float]:
    """Embedding matrix aligned with `vocab` from a text vector file
    (``word v1 v2 ...`` per line, as GloVe / word2vec text; a word2vec
    ``count dim`` header line is skipped). Rows of words not in the file are
    drawn from N(0, 0.1); the padding row is zero. Returns (matrix, coverage)."""
    path = Path(path)
    matrix = None
    found = 0
    with open(path, encoding="utf-8", errors="strict") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{n}: expected 'word v1 v2 ...'")
            if matrix is None:
                dim = dim or len(parts) - 1
                rng = np.random.default_rng(seed)
                matrix = rng.normal(0.0, 0.1, size=(len(vocab), dim)).astype("float32")
            if len(parts) - 1 != dim:
                raise ValueError(f"{path}:{n}: expected {dim} values, found {len(parts) - 1}")
            i = vocab.index.get(parts[0])
            if i is not None and i > UNK_ID:
                try:
                    matrix[i] = np.asarray(parts[1:], dtype="float32")
                except ValueError:
                    raise ValueError(f"{path}:{n}: a vector value is not a number") from None
                found += 1
    if matrix is None:
        raise ValueError(f"{path}: the vector file is empty")
    matrix[PAD_ID] = 0.0
    return matrix, found / max(1, len(vocab) - 2)
