"""The one time-loop layer, and the Elman / GRU / LSTM layers built on it.

``Recurrent(cell)`` runs any :class:`keras_seq.cells.RecurrentCell` over a
(batch, time, features) sequence:

1. the input projection ``x @ kernel + b`` of *all* steps is one matmul,
   outside the loop, so only ``h @ recurrent_kernel`` stays inside
   (``projection="hoisted"``); or it runs inside the loop, one (B, D) matmul
   per step (``projection="per_step"``, what Keras' own cells do), where the
   backend's executor runs it beside the recurrent matmul on an idle core.
   ``projection="auto"`` (default) picks, per backend, cell and mode, the form
   that measured faster (`keras_seq.projection`, `benchmarks/bench_projection.py`);
2. the loop is Keras' own backend loop (`keras_seq._keras_compat.rnn`: a
   ``tf.while_loop`` with TensorArrays and ``maximum_iterations`` on the TF
   backend). ``keras.ops.scan`` was measured slower and its TF version cannot
   be XLA-compiled (no ``maximum_iterations``), so it is not used;
3. a padded step (mask False) keeps the previous state, so the state after the
   last valid step is carried to the end and padded inputs get no gradient;
4. dropout uses one mask per sequence for every time step on the inputs and
   on the recurrent connections (variational dropout, Gal & Ghahramani 2016);
5. under mixed precision (``mixed_bfloat16``) the matmuls run in bf16 while the
   states are carried, gated and added in float32 (`RecurrentCell.state_dtype`);
   outputs and returned states are in the layer's compute dtype, as Keras expects.

A cell's output is its first state (``h_t``), as for Keras' cells.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_seq import _keras_compat
from keras_seq.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell, _rate
from keras_seq.fused import FusedKernel
from keras_seq.projection import PROJECTIONS, ProjectedLoop

__all__ = ["Recurrent", "Elman", "GRU", "LSTM"]

_LOOP_ARGS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "dropout",
    "recurrent_dropout",
    "seed",
    "unroll",
    "zero_output_for_mask",
    "use_cudnn",
    "projection",
)
_BASE_LAYER_ARGS = ("name", "dtype", "trainable", "autocast", "input_shape", "input_dim")


@keras.saving.register_keras_serializable(package="keras_seq")
class Recurrent(FusedKernel, ProjectedLoop, keras.layers.Layer):
    """Runs a recurrent cell over the time axis.

    Args:
        cell: a :class:`RecurrentCell` (Elman, GRU, LSTM or your own).
        return_sequences: return the output of every step (B, T, units)
            instead of the last valid one (B, units).
        return_state: also return the final states.
        go_backwards: process the sequence in reverse (the returned sequence
            is in processing order, as in Keras).
        stateful: keep the final states of batch i as the initial states of
            batch i+1 (needs a fixed batch size; ``reset_state()`` clears).
        dropout: fraction of input features dropped, one mask per sequence.
        recurrent_dropout: fraction of the recurrent connections dropped, one
            mask per sequence.
        seed: seed for the dropout masks.
        unroll: unroll the loop in the graph (needs a known number of steps).
        zero_output_for_mask: padded steps output zeros instead of the last
            valid output (``Bidirectional`` sets this when returning sequences).
        use_cudnn: ``"auto"`` (default) runs the backend's fused kernel -- cuDNN
            on a GPU, the one Keras' own LSTM and GRU use -- whenever the layer
            and the batch allow it (`fused_kernel_blockers`, and at run time a
            right-padded mask without empty rows), else the loop; ``False``
            always the loop; ``True`` raises where the layer's configuration
            cannot use it. Same weights, same results (within float error).
        projection: where the loop's input projection runs: ``"hoisted"`` (one
            matmul over all steps before the loop), ``"per_step"`` (inside the
            loop, as Keras' cells do), or ``"auto"`` (default: the form measured
            faster for this backend, cell and mode -- training, answering one
            row, answering a batch -- `AUTO_PROJECTION`; a batch size unknown
            until the graph runs is picked there). Same weights, same results
            (within float error).

    Call arguments: ``sequences`` (B, T, D); optional ``initial_state`` (list
    of (B, size) tensors); ``mask`` (B, T) booleans; ``training``.

    Shapes: B = batch size, T = sequence length, D = input features,
    H = units. Input (B, T, D) -> output (B, T, H) with ``return_sequences``,
    else (B, H); with ``return_state`` also the final states, each (B, H).

    Example (the mask from ``Embedding(mask_zero=True)`` keeps padded steps out)::

        >>> import numpy as np, keras, keras_seq
        >>> ids = np.array([[3, 4, 0, 0], [5, 6, 7, 2]])
        >>> x = keras.layers.Embedding(10, 6, mask_zero=True)(ids)
        >>> tuple(keras_seq.Recurrent(keras_seq.GRUCell(5))(x).shape)
        (2, 5)
    """

    def __init__(
        self,
        cell: RecurrentCell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        use_cudnn: bool | str = "auto",
        projection: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(cell, RecurrentCell):
            raise ValueError(
                "`cell` must be a keras_seq RecurrentCell (ElmanCell, GRUCell, LSTMCell or a "
                f"subclass); received cell={cell!r}."
            )
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.dropout = _rate("dropout", dropout)
        self.recurrent_dropout = _rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"`use_cudnn` must be 'auto', True or False; received use_cudnn={use_cudnn!r}.")
        self.use_cudnn = use_cudnn
        if projection not in PROJECTIONS:
            raise ValueError(
                f"`projection` must be one of {', '.join(map(repr, PROJECTIONS))}; received projection={projection!r}."
            )
        self.projection = projection
        if use_cudnn is True and self.fused_kernel_blockers():
            raise ValueError(
                f"use_cudnn=True, but {type(self).__name__} cannot use the fused kernel: "
                f"{'; '.join(self.fused_kernel_blockers())} (use_cudnn='auto' falls back to the loop)"
            )
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed) if (self.dropout or self.recurrent_dropout) else None
        # State variables of a stateful layer are deliberately not tracked as
        # weights (as in Keras): get_weights() stays identical to Keras' layers.
        object.__setattr__(self, "_state_variables", None)

    # -- shapes and masks -------------------------------------------------
    @property
    def state_size(self) -> list[int]:
        return list(self.cell.state_size)

    @property
    def units(self) -> int:
        return self.cell.units

    @property
    def states(self):
        return self._state_variables

    def _check_sequences_shape(self, shape) -> None:
        if len(shape) != 3:
            raise ValueError(
                f"`inputs` of {type(self).__name__} '{self.name}' must be rank 3 "
                f"(batch, time, features); received shape {tuple(shape)}."
            )

    def build(self, sequences_shape, initial_state_shape=None) -> None:
        self._check_sequences_shape(sequences_shape)
        if not self.cell.built:
            self.cell.build((sequences_shape[0], sequences_shape[2]))
        if self.stateful and self._state_variables is None:
            if sequences_shape[0] is None:
                raise ValueError(
                    "`stateful=True` needs a fixed batch size: give the model "
                    "`keras.Input(batch_shape=(B, T, ...))`; received batch size None."
                )
            self._create_state_variables(sequences_shape[0])
        # "auto" skips JAX's fused kernel (jax.experimental.rnn): on a GPU our loop (lax.scan under
        # XLA) trained faster than it (benchmarks/gpu_fused_check.py).
        self._fused_device = (
            not self.fused_kernel_blockers()
            and (self.use_cudnn is True or keras.backend.backend() != "jax")
            and _keras_compat.fused_kernel_device(self.cell.activation, self.cell.recurrent_activation)
        )
        # cuDNN's ops cannot be XLA-compiled: Keras then compiles the model without XLA (as for its layers).
        if self._fused_device and keras.backend.backend() == "tensorflow":
            self.supports_jit = False
        self.built = True

    def _create_state_variables(self, batch_size: int) -> None:
        variables = [
            keras.Variable(ops.zeros((batch_size, size)), trainable=False, dtype=self.variable_dtype, name=f"state_{i}")
            for i, size in enumerate(self.state_size)
        ]
        object.__setattr__(self, "_state_variables", variables)

    def reset_state(self) -> None:
        if not self.stateful:
            raise AttributeError(f"Layer '{self.name}' is not stateful; there is no state to reset.")
        if self._state_variables is not None:
            for variable in self._state_variables:
                variable.assign(ops.zeros_like(variable.value))

    reset_states = reset_state  # Keras 2 spelling

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output_shape = (batch, steps, self.cell.units) if self.return_sequences else (batch, self.cell.units)
        if self.return_state:
            return (output_shape, *[(batch, size) for size in self.state_size])
        return output_shape

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    # -- the loop -----------------------------------------------------------
    def _initial_states(self, sequences, initial_state):
        if initial_state is None:
            if self.stateful:
                # A copy: `call` assigns the final states to these variables, in place on
                # torch, which would corrupt the saved tensors its backward pass needs.
                return [
                    ops.copy(ops.convert_to_tensor(v.value, dtype=self.cell.state_dtype)) for v in self._state_variables
                ]
            return self.cell.get_initial_state(ops.shape(sequences)[0])
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != len(self.state_size):
            raise ValueError(
                f"`initial_state` of '{self.name}' must hold {len(self.state_size)} tensor(s) "
                f"of shape (batch, {self.cell.units}); received {len(initial_state)}."
            )
        return [ops.cast(ops.convert_to_tensor(s), self.cell.state_dtype) for s in initial_state]

    def call(self, sequences, initial_state=None, mask=None, training: bool = False):
        self._check_sequences_shape(sequences.shape)
        states = self._initial_states(sequences, initial_state)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        recurrent_mask = None
        if training and self.dropout > 0.0:
            keep = ops.ones_like(sequences[:, :1, :])
            sequences = sequences * keras.random.dropout(keep, self.dropout, seed=self.seed_generator)
        if training and self.recurrent_dropout > 0.0:
            keep = ops.ones_like(states[0])
            recurrent_mask = keras.random.dropout(keep, self.recurrent_dropout, seed=self.seed_generator)

        result = self._fused(sequences, states, mask) if getattr(self, "_fused_device", False) else None
        if result is None:
            if self.use_cudnn is True:
                raise ValueError(
                    f"use_cudnn=True, but layer '{self.name}' finds no fused kernel on this "
                    f"backend ({keras.backend.backend()}) and device (use_cudnn='auto' runs the loop)"
                )
            result = self._loop(sequences, states, mask, recurrent_mask, training)
        last_output, outputs, final_states = result
        if self.stateful:
            for variable, value in zip(self._state_variables, final_states):
                variable.assign(ops.cast(value, variable.dtype))
        last_output, outputs, final_states = self._in_compute_dtype((last_output, outputs, final_states))
        output = outputs if self.return_sequences else last_output
        if self.return_state:
            return (output, *final_states)
        return output

    def _in_compute_dtype(self, result):
        """(last output, outputs or None, states) in the layer's compute dtype (float32: unchanged)."""
        last, outputs, states = result
        cast = lambda x: None if x is None else ops.cast(x, self.compute_dtype)  # noqa: E731
        return cast(last), cast(outputs), [cast(x) for x in states]

    # -- config ---------------------------------------------------------
    def get_config(self) -> dict:
        config = {name: getattr(self, name) for name in _LOOP_ARGS}
        config["cell"] = keras.saving.serialize_keras_object(self.cell)
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


class _CellLayer(Recurrent):
    """A ``Recurrent`` that builds its own cell from Keras-style arguments."""

    cell_class: type[RecurrentCell] = RecurrentCell
    #: Keras' LSTM and GRU take ``implementation`` (1 or 2: how Keras' own cell splits its matmuls) and
    #: keep it as an attribute only; so do ours, where it selects nothing (``projection`` does that).
    takes_implementation: bool = False
    #: Arguments Keras' counterpart does not take, left out of the config while they are "auto".
    left_out_at_auto: tuple[str, ...] = ("projection",)

    def __init__(self, units: int, **kwargs: Any) -> None:
        implementation = kwargs.pop("implementation", 2) if self.takes_implementation else None
        loop_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _LOOP_ARGS or k in _BASE_LAYER_ARGS}
        if "dtype" in loop_kwargs:
            kwargs["dtype"] = loop_kwargs["dtype"]
        try:
            cell = self.cell_class(units, name=f"{self.cell_class.__name__.lower()}", **kwargs)
        except TypeError as error:  # an argument no cell or loop knows
            raise ValueError(f"{type(self).__name__}: {error}") from None
        if implementation is not None:
            cell.implementation = implementation  # where Keras' layers keep it (read through the layer too)
        super().__init__(cell, **loop_kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.pop("cell")
        for name in self.left_out_at_auto:  # ours only, at their default: Keras' own layer loads the config too
            if config.get(name) == "auto":
                config.pop(name)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __getattr__(self, name: str):
        # On torch a Layer is a torch.nn.Module, which keeps sub-layers (the cell) in
        # _modules and finds them in its own __getattr__: ask it first.
        try:
            return super().__getattr__(name)
        except AttributeError:
            pass
        # Cell hyper-parameters (activation, reset_after, ...) read through, as on Keras' layers.
        if name.startswith("_") or name == "cell":
            raise AttributeError(name)
        cell = self.cell
        if hasattr(cell, name):
            return getattr(cell, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")


@keras.saving.register_keras_serializable(package="keras_seq")
class Elman(_CellLayer):
    """Elman (simple) RNN layer; arguments as ``keras.layers.SimpleRNN``.

    See :class:`keras_seq.cells.ElmanCell` for the equation and
    :class:`Recurrent` for the loop arguments.

    Example::

        >>> import numpy as np, keras_seq
        >>> tuple(keras_seq.Elman(8, return_sequences=True)(np.ones((2, 5, 3), "float32")).shape)
        (2, 5, 8)
    """

    cell_class = ElmanCell
    left_out_at_auto = ("projection", "use_cudnn")  # SimpleRNN has no fused kernel argument


@keras.saving.register_keras_serializable(package="keras_seq")
class GRU(_CellLayer):
    """GRU layer; arguments as ``keras.layers.GRU`` (``reset_after`` selects
    the variant, default True as in Keras).

    See :class:`keras_seq.cells.GRUCell` for the equations and
    :class:`Recurrent` for the loop arguments.

    Example (the same weights as the built-in give the same outputs)::

        >>> import numpy as np, keras, keras_seq
        >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
        >>> ours, theirs = keras_seq.GRU(4), keras.layers.GRU(4)
        >>> _ = ours(x), theirs(x)
        >>> ours.set_weights(theirs.get_weights())
        >>> bool(np.allclose(ours(x), theirs(x), atol=1e-5))
        True
    """

    cell_class = GRUCell
    takes_implementation = True


@keras.saving.register_keras_serializable(package="keras_seq")
class LSTM(_CellLayer):
    """LSTM layer; arguments as ``keras.layers.LSTM``.

    See :class:`keras_seq.cells.LSTMCell` for the equations and
    :class:`Recurrent` for the loop arguments.

    Example::

        >>> import numpy as np, keras_seq
        >>> out, h, c = keras_seq.LSTM(8, return_state=True)(np.ones((2, 5, 3), "float32"))
        >>> tuple(out.shape), tuple(c.shape)
        ((2, 8), (2, 8))
    """

    cell_class = LSTMCell
    takes_implementation = True
