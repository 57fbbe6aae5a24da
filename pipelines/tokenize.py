"""The one tokenizer, on core ``tf.strings`` ops only.

No tensorflow-text and no ``py_function``: the same function runs inside a
SavedModel that TF Serving, the C API or the TF1 loader can load with no extra
op library. ``serving/text.py`` is its pure-Python twin (no TensorFlow), and a
test compares the two byte for byte on real corpora.

The rules (``RULES_VERSION`` names them; change both twins together):

1. Invalid UTF-8 is replaced, one U+FFFD per maximal invalid subpart.
2. ``lower=True`` lower-cases ASCII letters only (A-Z); other scripts are kept
   as written, so the rule is exact in every runtime.
3. Word level: HTML line breaks (``<br>``, ``<br/>``, ``<br />``, any case)
   become spaces; every ASCII punctuation character
   (``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``) becomes a token of its own; tokens
   are the runs between ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r).
   Everything else (letters of any script, digits, emoji, combining marks,
   control characters other than those) stays inside tokens.
4. Character level: tokens are Unicode code points (nothing is removed).
5. Truncation to ``max_len`` tokens: ``truncate="tail"`` keeps the first
   ``max_len`` tokens, ``truncate="head"`` keeps the last ``max_len``.
6. Characters of words (taggers with ``char_vocab_file``): each word token's
   first ``max_word_len`` code points, after rules 1-2.
7. Word keys (word level): the vocabulary is looked up with a key made from
   the token: ``lower_words=True`` lower-cases its ASCII letters,
   ``zero_digits=True`` turns every ASCII digit into ``0``. Tokens and their
   characters (rule 6) keep the original, so a tagger can share one embedding
   for "The" / "the" / "THE" and still see the case through the characters.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tensorflow as tf

RULES_VERSION = 1
PAD, UNK = "<PAD>", "<UNK>"
PAD_ID, UNK_ID = 0, 1
# Shared with serving/text.py (the twin); spelled here once for TF.
BR_PATTERN = r"<[bB][rR][ \t\n\v\f\r]*/?>"
PUNCT_PATTERN = r"([!-/:-@\[-`{-~])"
SPACE_PATTERN = r"[ \t\n\v\f\r]+"


@dataclass
class TokenizerSpec:
    """What `tokenizer.json` holds: everything needed to reproduce the ids."""

    level: str = "word"  # "word" | "char"
    lower: bool = True
    max_len: int | None = None
    truncate: str = "tail"  # "tail" | "head"
    vocab_file: str = "vocab.txt"
    char_vocab_file: str | None = None  # set: words also give character ids (rule 6)
    max_word_len: int = 20
    lower_words: bool = False  # rule 7
    zero_digits: bool = False  # rule 7
    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    rules_version: int = RULES_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.level not in ("word", "char"):
            raise ValueError(f"tokenizer `level` must be 'word' or 'char'; received {self.level!r}.")
        if self.truncate not in ("tail", "head"):
            raise ValueError(f"tokenizer `truncate` must be 'tail' or 'head'; received {self.truncate!r}.")
        if self.max_len is not None and (not isinstance(self.max_len, int) or self.max_len <= 0):
            raise ValueError(f"tokenizer `max_len` must be a positive integer or None; received {self.max_len!r}.")
        if not isinstance(self.max_word_len, int) or self.max_word_len <= 0:
            raise ValueError(f"tokenizer `max_word_len` must be a positive integer; received {self.max_word_len!r}.")
        if self.rules_version != RULES_VERSION:
            raise ValueError(
                f"tokenizer rules version {self.rules_version} is not supported by this version "
                f"(rules version {RULES_VERSION})."
            )

    @property
    def has_word_keys(self) -> bool:
        """Whether rule 7 makes vocabulary keys differ from the tokens."""
        return self.level == "word" and (self.lower_words or self.zero_digits)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "tokenizer.json"
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TokenizerSpec":
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no tokenizer spec at {path}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown tokenizer setting(s) {sorted(unknown)}")
        return cls(**data)


def clean_text(texts: tf.Tensor, lower: bool = True) -> tf.Tensor:
    """Rules 1-2 on a string tensor of any shape."""
    texts = tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD, replace_control_characters=False
    )
    if lower:
        texts = tf.strings.lower(texts)  # no encoding argument: ASCII letters only
    return texts


def split_words(texts: tf.Tensor) -> tf.RaggedTensor:
    """Rule 3 on cleaned text: (batch,) -> ragged (batch, None) tokens."""
    texts = tf.strings.regex_replace(texts, BR_PATTERN, " ")
    texts = tf.strings.regex_replace(texts, PUNCT_PATTERN, r" \1 ")
    texts = tf.strings.regex_replace(texts, SPACE_PATTERN, " ")
    # Only ' ' is whitespace now, so the split is exact in every runtime.
    return tf.strings.split(texts)


def tokenize(texts: tf.Tensor, spec: TokenizerSpec) -> tf.RaggedTensor:
    """Raw UTF-8 strings (batch,) -> ragged tokens (batch, None), truncated."""
    texts = tf.convert_to_tensor(texts, tf.string)
    cleaned = clean_text(texts, spec.lower)
    if spec.level == "word":
        tokens = split_words(cleaned)
    else:
        tokens = tf.strings.unicode_split(cleaned, "UTF-8", errors="replace")
    return truncate(tokens, spec)


def truncate(tokens: tf.RaggedTensor, spec: TokenizerSpec) -> tf.RaggedTensor:
    if spec.max_len is None:
        return tokens
    if spec.truncate == "tail":
        return tokens[:, : spec.max_len]
    return tokens[:, -spec.max_len :]


def normalize_tokens(tokens: tf.RaggedTensor, spec: TokenizerSpec) -> tf.RaggedTensor:
    """Pre-split tokens (tagging corpora): rules 1-2 and 5 only."""
    return truncate(tf.ragged.map_flat_values(clean_text, tokens, spec.lower), spec)


def word_keys(tokens: tf.Tensor | tf.RaggedTensor, spec: TokenizerSpec):
    """Rule 7: word tokens (any shape, ragged or not) -> vocabulary keys."""
    def key(flat):
        if spec.lower_words:
            flat = tf.strings.lower(flat)  # ASCII letters only, as rule 2
        if spec.zero_digits:
            flat = tf.strings.regex_replace(flat, "[0-9]", "0")
        return flat

    if not spec.has_word_keys:
        return tokens
    if isinstance(tokens, tf.RaggedTensor):
        return tf.ragged.map_flat_values(key, tokens)
    return key(tokens)


def word_chars(tokens: tf.RaggedTensor, spec: TokenizerSpec) -> tf.RaggedTensor:
    """Rule 6: (batch, words) tokens -> (batch, words, chars) code-point strings."""
    return tf.strings.unicode_split(tokens, "UTF-8", errors="replace")[:, :, : spec.max_word_len]
