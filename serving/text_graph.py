"""Answers from the text-in graph (``onnx/model_text.onnx``, written by ``keras-seq export --text-in``):
raw strings in, the answer's fields out, with onnxruntime-extensions' operators registered. No
TensorFlow, no keras.

One trap, measured: where TensorFlow is loaded in a process before onnxruntime-extensions, its
bundled RE2 takes the place of the extensions' and every ``StringRegexReplace`` silently leaves its
input unchanged. `text_graph_session` checks that with a one-node canary graph and refuses, in one
line, instead of answering wrongly: import ``onnxruntime_extensions`` first, or use a process
without TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_seq.contracts.export_dir import TEXT_GRAPH_FILE, find_onnx_dir

_CANARY_IN, _CANARY_OUT = ["Ab.C", "x"], ["Ab . C", "x"]


def _extensions_options():
    import onnxruntime as ort

    try:
        from onnxruntime_extensions import get_library_path
    except ImportError:
        raise ImportError(
            "the text-in graph needs onnxruntime-extensions (pip install onnxruntime-extensions)"
        ) from None
    options = ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    return options


def _check_regex_operators(options) -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    contrib = "ai.onnx.contrib"
    nodes = [helper.make_node("StringRegexReplace", ["text", "punct", "spaced"], ["out"], domain=contrib)]
    constants = {"punct": rb"([.])", "spaced": rb" \1 "}
    graph = helper.make_graph(
        nodes,
        "canary",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [helper.make_tensor_value_info("out", TensorProto.STRING, None)],
        [helper.make_tensor(k, TensorProto.STRING, [1], [v]) for k, v in constants.items()],  # type: ignore[list-item]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(contrib, 1)])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"text": np.array(_CANARY_IN, dtype=object)})[0].tolist()
    if got != _CANARY_OUT:
        raise RuntimeError(
            "onnxruntime-extensions' regular expressions do not work in this process (TensorFlow was loaded "
            "before them and its RE2 took their place); import onnxruntime_extensions before tensorflow, or "
            "answer from the text-in graph in a process without TensorFlow"
        )


def text_graph_session(export_dir: str | Path):
    """An ONNX Runtime session of an export's text-in graph (the export directory or its onnx/ folder)."""
    import onnxruntime as ort

    onnx_dir = find_onnx_dir(export_dir)
    path = onnx_dir / TEXT_GRAPH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; export with --text-in (text_in=True) to have it")
    options = _extensions_options()
    _check_regex_operators(options)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def text_graph_answers(session, texts: list[str]) -> list[dict]:
    """Per text: ``ids`` (its row of the padded ids) and the answer's fields the graph gives
    (``label``; or ``tokens`` and ``tags``)."""
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"text": np.array(texts, dtype=object)})))
    rows = []
    for i in range(len(texts)):
        row: dict = {"ids": out["ids"][i]}
        if "label" in out:
            row["label"] = str(out["label"][i])
        if "tags" in out:
            n = int(out["lengths"][i])
            row.update(tokens=[str(t) for t in out["tokens"][i][:n]], tags=[str(t) for t in out["tags"][i][:n]])
        rows.append(row)
    return rows
