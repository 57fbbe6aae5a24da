"""Drills on one exported model: seeded fuzz through both runtimes and the server,
server abuse, and every file of the export damaged (slow; loopback only, bounded in time).

Each drill prints its counts (run pytest with -s to see them); the closing
note of issue 14 tabulates them.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kserve")

from keras_seq.contracts.tokenizer import valid_text  # noqa: E402
from keras_seq.contracts.writer_lock import LOCK_FILE  # noqa: E402
from keras_seq.serving.client import RestClient  # noqa: E402
from keras_seq.serving.predictor import OnnxPredictor  # noqa: E402
from keras_seq.serving.savedmodel_predictor import SavedModelPredictor  # noqa: E402
from tests.helpers import cli_in_process, fresh_copy, run_cli, served  # noqa: E402

pytestmark = pytest.mark.slow
FUZZ_INPUTS = 3000
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def export(demo_export):
    return demo_export


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
            key = next(k for k in ("level", "task", "output", "max_len", "signature_def") if k in content)
            content[key] = {"level": "sentence", "task": 5, "output": 7, "max_len": -1, "signature_def": []}[key]
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
    # MODEL_CARD.md is for people and .keras-seq.lock for writers: no runtime reads them, so damaging them changes
    # no answer (the "unaffected" path). A version folder's onnx/ holds the same files as onnx/, listed in
    # export.json the same way: its graph stands for them here (the rollout drill damages a version's vocabulary).
    card = [p.relative_to(export) for p in export.glob("MODEL_CARD.md")] + [Path(LOCK_FILE)]
    copies = [p for p in export.glob("savedmodel/*/*/onnx/*") if p.name != "model.onnx"]
    files = card + sorted(
        p.relative_to(export)
        for p in export.rglob("*")
        if p.is_file() and p.relative_to(export) not in card and p not in copies
    )
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


# -- the model lifecycle: versions rolled in, a damaged one refused, a label moved, SIGTERM ----------
ROLL_TEXTS = ["a good film , not bad at all", "bad , boring and far too long", "the plot", ""]


def _version_from(export, base, number: int) -> list[dict]:
    """BASE/NUMBER/onnx: the export's ONNX half with the output bias shifted by the version number
    (so each version answers differently), its checksums written again; returns its answers."""
    import onnx
    from onnx import numpy_helper

    from keras_seq.contracts.export_dir import write_onnx_info
    from keras_seq.contracts.files import read_json_object

    staged = base / f".{number}.staging"
    shutil.copytree(export / "onnx", staged / "onnx")
    model = onnx.load(staged / "onnx" / "model.onnx")
    bias = next(i for i in model.graph.initializer if i.name.endswith("_bias"))
    shifted = numpy_helper.to_array(bias) + np.array([0.7, -0.7], np.float32) * (number - 1)
    bias.CopyFrom(numpy_helper.from_array(shifted.astype(np.float32), bias.name))
    onnx.save(model, staged / "onnx" / "model.onnx")
    info = read_json_object(staged / "onnx" / "model.json", "")
    write_onnx_info(staged / "onnx", {k: v for k, v in info.items() if k not in ("format_version", "files")})
    answers = OnnxPredictor(staged / "onnx").predict(ROLL_TEXTS)
    staged.rename(base / str(number))  # as an export installs it: the whole folder at once
    return answers


def _wait(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class _Load:
    """8 clients posting ROLL_TEXTS in a loop (to `route()`), each reply recorded with its times."""

    def __init__(self, port: int, route) -> None:
        self.port, self.route, self.stop = port, route, threading.Event()
        self.records: list[tuple] = []  # (started, ended, route, status or error name, answers)
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(8)]
        for thread in self.threads:
            thread.start()

    def _client(self) -> None:
        body = json.dumps({"instances": ROLL_TEXTS}).encode()
        while not self.stop.is_set():
            route, started = self.route(), time.monotonic()
            try:
                status, raw = _post(f"http://127.0.0.1:{self.port}{route}", body, timeout=30)
                answers = json.loads(raw)["predictions"] if status == 200 else raw[:200]
                self.records.append((started, time.monotonic(), route, status, answers))
            except OSError as error:  # refused or reset: judged by when it happened
                self.records.append((started, time.monotonic(), route, type(error).__name__, None))
                time.sleep(0.02)

    def finish(self) -> list[tuple]:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        return self.records


def _as_answers(rows: list[dict]) -> list[dict]:
    from keras_seq.serving.signature_outputs import from_signature_outputs

    return [from_signature_outputs("classify", row) for row in rows]


def _which_version(answers: list[dict], by_version: dict[int, list[dict]]) -> int | None:
    """The version whose answers these are, all of them (None: a mix, or none of them)."""
    for number, expected in by_version.items():
        if all(
            a["label"] == e["label"]
            and np.allclose(list(a["probabilities"].values()), list(e["probabilities"].values()), atol=TOLERANCE)
            for a, e in zip(answers, expected)
        ):
            return number
    return None


def test_versions_roll_in_a_damaged_one_is_refused_and_sigterm_drains(export, tmp_path):
    base = tmp_path / "models" / "drill"
    base.mkdir(parents=True)
    by_version = {1: _version_from(export, base, 1)}
    config = tmp_path / "models.config"

    def write_config(labels: dict) -> None:
        entries = "".join(f' version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
        text = f'model_config_list {{ config {{ name: "drill" base_path: "{base}" model_platform: "tensorflow"'
        text += f" model_version_policy {{ latest {{ num_versions: 2 }} }}{entries} }} }}\n"
        tmp = config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(config)

    write_config({})
    log = tmp_path / "server.log"
    with served(None, "--model-config-file", str(config), "--poll-seconds", "0.2", log=log, name="drill") as (
        port,
        process,
    ):
        url = f"http://127.0.0.1:{port}/v1/models/drill"

        def status() -> dict:
            return {int(s["version"]): s for s in json.loads(_post(url, b"", method="GET")[1])["model_version_status"]}

        use_label = threading.Event()
        load = _Load(
            port, lambda: "/v1/models/drill/labels/stable:predict" if use_label.is_set() else "/v1/models/drill:predict"
        )
        for number in (2, 3):  # rolled in under load
            by_version[number] = _version_from(export, base, number)
            _wait(lambda: status().get(number, {}).get("state") == "AVAILABLE", f"version {number}")
        latest_at = time.monotonic()  # version 3 is available: unlabelled requests go to it from here on
        assert by_version[1] != by_version[2] != by_version[3]
        _wait(lambda: status()[1]["state"] == "END", "version 1 to unload (latest:2)")
        shutil.copytree(base / "3", base / ".4.staging")
        (base / ".4.staging" / "onnx" / "vocab.txt").write_text("damaged\n")
        (base / ".4.staging").rename(base / "4")
        _wait(lambda: status().get(4, {}).get("state") == "END", "the damaged version 4 to be refused")
        assert "vocab.txt" in status()[4]["status"]["error_message"] and status()[3]["state"] == "AVAILABLE"
        write_config({"stable": 2})
        time.sleep(0.5)
        use_label.set()
        time.sleep(1.0)
        moved = time.monotonic()
        write_config({"stable": 3})  # the label moves from 2 to 3
        time.sleep(1.5)
        records = load.finish()
        # SIGTERM under load: readiness turns false, requests in flight finish, the process exits 0
        load = _Load(port, lambda: "/v1/models/drill:predict")
        time.sleep(0.5)
        signalled = time.monotonic()
        process.terminate()
        _wait(lambda: _post(url, b"", method="GET")[0] == 503, "readiness to turn false", 5)
        assert process.wait(timeout=60) == 0
        stopped = load.finish()

    failed = [r for r in records if r[3] != 200]
    assert not failed, failed[:5]
    versions = [(r[2], r[0], _which_version(_as_answers(r[4]), by_version)) for r in records]
    assert None not in [v for _, _, v in versions], "an answer mixed versions"
    labelled = [(t, v) for route, t, v in versions if "labels" in route]
    assert {v for t, v in labelled if t > moved + 1.0} == {3} and 2 in {v for t, v in labelled if t < moved}
    assert {v for route, t, v in versions if "labels" not in route and t > latest_at} == {3}
    assert {v for route, t, v in versions if "labels" not in route} == {1, 2, 3}
    closed = signalled + 2.0  # --drain-grace: the listener closes then
    in_flight_failures = [r for r in stopped if r[3] != 200 and (r[0] < closed - 0.2 or isinstance(r[3], int))]
    refused_after_close = [r for r in stopped if r[3] != 200 and r not in in_flight_failures]
    assert not in_flight_failures, in_flight_failures[:5]
    answered_after_signal = sum(1 for r in stopped if r[3] == 200 and r[0] > signalled)
    assert answered_after_signal > 0  # readiness was false, but the grace still served
    logged = log.read_text(errors="replace")
    assert "version 4 refused" in logged and "SIGTERM: readiness is false" in logged
    print(
        f"\nrollout drill: {len(records)} requests while versions 1 -> 2 -> 3 rolled in, version 4 (damaged) was "
        f"refused and the label moved 2 -> 3: 0 failed, 0 mixed; SIGTERM under load: {len(stopped)} requests, "
        f"{answered_after_signal} answered after the signal, 0 failed in flight, {len(refused_after_close)} refused "
        "after the listener closed"
    )
