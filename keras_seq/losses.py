"""Losses the Keras built-ins lack: label smoothing with integer targets.

Keras 3's ``SparseCategoricalCrossentropy`` has no ``label_smoothing`` (only the
one-hot ``CategoricalCrossentropy`` has), and one-hot targets over a vocabulary
cost a (B, T, K) tensor per batch; this loss takes the ids.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["LabelSmoothedCrossentropy"]


@keras.saving.register_keras_serializable(package="keras_seq")
class LabelSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy against the target smoothed towards the uniform distribution.

    With K classes, smoothing ε, and log-probabilities ℓ = log softmax(logits)::

        q_k  = (1 - ε) [k = y] + ε / K
        loss = -Σ_k q_k ℓ_k = (1 - ε) (-ℓ_y) + ε · mean_k(-ℓ_k)

    which is ``CategoricalCrossentropy(label_smoothing=ε)`` on one-hot targets
    (Szegedy et al. 2016; Vaswani et al. 2017 use ε = 0.1). ε = 0 is the plain
    sparse cross-entropy. Masks work as for Keras' own losses: a padded step
    (the prediction's Keras mask) does not count.

    Shapes: B = batch size, T = sequence length (absent for one label per row),
    K = number of classes. y_true: ids (B, T); y_pred: (B, T, K) logits
    (``from_logits=True``) or probabilities; the loss per step: (B, T).

    Example::

        >>> import numpy as np, keras_seq
        >>> loss = keras_seq.LabelSmoothedCrossentropy(0.1, from_logits=True)
        >>> round(float(loss(np.array([0]), np.array([[2.0, 0.0, 0.0]], "float32"))), 4)
        0.3729
    """

    def __init__(self, label_smoothing: float = 0.1, from_logits: bool = False, **kwargs: Any) -> None:
        super().__init__(**{"name": "label_smoothed_crossentropy", **kwargs})
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1); received label_smoothing={label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        # float32 however the model computes: log-probabilities of bf16 logits lose the small ones
        y_pred = ops.cast(y_pred, "float32")
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            log_probs = ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))
        ids = ops.cast(y_true, "int32")
        if len(ids.shape) == len(log_probs.shape):  # (B, T, 1) or (B, 1) targets, as Keras' own accepts
            ids = ops.squeeze(ids, axis=-1)
        gold = ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(ids, -1), axis=-1), axis=-1)
        return -(1.0 - self.label_smoothing) * gold - self.label_smoothing * ops.mean(log_probs, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}
