"""One worker against two, and what the all-reduce costs against a step's compute.

    python -m benchmarks.bench_distributed [--rounds 3] [--out benchmarks/results/bench_distributed.json]

1. Throughput: the demo config on a generated corpus, trained by one process and by two
   MultiWorkerMirroredStrategy workers on loopback (``keras-seq train --strategy multi_worker``),
   alternating, `--rounds` times each; examples per second of training (``train_seconds`` of
   metrics.json, every epoch with its validation). On one 2-core machine two workers share the
   cores, so this shows the overhead, not a speed-up.
2. Communication: two workers time the all-reduce of the IMDB and Shakespeare models' gradients
   (`strategy.extended.batch_reduce_to`, what Keras' optimizer calls), dense parts and the
   embedding's sparse gradient (an all-gather of one batch's rows) apart; one process times a
   training step of each model at its config's batch. Median of repeats.
3. The estimate for N workers on a 10 Gb/s network, on paper: a ring all-reduce of S bytes moves
   2 (N-1)/N S per worker, an all-gather of the sparse rows (N-1)/N of them, plus 2 (N-1) hops of
   latency alpha (50 us assumed):  t_comm(N) = 2 (N-1)/N * S_dense / BW + (N-1)/N * S_sparse / BW
   + 2 (N-1) alpha. Strong scaling (the global batch fixed): t(N) = t_step / N + t_comm(N),
   speed-up t_step / t(N). Weak scaling (each worker keeps the batch): efficiency
   t_step / (t_step + t_comm(N)).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keras_seq.pipelines.precision import machine_summary

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "pipelines" / "configs" / "demo.toml"
BANDWIDTH = 10e9 / 8  # 10 Gb/s in bytes/s
HOP_LATENCY = 50e-6


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster(n: int) -> list[str]:
    return [f"127.0.0.1:{_port()}" for _ in range(n)]


def _env(tf_config: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def train(corpus: Path, out: Path, workers: int, epochs: int) -> float:
    """Training examples per second of one run."""
    command = [
        sys.executable,
        "-m",
        "keras_seq.cli",
        "train",
        str(DEMO),
        "--set",
        f'data.source="{corpus}"',
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "train.patience=100",
        "--out",
        str(out),
        "--overwrite",
        "--progress",
        "0",
    ]
    if workers == 1:
        subprocess.run(command, env=_env(), check=True, capture_output=True, timeout=900)
    else:
        cluster = _cluster(workers)
        processes = [
            subprocess.Popen(
                command + ["--strategy", "multi_worker"],
                env=_env({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(workers)
        ]
        for p in processes:
            _, err = p.communicate(timeout=900)
            if p.returncode:
                raise RuntimeError(err.decode()[-2000:])
    metrics = json.loads((out / "metrics.json").read_text())
    examples = sum(1 for _ in (corpus / "train.jsonl").open())
    return examples * metrics["epochs_run"] / metrics["train_seconds"]


# -- the programs the benchmark runs in worker processes ---------------------------------
MODELS = {
    # name: (builder keyword arguments, batch (B, T), sparse rows per step)
    "imdb_sentiment": (
        "classifier",
        dict(
            vocab_size=30000,
            num_classes=2,
            cell="gru",
            embed_dim=128,
            units=96,
            bidirectional=True,
            pooling="max",
            dropout=0.3,
        ),
        (20, 400),
    ),
    "shakespeare_char": (
        "lm",
        dict(vocab_size=65, units=512, embed_dim=64, depth=2, dropout=0.2, batch_size=64, stateful=True),
        (64, 100),
    ),
}


def _build(name: str):
    import keras_seq

    kind, kwargs, _ = MODELS[name]
    return keras_seq.build_classifier(**kwargs) if kind == "classifier" else keras_seq.build_language_model(**kwargs)


def comm_worker() -> None:
    """In each of two MultiWorkerMirroredStrategy workers: all-reduce / all-gather times, JSON on stdout."""
    import numpy as np
    import tensorflow as tf

    from keras_seq.pipelines.distribute import make_strategy

    strategy = make_strategy("multi_worker")
    results = {}
    for name in MODELS:
        with strategy.scope():
            model = _build(name)
        variables = model.trainable_variables
        embedding = [v for v in variables if "embedding" in v.path]
        dense = [v for v in variables if not any(v is e for e in embedding)]
        (rows, length) = MODELS[name][2]
        tokens = rows * length

        @tf.function
        def reduce_dense():
            grads = strategy.run(lambda: [tf.ones_like(v) for v in dense])
            return strategy.extended.batch_reduce_to(
                tf.distribute.ReduceOp.SUM, [(g, v.value) for g, v in zip(grads, dense)]
            )

        @tf.function
        def gather_sparse():
            def one():
                e = embedding[0]
                return tf.IndexedSlices(
                    tf.ones([tokens // 2, e.shape[1]]),
                    tf.range(tokens // 2),
                    dense_shape=tf.shape(e, out_type=tf.int32),
                )

            grads = strategy.run(one)
            return strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.SUM, [(grads, embedding[0].value)])

        timings = {}
        for label, fn in (("dense_all_reduce_s", reduce_dense), ("sparse_all_gather_s", gather_sparse)):
            fn()  # trace and warm up
            times = []
            for _ in range(15):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            timings[label] = statistics.median(times)
        timings["dense_bytes"] = int(sum(np.prod(v.shape) for v in dense) * 4)
        timings["sparse_bytes_per_step"] = int(tokens * embedding[0].shape[1] * 4)  # every token's row, all workers
        timings["parameters"] = int(sum(np.prod(v.shape) for v in variables))
        results[name] = timings
    print(json.dumps(results))


def step_time() -> dict:
    """One process: seconds per training step of each model at its config's batch (median of 10)."""
    import numpy as np

    out = {}
    for name in MODELS:
        model = _build(name)
        kind, kwargs, (rows, length) = MODELS[name]
        rng = np.random.default_rng(0)
        ids = rng.integers(1, kwargs["vocab_size"], (rows, length)).astype("int32")
        y = rng.integers(0, 2, rows) if kind == "classifier" else rng.integers(1, kwargs["vocab_size"], (rows, length))
        model.compile(
            "adam",
            "sparse_categorical_crossentropy"
            if kind == "classifier"
            else __import__("keras").losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        for _ in range(2):
            model.train_on_batch(ids, y)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            model.train_on_batch(ids, y)
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def estimate(step: float, comm: dict, n: int) -> dict:
    t_comm = (
        2 * (n - 1) / n * comm["dense_bytes"] / BANDWIDTH
        + (n - 1) / n * comm["sparse_bytes_per_step"] / BANDWIDTH
        + 2 * (n - 1) * HOP_LATENCY
    )
    return {
        "workers": n,
        "comm_s": round(t_comm, 4),
        "strong_speedup": round(step / (step / n + t_comm), 2),
        "weak_efficiency": round(step / (step + t_comm), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--examples", type=int, default=6000)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_distributed.json"))
    parser.add_argument("--comm-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.comm_worker:
        return comm_worker()
    from keras_seq.pipelines.synthetic import write_corpus

    root = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    corpus = write_corpus(root / "data", {"train": args.examples, "dev": 500, "test": 500})
    speeds = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            speeds[workers].append(train(corpus, root / f"run{workers}", workers, args.epochs))
            print(f"{workers} worker(s): {speeds[workers][-1]:,.0f} examples/s", file=sys.stderr)
    one, two = statistics.median(speeds[1]), statistics.median(speeds[2])

    cluster = _cluster(2)
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--comm-worker"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}),
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in processes]
    if any(p.returncode for p in processes):
        raise RuntimeError(outputs[0][1].decode()[-3000:])
    comm = json.loads(outputs[0][0].decode().strip().splitlines()[-1])
    steps = step_time()
    models = {}
    for name in MODELS:
        c = comm[name]
        models[name] = {
            "parameters": c["parameters"],
            "step_s_one_process": round(steps[name], 4),
            "loopback_2_workers": {k: round(v, 5) if isinstance(v, float) else v for k, v in c.items()},
            "estimate_10gbps": [estimate(steps[name], c, n) for n in (2, 8, 32)],
        }
    result = {
        "machine": machine_summary(),
        "throughput_examples_per_s": {
            "1_worker": round(one, 1),
            "2_workers": round(two, 1),
            "ratio_2_over_1": round(two / one, 3),
            "rounds": args.rounds,
            "all": {str(k): [round(v, 1) for v in vs] for k, vs in speeds.items()},
        },
        "models": models,
        "bandwidth_bytes_per_s": BANDWIDTH,
        "hop_latency_s": HOP_LATENCY,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
