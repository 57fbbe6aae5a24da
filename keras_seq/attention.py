"""Attention over an encoder's outputs for encoder-decoders: additive (Bahdanau et al.,
2015) and multiplicative (Luong et al., 2015: dot and general), mask-aware.

Both layers take the decoder's query (one step (B, Q) or every step (B, L, Q)) and the
encoder's outputs, the memory (B, S, M), with the memory's padding mask, and return the
context vectors and the attention weights (for plotting alignments). Padded memory steps
get weight exactly 0; a memory with no valid step gives zero weights and a zero context.

Shapes: B = batch size, L = decoder steps (target length), S = encoder steps (source
length), Q = query features, M = memory features, A = attention units.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_seq._ops import matmul_features

__all__ = ["AdditiveAttention", "MultiplicativeAttention"]


def _masked_softmax(scores, memory_mask):
    """softmax over the last axis (S) with padded steps at exactly 0; all-padded rows give 0."""
    if memory_mask is None:
        return ops.softmax(scores, axis=-1)
    valid = ops.cast(memory_mask, "bool")
    while len(valid.shape) < len(scores.shape):  # (B, S) -> (B, 1, S) for (B, L, S) scores
        valid = ops.expand_dims(valid, -2)
    # A large finite negative, not -inf: an all-padded row then stays finite (uniform, zeroed
    # below) and so do its gradients.
    lowest = -6e4 if keras.backend.standardize_dtype(scores.dtype) == "float16" else -1e9
    weights = ops.softmax(ops.where(valid, scores, ops.full_like(scores, lowest)), axis=-1)
    return ops.where(valid, weights, ops.zeros_like(weights))


class _Attention(keras.layers.Layer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def _check(self, query_shape, memory_shape) -> None:
        if len(memory_shape) != 3:
            raise ValueError(
                f"`memory` of {type(self).__name__} must be rank 3 (batch, source steps, features); "
                f"received shape {tuple(memory_shape)}."
            )
        if len(query_shape) not in (2, 3):
            raise ValueError(
                f"`query` of {type(self).__name__} must be (batch, features) or (batch, steps, "
                f"features); received shape {tuple(query_shape)}."
            )

    def compute_output_shape(self, query_shape, memory_shape):
        context = (*query_shape[:-1], memory_shape[-1])
        return context, (*query_shape[:-1], memory_shape[1])

    def compute_mask(self, query, memory=None, mask=None, memory_mask=None):
        query_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        return [query_mask, query_mask]

    def attend(self, query, memory, memory_mask=None, projected_memory=None):
        """(context, weights) for a query (B, Q) or queries (B, L, Q); `projected_memory`:
        what `project_memory` computed once per source, where the score has one."""
        one_step = len(query.shape) == 2
        queries = ops.expand_dims(query, 1) if one_step else query  # (B, L, Q)
        weights = _masked_softmax(self.scores(queries, memory, projected_memory), memory_mask)  # (B, L, S)
        context = ops.matmul(weights, ops.cast(memory, weights.dtype))  # (B, L, M)
        if one_step:
            return context[:, 0], weights[:, 0]
        return context, weights

    def project_memory(self, memory):
        """Per-source work the scores reuse at every decoder step (None: the score has none)."""
        return None

    def call(self, query, memory, memory_mask=None, mask=None):
        if memory_mask is None and isinstance(mask, (list, tuple)) and len(mask) > 1:
            memory_mask = mask[1]  # the memory's Keras mask, when it carries one
        return self.attend(query, memory, memory_mask)


@keras.saving.register_keras_serializable(package="keras_seq")
class AdditiveAttention(_Attention):
    """Bahdanau (additive, "concat") attention.

    .. math::

        e_{ls} = v^\\top \\tanh(W_q q_l + W_m m_s), \\qquad
        a_{ls} = \\frac{\\exp e_{ls}}{\\sum_{s' \\text{ valid}} \\exp e_{ls'}}, \\qquad
        c_l = \\sum_s a_{ls} m_s

    Args:
        units: A, the size of the hidden layer of the score network.

    Call arguments: ``query`` (B, Q) or (B, L, Q); ``memory`` (B, S, M); ``memory_mask``
    (B, S) booleans (or the memory's Keras mask). Returns ``(context, weights)``:
    (B, M) and (B, S) for one query, (B, L, M) and (B, L, S) for L queries.

    Example (a padded memory step gets no weight)::

        >>> import numpy as np, keras_seq
        >>> memory = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
        >>> context, weights = keras_seq.AdditiveAttention(5)(
        ...     np.ones((2, 3), "float32"), memory, memory_mask=np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool))
        >>> tuple(context.shape), np.asarray(weights)[1, 2:].tolist(), round(float(np.asarray(weights)[0].sum()), 5)
        ((2, 6), [0.0, 0.0], 1.0)
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"`units` must be a positive integer; received units={units!r}.")
        self.units = units

    def build(self, query_shape, memory_shape) -> None:
        self._check(query_shape, memory_shape)
        self.query_kernel = self.add_weight(
            shape=(query_shape[-1], self.units), initializer="glorot_uniform", name="query_kernel"
        )
        self.memory_kernel = self.add_weight(
            shape=(memory_shape[-1], self.units), initializer="glorot_uniform", name="memory_kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.score_vector = self.add_weight(shape=(self.units,), initializer="glorot_uniform", name="score_vector")
        self.built = True

    def project_memory(self, memory):
        """W_m m_s for every memory step, (B, S, A): computed once per source, reused at every decoder step."""
        return matmul_features(memory, self.memory_kernel) + self.bias

    def scores(self, queries, memory, projected_memory=None):
        keys = self.project_memory(memory) if projected_memory is None else projected_memory  # (B, S, A)
        hidden = ops.tanh(ops.expand_dims(matmul_features(queries, self.query_kernel), 2) + ops.expand_dims(keys, 1))
        return ops.sum(hidden * self.score_vector, axis=-1)  # (B, L, S)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="keras_seq")
class MultiplicativeAttention(_Attention):
    """Luong (multiplicative) attention: ``score="dot"`` or ``"general"``.

    .. math::

        e_{ls} = q_l^\\top m_s \\;(\\text{dot}), \\qquad e_{ls} = q_l^\\top W m_s \\;(\\text{general}),
        \\qquad a_{ls} = \\operatorname{softmax}_{s \\text{ valid}}(e_{ls}), \\qquad c_l = \\sum_s a_{ls} m_s

    ``dot`` needs Q = M; ``general`` learns W (Q, M). With ``scale=True`` the scores are
    divided by sqrt(M) (Vaswani et al.'s scaling; off by default, as in Luong et al.).

    Call arguments and returns: as `AdditiveAttention`.

    Example::

        >>> import numpy as np, keras_seq
        >>> memory = np.eye(3, dtype="float32")[None]          # three orthogonal memory steps
        >>> _, weights = keras_seq.MultiplicativeAttention("dot")(np.array([[0, 9, 0]], "float32"), memory)
        >>> int(np.argmax(weights))                              # the query points at step 1
        1
    """

    def __init__(self, score: str = "general", scale: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if score not in ("dot", "general"):
            raise ValueError(f"`score` must be 'dot' or 'general'; received score={score!r}.")
        self.score, self.scale = score, bool(scale)

    def build(self, query_shape, memory_shape) -> None:
        self._check(query_shape, memory_shape)
        if self.score == "dot" and query_shape[-1] != memory_shape[-1]:
            raise ValueError(
                f"score='dot' needs query and memory features of the same size; received "
                f"{query_shape[-1]} and {memory_shape[-1]} (use score='general')."
            )
        if self.score == "general":
            self.kernel = self.add_weight(
                shape=(query_shape[-1], memory_shape[-1]), initializer="glorot_uniform", name="kernel"
            )
        self.built = True

    def scores(self, queries, memory, projected_memory=None):
        if self.score == "general":
            queries = matmul_features(queries, self.kernel)  # q^T W: (B, L, M)
        scores = ops.matmul(queries, ops.transpose(ops.cast(memory, queries.dtype), (0, 2, 1)))  # (B, L, S)
        if self.scale:
            scores = scores / ops.sqrt(ops.cast(ops.shape(memory)[-1], scores.dtype))
        return scores

    def get_config(self) -> dict:
        return {**super().get_config(), "score": self.score, "scale": self.scale}
