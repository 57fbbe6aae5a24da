"""The text-in graph (`keras_seq.export.onnx.text_graph`) against the tokenizer's twin and
`OnnxPredictor`: the same ids, and the same answers (labels, tokens and tags exactly), checked in a
fresh process without TensorFlow (`text_graph_check.py`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from keras_seq.export.checks.processes import run_child, scratch_dir
from keras_seq.export.checks.verify import VerificationError, _quiet_env

TEXT_GRAPH_CHECK = Path(__file__).with_name("text_graph_check.py")


def compare_text_graph(onnx_dir: str | Path, texts: list, timeout: int = 900) -> dict:
    """{"texts", "skipped", "mismatched", "first"}: texts a binding cannot send are skipped: not valid
    UTF-8 (the bindings refuse them; rule 1 is the caller's there), or holding U+0000 (ONNX Runtime's
    string tensors end a text there)."""
    usable = [t for t in texts if isinstance(t, str) and _sendable(t)]
    with scratch_dir("keras-seq-text-graph") as tmp:
        (tmp / "texts.json").write_text(json.dumps(usable), encoding="utf-8")
        result = run_child(
            [sys.executable, str(TEXT_GRAPH_CHECK), str(onnx_dir), str(tmp / "texts.json"), str(tmp / "out.json")],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_quiet_env(),
        )
        if result.returncode != 0:
            raise VerificationError(f"checking the text-in graph failed: {result.stderr.strip().splitlines()[-1:]}")
        report = json.loads((tmp / "out.json").read_text(encoding="utf-8"))
    return {**report, "skipped": len(texts) - len(usable)}


def verify_text_graph(onnx_dir: str | Path, texts: list) -> dict:
    """`compare_text_graph`, raising on any difference."""
    report = compare_text_graph(onnx_dir, texts)
    if report["mismatched"]:
        raise VerificationError(
            f"the text-in graph differs from the tokenizer's twin on {report['mismatched']} of "
            f"{report['texts']} texts (first: {report['first']!r})"
        )
    return report


def _sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
