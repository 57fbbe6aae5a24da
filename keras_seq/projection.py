"""Where a recurrent layer's input projection runs, and Keras' backend loop over the cell.

``x_t @ kernel + b`` has no recurrent dependency, so it can run

- ``"hoisted"``: once for all steps, one (B x T, D) matmul before the loop, so only the
  recurrent matmul stays inside; or
- ``"per_step"``: inside the loop, one (B, D) matmul per step as Keras' own cells do, where the
  backend's executor runs it beside the recurrent matmul on an idle core.

Which is faster depends on the backend, the cell and the mode (training, answering one row,
answering a batch), so ``projection="auto"`` reads `AUTO_PROJECTION`. The two forms compute the
same function (tested to 1e-5 with gradients); only the schedule differs.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_seq import _keras_compat

PROJECTIONS = ("auto", "hoisted", "per_step")
# projection="auto" on a CPU: (backend, cell class, mode) -> the form picked. Modes: "training";
# "inference" (a batch of one row, or of unknown size); "inference_batched" (more than one row; a
# missing entry falls back to "inference"). Anything not listed, and wherever a GPU is visible, is
# "hoisted". Chosen by benchmarks/bench_projection.py (figures: benchmarks/README.md).
AUTO_PROJECTION: dict[tuple[str, str, str], str] = {
    ("tensorflow", "ElmanCell", "training"): "per_step",
    ("tensorflow", "GRUCell", "training"): "per_step",
    ("tensorflow", "LSTMCell", "training"): "per_step",
    ("tensorflow", "GRUCell", "inference_batched"): "per_step",
    ("tensorflow", "LSTMCell", "inference_batched"): "per_step",
    **{
        ("jax", cell, mode): "per_step"
        for cell in ("ElmanCell", "GRUCell", "LSTMCell")
        for mode in ("training", "inference", "inference_batched")
    },
}

# Answering one row, the per-step form multiplies a (1, D) row by the input kernel at every step: it
# pays while the kernels stay in cache. Where (backend, cell, mode) has a limit here, a "per_step" pick
# stands only for a cell whose kernel and recurrent kernel take at most that many bytes in the compute
# dtype, else "hoisted". Chosen by benchmarks/bench_projection.py (figures: benchmarks/README.md).
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

        picked = ops.cond(ops.shape(sequences)[batch_axis] > 1, lambda: run(batched), lambda: run(single))
        return picked[0], (picked[2] if len(picked) > 2 else None), list(picked[1])

    @property
    def _loop_reads_backwards(self) -> bool:
        """Whether the backend's loop goes backwards without a reversed copy of its inputs: JAX's
        ``lax.scan(reverse=True)`` reads the steps in place. TensorFlow's loop copies them reversed
        (``tf.reverse``), so there the layer flips the raw inputs (D wide) itself, before the hoisted
        projection would make them G x H wide."""
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

        last_output, outputs, final_states = _keras_compat.rnn(
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
        if _keras_compat.fused_kernel_device("tanh", "sigmoid"):  # a GPU: measured on CPUs only
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
