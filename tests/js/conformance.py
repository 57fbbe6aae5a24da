"""The JavaScript runtime against the Python twin, on one export: the same ids, tokens, tags,
labels and generated sequences exactly, the same numbers within `TOLERANCE`, the same JSON lines
from the two CLIs. The test files that train an export call `assert_javascript_agrees` on it
(tests/export/test_export.py, tests/pipelines/test_g2p.py, tests/js/test_js_runtime.py)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_in_process

JS = REPO / "js"
TOLERANCE = 1e-5


def node() -> str:
    """The system's `node` with the package's npm dependencies installed; skips the test without
    them (CI has both: `make test` installs the dependencies, and there a missing Node fails)."""
    found = shutil.which("node")
    missing = (
        "Node.js is not on PATH"
        if not found
        else "the JavaScript package's dependencies are not installed (make js-install)"
        if not (JS / "node_modules" / "onnxruntime-node").is_dir()
        else None
    )
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI runs the JavaScript conformance tests")
        pytest.skip(missing)
    return found


def run_node(*args: str, stdin: bytes | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([node(), *args], input=stdin, capture_output=True, timeout=timeout, cwd=JS)


def extra_texts(max_len: int | None) -> list:
    """Beyond `keras_seq.export.checks.probes.adversarial_texts`: every ASCII punctuation mark, <br />
    variants, astral characters, lone surrogates (a JS string and a Python str can both hold one),
    texts far over max_len in characters."""
    long_words = max(10 * (max_len or 40), 400)
    return [
        string.punctuation,
        " ".join(string.punctuation),
        "a<br />b<BR/>c<br>d<Br \t/>e<br/ >f< br />g",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧪 𓀀 \U0010fffd",
        "lone \ud800 high and \udfff low surrogates",
        "e\u0301" * 300,
        "x" * (long_words * 8),
        "Don't stop--the 1,000.5 $100s (e.g. U.S.A.)!",
        "ÄÖÜ ÀÉÎ İı ß Straße ǅ",
    ]


def _jsonable(text):
    return {"bytes": base64.b64encode(text).decode("ascii")} if isinstance(text, bytes) else text


def javascript_calls(export_dir: Path, calls: list[dict]) -> list:
    request = {"export": str(export_dir), "calls": [{**c, "texts": [_jsonable(t) for t in c["texts"]]} for c in calls]}
    result = run_node("scripts/answers.mjs", stdin=json.dumps(request).encode("utf-8"))
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")[-3000:]
    return json.loads(result.stdout)


def assert_same(python, javascript, where: str = "answers") -> float:
    """Equal, numbers within TOLERANCE (what the answer contract compares within a tolerance);
    returns the largest difference."""
    if isinstance(python, float) or isinstance(javascript, float):
        assert isinstance(javascript, (int, float)) and abs(python - javascript) <= TOLERANCE, (
            where,
            python,
            javascript,
        )
        return abs(python - javascript)
    if isinstance(python, dict):
        assert isinstance(javascript, dict) and list(python) == list(javascript), (where, python, javascript)
        return max([0.0, *(assert_same(python[k], javascript[k], f"{where}.{k}") for k in python)])
    if isinstance(python, list):
        assert isinstance(javascript, list) and len(python) == len(javascript), (where, python, javascript)
        return max([0.0, *(assert_same(p, j, f"{where}[{i}]") for i, (p, j) in enumerate(zip(python, javascript)))])
    assert python == javascript, (where, python, javascript)
    return 0.0


def _python_calls(export_dir: Path, calls: list[dict]) -> list:
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(export_dir)
    tokenizer = predictor.tokenizer
    out = []
    for call in calls:
        texts = call["texts"]
        if call["method"] == "predict":
            out.append(predictor.predict(texts))
        elif call["method"] == "generate":
            out.append(predictor.generate(texts, call.get("length")))
        elif call["method"] == "tagScores":
            out.append([{"_scores": s.astype(float).ravel().tolist()} for s in predictor.tag_scores(texts)])
        elif call["method"] == "ids":
            out.append(
                [tokenizer.encode(t) if isinstance(t, (str, bytes)) else tokenizer.encode_tokens(t) for t in texts]
            )
        elif call["method"] == "tokens":
            out.append([tokenizer.tokens(t) for t in texts])
    return out


def _cli_lines(export_dir: Path, jsonl: Path, *options: str) -> tuple[list, list, int, int]:
    code, out, err = cli_in_process("predict", str(export_dir), "--input", str(jsonl), *options)
    result = run_node("bin/predict.mjs", str(export_dir), "--input", str(jsonl), *options)
    js_out = result.stdout.decode("utf-8")
    assert result.returncode in (0, 3), result.stderr.decode("utf-8", "replace")[-3000:]
    # split on "\n" only: str.splitlines would also split at U+2028 and the like, which JSON leaves as they are
    return out.rstrip("\n").split("\n"), js_out.rstrip("\n").split("\n"), code, result.returncode


def assert_javascript_agrees(
    export_dir: Path, texts: list, tmp_path: Path, *, token_lists: list | None = None, generate: int | None = None
) -> dict:
    """Both runtimes on `texts` (str, or bytes as Python receives invalid UTF-8) and the adversarial
    set; taggers also on `token_lists`; language models also generate `generate` tokens.
    Returns what was compared: {"texts", "identical_lines", "lines", "max_abs_diff"}."""
    from keras_seq.contracts.tokenizer import TokenizerSpec
    from keras_seq.export.checks.probes import adversarial_texts

    spec = TokenizerSpec.load(Path(export_dir) / "onnx")
    texts = list(texts) + adversarial_texts(spec.max_len or 50) + extra_texts(spec.max_len)
    calls = [
        {"method": "ids", "texts": texts},
        {"method": "tokens", "texts": texts},
        {"method": "predict", "texts": texts},
    ]
    if token_lists:
        calls += [{"method": "predict", "texts": token_lists}, {"method": "tagScores", "texts": token_lists[:20]}]
        calls.append({"method": "ids", "texts": token_lists})
    if generate is not None:
        calls.append({"method": "generate", "texts": texts[:12], "length": generate})
    worst = assert_same(_python_calls(export_dir, calls), javascript_calls(export_dir, calls), "calls")

    # The two CLIs on one JSON Lines file, with lines that are not JSON strings among them.
    jsonl = tmp_path / "conformance.jsonl"
    lines = [json.dumps(t) for t in texts if isinstance(t, str)] + ["42", "{not json", ""]
    jsonl.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b'"bad \xff bytes"\n')
    runs = [_cli_lines(export_dir, jsonl)]
    if generate is not None:
        runs.append(_cli_lines(export_dir, jsonl, "--generate"))  # model.json's generate_length
    identical = total = 0
    for python_lines, js_lines, python_code, js_code in runs:
        assert python_code == js_code == 3  # the lines that are not JSON strings
        assert len(python_lines) == len(js_lines)
        for n, (p, j) in enumerate(zip(python_lines, js_lines), 1):
            parsed = json.loads(p), json.loads(j)
            if "error" in parsed[0]:
                assert "error" in parsed[1], (n, p, j)
            else:
                worst = max(worst, assert_same(*parsed, f"line {n}"))
            identical += p == j
            total += 1
    return {"texts": len(texts), "identical_lines": identical, "lines": total, "max_abs_diff": worst}
