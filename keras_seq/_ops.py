"""Small `keras.ops` helpers shared by the layers (backend-neutral)."""

from __future__ import annotations

from keras import ops


def matmul_features(x, kernel):
    """``x (..., F) @ kernel (F, K) -> (..., K)``, as one rank-2 matmul over all leading axes.

    Why not ``ops.matmul(x, kernel)`` on rank > 2: a broadcast batch-matmul is far slower, and
    TensorFlow lowers rank-3 x rank-2 to a tensordot whose gradient inside a while loop XLA
    cannot compile (``jit_compile=True`` failed in the attention decoder's loop on it).
    """
    if len(x.shape) <= 2:
        return ops.matmul(x, kernel)
    flat = ops.matmul(ops.reshape(x, (-1, x.shape[-1])), kernel)
    return ops.reshape(flat, (*ops.shape(x)[:-1], kernel.shape[-1]))
