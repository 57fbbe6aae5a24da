"""Recurrent cells: Elman, GRU and LSTM behind one interface.

Every cell splits a time step into two parts so that the time loop
(:class:`keras_seq.recurrent.Recurrent`) can run the input half for the whole
sequence in one matmul, outside the loop:

* ``project_inputs(x)`` -- ``x @ kernel (+ input bias)`` for any leading shape;
* ``recurrent_step(projected_t, states, recurrent_mask)`` -- the part that
  depends on the previous state, returning ``(output_t, new_states)``.

``cell(inputs_t, states)`` composes the two, so a cell is also a plain Keras
RNN cell (``keras.layers.RNN(keras_seq.LSTMCell(8))`` works).

The weights have the same names, shapes and gate order as Keras' built-in
``SimpleRNNCell`` / ``GRUCell`` / ``LSTMCell``: ``kernel`` (input_dim, G*units),
``recurrent_kernel`` (units, G*units), ``bias`` -- so ``get_weights()`` of one
can be given to ``set_weights()`` of the other.

**Mixed precision** (``keras.mixed_precision.set_global_policy("mixed_bfloat16")``): the
matmuls run in the 16-bit compute dtype, but a step adds, gates and carries its states in
the dtype of the states it is given -- float32 from `get_initial_state` (`state_dtype`) and
from `keras_seq.recurrent.Recurrent` -- so the state does not drift by bf16 roundings
accumulated over hundreds of steps. In float32 every cast is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_seq._ops import matmul_features

__all__ = ["RecurrentCell", "ElmanCell", "GRUCell", "LSTMCell"]

_SERIALIZABLE = "keras_seq"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}.")
    return value


def _rate(name: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a float in [0, 1); received {name}={value!r}.") from None
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1); received {name}={value!r}.")
    return rate


def _activation(name: str, value: Any):
    try:
        fn = keras.activations.get(value)
    except (ValueError, TypeError):
        fn = None
    if fn is None or (value is None):
        raise ValueError(
            f"Unknown activation for `{name}`: {value!r}. Use a name such as "
            "'tanh', 'relu', 'sigmoid' or 'linear', or a callable."
        )
    return fn


class RecurrentCell(keras.layers.Layer):
    """Base class: weight creation, config and the one-step interface.

    Subclasses set ``gate_count`` (G) and implement ``recurrent_step``; they
    may override ``bias_shape`` / ``bias_initial`` / ``input_bias``.

    Shapes: B = batch size, D = input features, H = units (``state_size``).

    Example (a custom cell plugs into the one time loop)::

        >>> import numpy as np, keras_seq
        >>> layer = keras_seq.Recurrent(keras_seq.ElmanCell(4), return_sequences=True)
        >>> tuple(layer(np.ones((2, 3, 5), "float32")).shape)
        (2, 3, 4)
    """

    gate_count = 1

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.activation = _activation("activation", activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    # -- shapes ---------------------------------------------------------
    @property
    def state_size(self) -> list[int]:
        return [self.units]

    @property
    def output_size(self) -> int:
        return self.units

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gate_count * self.units,)

    def bias_initial(self):
        return self.bias_initializer

    # -- weights --------------------------------------------------------
    def build(self, input_shape: Sequence[int | None]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature size (last axis of the inputs); "
                f"received inputs of shape {tuple(input_shape)}."
            )
        width = self.gate_count * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                name="bias",
                initializer=self.bias_initial(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    # -- the interface ---------------------------------------------------
    def input_bias(self):
        return self.bias

    def project_inputs(self, inputs):
        """``inputs @ kernel + input_bias``; works on (B, D) and (..., D)."""
        kernel = ops.cast(self.kernel, inputs.dtype)
        projected = matmul_features(inputs, kernel)  # one 2-D matmul over all steps
        bias = self.input_bias() if self.use_bias else None
        if bias is not None:
            projected = projected + ops.cast(bias, inputs.dtype)
        return projected

    def recurrent_step(self, projected, states, recurrent_mask=None):
        """One step from projected inputs; returns ``(output, new_states)``.

        ``recurrent_mask`` (or None) multiplies the previous hidden state where
        it enters a recurrent matmul (variational dropout, Gal & Ghahramani);
        the state carried forward is never dropped.
        """
        raise NotImplementedError

    def call(self, inputs, states, training: bool = False):
        if not isinstance(states, (list, tuple)):
            states = [states]
        return self.recurrent_step(self.project_inputs(inputs), list(states))

    @property
    def state_dtype(self) -> str:
        """The dtype states are carried in: float32 under a 16-bit (mixed) compute dtype, else the compute dtype."""
        compute = keras.backend.standardize_dtype(self.compute_dtype)
        return "float32" if compute in ("bfloat16", "float16") else compute

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, size), dtype=self.state_dtype) for size in self.state_size]

    def _recurrent_input(self, h, recurrent_mask):
        return h if recurrent_mask is None else h * ops.cast(recurrent_mask, h.dtype)

    def _matmul(self, x, kernel, like):
        """``x @ kernel`` in the compute dtype (bf16 under mixed precision), returned in `like`'s dtype."""
        out = ops.matmul(ops.cast(x, self.compute_dtype), ops.cast(kernel, self.compute_dtype))
        return ops.cast(out, like.dtype)

    def get_config(self) -> dict:
        s = keras.saving.serialize_keras_object
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": s(self.kernel_initializer),
            "recurrent_initializer": s(self.recurrent_initializer),
            "bias_initializer": s(self.bias_initializer),
            "kernel_regularizer": s(self.kernel_regularizer),
            "recurrent_regularizer": s(self.recurrent_regularizer),
            "bias_regularizer": s(self.bias_regularizer),
            "kernel_constraint": s(self.kernel_constraint),
            "recurrent_constraint": s(self.recurrent_constraint),
            "bias_constraint": s(self.bias_constraint),
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package=_SERIALIZABLE)
class ElmanCell(RecurrentCell):
    r"""Elman (simple) recurrent cell.

    .. math::

        h_t = \phi(W_{xh} x_t + W_{hh} h_{t-1} + b)

    where :math:`\phi` is ``activation`` (tanh by default; relu and sigmoid are
    common alternatives). The output is :math:`h_t`.

    Attributes:
        units: size of :math:`h_t`.
        kernel: :math:`W_{xh}^\top`, shape (input_dim, units).
        recurrent_kernel: :math:`W_{hh}^\top`, shape (units, units).
        bias: :math:`b`, shape (units,).

    Weight layout equals ``keras.layers.SimpleRNNCell``.

    Example::

        >>> import numpy as np, keras_seq
        >>> cell = keras_seq.ElmanCell(4)
        >>> h, (state,) = cell(np.ones((2, 3), "float32"), [np.zeros((2, 4), "float32")])
        >>> tuple(h.shape), tuple(state.shape)
        ((2, 4), (2, 4))
    """

    gate_count = 1

    def recurrent_step(self, projected, states, recurrent_mask=None):
        h = states[0]
        h_in = self._recurrent_input(h, recurrent_mask)
        new_h = self.activation(ops.cast(projected, h.dtype) + self._matmul(h_in, self.recurrent_kernel, h))
        return new_h, [new_h]


class GatedCell(RecurrentCell):
    """A cell with gates: adds ``recurrent_activation`` (sigmoid by default)."""

    def __init__(
        self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid", **kwargs: Any
    ) -> None:
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = _activation("recurrent_activation", recurrent_activation)

    def get_config(self) -> dict:
        return {**super().get_config(), "recurrent_activation": keras.activations.serialize(self.recurrent_activation)}


@keras.saving.register_keras_serializable(package=_SERIALIZABLE)
class GRUCell(GatedCell):
    r"""Gated recurrent unit (Cho et al., 2014), in both published variants.

    With ``reset_after=False`` (Cho et al.; reset applied *before* the
    recurrent matmul):

    .. math::

        z_t &= \sigma(W_{xz} x_t + W_{hz} h_{t-1} + b_z) \\
        r_t &= \sigma(W_{xr} x_t + W_{hr} h_{t-1} + b_r) \\
        \tilde h_t &= \tanh(W_{xh} x_t + W_{hh} (r_t \odot h_{t-1}) + b_h) \\
        h_t &= z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t

    With ``reset_after=True`` (the cuDNN form, Keras' default; ONNX
    ``linear_before_reset=1``) the reset gate scales the recurrent product, and
    input and recurrent biases are separate:

    .. math::

        z_t &= \sigma(W_{xz} x_t + b_{xz} + W_{hz} h_{t-1} + b_{hz}) \\
        r_t &= \sigma(W_{xr} x_t + b_{xr} + W_{hr} h_{t-1} + b_{hr}) \\
        \tilde h_t &= \tanh(W_{xh} x_t + b_{xh} + r_t \odot (W_{hh} h_{t-1} + b_{hh})) \\
        h_t &= z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t

    :math:`\sigma` is ``recurrent_activation`` (sigmoid) and tanh is
    ``activation``. The output is :math:`h_t`.

    Attributes:
        units: size of :math:`h_t`.
        reset_after: which variant (see above).
        kernel: (input_dim, 3*units), gate blocks in the order z, r, h.
        recurrent_kernel: (units, 3*units), same order.
        bias: (3*units,) when ``reset_after=False``; (2, 3*units) -- input
            bias row, then recurrent bias row -- when ``reset_after=True``.

    Weight layout equals ``keras.layers.GRUCell``.

    Example::

        >>> import numpy as np, keras_seq
        >>> cell = keras_seq.GRUCell(4, reset_after=True)
        >>> h, (state,) = cell(np.ones((2, 3), "float32"), [np.zeros((2, 4), "float32")])
        >>> tuple(h.shape), [tuple(w.shape) for w in cell.get_weights()]
        ((2, 4), [(3, 12), (4, 12), (2, 12)])
    """

    gate_count = 3

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation, recurrent_activation, **kwargs)
        self.reset_after = bool(reset_after)

    def bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (3 * self.units,)

    def input_bias(self):
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_step(self, projected, states, recurrent_mask=None):
        h = states[0]
        h_in = self._recurrent_input(h, recurrent_mask)
        u = self.units
        kernel = self.recurrent_kernel
        x_z, x_r, x_h = ops.split(ops.cast(projected, h.dtype), 3, axis=-1)
        if self.reset_after:
            inner = self._matmul(h_in, kernel, h)
            if self.use_bias:
                inner = inner + ops.cast(self.bias[1], h.dtype)
            h_z, h_r, h_h = ops.split(inner, 3, axis=-1)
            z = self.recurrent_activation(x_z + h_z)
            r = self.recurrent_activation(x_r + h_r)
            candidate = self.activation(x_h + r * h_h)
        else:
            h_z, h_r = ops.split(self._matmul(h_in, kernel[:, : 2 * u], h), 2, axis=-1)
            z = self.recurrent_activation(x_z + h_z)
            r = self.recurrent_activation(x_r + h_r)
            candidate = self.activation(x_h + self._matmul(r * h_in, kernel[:, 2 * u :], h))
        new_h = z * h + (1.0 - z) * candidate
        return new_h, [new_h]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


@keras.saving.register_keras_serializable(package=_SERIALIZABLE)
class LSTMCell(GatedCell):
    r"""Long short-term memory cell (Hochreiter & Schmidhuber, 1997; with the
    forget gate of Gers et al., 2000).

    .. math::

        i_t &= \sigma(W_{xi} x_t + W_{hi} h_{t-1} + b_i) \\
        f_t &= \sigma(W_{xf} x_t + W_{hf} h_{t-1} + b_f) \\
        g_t &= \tanh(W_{xg} x_t + W_{hg} h_{t-1} + b_g) \\
        o_t &= \sigma(W_{xo} x_t + W_{ho} h_{t-1} + b_o) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    :math:`\sigma` is ``recurrent_activation`` (sigmoid) and tanh is
    ``activation``. The output is :math:`h_t`; the state is
    :math:`(h_t, c_t)`.

    Attributes:
        units: size of :math:`h_t` and :math:`c_t`.
        unit_forget_bias: initialise :math:`b_f` to 1 (Jozefowicz et al.,
            2015), so the cell starts by remembering; default True.
        kernel: (input_dim, 4*units), gate blocks in the order i, f, g, o.
        recurrent_kernel: (units, 4*units), orthogonal-initialised, same order.
        bias: (4*units,).

    Weight layout equals ``keras.layers.LSTMCell``.

    Example::

        >>> import numpy as np, keras_seq
        >>> cell = keras_seq.LSTMCell(4)
        >>> zeros = np.zeros((2, 4), "float32")
        >>> h, (h_state, c_state) = cell(np.ones((2, 3), "float32"), [zeros, zeros])
        >>> tuple(h.shape), tuple(c_state.shape)
        ((2, 4), (2, 4))
    """

    gate_count = 4

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation, recurrent_activation, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def bias_initial(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def initializer(shape, dtype=None):
            return ops.concatenate(
                [
                    base((units,), dtype=dtype),
                    keras.initializers.Ones()((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ]
            )

        return initializer

    def recurrent_step(self, projected, states, recurrent_mask=None):
        h, c = states[0], states[1]
        h_in = self._recurrent_input(h, recurrent_mask)
        z = ops.cast(projected, h.dtype) + self._matmul(h_in, self.recurrent_kernel, h)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_g)
        o = self.recurrent_activation(z_o)
        new_c = f * c + i * g
        new_h = o * self.activation(new_c)
        return new_h, [new_h, new_c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
