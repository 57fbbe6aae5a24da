"""Verification that does not trust the exporting process.

The exporting process computes its answers for a set of texts; a fresh
process that imports neither keras nor keras_seq (`export/fresh_check.py`)
loads the SavedModel with ``tf.saved_model.load`` and with the TF1 session
loader, replays the warmup records, and runs ``saved_model_cli show --all`` and
``run`` (the command's own functions, in that process: two TensorFlow imports
fewer); a second fresh process loads it through the TF C API. Every answer must
equal the exporting model's: strings and ids exactly, numbers within `TOLERANCE`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from keras_seq.contracts.answers import NUMBER_FIELDS
from keras_seq.export.checks.processes import run_child, scratch_dir

TOLERANCE = 1e-5
FRESH_CHECK = Path(__file__).with_name("fresh_check.py")
CAPI_CHECK = Path(__file__).with_name("capi_check.py")


class VerificationError(RuntimeError):
    """An exported artifact does not give the exporting model's answers."""


def _quiet_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}


def texts_file(texts: list, path: Path) -> Path:
    items = [{"hex": t.hex()} if isinstance(t, bytes) else {"text": t} for t in texts]  # bytes: maybe not UTF-8
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def compare(got: np.ndarray, want: np.ndarray, where: str) -> float:
    """Raises VerificationError unless equal (numbers: within TOLERANCE); returns the max abs difference."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise VerificationError(f"{where}: shape {got.shape} != expected {want.shape}")
    if want.dtype.kind in "fc":
        # A model may answer NaN (e.g. mean pooling over an empty text): both sides must, at the same places.
        nan = np.isnan(want)
        if not np.array_equal(np.isnan(got), nan):
            raise VerificationError(f"{where}: NaN at {np.argwhere(np.isnan(got) != nan)[0].tolist()} on one side only")
        diff = float(np.max(np.abs(got - want)[~nan])) if want.size > nan.sum() else 0.0
        if not diff <= TOLERANCE:
            raise VerificationError(f"{where}: max abs difference {diff:.3g} > {TOLERANCE}")
        return diff
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)[0].tolist()
        raise VerificationError(f"{where}: differs at {bad}: {got[tuple(bad)]!r} != {want[tuple(bad)]!r}")
    return 0.0


def _run(command: list[str], what: str, timeout: int) -> subprocess.CompletedProcess:
    result = run_child(command, capture_output=True, text=True, timeout=timeout, env=_quiet_env())
    if result.returncode != 0:
        raise VerificationError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-1500:]}")
    return result


def text_feeds(texts: list, signatures) -> dict:
    """{signature: {"text": array}} for each of `signatures`: every text at once."""
    array = np.array([t if isinstance(t, bytes) else t.encode("utf-8") for t in texts], dtype=object)
    return {name: {"text": array} for name in signatures}


def verify_savedmodel(directory: str | Path, feeds: dict, reference: dict, timeout: int = 900) -> dict:
    """Checks the SavedModel at `directory` against `reference` ({signature: {output: array}}),
    feeding `feeds` ({signature: {input: array}}; `text_feeds` for the text signatures)."""
    directory = Path(directory)
    report = {"max_abs_diff": 0.0, "checked": []}
    with scratch_dir("keras-seq-verify") as tmp:
        inputs = tmp / "feeds.npz"
        np.savez(inputs, **{f"{sig}/{name}": value for sig, feed in feeds.items() for name, value in feed.items()})
        _run(
            [sys.executable, str(FRESH_CHECK), str(directory), str(inputs), str(tmp / "answers.npz")],
            "loading in a fresh process",
            timeout,
        )
        summary = json.loads((tmp / "answers.json").read_text(encoding="utf-8"))
        if summary["imported"]:
            raise VerificationError(f"the fresh process imported {summary['imported']}")
        answers = dict(np.load(tmp / "answers.npz", allow_pickle=True))
        for loader in ("tf2", "tf1"):
            for signature, outputs in reference.items():
                for key, want in outputs.items():
                    name = f"{loader}/{signature}/{key}"
                    if name not in answers:
                        raise VerificationError(f"{name}: missing from the reloaded model's answers")
                    diff = compare(answers[name], want, name)
                    report["max_abs_diff"] = max(report["max_abs_diff"], diff)
            report["checked"].append({"tf2": "tf.saved_model.load", "tf1": "TF1 session loader"}[loader])
        report["warmup_requests"] = summary["warmup_requests"]
        report["checked"].append(f"warmup replay ({summary['warmup_requests']} requests)")
        report["signatures"] = summary["signatures"]
        feed = feeds["serving_default"]
        for signature in reference:
            if f"signature_def['{signature}']" not in summary.get("saved_model_cli_show", ""):
                raise VerificationError(f"saved_model_cli show does not list signature {signature!r}")
        for key, want in reference["serving_default"].items():
            name = f"cli/serving_default/{key}"
            if name not in answers:
                raise VerificationError(f"{name}: missing from saved_model_cli run's outputs")
            report["max_abs_diff"] = max(report["max_abs_diff"], compare(answers[name], want, f"saved_model_cli/{key}"))
        report["checked"].append("saved_model_cli show/run")
        if set(feed) == {"text"}:  # the C API check feeds one string tensor
            signature = tmp / "signature.json"
            signature.write_text(json.dumps(summary["signatures"]["serving_default"]), encoding="utf-8")
            texts = tmp / "texts.json"
            texts_file(list(feed["text"]), texts)
            _run(
                [sys.executable, str(CAPI_CHECK), str(directory), str(signature), str(texts), str(tmp / "capi.npz")],
                "loading through the TensorFlow C API",
                timeout,
            )
            capi = dict(np.load(tmp / "capi.npz", allow_pickle=True))
            for key, want in reference["serving_default"].items():
                diff = compare(capi[key], want, f"C API/serving_default/{key}")
                report["max_abs_diff"] = max(report["max_abs_diff"], diff)
            report["checked"].append("TF C API (TF_LoadSessionFromSavedModel)")
    return report


def compare_answer(got: dict, want: dict, numbers: list, want_numbers: list, where: str) -> float:
    """Answers agree: every non-numeric field exactly, the numbers within TOLERANCE."""
    symbols = {k: v for k, v in got.items() if k not in NUMBER_FIELDS}
    expected = {k: v for k, v in want.items() if k not in NUMBER_FIELDS}
    if symbols != expected:
        raise VerificationError(f"{where}: {symbols!r} != expected {expected!r}")
    return compare(np.asarray(numbers, np.float32), np.asarray(want_numbers, np.float32), where)


def verify_onnx(onnx_dir: str | Path, texts: list, reference: dict) -> dict:
    """ONNX Runtime (through `keras_seq.serving.OnnxPredictor`) against the SavedModel's answers."""
    from keras_seq.serving.predictor import OnnxPredictor
    from keras_seq.serving.signature_outputs import rows_of

    predictor = OnnxPredictor(onnx_dir)
    task = predictor.answers
    expected = [task.answer_from_outputs(row, predictor.labels) for row in rows_of(reference["serving_default"])]
    worst = 0.0
    for i, (answer, want) in enumerate(zip(predictor.predict(texts), expected)):
        worst = max(
            worst,
            compare_answer(answer, want, task.answer_numbers(answer), task.answer_numbers(want), f"onnx answer {i}"),
        )
    if predictor.task.generates:
        for i, answer in enumerate(predictor.generate(texts)):
            compare(
                np.array(answer["continuation"]),
                np.array(reference["generate"]["continuation"][i].decode()),
                f"onnx continuation {i}",
            )
    return {"texts": len(texts), "max_abs_diff": worst}


def int8_agreement(onnx_dir: str | Path, texts: list) -> dict:
    """How far the int8 graphs' answers are from the float graphs' on `texts`: the share of
    answers whose labels / tags / tokens are the same, and the largest difference of their numbers."""
    from keras_seq.serving.predictor import OnnxPredictor

    exact, quantized = OnnxPredictor(onnx_dir), OnnxPredictor(onnx_dir, int8=True)
    task = exact.answers
    same, worst = 0, 0.0
    for a, b in zip(exact.predict(texts), quantized.predict(texts)):
        symbols = lambda x: {k: v for k, v in x.items() if k not in NUMBER_FIELDS}  # noqa: E731
        same += symbols(a) == symbols(b)
        numbers_a, numbers_b = task.answer_numbers(a), task.answer_numbers(b)
        if numbers_a and len(numbers_a) == len(numbers_b):
            worst = max(worst, float(np.max(np.abs(np.subtract(numbers_a, numbers_b)))))
    return {"texts": len(texts), "same_answers": same / max(len(texts), 1), "max_abs_diff": worst}
