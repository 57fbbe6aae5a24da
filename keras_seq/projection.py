"""Where a recurrent layer's input projection runs, and Keras' backend loop over the cell.

``x_t @ kernel + b`` has no recurrent dependency, so it can run

- ``"hoisted"``: once for all steps, one (B x T, D) matmul before the loop, so only the
  recurrent matmul stays inside; or
- ``"per_step"``: inside the loop, one (B, D) matmul per step as Keras' own cells do, where the
  backend's executor runs it beside the recurrent matmul on an idle core.

Which is faster depends on the backend, the cell and the mode (training, answering one row,
answering a batch), so ``projection="auto"`` reads `AUTO_PROJECTION`, filled in from
`benchmarks/bench_projection.py`. The two forms compute the same function (tested to 1e-5 with
gradients); only the schedule differs.
"""
from __future__ import annotations

import math

import keras
from keras import ops

from keras_seq import _keras_compat as keras_backend

PROJECTIONS = ("auto", "hoisted", "per_step")
# projection="auto" on a CPU: (backend, cell class, mode) -> the form measured faster on a 2-core CPU
# (benchmarks/bench_projection.py; benchmarks/results/bench_projection-BACKEND.json). The modes:
# "training"; "inference" (a batch of one row, or of unknown size); "inference_batched" (more than
# one row; a missing entry falls back to "inference"). Else, and wherever a GPU is visible (one large
# matmul suits it), "hoisted".
AUTO_PROJECTION: dict[tuple[str, str, str], str] = {
    # TensorFlow, 36 cases (3 shapes x uni / bi x masked or not), per-step / hoisted speed, Elman /
    # GRU / LSTM: training tokens/s 1.135 / 1.054 / 1.073; batch-1 latency 0.83 / 0.85 / 0.86 (hoisted
    # answers one row sooner); batch-B (16-64) latency 0.98 / 1.07 / 0.98. A second CPU (AMD EPYC, no
    # AVX-512; 24 cases, -epyc.json) agrees but for the LSTM in inference (batch 1 1.01, batch B 1.12).
    # A second run on the first CPU (-run2.json) agrees but for the LSTM at batch B (1.06): over the
    # three runs its per-step form answers a batch at 0.98 / 0.99 / 1.04 of Keras' LSTM (worst case
    # 0.81) against hoisted's 1.00 / 0.93 / 0.93 (worst 0.66), so the LSTM answers a batch per-step.
    ("tensorflow", "ElmanCell", "training"): "per_step",
    ("tensorflow", "GRUCell", "training"): "per_step",
    ("tensorflow", "LSTMCell", "training"): "per_step",
    ("tensorflow", "GRUCell", "inference_batched"): "per_step",
    ("tensorflow", "LSTMCell", "inference_batched"): "per_step",
    # JAX, 36 cases, the same ratios (three runs, -jax.json, -jax-run2.json, -jax-run3.json; a
    # fourth, -jax-run4.json, after the in-place backwards loop, agrees on every pick):
    # training 1.06-1.08 / 1.04-1.06 / 1.03; batch B 1.06-1.07 / 1.62-1.64 / 1.35-1.37; batch 1 by
    # the weights' size (PER_STEP_WEIGHT_LIMIT). (Under jit the batch size is static.)
    **{("jax", cell, mode): "per_step" for cell in ("ElmanCell", "GRUCell", "LSTMCell")
       for mode in ("training", "inference", "inference_batched")},
}

# Answering one row, the per-step form multiplies a (1, D) row by the input kernel at every step
# beside the recurrent matmul: it pays while the cell's kernels are small, and costs about twice the
# hoisted form's time once they outgrow the cache. So where (backend, cell, mode) has a limit here, a
# "per_step" pick stands only for a cell whose kernel and recurrent kernel take at most that many
# bytes (in the compute dtype), else "hoisted". JAX, batch 1, per-step / hoisted speed in the two runs
# the limits were chosen on (a third agreed), by the kernels' size: Elman 49 kB 1.21 / 1.13, 393 kB
# 0.92 / 0.98, 1.6 MB 0.75 / 0.74; GRU 147 kB 1.41 / 1.48, 1.2 MB 1.29 / 1.36, 4.7 MB 0.45 / 0.47;
# LSTM 197 kB 1.17 / 1.25, 1.6 MB 0.96 / 1.03 (the two later runs 0.92, 0.88: near even at the
# limit), 6.3 MB 0.44 / 0.45. Measured on a 2-core Xeon with 2 MiB of L2 cache per core; another CPU
# may want other limits.
PER_STEP_WEIGHT_LIMIT: dict[tuple[str, str, str], int] = {
    ("jax", "ElmanCell", "inference"): 256 * 2**10,
    ("jax", "GRUCell", "inference"): 2 * 2**20,
    ("jax", "LSTMCell", "inference"): 2 * 2**20,
}
_ITEM_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8}


def weight_bytes(cell) -> int | None:
    """Bytes of a built cell's kernel and recurrent kernel in its compute dtype (None: not built)."""
    kernels = [getattr(cell, name, None) for name in ("kernel", "recurrent_kernel")]
    if any(k is None for k in kernels):
        return None
    dtype = keras.backend.standardize_dtype(cell.compute_dtype)
    return sum(int(math.prod(k.shape)) for k in kernels) * _ITEM_BYTES.get(dtype, 4)


class ProjectedLoop:
    """The time loop of `keras_seq.Recurrent` in either projection form (a mixin: it reads the
    layer's ``cell``, ``projection``, ``go_backwards``, ``unroll``, ``return_sequences`` and
    ``zero_output_for_mask``)."""

    def _loop(self, sequences, states, mask, recurrent_mask, training: bool = False):
        """Keras' backend loop over the cell: (last output, outputs (B, T, H) or None, final states)."""
        if self.go_backwards and not self._loop_reads_backwards:
            sequences = ops.flip(sequences, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        steps = sequences.shape[1]
        # With a static number of steps, go time-major before projecting (the
        # transpose then moves D floats per step, not G * units). With a
        # dynamic one, stay batch-major: keras' rnn() caps a time-major loop at
        # inputs.shape[1] -- the *batch* size -- when input_length is unknown.
        time_major = steps is not None
        if time_major:
            sequences = ops.transpose(sequences, (1, 0, 2))
            mask = None if mask is None else ops.transpose(mask, (1, 0))
        batch_axis = 1 if time_major else 0
        batch = sequences.shape[batch_axis]
        single, batched = self.projection_form(training, 1), self.projection_form(training, 2)
        if single == batched or batch is not None:
            form = batched if batch is not None and batch > 1 else single
            return self._run(form, sequences, states, mask, recurrent_mask, steps, time_major)

        # The batch size is known only when the graph runs (a serving signature): pick there.
        def run(form):
            last, outputs, final = self._run(form, sequences, states, mask, recurrent_mask, steps, time_major)
            return (last, final) if outputs is None else (last, final, outputs)

        picked = ops.cond(ops.shape(sequences)[batch_axis] > 1,
                          lambda: run(batched), lambda: run(single))
        return picked[0], (picked[2] if len(picked) > 2 else None), list(picked[1])

    @property
    def _loop_reads_backwards(self) -> bool:
        """Whether the backend's loop goes backwards without a reversed copy of its inputs: JAX's
        ``lax.scan(reverse=True)`` reads the steps in place. TensorFlow's loop copies them reversed
        (``tf.reverse``), so there the layer flips the raw inputs (D wide) itself, before the hoisted
        projection would make them G x H wide. (JAX, bidirectional Elman 64x100x128x256: the copy
        was the one op of the training step Keras' layer does not have.)"""
        return keras.backend.backend() == "jax"

    def _run(self, form: str, sequences, states, mask, recurrent_mask, steps, time_major: bool):
        """The loop with the input projection `form` ("hoisted" or "per_step")."""
        cell = self.cell
        state_dtype = states[0].dtype
        if form == "per_step":
            loop_inputs = sequences

            def step(inputs_t, carry):
                projected_t = ops.cast(cell.project_inputs(inputs_t), state_dtype)
                return cell.recurrent_step(projected_t, list(carry), recurrent_mask)
        else:
            # once, not per step (mixed precision: to float32)
            loop_inputs = ops.cast(cell.project_inputs(sequences), state_dtype)

            def step(projected_t, carry):
                return cell.recurrent_step(projected_t, list(carry), recurrent_mask)

        last_output, outputs, final_states = keras_backend.rnn(
            step,
            loop_inputs,
            states,
            mask=mask,
            unroll=self.unroll,
            input_length=steps,
            time_major=time_major,
            go_backwards=self.go_backwards and self._loop_reads_backwards,
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )
        if self.return_sequences and time_major:
            outputs = ops.transpose(outputs, (1, 0, 2))
        return last_output, (outputs if self.return_sequences else None), list(final_states)

    def projection_form(self, training: bool = False, batch_size: int | None = None) -> str:
        """``"hoisted"`` or ``"per_step"``: what ``projection`` means for this layer here, in
        training or in inference of `batch_size` rows (None: unknown, read as one row)."""
        if self.projection != "auto":
            return self.projection
        if keras_backend.fused_kernel_device("tanh", "sigmoid"):  # a GPU: measured on CPUs only
            return "hoisted"
        key = (keras.backend.backend(), type(self.cell).__name__)
        if training:
            return self._auto_form(key, "training", "hoisted")
        single = self._auto_form(key, "inference", "hoisted")
        if batch_size is None or batch_size <= 1:
            return single
        return self._auto_form(key, "inference_batched", single)

    def _auto_form(self, key: tuple[str, str], mode: str, default: str) -> str:
        form = AUTO_PROJECTION.get((*key, mode), default)
        limit = PER_STEP_WEIGHT_LIMIT.get((*key, mode))
        if form == "per_step" and limit is not None and (weight_bytes(self.cell) or 0) > limit:
            return "hoisted"
        return form
