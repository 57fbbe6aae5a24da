"""Writes ``onnx/model.onnx`` and ``onnx/model.json`` for a trained run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import onnx

from keras_seq.contracts import TokenizerSpec
from keras_seq.contracts.export_dir import ONNX_MODEL_FILE, write_onnx_info
from keras_seq.export.onnx.converter import model_to_onnx
from keras_seq.export.onnx.graph import OPSET
from keras_seq.export.runs import TrainedRun
from keras_seq.export.tasks import export_for
from keras_seq.tasks import Task


def task_model_to_onnx(model, task: str | Task, metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    """The ONNX graph of a task model: the output named and shaped as the task says
    (language models also take and return their recurrent states)."""
    part = export_for(task)
    return model_to_onnx(
        model,
        part.onnx_output(part.output_kind(model)),
        part.onnx_output_axes(),
        metadata or {},
        stateful_inputs=part.task.generates,
        doc=f"keras-seq {part.name} model",
    )


def write_onnx_dir(
    run: TrainedRun, directory: Path, generate_length: int, int8: bool = False, text_in: bool = False
) -> dict:
    """`directory` already holds the tokenizer files (`export.runs.stage_tokenizer`). With `int8`,
    each graph also gets its dynamically quantized twin (`keras_seq.export.onnx.quantize`); with
    `text_in`, the text-in graph (`keras_seq.export.onnx.text_graph`)."""
    tokenizer = TokenizerSpec.load(directory)
    metadata = {
        "keras_seq.task": run.task.name,
        "keras_seq.kind": run.kind,
        "keras_seq.tokenizer": json.dumps(asdict(tokenizer), sort_keys=True),
    }
    if run.labels is not None:
        metadata["keras_seq.labels"] = json.dumps(run.labels)
    output = run.export_part.onnx_output(run.kind)
    graphs = run.export_part.onnx_models(run.model, metadata)
    for file_name, graph in graphs.items():
        onnx.save(graph, str(directory / file_name))
    proto = graphs[ONNX_MODEL_FILE]
    operators = {n.op_type for graph in graphs.values() for n in graph.graph.node}
    info = {
        "task": run.task.name,
        "kind": run.kind,
        "opset": OPSET,
        "output": output,
        "inputs": [i.name for i in proto.graph.input],
        "outputs": [o.name for o in proto.graph.output],
        "labels_file": run.task.label_file,
        "generate_length": generate_length,
        "operators": sorted(operators),
        "graphs": sorted(graphs),
        **run.export_part.onnx_info(run),
    }
    if run.crf is not None:
        # Viterbi runs beside the graph (serving.answers.viterbi) on these parameters;
        # float32 -> Python float -> JSON round-trips exactly.
        info["crf"] = {
            "transitions": run.crf.transitions.numpy().tolist(),
            "start": run.crf.start_scores.numpy().tolist(),
            "end": run.crf.end_scores.numpy().tolist(),
        }
    if text_in:
        from keras_seq.export.onnx.text_graph import write_text_graph

        info["text_graph"] = write_text_graph(directory, run.task.name, run.kind, output)
    if int8:
        from keras_seq.export.onnx.quantize import quantize_graphs

        info["int8"] = quantize_graphs(directory, sorted(graphs))
    write_onnx_info(directory, info)
    return info
