"""Load on the local server: N concurrent clients x M requests of real IMDB reviews.

    python -m benchmarks.bench_server EXPORT_DIR [--clients 8] [--requests 50] [--batch 1]

Starts `keras-seq serve EXPORT_DIR` on a free loopback port, sends the requests through
`serving.client.RestClient` from N threads, prints requests/s, texts/s, p50/p99 latency and the
error count, and writes benchmarks/results/bench_server.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from keras_seq.contracts import ExportDirectory  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export_dir")
    parser.add_argument("--reviews", default="../shared/data/imdb/aclImdb_v1.tar.gz")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--batch", type=int, default=1, help="reviews per request")
    args = parser.parse_args()

    from keras_seq.pipelines.readers import open_corpus
    from keras_seq.serving.client import RestClient, ServingError

    reviews = [text for text, _ in list(open_corpus(args.reviews, "classify").examples("test"))[::50]]
    name = ExportDirectory(args.export_dir).info()["name"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_seq.cli", "serve", args.export_dir, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if RestClient(url, name, retries=0, timeout=2).status().get("ready"):
                    break
            except ServingError:
                time.sleep(0.5)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(index: int) -> None:
            rest = RestClient(url, name, timeout=60)
            for j in range(args.requests):
                start = (index * args.requests + j) * args.batch
                texts = [reviews[(start + k) % len(reviews)] for k in range(args.batch)]
                began = time.perf_counter()
                try:
                    answers = rest.predict(texts)
                    ok = len(answers) == len(texts)
                    problem = None if ok else f"{len(answers)} answers for {len(texts)} texts"
                except Exception as error:  # counted, not hidden
                    problem = f"{type(error).__name__}: {error}"
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        errors.append(problem)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(timeout=30)
    ordered = sorted(latencies)
    result = {
        "clients": args.clients,
        "requests": len(latencies),
        "texts_per_request": args.batch,
        "requests_per_s": round(len(latencies) / wall, 1),
        "texts_per_s": round(len(latencies) * args.batch / wall, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": round(wall, 1),
    }
    print(json.dumps(result, indent=2))
    (Path(__file__).parent / "results" / "bench_server.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
