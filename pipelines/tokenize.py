"""The one tokenizer, on core ``tf.strings`` ops only.

No tensorflow-text and no ``py_function``: the same function runs inside a
SavedModel that TF Serving, the C API or the TF1 loader can load with no extra
op library. `keras_seq.serving.tokenizer_twin` is its pure-Python twin (no TensorFlow),
and a test compares the two byte for byte on real corpora; both read the spec
(``tokenizer.json``) and the patterns from `keras_seq.contracts.tokenizer`.

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
   ``max_len`` tokens, ``truncate="head"`` keeps the last ``max_len``. Work is
   bounded by ``max_len``, not by the text: characters are cut before they are
   split, words are split in a window first (`word_window`, same result).
6. Characters of words (taggers with ``char_vocab_file``): each word token's
   first ``max_word_len`` code points, after rules 1-2.
7. Word keys (word level): the vocabulary is looked up with a key made from
   the token: ``lower_words=True`` lower-cases its ASCII letters,
   ``zero_digits=True`` turns every ASCII digit into ``0``. Tokens and their
   characters (rule 6) keep the original, so a tagger can share one embedding
   for "The" / "the" / "THE" and still see the case through the characters.
"""

from __future__ import annotations

import tensorflow as tf

from keras_seq.contracts.tokenizer import (
    BR_PATTERN,
    PAD,
    PAD_ID,
    PUNCT_PATTERN,
    RULES_VERSION,
    SPACE_PATTERN,
    UNK,
    UNK_ID,
    WINDOW_MARGIN,
    TokenizerSpec,
    word_window,
)

__all__ = [
    "TokenizerSpec",
    "RULES_VERSION",
    "PAD",
    "UNK",
    "PAD_ID",
    "UNK_ID",
    "clean_text",
    "split_words",
    "tokenize",
    "truncate",
    "normalize_tokens",
    "word_keys",
    "word_chars",
]


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
        if spec.max_len is not None:
            window = _kept_end(cleaned, word_window(spec.max_len), spec.truncate)
            enough = (split_words(window).row_lengths() >= spec.max_len + WINDOW_MARGIN) | tf.equal(window, cleaned)
            cleaned = tf.where(enough, window, cleaned)  # the whole text only where the window is too short
        tokens = split_words(cleaned)
    else:
        if spec.max_len is not None:
            cleaned = _kept_end(cleaned, spec.max_len, spec.truncate)
        tokens = tf.strings.unicode_split(cleaned, "UTF-8", errors="replace")
    return truncate(tokens, spec)


def _kept_end(texts: tf.Tensor, chars: int, side: str) -> tf.Tensor:
    """The first (tail truncation) or last (head) `chars` code points of valid UTF-8 texts."""
    if side == "tail":
        return tf.strings.substr(texts, 0, chars, unit="UTF8_CHAR")
    start = tf.maximum(tf.strings.length(texts, unit="UTF8_CHAR") - chars, 0)
    return tf.strings.substr(texts, start, tf.fill(tf.shape(texts), chars), unit="UTF8_CHAR")


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
