"""The one place that touches private Keras API, and why.

* `rnn` -- ``keras.src.backend.rnn``, Keras' own backend time loop: a
  ``tf.while_loop`` with TensorArrays and ``maximum_iterations`` on TensorFlow
  (XLA-compilable), ``lax.scan`` on JAX, a Python loop on torch. It handles
  masks, ``go_backwards``, ``unroll`` and ``zero_output_for_mask`` the way the
  built-in layers do. The public ``keras.ops.scan`` was measured slower, and on
  TensorFlow it cannot be XLA-compiled (no ``maximum_iterations``). Used by the
  time loop (`keras_seq.recurrent`) and the CRF (`keras_seq.crf`).
* `fused_lstm`, `fused_gru`, `fused_kernel_device` -- ``keras.src.backend.lstm / gru /
  cudnn_ok``: the fused kernels Keras' own LSTM and GRU layers call (cuDNN's
  ``CudnnRNNV3`` on TensorFlow with a GPU; ``jax.experimental.rnn`` or
  ``torch.nn.LSTM`` on a GPU for unmasked input). Each raises NotImplementedError
  where it cannot run, and the caller falls back to its loop, as Keras' layers do.
* `functional_nodes` -- a functional model's nodes in execution order
  (``Functional._nodes_by_depth``): the ONNX converter needs each node's layer
  and its input/output tensors, which ``get_config()`` gives only as names.

Checked against Keras 3.15.1 (setup.cfg pins ``keras>=3.15,<3.16``); the
parity tests against the built-in layers, the CRF tests and the ONNX export
tests fail loudly if a later Keras changes either.
"""
from __future__ import annotations

from typing import Iterator

from keras.src.backend import cudnn_ok as _cudnn_ok
from keras.src.backend import gru as fused_gru  # noqa: F401  (re-exported: see the module docstring)
from keras.src.backend import lstm as fused_lstm  # noqa: F401
from keras.src.backend import rnn  # noqa: F401

__all__ = ["rnn", "fused_lstm", "fused_gru", "fused_kernel_device", "functional_nodes"]


def fused_kernel_device(activation, recurrent_activation) -> bool:
    """Whether the backend sees a device with a fused RNN kernel (a GPU) for these
    activations (the backend's own ``cudnn_ok``, with unroll off and a bias)."""
    return bool(_cudnn_ok(activation, recurrent_activation, False, use_bias=True))


def functional_nodes(model) -> Iterator:
    """The nodes of a functional (or Sequential) model that call an operation, inputs first."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:  # a Sequential model builds its functional graph lazily
        raise ValueError(f"model {model.name!r} has no functional graph (build it on a keras.Input first)")
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node
