"""Linear-chain conditional random field output layer (Lafferty et al., 2001).

For emissions :math:`e_t \\in R^K` (from a Dense layer) and tags :math:`y`,

.. math::

    s(y) = \\pi^{start}_{y_1} + \\sum_{t=1}^{L} e_{t, y_t}
           + \\sum_{t=2}^{L} A_{y_{t-1}, y_t} + \\pi^{end}_{y_L}, \\qquad
    -\\log p(y \\mid e) = \\log \\sum_{y'} \\exp s(y') - s(y)

The partition function is the forward algorithm in log space; prediction is
Viterbi decoding. Padded steps (mask False) are skipped; padding must be on
the right. Tag id 0 is the padding tag of the pipelines' tag vocabularies, so
the training mask is ``y_true != 0``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_seq import _keras_compat

__all__ = ["CRF", "CRFLoss"]


@keras.saving.register_keras_serializable(package="keras_seq")
class CRF(keras.layers.Layer):
    """CRF over ``num_tags`` tags: learned transitions plus start / end scores.

    ``call(emissions)`` returns the emissions unchanged (so the model's output
    is the potentials); train with ``loss=CRFLoss(crf)`` (``crf.loss`` is the same
    function, but a model compiled with it cannot be saved) and predict tags with
    ``crf.decode(emissions, mask)`` (Viterbi).

    Attributes:
        transitions: (K, K), ``transitions[i, j]`` scores tag i followed by j.
        start_scores, end_scores: (K,).

    Shapes: B = batch size, T = sequence length, K = ``num_tags``.
    Input: emissions (B, T, K) (the layer passes them through); ``loss``
    takes gold tags (B, T) (0 = padding); ``decode`` returns tags (B, T).

    Example::

        >>> import numpy as np, keras_seq
        >>> crf = keras_seq.CRF(4)
        >>> emissions = crf(np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32"))
        >>> tags, score = crf.decode(emissions, np.array([[1, 1, 1], [1, 1, 0]], bool))
        >>> tuple(tags.shape), tuple(score.shape)
        ((2, 3), (2,))
    """

    def __init__(self, num_tags: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(num_tags, bool) or not isinstance(num_tags, int) or num_tags < 2:
            raise ValueError(f"`num_tags` must be an integer >= 2; received num_tags={num_tags!r}.")
        self.num_tags = num_tags
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] != self.num_tags:
            raise ValueError(
                f"`inputs` of CRF must be emissions of shape (batch, time, {self.num_tags}); "
                f"received shape {tuple(input_shape)}."
            )
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        self.transitions = self.add_weight(shape=(self.num_tags, self.num_tags), initializer=init, name="transitions")
        self.start_scores = self.add_weight(shape=(self.num_tags,), initializer="zeros", name="start_scores")
        self.end_scores = self.add_weight(shape=(self.num_tags,), initializer="zeros", name="end_scores")
        self.built = True

    def call(self, emissions, mask=None):
        # A new tensor: returning the input object would keep its (B, T) mask,
        # which Keras would then apply to the (B,) loss.
        return ops.copy(emissions)

    def compute_mask(self, inputs, mask=None):
        # The loss masks by y_true != 0 itself; a (B, T) mask would not fit its (B,) output.
        return None

    def compute_output_shape(self, input_shape):
        return input_shape

    # -- scores ----------------------------------------------------------
    @staticmethod
    def _mask(emissions, mask):
        if mask is None:
            return ops.ones(ops.shape(emissions)[:2], dtype="bool")
        return ops.cast(mask, "bool")

    def log_partition(self, emissions, mask=None):
        """log sum_y exp s(y), (B,), by the forward algorithm."""
        emissions = ops.cast(emissions, self.compute_dtype)
        mask = self._mask(emissions, mask)
        transitions = ops.convert_to_tensor(self.transitions)

        def step(emission_t, states):
            alpha = states[0]
            scores = ops.expand_dims(alpha, 2) + ops.expand_dims(transitions, 0)  # (B, from, to)
            new_alpha = ops.logsumexp(scores, axis=1) + emission_t
            return new_alpha, [new_alpha]

        if emissions.shape[1] is None:  # a traced train step
            emissions, mask = _one_more_padded_step(emissions, mask)
        first = emissions[:, 0] + self.start_scores
        if emissions.shape[1] == 1:
            alpha = first
        else:
            _, _, (alpha,) = _keras_compat.rnn(
                step, emissions[:, 1:], [first], mask=mask[:, 1:], return_all_outputs=False
            )
        total = ops.logsumexp(alpha + self.end_scores, axis=-1)
        return ops.where(mask[:, 0], total, ops.zeros_like(total))

    def sequence_score(self, emissions, tags, mask=None):
        """s(y) for the given tags, (B,)."""
        emissions = ops.cast(emissions, self.compute_dtype)
        mask = self._mask(emissions, mask)
        valid = ops.cast(mask, emissions.dtype)
        tags = ops.cast(tags, "int32")
        emitted = ops.sum(ops.take_along_axis(emissions, ops.expand_dims(tags, -1), axis=-1)[..., 0] * valid, axis=1)
        flat = ops.reshape(self.transitions, (-1,))
        pair = tags[:, :-1] * self.num_tags + tags[:, 1:]
        moved = ops.sum(ops.take(flat, pair) * valid[:, 1:] * valid[:, :-1], axis=1)
        lengths = ops.cast(ops.sum(valid, axis=1), "int32")
        last = ops.take_along_axis(tags, ops.expand_dims(ops.maximum(lengths - 1, 0), -1), axis=1)[:, 0]
        ends = ops.take(self.start_scores, tags[:, 0]) + ops.take(self.end_scores, last)
        return emitted + moved + ends * valid[:, 0]

    def negative_log_likelihood(self, emissions, tags, mask=None):
        return self.log_partition(emissions, mask) - self.sequence_score(emissions, tags, mask)

    def loss(self, y_true, y_pred):
        """Per-sequence NLL (B,); tag id 0 marks padding. (Compile with `CRFLoss`.)"""
        y_true = ops.cast(y_true, "int32")
        return self.negative_log_likelihood(y_pred, y_true, y_true != 0)

    # -- decoding -----------------------------------------------------------
    def decode(self, emissions, mask=None):
        """Viterbi: the best tag sequence (B, T) int32 (0 at padded steps) and its score (B,)."""
        emissions = ops.cast(emissions, self.compute_dtype)
        mask = self._mask(emissions, mask)
        if emissions.shape[1] is None:  # a serving graph
            emissions, mask = _one_more_padded_step(emissions, mask)
            path, score = self._viterbi(emissions, mask)
            return path[:, :-1], score
        return self._viterbi(emissions, mask)

    def _viterbi(self, emissions, mask):
        transitions = ops.convert_to_tensor(self.transitions)
        first = emissions[:, 0] + self.start_scores

        def forward(emission_t, states):
            scores = ops.expand_dims(states[0], 2) + ops.expand_dims(transitions, 0)
            best_prev = ops.cast(ops.argmax(scores, axis=1), emission_t.dtype)  # carried as float for the loop
            return best_prev, [ops.max(scores, axis=1) + emission_t]

        if emissions.shape[1] == 1:
            final, backpointers = first, None
        else:
            _, backpointers, (final,) = _keras_compat.rnn(forward, emissions[:, 1:], [first], mask=mask[:, 1:])
        final = final + self.end_scores
        best_last = ops.cast(ops.argmax(final, axis=-1), "int32")
        score = ops.max(final, axis=-1)
        if backpointers is None:
            path = ops.expand_dims(best_last, 1)
        else:
            # Walk back from the last step: at a valid step t, emit the current
            # tag and move to backpointer_t[tag]; padded steps emit 0.
            pointers = ops.cast(backpointers, "int32")  # (B, T-1, K) for steps 1..T-1

            def backward(inputs_t, states):
                pointer_t, valid_t = inputs_t[..., :-1], inputs_t[..., -1:]
                tag = ops.cast(states[0], "int32")
                previous = ops.take_along_axis(pointer_t, ops.expand_dims(tag, -1), axis=1)[:, 0]
                valid = ops.cast(valid_t[:, 0], "bool")
                new_tag = ops.where(valid, previous, tag)
                emitted = ops.where(valid, tag, ops.zeros_like(tag))
                return ops.cast(ops.expand_dims(emitted, -1), "float32"), [ops.cast(new_tag, "float32")]

            step_inputs = ops.concatenate(
                [ops.cast(pointers, "float32"), ops.cast(ops.expand_dims(mask[:, 1:], -1), "float32")], axis=-1
            )
            _, emitted, (tag0,) = _keras_compat.rnn(
                backward, step_inputs, [ops.cast(best_last, "float32")], go_backwards=True
            )
            tail = ops.flip(ops.cast(emitted[..., 0], "int32"), axis=1)  # steps 1..T-1 in order
            path = ops.concatenate([ops.expand_dims(ops.cast(tag0, "int32"), 1), tail], axis=1)
        path = path * ops.cast(mask, "int32")
        return path, ops.where(mask[:, 0], score, ops.zeros_like(score))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_tags": self.num_tags}


def _one_more_padded_step(emissions, mask):
    """Appends one masked step. With an unknown length (a traced graph), a batch of
    one-token sentences would run the loops over zero steps, which fails in TF (stacking
    zero outputs of unknown batch size); a masked step changes no score and no tag."""
    return (
        ops.concatenate([emissions, ops.zeros_like(emissions[:, :1])], axis=1),
        ops.concatenate([mask, ops.zeros_like(mask[:, :1])], axis=1),
    )


@keras.saving.register_keras_serializable(package="keras_seq")
class CRFLoss(keras.losses.Loss):
    """A `CRF` layer's negative log-likelihood as a Keras loss (tag id 0 marks padding).

    A ``.keras`` file stores the compiled loss by its config, which cannot hold the
    layer: a model loaded with ``keras.saving.load_model`` predicts and decodes, and
    its loss says to compile again (``keras_seq.tagger_loss(model)``) before training
    or evaluating; a bound method (``crf.loss``) would make the file unloadable.

    Example::

        >>> import keras_seq
        >>> tagger = keras_seq.build_tagger(50, 4, crf=True, units=4, embed_dim=4, depth=1)
        >>> tagger.compile("adam", loss=keras_seq.CRFLoss(tagger.get_layer("crf")))
    """

    def __init__(
        self, crf: CRF | None = None, name: str = "crf_loss", reduction: str = "sum_over_batch_size", dtype=None
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.crf = crf

    def call(self, y_true, y_pred):
        if self.crf is None:
            raise ValueError(
                "this CRF loss was read from a saved model and is not bound to its CRF layer; "
                "compile again: model.compile(optimizer, loss=keras_seq.tagger_loss(model))"
            )
        return self.crf.loss(y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}
