"""Writes ``onnx/model.onnx`` and ``onnx/model.json`` for a trained run."""
from __future__ import annotations

import json
from pathlib import Path

import onnx

from export.onnx_graph import OPSET
from export.onnx_model import OUTPUT_NAMES, model_to_onnx
from export.runs import LABEL_FILES, TrainedRun


def write_onnx_dir(run: TrainedRun, directory: Path, generate_length: int) -> dict:
    """`directory` already holds the tokenizer files (`export.runs.stage_tokenizer`)."""
    tokenizer = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
    metadata = {"keras_seq.task": run.task, "keras_seq.kind": run.kind,
                "keras_seq.tokenizer": json.dumps(tokenizer, sort_keys=True)}
    if run.labels is not None:
        metadata["keras_seq.labels"] = json.dumps(run.labels)
    proto = model_to_onnx(run.model, run.task, run.crf is not None, metadata)
    onnx.save(proto, str(directory / "model.onnx"))
    info = {
        "task": run.task, "kind": run.kind, "opset": OPSET, "output": OUTPUT_NAMES[run.kind],
        "inputs": [i.name for i in proto.graph.input], "outputs": [o.name for o in proto.graph.output],
        "labels_file": LABEL_FILES.get(run.task), "generate_length": generate_length,
        "operators": sorted({n.op_type for n in proto.graph.node}),
    }
    if run.crf is not None:
        # Viterbi runs beside the graph (serving.answers.viterbi) on these parameters;
        # float32 -> Python float -> JSON round-trips exactly.
        info["crf"] = {"transitions": run.crf.transitions.numpy().tolist(),
                       "start": run.crf.start_scores.numpy().tolist(), "end": run.crf.end_scores.numpy().tolist()}
    (directory / "model.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info
