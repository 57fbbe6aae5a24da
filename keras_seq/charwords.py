"""Character-level word features: each word's characters through a
bidirectional recurrent layer (as in Lample et al. 2016, Plank et al. 2016),
so a tagger can read prefixes, suffixes and capitalisation of words it has
never seen."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_seq.recurrent import GRU, LSTM, Elman

__all__ = ["CharacterWordEncoder"]

CELLS = {"elman": Elman, "gru": GRU, "lstm": LSTM}  # config names -> our recurrent layers


class CharacterLayer(keras.layers.Layer):
    """What the layers reading (batch, words, chars) character ids share: the `cell` check, the
    input's rank, the output's shape (2 * `units` a word), and the mask (a word is valid when it has
    a character; returning None would read as "every step valid" where the output is concatenated
    with a masked word embedding, and the word-level layers would then run over padding)."""

    def __init__(self, cell: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"`cell` must be one of {sorted(CELLS)}; received cell={cell!r}.")
        self.cell = cell

    def check_input_shape(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"`inputs` of {type(self).__name__} must be (batch, words, chars) ids; "
                f"received shape {tuple(input_shape)}."
            )

    def compute_mask(self, inputs, mask=None):
        return ops.any(ops.not_equal(inputs, 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], 2 * self.units)


@keras.saving.register_keras_serializable(package="keras_seq")
class CharacterWordEncoder(CharacterLayer):
    """(B, T, C) character ids of each word (0 = padding) -> (B, T, 2 * units):
    the final states of a bidirectional recurrent layer over each word's
    characters. A padding word (no characters) encodes to zeros.

    Shapes: B = batch size, T = words, C = characters per word.

    Example::

        >>> import numpy as np, keras_seq
        >>> chars = np.array([[[3, 4, 0], [5, 0, 0], [0, 0, 0]]])
        >>> tuple(keras_seq.CharacterWordEncoder(20, embed_dim=8, units=6)(chars).shape)
        (1, 3, 12)
    """

    def __init__(
        self, vocab_size: int, embed_dim: int = 32, units: int = 32, cell: str = "lstm", **kwargs: Any
    ) -> None:
        super().__init__(cell, **kwargs)
        self.vocab_size, self.embed_dim, self.units = vocab_size, embed_dim, units
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="char_embedding")
        self.encoder = keras.layers.Bidirectional(CELLS[cell](units), name="char_encoder")

    def build(self, input_shape) -> None:
        self.check_input_shape(input_shape)
        self.embedding.build((None, input_shape[2]))
        self.encoder.build((None, input_shape[2], self.embed_dim))
        self.built = True

    def call(self, chars):
        shape = ops.shape(chars)
        flat = ops.reshape(chars, (-1, shape[2]))
        encoded = self.encoder(self.embedding(flat), mask=ops.not_equal(flat, 0))
        return ops.reshape(encoded, (shape[0], shape[1], 2 * self.units))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
            "units": self.units,
            "cell": self.cell,
        }
