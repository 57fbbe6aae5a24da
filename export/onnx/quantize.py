"""int8 ONNX graphs beside the float ones (``keras-seq export --int8``).

ONNX Runtime's dynamic quantization (`onnxruntime.quantization.quantize_dynamic`) stores the
weights of the operators it has integer kernels for as int8 and quantizes their activations at
run time, batch by batch: ``MatMul`` (dense layers, the attention projections), ``Gather`` (the
embedding tables) and ``LSTM`` (``DynamicQuantizeLSTM``). ORT has no integer kernel for ``GRU``
or ``RNN`` (its `IntegerOpsRegistry` lists neither), nor for ``Gemm`` under dynamic quantization:
those stay float, so a GRU model gains only in its embedding and dense layers. The int8 graphs
take and give the same inputs and outputs as the float ones (`OnnxPredictor(int8=True)`,
``keras-seq predict / serve --int8``); their answers differ by the quantization error, which
`export` measures on its check texts and `benchmarks/bench_latency.py --full-test` on whole test sets.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import onnx

QUANTIZED_OPS = ("MatMul", "Gather", "LSTM")
SUFFIX = ".int8.onnx"


def int8_name(name: str) -> str:
    """``model.onnx`` -> ``model.int8.onnx``."""
    return name[: -len(".onnx")] + SUFFIX


def quantize_graphs(directory: Path, names: list[str]) -> dict:
    """Writes the int8 twin of each graph in `directory`; returns {"graphs": {float: int8},
    "quantized": {op type: nodes quantized}, "float": sorted op types left in float}."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    directory = Path(directory)
    graphs, quantized, left = {}, collections.Counter(), set()
    for name in names:
        source, target = directory / name, directory / int8_name(name)
        with tempfile.TemporaryDirectory(prefix="keras-seq-int8-") as tmp:
            prepared = Path(tmp) / name
            quant_pre_process(str(source), str(prepared), skip_optimization=True, skip_symbolic_shape=True)  # shapes
            quantize_dynamic(
                str(prepared), str(target), op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8
            )
        graph = onnx.load(str(target)).graph
        quantized.update(_quantized_nodes(graph))
        left |= {
            n.op_type
            for n in graph.node
            if n.op_type in ("GRU", "RNN", "Gemm", *QUANTIZED_OPS)
            and not (n.op_type == "Gather" and _int8_input(n, graph))
        }
        graphs[name] = int8_name(name)
    return {"graphs": graphs, "quantized": dict(quantized), "float": sorted(left)}


_INT8 = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


def _int8_input(node, graph) -> bool:
    """A Gather reading an int8 table (the quantizer keeps its op type and adds a DequantizeLinear)."""
    tables = {i.name: i.data_type for i in graph.initializer}
    return tables.get(node.input[0]) in _INT8


def _quantized_nodes(graph) -> collections.Counter:
    """Nodes the quantizer replaced, by the float op they replaced."""
    replaced = {"MatMulInteger": "MatMul", "DynamicQuantizeLSTM": "LSTM"}
    count = collections.Counter(replaced[n.op_type] for n in graph.node if n.op_type in replaced)
    count["Gather"] += sum(1 for n in graph.node if n.op_type == "Gather" and _int8_input(n, graph))
    return count
