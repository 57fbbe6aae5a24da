"""`TextEncoder`: raw text (or pre-split tokens) -> ids with ``tf.lookup``
tables initialised from the vocabulary files, so they can be SavedModel assets.

The files themselves (and `Vocabulary`) are the contract in
`keras_seq.contracts.vocab`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_seq.contracts.vocab import Vocabulary
from keras_seq.pipelines.tokenize import (
    PAD_ID,
    UNK_ID,
    TokenizerSpec,
    normalize_tokens,
    tokenize,
    word_chars,
    word_keys,
)

__all__ = ["Vocabulary", "TextEncoder", "lookup_table", "load_word_vectors"]


def lookup_table(vocab: Vocabulary, path: str | Path) -> tf.lookup.StaticHashTable:
    """A table initialised from the saved file (so it can be a SavedModel asset)."""
    path = str(path)
    if vocab.level == "char":
        init = tf.lookup.TextFileInitializer(
            path, tf.int64, 0, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, delimiter="\t"
        )
    else:
        init = tf.lookup.TextFileInitializer(
            path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
        )
    default = UNK_ID if vocab.reserved else -1
    return tf.lookup.StaticHashTable(init, default_value=default)


class TextEncoder(tf.Module):
    """Raw text (or pre-split tokens) -> ragged int ids, in TF ops only.

    Reads ``tokenizer.json`` and the vocabulary file it names from `directory`.
    """

    def __init__(self, directory: str | Path, name: str | None = None) -> None:
        super().__init__(name=name)
        directory = Path(directory)
        self.spec = TokenizerSpec.load(directory)
        self.vocab_path = directory / self.spec.vocab_file
        self.vocab = Vocabulary.load(self.vocab_path, level=self.spec.level)
        self.table = lookup_table(self.vocab, self.vocab_path)
        self.char_vocab = self.char_table = None
        if self.spec.char_vocab_file:
            char_path = directory / self.spec.char_vocab_file
            self.char_vocab = Vocabulary.load(char_path, level="char")
            self.char_table = lookup_table(self.char_vocab, char_path)

    @staticmethod
    def _ids(table, keys: tf.RaggedTensor, code_points: bool) -> tf.RaggedTensor:
        if code_points:  # one-character strings -> their code points (char vocabularies' keys)
            keys = tf.ragged.map_flat_values(
                lambda t: tf.cast(tf.strings.unicode_decode(t, "UTF-8", errors="replace").flat_values, tf.int64), keys
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


def load_word_vectors(
    path: str | Path, vocab: Vocabulary, dim: int | None = None, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Embedding matrix aligned with `vocab` from a vector file (GloVe / word2vec text or binary,
    fastText .vec; `keras_seq.pipelines.word_vectors.align_vectors`), and the fraction of the
    vocabulary it covers. Rows of words not in the file are drawn from N(0, 0.1); the padding row is zero."""
    from keras_seq.pipelines.word_vectors import align_vectors

    matrix, coverage = align_vectors(path, vocab, dim, seed)
    return matrix, coverage.fraction
