"""Our recurrent layers as ONNX's native ``RNN`` / ``GRU`` / ``LSTM`` nodes.

tf2onnx turns a masked Keras RNN (and any custom cell) into a generic ONNX
``Loop``; ONNX Runtime has fused kernels only for the native operators, so the
nodes are built here from the layers' weights. Weight layouts (ONNX spec):

* ``W`` (num_directions, gates*H, input), ``R`` (num_directions, gates*H, H),
  ``B`` (num_directions, 2*gates*H) = input biases then recurrent biases;
* gate order -- RNN: one block; GRU: z, r, h (as Keras); LSTM: i, o, f, c
  (Keras: i, f, c, o);
* Keras' reset-after GRU (recurrent bias inside the reset product) is
  ``linear_before_reset=1``; the reset-before variant is ``0`` with zero
  recurrent biases.

``sequence_lens`` carries the mask (padding must be on the right): padded
steps are skipped, ``Y_h``/``Y_c`` hold the state after the last valid step
and a reverse direction starts at each row's own last valid step -- what the
Keras layers do with a mask.
"""

from __future__ import annotations

import numpy as np

from keras_seq.export.onnx.graph import GraphBuilder

# Keras activation name -> (ONNX name, alpha, beta)
_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),  # Keras 3: relu6(x + 3) / 6
    "linear": ("Affine", 1.0, 0.0),
}
_LSTM_ORDER = [0, 3, 1, 2]  # Keras blocks i, f, c, o -> ONNX i, o, f, c


def _activation(fn, where: str) -> tuple[str, float | None, float | None]:
    name = getattr(fn, "__name__", str(fn))
    if name not in _ACTIVATIONS:
        raise ValueError(f"{where}: activation {name!r} has no ONNX RNN equivalent (supported: {sorted(_ACTIVATIONS)})")
    return _ACTIVATIONS[name]


def _blocks(matrix: np.ndarray, count: int, order: list[int] | None) -> np.ndarray:
    """Keras (in, count*H) -> ONNX (count*H, in) with gate blocks reordered."""
    parts = np.split(np.asarray(matrix, np.float32), count, axis=-1)
    if order is not None:
        parts = [parts[i] for i in order]
    return np.concatenate(parts, axis=-1).T


def cell_arrays(layer) -> dict:
    """One direction of a keras_seq `Recurrent` layer in ONNX layout."""
    cell = layer.cell
    kind = type(cell).__name__
    units = cell.units
    kind = "ElmanCell" if kind == "SimpleRNNCell" else kind  # Keras' Elman cell: the same weights
    gates = {"ElmanCell": 1, "GRUCell": 3, "LSTMCell": 4}.get(kind)
    if gates is None:
        raise ValueError(
            f"layer {layer.name!r}: cell {type(cell).__name__} has no native ONNX operator "
            "(ours and Keras' Elman / SimpleRNN, GRU and LSTM cells have)"
        )
    order = _LSTM_ORDER if kind == "LSTMCell" else None
    w = _blocks(cell.kernel.numpy(), gates, order)
    r = _blocks(cell.recurrent_kernel.numpy(), gates, order)
    zeros = np.zeros(gates * units, np.float32)
    if not cell.use_bias:
        wb, rb = zeros, zeros
    elif kind == "GRUCell" and cell.reset_after:
        bias = cell.bias.numpy()
        wb, rb = bias[0], bias[1]
    else:
        bias = cell.bias.numpy()
        wb = _blocks(bias[None, :], gates, order)[:, 0] if order else bias
        rb = zeros
    acts = [cell.activation] if kind == "ElmanCell" else [cell.recurrent_activation, cell.activation]
    if kind == "LSTMCell":
        acts.append(cell.activation)
    return {
        "op": {"ElmanCell": "RNN", "GRUCell": "GRU", "LSTMCell": "LSTM"}[kind],
        "units": units,
        "W": w,
        "R": r,
        "B": np.concatenate([wb, rb]).astype(np.float32),
        "activations": [_activation(fn, f"layer {layer.name!r}") for fn in acts],
        "linear_before_reset": int(kind == "GRUCell" and cell.reset_after),
        "states": 2 if kind == "LSTMCell" else 1,
    }


def add_recurrent(
    g: GraphBuilder,
    x_time_major: str,
    lengths: str | None,
    directions: list,
    name: str,
    initial_states: list[str] | None = None,
) -> tuple[str, list[str]]:
    """Adds one native node for `directions` (one layer, or the forward and
    backward layers of a Bidirectional). Returns (Y (T, dirs, B, H), [Y_h, Y_c])."""
    arrays = [cell_arrays(layer) for layer in directions]
    first = arrays[0]
    if any(a["op"] != first["op"] or a["units"] != first["units"] for a in arrays):
        raise ValueError(f"layer {name!r}: both directions must use the same cell and size")
    direction = "bidirectional" if len(arrays) == 2 else ("reverse" if directions[0].go_backwards else "forward")
    attrs = {"hidden_size": first["units"], "direction": direction}
    acts = [a for arr in arrays for a in arr["activations"]]
    attrs["activations"] = [a[0] for a in acts]
    # ONNX Runtime consumes alpha/beta only for the activations that take them, in order.
    if any(a[1] is not None for a in acts):
        attrs["activation_alpha"] = [a[1] for a in acts if a[1] is not None]
        attrs["activation_beta"] = [a[2] for a in acts if a[2] is not None]
    if first["op"] == "GRU":
        attrs["linear_before_reset"] = first["linear_before_reset"]
    w = g.const(f"{name}_W", np.stack([a["W"] for a in arrays]))
    r = g.const(f"{name}_R", np.stack([a["R"] for a in arrays]))
    b = g.const(f"{name}_B", np.stack([a["B"] for a in arrays]))
    inputs = [x_time_major, w, r, b, lengths or ""]  # no lengths: every step counts (no mask)
    if initial_states:
        inputs += initial_states
    outputs = g.node(first["op"], inputs, name, outputs=1 + first["states"], **attrs)
    return outputs[0], outputs[1:]
