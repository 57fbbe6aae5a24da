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
* `dynamic_shapes_allowed` -- whether the code being traced may cut a tensor to a size it computes:
  not under JAX's tracing, and on TensorFlow not in an XLA context, which TensorFlow tells only
  through its private ``control_flow_util.GraphOrParentsInXlaContext`` (XLA needs static shapes; a
  layer that cuts its strings, `keras_seq.charcontext`, runs over every slot there instead).
* `distributed_fit` -- makes ``Model.fit`` / ``evaluate`` run under
  ``tf.distribute.MultiWorkerMirroredStrategy`` (TensorFlow backend), which Keras 3.15 cannot:
  keras-team/keras#20585, tensorflow/tensorflow#72388. Two places in
  ``keras.src.backend.tensorflow.trainer`` fail there: (1) ``_maybe_symbolic_build`` takes the
  first batch off the epoch's iterator and MEAN-reduces it across workers to learn its shapes --
  the reduce of a nest of per-replica values raises (and, had it worked, fit would have skipped
  that batch whenever ``steps_per_epoch`` is set); the patched method builds from the distributed
  dataset's element spec instead, taking nothing off the iterator. (2) each step's logs are
  reduced with ``strategy.reduce("MEAN", v, axis=0)``, which raises for the scalar metric values;
  the patch takes the local replica's value for the per-step logs (progress only: the epoch's logs
  are the metrics read in cross-replica context, summed over every worker by their ON_READ
  variables). (3) the optimizer clips (``clipnorm``, ``global_clipnorm``, ``clipvalue``) each
  replica's gradient *before* the all-reduce sums them (``BaseOptimizer.apply`` then
  ``TFOptimizer._all_reduce_sum_gradients``), so a clipped step differs from the single-process
  step of the same global batch; the patch sums first and clips the sum, and the later sum is
  skipped. The changes apply only under a multi-worker strategy (or, for (1) and (3), several
  replicas); everything else runs Keras' code unchanged. `tests/pipelines/test_distributed.py` trains two
  workers and fails loudly if a later Keras changes either.
* `moving_averages` -- the weights an optimizer built with ``use_ema=True`` averages, each with its
  average (``BaseOptimizer._trainable_variables`` and ``_model_variables_moving_average``). Keras
  updates the average inside every train step on every backend, but offers it only through
  ``finalize_variable_values``, which overwrites the weights for good; validating on the average
  during ``fit`` (`keras_seq.averaging`) needs both lists to swap and swap back.

Checked against Keras 3.15.1 (setup.cfg pins ``keras>=3.15,<3.16``); the
parity tests against the built-in layers, the CRF tests and the ONNX export
tests fail loudly if a later Keras changes either.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
from keras.src.backend import cudnn_ok as _cudnn_ok
from keras.src.backend import gru as fused_gru  # noqa: F401  (re-exported: see the module docstring)
from keras.src.backend import lstm as fused_lstm  # noqa: F401
from keras.src.backend import rnn  # noqa: F401

__all__ = [
    "rnn",
    "fused_lstm",
    "fused_gru",
    "fused_kernel_device",
    "dynamic_shapes_allowed",
    "functional_nodes",
    "distributed_fit",
    "moving_averages",
]


def fused_kernel_device(activation, recurrent_activation) -> bool:
    """Whether the backend sees a device with a fused RNN kernel (a GPU) for these
    activations (the backend's own ``cudnn_ok``, with unroll off and a bias)."""
    return bool(_cudnn_ok(activation, recurrent_activation, False, use_bias=True))


def dynamic_shapes_allowed() -> bool:
    """TensorFlow outside XLA and torch: True; JAX (always traced with static shapes) and XLA: False."""
    backend = keras.backend.backend()
    if backend == "torch":
        return True
    if backend != "tensorflow":
        return False
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    return not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def functional_nodes(model) -> Iterator:
    """The nodes of a functional (or Sequential) model that call an operation, inputs first."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:  # a Sequential model builds its functional graph lazily
        raise ValueError(f"model {model.name!r} has no functional graph (build it on a keras.Input first)")
    for depth in sorted(by_depth, reverse=True):
        for node in by_depth[depth]:
            if node.operation is not None and not node.is_input:
                yield node


_PATCHED: list = []


def distributed_fit() -> None:
    """Patches Keras' TensorFlow trainer for MultiWorkerMirroredStrategy (see the module docstring); idempotent."""
    if _PATCHED:
        return
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    reduce_per_replica, maybe_symbolic_build = (
        trainer.reduce_per_replica,
        trainer.TensorFlowTrainer._maybe_symbolic_build,
    )

    def local_spec(spec):
        return spec._value_specs[0] if hasattr(spec, "_value_specs") else spec  # PerReplicaSpec -> one replica's

    def reduce_logs(values, strategy, reduction):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            reduction = "first"
        return reduce_per_replica(values, strategy, reduction)

    def symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if (
            strategy is None
            or iterator is None
            or not (trainer._collective_all_reduce_multi_worker(strategy) or strategy.num_replicas_in_sync > 1)
        ):
            return maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)
        spec = tree.map_structure(local_spec, iterator._distributed_dataset.element_spec)
        with strategy.scope():
            self._symbolic_build(data_batch=spec)

    trainer.reduce_per_replica = reduce_logs
    trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build
    _clip_after_all_reduce()
    _PATCHED.append(True)


def _clip_after_all_reduce() -> None:
    """(3) of `distributed_fit`: clip the all-reduced gradient, not each replica's part of it."""
    import threading

    import tensorflow as tf
    from keras.src.backend.tensorflow.optimizer import TFOptimizer

    clip, all_reduce = TFOptimizer._clip_gradients, TFOptimizer._all_reduce_sum_gradients
    reduced = threading.local()  # MirroredStrategy traces its replicas in threads of their own

    def clip_gradients(self, grads):
        context = tf.distribute.get_replica_context()
        clipping = self.clipnorm or self.global_clipnorm or self.clipvalue
        if clipping and context is not None and context.num_replicas_in_sync > 1:
            present = [g for g in grads if g is not None]
            summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present) if present else [])
            grads = [None if g is None else next(summed) for g in grads]
            reduced.done = True
        return clip(self, grads)

    def all_reduce_sum(self, grads_and_vars):
        if getattr(reduced, "done", False):
            reduced.done = False
            return list(grads_and_vars)
        return all_reduce(self, grads_and_vars)

    TFOptimizer._clip_gradients = clip_gradients
    TFOptimizer._all_reduce_sum_gradients = all_reduce_sum


def moving_averages(optimizer) -> list[tuple]:
    """(variable, its moving average) for each variable `optimizer` (built, ``use_ema=True``) updates."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's own
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or averages is None:
        return []
    return [(v, a) for v, a in zip(optimizer._trainable_variables, averages, strict=True) if a is not None]
