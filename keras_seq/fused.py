"""The backend's fused RNN kernel (cuDNN on a GPU) for `keras_seq.Recurrent`: when it may run,
and running it with the loop's conventions.

The conditions are Keras' own for its LSTM and GRU layers (``fused_kernel_blockers``); the
kernels are the ones Keras' layers call (`keras_seq._keras_compat.fused_lstm / fused_gru`).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_seq import _keras_compat
from keras_seq.cells import GRUCell, LSTMCell


class FusedKernel:
    """Mixed into `Recurrent`: reads ``self.cell``, ``use_cudnn``, ``unroll``, ``recurrent_dropout``,
    ``return_sequences``, ``go_backwards``, ``zero_output_for_mask`` and falls back on ``self._loop``."""

    def fused_kernel_blockers(self) -> list[str]:
        """Why this layer cannot run the backend's fused kernel; [] when it can (given a
        device that has one, and a right-padded mask without empty rows at run time).
        The conditions are Keras' own for its LSTM and GRU layers."""
        cell, blockers = self.cell, []
        if self.use_cudnn is False:
            blockers.append("use_cudnn=False")
        if type(cell) not in (LSTMCell, GRUCell):  # exactly: a subclass may change the equations
            return blockers + [f"{type(cell).__name__} has no fused kernel (only keras_seq's LSTMCell and GRUCell)"]
        if keras.activations.serialize(cell.activation) != "tanh":
            blockers.append(f"activation={keras.activations.serialize(cell.activation)!r} (needs 'tanh')")
        if keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
            blockers.append(
                f"recurrent_activation={keras.activations.serialize(cell.recurrent_activation)!r} (needs 'sigmoid')"
            )
        if not cell.use_bias:
            blockers.append("use_bias=False")
        if not getattr(cell, "reset_after", True):
            blockers.append("reset_after=False")
        if self.unroll:
            blockers.append("unroll=True")
        if self.recurrent_dropout:
            blockers.append(f"recurrent_dropout={self.recurrent_dropout}")
        return blockers

    def _fused(self, sequences, states, mask):
        """The backend's fused kernel (cuDNN), or None where it cannot run. A mask must be
        right-padded with no empty row (cuDNN's condition): checked in the graph, with the
        loop as the other branch. Results follow the loop's conventions exactly."""
        cell = self.cell

        def fused():
            arguments = dict(
                kernel=cell.kernel,
                recurrent_kernel=cell.recurrent_kernel,
                bias=cell.bias,
                activation=cell.activation,
                recurrent_activation=cell.recurrent_activation,
                return_sequences=self.return_sequences,
                go_backwards=self.go_backwards,
                unroll=False,
            )
            initial = [ops.cast(x, sequences.dtype) for x in states]
            if len(states) == 2:
                last, outputs, final = _keras_compat.fused_lstm(sequences, initial[0], initial[1], mask, **arguments)
            else:
                last, outputs, final = _keras_compat.fused_gru(
                    sequences, initial[0], mask, reset_after=True, **arguments
                )
            final = [ops.cast(x, sequences.dtype) for x in final]
            if not self.return_sequences:
                return ops.cast(last, sequences.dtype), None, final
            outputs = ops.cast(outputs, sequences.dtype)
            if mask is not None and not self.zero_output_for_mask and not self.go_backwards:
                # cuDNN outputs zeros after a row's end; the loop repeats the last valid output.
                outputs = ops.where(ops.expand_dims(mask, -1), outputs, ops.expand_dims(final[0], 1))
            return final[0], outputs, final

        try:
            if mask is None:
                return fused()
            mask = ops.cast(mask, "bool")
            lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
            right_padded = ops.all(ops.equal(mask, ops.arange(ops.shape(mask)[1])[None, :] < lengths[:, None]))
            usable = ops.logical_and(right_padded, ops.all(lengths > 0))
            none_to_zeros = lambda r: (r[0], r[1] if r[1] is not None else ops.zeros_like(r[0]), r[2])  # noqa: E731
            loop = lambda: self._in_compute_dtype(self._loop(sequences, states, mask, None))  # noqa: E731
            last, outputs, final = ops.cond(usable, lambda: none_to_zeros(fused()), lambda: none_to_zeros(loop()))
            return last, (outputs if self.return_sequences else None), final
        except NotImplementedError:  # this backend / device / configuration has no fused kernel
            return None
