"""Drills on one exported model: seeded fuzz through both runtimes and the server,
server abuse, and every file of the export damaged (slow; loopback only, bounded in time).

Each drill prints its counts (run pytest with -s to see them); the closing
note of issue 14 tabulates them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("kserve")

from keras_seq.contracts.tokenizer import valid_text  # noqa: E402
from keras_seq.serving.client import RestClient  # noqa: E402
from keras_seq.serving.predictor import OnnxPredictor  # noqa: E402
from keras_seq.serving.savedmodel_predictor import SavedModelPredictor  # noqa: E402
from tests.helpers import cli_in_process, fresh_copy, run_cli, served, train_and_export  # noqa: E402

pytestmark = pytest.mark.slow
FUZZ_INPUTS = 3000
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return train_and_export(tmp_path_factory.mktemp("drills"))


def fuzz_texts(seed: int, n: int) -> list[tuple[str, str | bytes]]:
    """(category, text) pairs: str, or bytes for invalid UTF-8."""
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "not", "movie", "the", "was", "at", "all", ",", "!", "great", "awful", "plot", "."]

    def some_words(k):
        return " ".join(rng.choice(words, size=k))

    def plane_chars(k):
        chars = []
        for _ in range(k):
            plane = int(rng.integers(0, 17))
            point = plane * 0x10000 + int(rng.integers(0, 0x10000))
            chars.append(chr(point if not 0xD800 <= point <= 0xDFFF else 0x41))
        return "".join(chars)

    makers = {
        "empty": lambda: "",
        "whitespace": lambda: "".join(rng.choice(list(" \t\n\r\v\f\u00a0\u2028\u3000"), size=int(rng.integers(1, 30)))),
        "100k characters": lambda: (some_words(20) + " ") * 5000,
        "every plane": lambda: plane_chars(int(rng.integers(1, 60))),
        "lone surrogates": lambda: some_words(3) + chr(int(rng.integers(0xD800, 0xE000))) + some_words(2),
        "NUL and controls": lambda: some_words(2) + "".join(chr(int(c)) for c in rng.integers(0, 32, size=5)) + "\x7f",
        "RTL and combining": lambda: "\u05e9\u05dc\u05d5\u05dd good e\u0301\u0308 \u202e" + some_words(3) + "\u202c",
        "emoji ZWJ": lambda: "👨\u200d👩\u200d👧\u200d👦 " + some_words(2) + " 🏳\ufe0f\u200d🌈 👍🏽",
        "invalid UTF-8": lambda: (
            some_words(2).encode() + bytes(rng.integers(128, 256, size=int(rng.integers(1, 8))).tolist())
        ),
        "plain words": lambda: some_words(int(rng.integers(1, 40))),
    }
    names = [name for name in makers if name != "100k characters"]
    out = [(names[i % len(names)], makers[names[i % len(names)]]()) for i in range(n - 10)]
    return out + [("100k characters", makers["100k characters"]()) for _ in range(10)]


def _compare(a: list[dict], b: list[dict]) -> tuple[int, float]:
    disagreements, worst = 0, 0.0
    for x, y in zip(a, b, strict=True):
        disagreements += x["label"] != y["label"]
        diff = max(abs(x["probabilities"][k] - y["probabilities"][k]) for k in x["probabilities"])
        worst = max(worst, diff)
    return disagreements, worst


def test_fuzz_both_runtimes_and_the_server_agree(export, tmp_path):
    inputs = fuzz_texts(seed=14, n=FUZZ_INPUTS)
    texts = [t for _, t in inputs]
    crashes = 0
    onnx = OnnxPredictor(export).predict(texts)
    savedmodel = SavedModelPredictor(export).predict(texts)
    with served(export, log=tmp_path / "server.log") as (port, _):
        client = RestClient(f"http://127.0.0.1:{port}", "reviews", retries=0, timeout=60)
        server = [a for start in range(0, len(texts), 100) for a in client.predict(texts[start : start + 100])]
    disagree_sm, diff_sm = _compare(onnx, savedmodel)
    disagree_srv, diff_srv = _compare(onnx, server)
    categories = sorted({c for c, _ in inputs})
    print(
        f"\nfuzz: {len(texts)} inputs in {len(categories)} categories; ONNX vs SavedModel: {disagree_sm} label "
        f"disagreements, max diff {diff_sm:.2e}; ONNX vs server: {disagree_srv}, {diff_srv:.2e}"
    )
    assert crashes == 0 and len(onnx) == len(savedmodel) == len(server) == FUZZ_INPUTS
    assert disagree_sm == 0 and disagree_srv == 0
    assert diff_sm <= TOLERANCE and diff_srv <= TOLERANCE
    assert "Traceback" not in (tmp_path / "server.log").read_text(errors="replace")
    # the same texts as JSON lines through the CLI: every line its own answer
    lines = tmp_path / "fuzz.jsonl"
    lines.write_text(
        "".join(
            json.dumps(valid_text(t) if isinstance(t, str) else t.decode("utf-8", "replace")) + "\n"
            for t in texts[:500]
        ),
        encoding="utf-8",
    )
    result = run_cli("predict", str(export), "--input", str(lines), timeout=300)
    assert result.returncode == 0, result.stderr[-1000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert _compare(answers, onnx[:500])[0] == 0


JSON_ABUSE = {  # raw JSON Lines / bodies that are not texts
    "JSON non-string": b'{"instances": [1, {"a": 2}, null, true]}',
    "huge number": b'{"instances": [' + b"9" * 5000 + b"]}",
    "deep nesting": b'{"instances": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    "not JSON": b"{instances: nope",
    "invalid UTF-8": b'{"instances": ["\xff\xfe"]}',
    "empty body": b"",
}


def _post(url: str, body: bytes, headers: dict | None = None, method: str = "POST", timeout: float = 30):
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_server_abuse_gets_4xx_and_the_server_keeps_serving(export, tmp_path):
    log = tmp_path / "server.log"
    with served(
        export, "--head-timeout", "2", "--body-timeout", "2", "--max-body-bytes", str(2 * 1024 * 1024), log=log
    ) as (port, process):
        base = f"http://127.0.0.1:{port}"
        v1, v2 = f"{base}/v1/models/reviews:predict", f"{base}/v2/models/reviews/infer"
        cases = []
        for content_type in (
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "text/plain",
        ):
            for name, body in JSON_ABUSE.items():
                cases.append((f"V1 {name} as {content_type}", v1, body, {"Content-Type": content_type}, "POST"))
        for name, tensor in {
            "INT32": {"name": "text", "datatype": "INT32", "shape": [1], "data": [1]},
            "FP32": {"name": "text", "datatype": "FP32", "shape": [1], "data": [0.5]},
            "BOOL": {"name": "text", "datatype": "BOOL", "shape": [1], "data": [True]},
            "BYTES holding numbers": {"name": "text", "datatype": "BYTES", "shape": [2], "data": [1, 2]},
            "2-D data": {"name": "text", "datatype": "BYTES", "shape": [1, 2], "data": [["a", "b"]]},
            "wrong name": {"name": "input_ids", "datatype": "BYTES", "shape": [1], "data": ["a"]},
            "wrong shape": {"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a"]},
            "5,000 texts": {"name": "text", "datatype": "BYTES", "shape": [5000], "data": ["a"] * 5000},
        }.items():
            cases.append(
                (
                    f"V2 {name}",
                    v2,
                    json.dumps({"inputs": [tensor]}).encode(),
                    {"Content-Type": "application/json"},
                    "POST",
                )
            )
        cases.append(
            (
                "V2 Inference-Header-Content-Length: abc",
                v2,
                b'{"inputs": []}',
                {"Inference-Header-Content-Length": "abc"},
                "POST",
            )
        )
        cases.append(("V1 300 texts", v1, json.dumps({"instances": ["a"] * 300}).encode(), {}, "POST"))
        cases.append(("V1 3 MB body", v1, b'{"instances": ["' + b"a" * (3 << 20) + b'"]}', {}, "POST"))
        # an oversized body is read to its end before the 413, or the client sees a reset instead
        # of the answer (without the drain: 10 of 10 at 20 MB, both ways)
        cases.append(("V1 20 MB body", v1, b'{"instances": ["' + b"a" * (20 << 20) + b'"]}', {}, "POST"))
        cases.append(
            ("V1 20 MB chunked body", v1, iter([b'{"instances": ["'] + [b"a" * (1 << 20)] * 20 + [b'"]}']), {}, "POST")
        )
        cases.append(("GET on :predict", v1, b"", {}, "GET"))
        statuses = {}
        for name, url, body, headers, method in cases:
            status, reply = _post(url, body, headers, method)
            statuses[name] = status
            assert 400 <= status < 500, (name, status, reply[:200])
            assert json.loads(reply)["error"], name
        assert statuses["GET on :predict"] == 405
        assert statuses["V1 3 MB body"] == statuses["V1 20 MB body"] == statuses["V1 20 MB chunked body"] == 413

        # lone surrogates: the server answers as the CLI does (U+FFFD), under any content type
        surrogate = b'{"instances": ["good \\ud800 movie"]}'
        answers = {
            ct: json.loads(_post(v1, surrogate, {"Content-Type": ct})[1])["predictions"][0]["label"]
            for ct in ("application/json", "text/plain")
        }
        assert len(set(answers.values())) == 1
        assert RestClient(base, "reviews").predict(["good \ud800 movie"])[0]["label"] == answers["text/plain"]

        # slow clients: half-open connections are closed after the head timeout; a stalled body gets 408
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        for s in sockets:
            s.sendall(b"POST /v1/models/reviews:predict HTTP/1.1\r\nHost: x\r\n")
            s.settimeout(10)
        started = time.monotonic()
        closed = sum(s.recv(64) == b"" for s in sockets)
        waited = time.monotonic() - started
        for s in sockets:
            s.close()
        assert closed == 50 and waited < 8
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b'POST /v1/models/reviews:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"in')
            s.settimeout(10)
            assert s.recv(64).startswith(b"HTTP/1.1 408")
        # a client that waits for 100-continue is refused at once, not invited to send 20 MB
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /v1/models/reviews:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: 20971520\r\n\r\n"
            )
            s.settimeout(10)
            assert s.recv(64).startswith(b"HTTP/1.1 413")

        # load: 8 concurrent clients x 1,000 requests, memory measured before and after
        rss_before = _rss_kb(process.pid)
        errors, done = [], []

        def client_loop(k):
            client = RestClient(base, "reviews", retries=0, timeout=30)
            for i in range(1000):
                try:
                    client.predict([f"client {k} request {i} good not bad"])
                    done.append(1)
                except Exception as error:  # counted, not raised: the drill reports them
                    errors.append(repr(error))

        started = time.monotonic()
        threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        seconds = time.monotonic() - started
        rss_after = _rss_kb(process.pid)
        print(
            f"\nserver abuse: {len(cases)} bad requests -> {sorted(set(statuses.values()))}; 50 half-open "
            f"connections closed in {waited:.1f} s; load: {len(done)} requests, {len(errors)} errors, "
            f"{len(done) / seconds:.0f} requests/s; RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB"
        )
        assert not errors and len(done) == 8000
        assert rss_after - rss_before < 150 * 1024  # KB: the stated bound, 150 MB of growth
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and " 500 " not in text
    assert process.returncode == 0


def _one_line_naming(path_part: str, stderr: str) -> bool:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return len(lines) == 1 and path_part in lines[0] and "Traceback" not in stderr


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "emptied":
        path.write_bytes(b"")
    elif how == "wrong field":
        if path.suffix == ".json":
            content = json.loads(data)
            key = next(k for k in ("level", "task", "output", "max_len") if k in content)
            content[key] = {"level": "sentence", "task": 5, "output": 7, "max_len": -1}[key]
            path.write_text(json.dumps(content), encoding="utf-8")
        else:  # not a JSON file: one changed byte in the middle
            middle = len(data) // 2
            path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1 :] if data else b"x")


def test_every_damaged_export_file_is_named(export, tmp_path):
    """Each file of the export, truncated, emptied or with a wrong field: a runtime that
    reads it exits non-zero with one line naming it; one that does not answers as before."""
    texts = ["good movie , not bad", "bad"]
    before = {
        runtime: cli_in_process("predict", str(export), *texts, "--runtime", runtime)[1]
        for runtime in ("onnx", "savedmodel")
    }
    # MODEL_CARD.md is for people: no runtime reads it, so damaging it changes no answer (the "unaffected" path)
    card = [p.relative_to(export) for p in export.glob("MODEL_CARD.md")]
    files = card + sorted(p.relative_to(export) for p in export.rglob("*") if p.is_file() and p.name != "MODEL_CARD.md")
    counts = {"cases": 0, "named": 0, "unaffected": 0, "tracebacks": 0, "silently wrong": 0}
    for relative in files:
        for how in ("truncated", "emptied", "wrong field"):
            damaged = fresh_copy(export, tmp_path / "export")
            _damage(damaged / relative, how)
            named = False
            for runtime in ("onnx", "savedmodel"):
                code, out, err = cli_in_process("predict", str(damaged), *texts, "--runtime", runtime)
                counts["tracebacks"] += "Traceback" in err
                if code == 0:
                    counts["silently wrong"] += out != before[runtime]
                    assert out == before[runtime], (relative, how, runtime)
                else:
                    assert _one_line_naming(relative.name, err), (relative, how, runtime, err[-500:])
                    named = True
            counts["cases"] += 1
            counts["named" if named else "unaffected"] += 1
    print(f"\nbad export files: {len(files)} files x 3 damages = {counts}")
    assert counts["tracebacks"] == 0 and counts["silently wrong"] == 0
    # every damage of a file a runtime reads is caught (the checksums see all bytes)
    assert counts["named"] >= counts["cases"] - 3 * len(card) - 1 and card


def test_predict_input_lines_each_get_an_answer_or_an_error(export, tmp_path):
    lines = [b'"good movie"', *JSON_ABUSE.values(), b'"not bad"', b"[1, 2]", b'"\\ud800 surrogate"']
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(line for line in lines if line) + b"\n")
    result = run_cli("predict", str(export), "--input", str(path), timeout=120)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert len(answers) == sum(1 for line in lines if line)
    good = [a for a in answers if "label" in a]
    assert len(good) == 3 and all("error" in a for a in answers if "label" not in a)
    assert "6 of 9 inputs got an error (line 2, 3, 4, 5, 6, 8)" in result.stderr  # the summary names them
