"""Contextual string embeddings (Akbik, Blythe & Vollgraf 2018, the "Flair" embeddings): a forward and
a backward character language model read the whole sentence as one string, and each word is
represented by the forward model's state at its last character and the backward model's state at its
first, so the same word gets a different vector in every sentence. The language models are pretrained
on unlabeled text (`keras-seq train` of task ``lm`` at ``level = "char"``, forward and backward) and
loaded with `keras_seq.init_from`; the tagger then usually keeps them frozen, as Flair does."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_seq._keras_compat import dynamic_shapes_allowed
from keras_seq.charwords import CELLS, CharacterLayer

__all__ = ["ContextualCharEmbedding", "SEPARATOR"]

#: The character the sentence string puts before each word; its id is the layer's ``char_vocab_size``.
SEPARATOR = " "


@keras.saving.register_keras_serializable(package="keras_seq")
class ContextualCharEmbedding(CharacterLayer):
    r"""(N, L, C) character ids of each word (0 = padding) -> (N, L, 2 * units): each word's states in
    a forward and a backward character language model run over the whole sentence.

    The sentence becomes one string: a separator (a space, id ``char_vocab_size``) before each word,
    padding removed. With :math:`s_1 \dots s_n` its characters, :math:`x_j` their embeddings, and
    :math:`\mathrm{end}(t)`, :math:`\mathrm{start}(t)` the positions of word t's last and first
    character:

    .. math::

        h^f_j &= \mathrm{cell}_f(x_j, h^f_{j-1}) \quad (j = 1 \dots n) \\
        h^b_j &= \mathrm{cell}_b(x_j, h^b_{j+1}) \quad (j = n \dots 1) \\
        e_t &= [\, h^f_{\mathrm{end}(t)} \,;\, h^b_{\mathrm{start}(t)} \,]

    so :math:`e_t` has read the sentence up to the end of word t from the left, and down to its start
    from the right. Each direction has its own character embedding. A padding word encodes to zeros.

    Shapes: N = batch size, L = words, C = characters per word, H = ``units``. The strings are
    (N, S): on TensorFlow (outside XLA) and torch S is the longest string's length; under JAX and
    XLA, which need static shapes, S = L * (C + 1) slots, the padding after each string (the same
    answers, with more steps to run).

    Example::

        >>> import numpy as np, keras_seq
        >>> layer = keras_seq.ContextualCharEmbedding(20, embed_dim=8, units=6)
        >>> two = np.array([[[3, 4], [5, 6]], [[7, 0], [5, 6]]])  # word [5, 6] after two different words
        >>> features = np.asarray(layer(two))
        >>> features.shape, bool(np.allclose(features[0, 1], features[1, 1]))
        ((2, 2, 12), False)
    """

    def __init__(
        self, char_vocab_size: int, embed_dim: int = 32, units: int = 256, cell: str = "lstm", **kwargs: Any
    ) -> None:
        super().__init__(cell, **kwargs)
        self.char_vocab_size, self.embed_dim, self.units = char_vocab_size, embed_dim, units
        rows = char_vocab_size + 1  # + the separator
        self.forward_embedding = keras.layers.Embedding(rows, embed_dim, name="forward_embedding")
        self.backward_embedding = keras.layers.Embedding(rows, embed_dim, name="backward_embedding")
        self.forward_lm = CELLS[cell](units, return_sequences=True, name="forward_lm")
        self.backward_lm = CELLS[cell](units, return_sequences=True, name="backward_lm")

    def build(self, input_shape) -> None:
        self.check_input_shape(input_shape)
        for embedding, lm in ((self.forward_embedding, self.forward_lm), (self.backward_embedding, self.backward_lm)):
            embedding.build((None, None))
            lm.build((None, None, self.embed_dim))
        self.built = True

    def strings(self, chars):
        """The sentence strings: (packed (N, S) ids, lengths (N,), end (N, L) and start (N, L) positions)."""
        chars = ops.cast(chars, "int32")
        shape = ops.shape(chars)
        words = self.compute_mask(chars)  # (N, L)
        separator = ops.where(words, self.char_vocab_size, 0)[..., None]
        slots = ops.reshape(ops.concatenate([separator, chars], axis=-1), (shape[0], -1))  # (N, S)
        valid = ops.not_equal(slots, 0)
        width = ops.shape(slots)[1]
        position = ops.arange(width, dtype="int32")[None, :]
        # Valid slots first, in order: their positions are the smallest keys (all keys differ).
        order = ops.argsort(ops.where(valid, position, position + width), axis=-1)
        packed = ops.take_along_axis(slots, order, axis=1)
        counted = ops.reshape(ops.cumsum(ops.cast(valid, "int32"), axis=1), (shape[0], shape[1], -1))
        end = ops.maximum(counted[:, :, -1] - 1, 0)  # the word's last character (or 0: padding words)
        start = counted[:, :, 0]  # its first character, after the separator (at most the string's length)
        lengths = ops.sum(ops.cast(valid, "int32"), axis=1)
        return packed, lengths, end, start

    def call(self, chars):
        packed, lengths, end, start = self.strings(chars)
        if dynamic_shapes_allowed():  # the loops run over the longest string, not over every slot
            packed = packed[:, : ops.maximum(ops.max(lengths), 1)]
        width = ops.shape(packed)[1]
        position = ops.arange(width, dtype="int32")[None, :]
        mask = ops.less(position, lengths[:, None])
        forward = self.forward_lm(self.forward_embedding(packed), mask=mask)
        # The backward model reads each string reversed (its padding stays at the end).
        reverse = ops.where(mask, lengths[:, None] - 1 - position, position)
        backward = self.backward_lm(self.backward_embedding(ops.take_along_axis(packed, reverse, axis=1)), mask=mask)
        start_reversed = ops.maximum(lengths[:, None] - 1 - start, 0)
        features = ops.concatenate([_gather_steps(forward, end), _gather_steps(backward, start_reversed)], axis=-1)
        return features * ops.cast(self.compute_mask(chars), features.dtype)[..., None]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "char_vocab_size": self.char_vocab_size,
            "embed_dim": self.embed_dim,
            "units": self.units,
            "cell": self.cell,
        }


def _gather_steps(states, steps):
    """states (N, S, H) at steps (N, L) -> (N, L, H)."""
    index = ops.broadcast_to(steps[..., None], (ops.shape(steps)[0], ops.shape(steps)[1], ops.shape(states)[2]))
    return ops.take_along_axis(states, index, axis=1)
