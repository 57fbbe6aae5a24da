"""A trained keras_seq task model as an ONNX graph (opset `OPSET`).

The Keras functional graph is walked node by node; each layer's ONNX nodes are written by the
handler registered for its class (`keras_seq.export.onnx.registry`; the shipped ones are in
`keras_seq.export.onnx.layers`, each beside its decorator). The converter lists no handlers.

Graph inputs: ``ids`` (batch, time) int64, right-padded with 0, and for
character-feature taggers ``chars`` (batch, time, chars) int64. Language models
also take and return every layer's states (``state_<i>_h`` / ``state_<i>_c``,
(batch, units)), so the same graph scores a text and runs greedy steps.
"""

from __future__ import annotations

import numpy as np
import onnx

from keras_seq._keras_compat import functional_nodes
from keras_seq.export.onnx import layers as _shipped_handlers  # noqa: F401 (registers the shipped handlers)
from keras_seq.export.onnx.graph import FLOAT, INT64, GraphBuilder
from keras_seq.export.onnx.registry import handler_for


class Converter:
    """Walks a functional Keras model and asks each layer's registered handler for its nodes;
    keeps what handlers share: the graph builder `g`, masks as row lengths, recurrent states."""

    def __init__(
        self,
        model,
        output_names: list[str],
        output_axes: list[list[str]],
        stateful_inputs: bool,
        input_names: list[str],
    ) -> None:
        import keras

        self.keras = keras
        self.model = model
        self.output_names, self.output_axes, self.input_names = output_names, output_axes, input_names
        self.stateful_inputs = stateful_inputs  # recurrent states as graph inputs and outputs (stepping)
        self.g = GraphBuilder(model.name)
        self.state_inputs: list[str] = []
        self.state_outputs: list[tuple[str, str]] = []  # (graph name, source)
        self.mask_lengths: dict[str, str] = {}
        self.first_ids: str | None = None
        self._default_lengths: str | None = None

    # -- what handlers share ---------------------------------------------------------
    def lengths_of(self, ids: str) -> str:
        """Row lengths (int32) from right-padded ids: the mask as `sequence_lens`."""
        g = self.g
        valid = g.node("Not", [g.node("Equal", [ids, g.const("zero", 0, np.int64)])])
        total = g.node(
            "ReduceSum",
            [g.node("Cast", [valid], to=onnx.TensorProto.INT64), g.const("axis1", [1], np.int64)],
            "lengths64",
            keepdims=0,
        )
        return g.node("Cast", [total], "lengths", to=onnx.TensorProto.INT32)

    def default_lengths(self) -> str:
        if self._default_lengths is None:
            self._default_lengths = self.lengths_of(self.first_ids)
        return self._default_lengths

    def step_grid(self, x: str, lengths: str) -> tuple[str, str]:
        """(step positions (1, T), row lengths (B, 1)), both int64, for batch-major x."""
        g = self.g
        steps = g.node("Squeeze", [g.shape_of(x, 1, 2)], "steps")
        positions = g.node("Range", [g.const("zero_i", 0, np.int64), steps, g.const("one_i", 1, np.int64)], "positions")
        row = g.node("Unsqueeze", [positions, g.const("axis0", [0], np.int64)])
        column = g.node("Unsqueeze", [g.node("Cast", [lengths], to=INT64), g.const("axis1", [1], np.int64)])
        return row, column

    def state_inputs_for(self, layer) -> list[str]:
        """Graph inputs for one layer's initial states, as (1, B, H) for the node."""
        g = self.g
        index = sum(1 for n in self.state_inputs if n.endswith("_h_in"))
        names = []
        for suffix, size in zip(("h", "c"), layer.cell.state_size):
            name = g.add_input(f"state_{index}_{suffix}_in", FLOAT, ["batch", size])
            names.append(g.node("Unsqueeze", [name, g.const("axis0", [0], np.int64)], f"{name}_3d"))
            self.state_inputs.append(name)
        return names

    # -- the walk -------------------------------------------------------------------
    def convert(self) -> GraphBuilder:
        g = self.g
        names: dict[int, str] = {}
        lengths_of: dict[int, str | None] = {}  # tensor -> the lengths of its mask (None: unmasked)
        for i, tensor in enumerate(self.model.inputs):
            integer = "int" in str(tensor.dtype)
            name = self.input_names[i]
            shape = [
                "batch",
                "time",
                *(
                    ["chars"]
                    if integer and len(tensor.shape) == 3
                    else [int(d) if d else f"{name}_dim{k}" for k, d in enumerate(tensor.shape[2:])]
                ),
            ]
            names[id(tensor)] = g.add_input(name, INT64 if integer else FLOAT, shape[: len(tensor.shape)])
            if integer and self.first_ids is None:
                self.first_ids = names[id(tensor)]
        for output in self.output_names:
            g._used.add(output)  # graph output names stay free for `add_output`
        for node in functional_nodes(self.model):
            layer = node.operation
            args = [names.get(id(t)) for t in node.input_tensors]
            if not isinstance(layer, self.keras.layers.Layer):
                # Keras ops between layers compute masks (ids != 0, ...); masks travel as lengths.
                for tensor in node.outputs:
                    names[id(tensor)] = None
                continue
            if args[0] is None:
                raise ValueError(
                    f"layer {layer.name!r} reads a value computed by a raw Keras op; "
                    "the ONNX export supports layers only"
                )
            handler = handler_for(layer)
            lengths = lengths_of.get(id(node.input_tensors[0]))
            if lengths is None and None in args[1:] and self.first_ids is not None:
                lengths = self.default_lengths()  # an explicit mask from raw ops: ids != 0 (right padding)
            data = [a for a in args if a is not None]
            out = handler.write(self, layer, data, lengths)
            outs = out if isinstance(out, list) else [out]
            mask = handler.mask_after(self, layer, lengths, data)
            for tensor, value in zip(node.outputs, outs):
                names[id(tensor)] = value
                lengths_of[id(tensor)] = mask
        for output in self.output_names:
            g._used.discard(output)
        for tensor, name, axes in zip(self.model.outputs, self.output_names, self.output_axes):
            g.add_output(names[id(tensor)], name, FLOAT, axes)
        for name, state in self.state_outputs:
            squeezed = g.node("Squeeze", [state, g.const("axis0", [0], np.int64)])
            g.add_output(squeezed, name, FLOAT, ["batch", "units"])
        return g


def model_to_onnx(
    model,
    output: str,
    output_axes: list[str],
    metadata: dict[str, str],
    *,
    stateful_inputs: bool = False,
    doc: str = "keras-seq model",
) -> onnx.ModelProto:
    """The ONNX model of a keras_seq model; `onnx.checker` passes on it."""
    graph = Converter(model, [output], [output_axes], stateful_inputs, ["ids", "chars"]).convert()
    onnx_model = graph.model(metadata, doc=doc)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model
