"""The one place that touches private Keras API, and why.

* `rnn` -- ``keras.src.backend.rnn``, Keras' own backend time loop: a
  ``tf.while_loop`` with TensorArrays and ``maximum_iterations`` on TensorFlow
  (XLA-compilable), ``lax.scan`` on JAX, a Python loop on torch. It handles
  masks, ``go_backwards``, ``unroll`` and ``zero_output_for_mask`` the way the
  built-in layers do. The public ``keras.ops.scan`` was measured slower, and on
  TensorFlow it cannot be XLA-compiled (no ``maximum_iterations``). Used by the
  time loop (`keras_seq.recurrent`) and the CRF (`keras_seq.crf`).
* `functional_nodes` -- a functional model's nodes in execution order
  (``Functional._nodes_by_depth``): the ONNX converter needs each node's layer
  and its input/output tensors, which ``get_config()`` gives only as names.

Checked against Keras 3.15.1 (setup.cfg pins ``keras>=3.15,<3.16``); the
parity tests against the built-in layers, the CRF tests and the ONNX export
tests fail loudly if a later Keras changes either.
"""
from __future__ import annotations

from typing import Iterator

from keras.src.backend import rnn  # noqa: F401  (re-exported: see the module docstring)

__all__ = ["rnn", "functional_nodes"]


def functional_nodes(model) -> Iterator:
    """The nodes of a functional (or Sequential) model that call an operation, inputs first."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:  # a Sequential model builds its functional graph lazily
        raise ValueError(f"model {model.name!r} has no functional graph (build it on a keras.Input first)")
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node
