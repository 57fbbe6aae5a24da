"""Mask-aware pooling of a sequence of vectors into one vector."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["SequencePooling"]

_MODES = ("last", "mean", "max", "concat")


@keras.saving.register_keras_serializable(package="keras_seq")
class SequencePooling(keras.layers.Layer):
    """Pools (B, T, D) to (B, D) over the valid (unmasked) steps.

    Modes:
        ``"last"``: the output at the last valid step (for right padding, step
        ``length - 1``); ``"mean"``: mean over valid steps; ``"max"``: maximum
        over valid steps; ``"concat"``: last, max and mean side by side, (B, 3 * D)
        (ULMFiT's concat pooling). A sequence with no valid step pools to zeros.

    Without a mask every step is valid. The layer consumes the mask.

    Shapes: B = batch size, T = sequence length, D = features.

    Example (padded steps do not count)::

        >>> import numpy as np, keras_seq
        >>> x = np.arange(6, dtype="float32").reshape(1, 3, 2)
        >>> keras_seq.SequencePooling("mean")(x, mask=np.array([[True, True, False]])).numpy().tolist()
        [[1.0, 2.0]]
    """

    def __init__(self, mode: str = "last", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}; received mode={mode!r}.")
        self.mode = mode
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "`inputs` of SequencePooling must be rank 3 (batch, time, features); "
                f"received shape {tuple(input_shape)}."
            )
        self.built = True

    def compute_output_shape(self, input_shape):
        features = input_shape[2]
        if self.mode == "concat" and features is not None:
            features *= 3
        return (input_shape[0], features)

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, mask=None):
        if self.mode == "concat":
            return ops.concatenate([self._pool(inputs, mask, mode) for mode in ("last", "max", "mean")], axis=-1)
        return self._pool(inputs, mask, self.mode)

    def _pool(self, inputs, mask, mode: str):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.cast(mask, inputs.dtype)  # (B, T)
        any_valid = ops.expand_dims(ops.cast(ops.any(ops.cast(mask, "bool"), axis=1), inputs.dtype), -1)
        if mode == "mean":
            # Summed in float32 under mixed precision: bf16 holds integers exactly only up to 256.
            wide = "float32" if keras.backend.standardize_dtype(inputs.dtype) in ("bfloat16", "float16") else None
            x, v = (inputs, valid) if wide is None else (ops.cast(inputs, wide), ops.cast(valid, wide))
            total = ops.sum(x * ops.expand_dims(v, -1), axis=1)
            count = ops.maximum(ops.sum(v, axis=1, keepdims=True), 1.0)
            return ops.cast(total / count, inputs.dtype)
        if mode == "max":
            # standardize_dtype: torch's dtype is torch.float32, which never equals the string
            wide = keras.backend.standardize_dtype(inputs.dtype) in ("float32", "float64")
            lowest = ops.full_like(inputs, -3.0e38 if wide else -6.0e4)
            pooled = ops.max(ops.where(ops.expand_dims(ops.cast(mask, "bool"), -1), inputs, lowest), axis=1)
            return pooled * any_valid
        # last: index of the last True in each row (works for any padding side).
        steps = ops.shape(inputs)[1]
        positions = ops.arange(steps, dtype="int32")[None, :]
        last = ops.max(ops.where(ops.cast(mask, "bool"), positions, -1), axis=1)
        index = ops.maximum(last, 0)
        picked = ops.take_along_axis(inputs, ops.reshape(index, (-1, 1, 1)), axis=1)[:, 0, :]
        return picked * any_valid

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}
