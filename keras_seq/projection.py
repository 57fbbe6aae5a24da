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
    # JAX, 24 cases (64x100x128x256 and 16x50x64x128), the same ratios: training 1.06 / 1.04 / 1.08;
    # batch 1 1.00 / 1.23 / 1.01; batch B 1.09 / 1.86 / 1.49. (Under jit the batch size is static.)
    **{("jax", cell, mode): "per_step" for cell in ("ElmanCell", "GRUCell", "LSTMCell")
       for mode in ("training", "inference_batched")},
    ("jax", "GRUCell", "inference"): "per_step",
    ("jax", "LSTMCell", "inference"): "per_step",
}


class ProjectedLoop:
    """The time loop of `keras_seq.Recurrent` in either projection form (a mixin: it reads the
    layer's ``cell``, ``projection``, ``go_backwards``, ``unroll``, ``return_sequences`` and
    ``zero_output_for_mask``)."""

    def _loop(self, sequences, states, mask, recurrent_mask, training: bool = False):
        """Keras' backend loop over the cell: (last output, outputs (B, T, H) or None, final states)."""
        if self.go_backwards:
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
            return AUTO_PROJECTION.get((*key, "training"), "hoisted")
        single = AUTO_PROJECTION.get((*key, "inference"), "hoisted")
        if batch_size is None or batch_size <= 1:
            return single
        return AUTO_PROJECTION.get((*key, "inference_batched"), single)
