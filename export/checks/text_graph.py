"""The text-in graph (`keras_seq.export.onnx.text_graph`) against the tokenizer's twin and
`OnnxPredictor`: the same ids, and the same answers (labels, tokens and tags exactly)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_seq.export.checks.verify import VerificationError


def text_graph_answers(session, texts: list[str]) -> list[dict]:
    """The text-in graph's ids and answer fields per text, from one run on `texts`."""
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"text": np.array(texts, dtype=object)})))
    rows = []
    for i in range(len(texts)):
        row = {"ids": out["ids"][i]}
        if "label" in out:
            row["label"] = str(out["label"][i])
        if "tags" in out:
            n = int(out["lengths"][i])
            row.update(tokens=[str(t) for t in out["tokens"][i][:n]], tags=[str(t) for t in out["tags"][i][:n]])
        rows.append(row)
    return rows


def compare_text_graph(onnx_dir: str | Path, texts: list, chunk: int = 16) -> dict:
    """{"texts", "skipped", "mismatched", "first"}: texts a binding cannot send are skipped: not valid
    UTF-8 (the bindings refuse them; rule 1 is the caller's there), or holding U+0000 (ONNX Runtime's
    string tensors end a text there)."""
    from keras_seq.export.onnx.text_graph import text_graph_session
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(onnx_dir)
    session = text_graph_session(predictor.directory)
    usable = [t for t in texts if isinstance(t, str) and _sendable(t)]
    mismatched, first = 0, None
    for start in range(0, len(usable), chunk):
        batch = usable[start : start + chunk]
        for text, got, want in zip(batch, text_graph_answers(session, batch), predictor.predict(batch)):
            ids = predictor.tokenizer.encode(text)
            same = got["ids"][: len(ids)].tolist() == ids and not got["ids"][len(ids) :].any()
            same = same and all(got[k] == want[k] for k in ("label", "tokens", "tags") if k in got)
            if not same:
                mismatched += 1
                first = first or text[:200]
    return {"texts": len(usable), "skipped": len(texts) - len(usable), "mismatched": mismatched, "first": first}


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
