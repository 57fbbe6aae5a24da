"""A small helper for writing ONNX graphs with `onnx.helper`: unique names,
weights as initializers, one call per node."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18  # ONNX Runtime >= 1.14 runs it; tf2onnx 1.17 refuses anything above 18


class GraphBuilder:
    """Collects nodes and initializers; every output name is unique."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._used: set[str] = set()

    def unique(self, base: str) -> str:
        name, n = base, 1
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._used.add(name)
        return name

    def const(self, base: str, value: Any, dtype: Any = None) -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.unique(base)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], base: str | None = None, outputs: int = 1, **attributes: Any) -> Any:
        """Adds one node; returns its output name (or a list when outputs > 1)."""
        base = base or op.lower()
        names = [self.unique(f"{base}_out{i}" if outputs > 1 else base) for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=self.unique(f"node_{base}"), **attributes))
        return names if outputs > 1 else names[0]

    def add_input(self, name: str, elem_type: int, shape: list) -> str:
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, source: str, name: str, elem_type: int, shape: list) -> None:
        """Exposes `source` as graph output `name` (through an Identity)."""
        self._used.add(name)
        self.nodes.append(helper.make_node("Identity", [source], [name], name=self.unique(f"node_out_{name}")))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, metadata: dict[str, str], doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="keras-seq", doc_string=doc
        )
        model.ir_version = 8  # what ONNX Runtime >= 1.14 reads; opset 18 needs >= 8
        helper.set_model_props(model, metadata)
        return model

    # -- small compositions used by several layers --------------------------
    def transpose(self, x: str, perm: list[int]) -> str:
        return self.node("Transpose", [x], "transpose", perm=perm)

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.node("Reshape", [x, self.const("shape", shape, np.int64)], "reshape")

    def shape_of(self, x: str, start: int, end: int) -> str:
        return self.node("Shape", [x], "shape", start=start, end=end)


FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
