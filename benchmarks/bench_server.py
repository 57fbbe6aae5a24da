"""`keras-seq serve` under load: with and without batching, 1 / 8 / 64 concurrent clients, on
real test texts, against ONNX Runtime's own throughput at batch 64.

    python -m benchmarks.bench_server IMDB_EXPORT EWT_EXPORT [--seconds 5] [--rounds 3]

Each export is served on a free loopback port once per mode (`MODES`: ``before``, the server as
it was, ONNX Runtime on every core per call; ``off``, ``--no-batching``, one thread per call and
requests side by side; batching with batch_timeout_micros 0, the default, and 2000). Every
client is a thread with one kept-alive HTTP connection sending one text per V1 request, back to
back, for `--seconds` (after one second of warm-up): texts/s, p50 / p99 latency, the server's
CPU time per text, errors. Rounds rotate the order of the modes; the table shows medians. The
reference ("limit") is `OnnxPredictor.predict` on 64 texts at a time in this process, no HTTP.
Writes benchmarks/results/bench_server.json.

The clients run on the same cores as the server (a 2-core machine has no other place for
them), so each row's texts/s is the server's under that load, for every mode alike.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from keras_seq.contracts import ExportDirectory

MODES = {  # serve flags
    "before": ["--no-batching", "--intra-op-threads", "0"],  # the server before batching: ORT on every core
    "off": ["--no-batching"],  # one ORT thread per call, requests side by side
    "batch_0us": ["--batching", "--batch-timeout-micros", "0"],  # the default
    "batch_2000us": ["--batching", "--batch-timeout-micros", "2000"],
}
CLIENTS = (1, 8, 64)
CELL = (
    "{texts_per_s:7.1f} texts/s  p50 {p50_ms:7.1f} ms  p99 {p99_ms:7.1f} ms  "
    "cpu {server_cpu_ms_per_text:5.2f} ms/text  errors {errors}"
)
COLUMNS = {  # title: (row key, width)
    "mode": ("mode", 13),
    "clients": ("clients", 7),
    "texts/s": ("texts_per_s", 8),
    "p50 ms": ("p50_ms", 7),
    "p99 ms": ("p99_ms", 7),
    "cpu ms": ("server_cpu_ms_per_text", 6),
    "vs off": ("throughput_vs_off", 7),
    "p50-off": ("p50_minus_off_ms", 8),
    "vs before": ("throughput_vs_before", 9),
    "vs limit": ("throughput_vs_limit", 8),
    "errors": ("errors", 6),
}


def texts_for(export_dir: str, data: Path) -> list[str]:
    """Real test texts for the export's task: IMDB reviews (every 25th) or EWT sentences."""
    from keras_seq.pipelines.readers import open_corpus

    task = ExportDirectory(export_dir).info()["task"]
    if task == "classify":
        examples = list(open_corpus(str(data / "imdb" / "aclImdb_v1.tar.gz"), "classify").examples("test"))[::25]
    else:
        examples = list(open_corpus(str(data / "ud_english_ewt"), "tag").examples("test"))
    texts = [text if isinstance(text, str) else " ".join(text) for text, _ in examples]
    random.Random(0).shuffle(texts)
    return texts


def limit(export_dir: str, texts: list[str], seconds: float) -> float:
    """Texts/s of ONNX Runtime through `OnnxPredictor` at batch 64, no server."""
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(export_dir)
    predictor.predict(texts[:64])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = [texts[(done + k) % len(texts)] for k in range(64)]
        predictor.predict(batch)
        done += 64
    return done / (time.perf_counter() - start)


def start_server(export_dir: str, flags: list[str]) -> tuple[subprocess.Popen, int, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_seq.cli", "serve", export_dir, "--port", str(port), "--poll-seconds", "0"]
        + flags,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    name = ExportDirectory(export_dir).info()["name"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", f"/v1/models/{name}")
            if connection.getresponse().status == 200:
                return server, port, name
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError(f"the server for {export_dir} did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(port: int, name: str, texts: list[str], clients: int, seconds: float, pid: int) -> dict:
    """`clients` threads, each one connection, one text per request, for `seconds` after 1 s
    warm-up; with the server's CPU time per request over the measured seconds."""
    path = f"/v1/models/{name}:predict"
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    began = time.perf_counter()
    measure_from, stop_at = began + 1.0, began + 1.0 + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = index * 7919
        while (now := time.perf_counter()) < stop_at:
            body = json.dumps({"instances": [texts[i % len(texts)]]})
            i += 1
            try:
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                reply = response.read()
                problem = None if response.status == 200 else f"HTTP {response.status}: {reply[:100]!r}"
            except OSError as error:  # counted, not hidden
                problem = f"{type(error).__name__}: {error}"
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if now >= measure_from:
                with lock:
                    latencies.append(time.perf_counter() - now)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_from = cpu_seconds(pid)
    time.sleep(max(0.0, stop_at - time.perf_counter()))
    cpu_used = cpu_seconds(pid) - cpu_from
    for t in threads:
        t.join()
    ordered = sorted(latencies)
    return {
        "texts_per_s": len(ordered) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "server_cpu_ms_per_text": 1000 * cpu_used / max(1, len(ordered)),
        "requests": len(ordered),
        "errors": len(errors),
        "first_errors": errors[:2],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export_dirs", nargs="+")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = parser.parse_args()

    from keras_seq.pipelines.precision import machine_summary

    report: dict = {"machine": machine_summary(), "seconds_per_cell": args.seconds, "rounds": args.rounds}
    for export_dir in args.export_dirs:
        name = ExportDirectory(export_dir).info()["name"]
        texts = texts_for(export_dir, Path(args.data))
        runs: dict = {mode: {c: [] for c in CLIENTS} for mode in args.modes}
        limits = []
        for round_index in range(args.rounds):
            limits.append(limit(export_dir, texts, args.seconds))
            shift = round_index % len(args.modes)
            for mode in args.modes[shift:] + args.modes[:shift]:
                server, port, served = start_server(export_dir, MODES[mode])
                try:
                    for clients in CLIENTS:
                        cell = load(port, served, texts, clients, args.seconds, server.pid)
                        runs[mode][clients].append(cell)
                        print(f"{name} round {round_index + 1} {mode:>13} {clients:>2} clients: " + CELL.format(**cell),
                              file=sys.stderr)  # fmt: skip
                finally:
                    server.terminate()
                    server.wait(timeout=60)
        reference = statistics.median(limits)
        table = []
        for mode in args.modes:
            for clients in CLIENTS:
                cells = runs[mode][clients]
                row = {
                    "mode": mode,
                    "clients": clients,
                    **{
                        k: round(statistics.median(c[k] for c in cells), 1)
                        for k in ("texts_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_text")
                    },
                    "errors": sum(c["errors"] for c in cells),
                    "first_errors": [e for c in cells for e in c["first_errors"]][:2],
                }
                off = runs["off"][clients] if "off" in runs else None
                if off:
                    row["throughput_vs_off"] = round(
                        row["texts_per_s"] / statistics.median(c["texts_per_s"] for c in off), 3
                    )
                    row["p50_minus_off_ms"] = round(row["p50_ms"] - statistics.median(c["p50_ms"] for c in off), 2)
                before = runs["before"][clients] if "before" in runs else None
                if before:
                    row["throughput_vs_before"] = round(
                        row["texts_per_s"] / statistics.median(c["texts_per_s"] for c in before), 3
                    )
                row["throughput_vs_limit"] = round(row["texts_per_s"] / reference, 3)
                table.append(row)
        report[name] = {"texts": len(texts), "limit_texts_per_s_batch64": round(reference, 1), "rows": table}
        print(f"\n{name}: ONNX Runtime alone at batch 64: {reference:.1f} texts/s ({len(texts)} texts)")
        print("  ".join(f"{title:>{width}}" for title, (_, width) in COLUMNS.items()))
        for row in table:
            print("  ".join(f"{row.get(key, ''):>{width}}" for key, width in COLUMNS.values()))
    out = Path(__file__).parent / "results" / "bench_server.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
