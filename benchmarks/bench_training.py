"""Training speed of the shipped configs: float32 against mixed_bfloat16, and length buckets
against length-sorted batches, in one run.

    python benchmarks/bench_training.py [--configs imdb_sentiment,ewt_upos,...] [--rounds 2]

Each variant trains the config's model on the first `--limit` examples of each split for
`--epochs` epochs (``keras-seq train ... --set data.limit=N``), the variants alternating, `--rounds`
times; the figure is seconds per epoch (``train_seconds`` / epochs run, validation included) and
each variant's speed relative to float32 with buckets (the reference, as the configs trained
before). Padding shares come from the same plans. Writes benchmarks/results/bench_training.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: --set overrides
    "float32, buckets": ['train.batching="buckets"'],
    "float32, sorted": ['train.batching="sorted"'],
    "bf16, sorted": ['train.batching="sorted"', 'train.mixed_precision="mixed_bfloat16"'],
}
LIMITS = {"imdb_sentiment": 4000, "ewt_upos": 4000, "conll2003_ner_crf": 4000, "g2p_cmudict": 20000}


def seconds_per_epoch(config: str, sets: list[str], out: Path) -> float:
    command = [sys.executable, "-m", "keras_seq.cli", "train", config, "--out", str(out), "--overwrite",
               "--verbose", "0", *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode:
        raise RuntimeError(f"{config} {sets}: {result.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics["train_seconds"] / metrics["epochs_run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(LIMITS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_training.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-training-"))
    results = {}
    for config in args.configs.split(","):
        base = [f"data.limit={LIMITS.get(config, 4000)}", f"train.epochs={args.epochs}", "train.patience=100",
                "train.max_minutes=60"]
        times = {name: [] for name in VARIANTS}
        for _ in range(args.rounds):
            for name, sets in VARIANTS.items():
                times[name].append(seconds_per_epoch(config, base + sets, root / config))
                print(f"{config:20s} {name:18s} {times[name][-1]:7.1f} s/epoch", file=sys.stderr)
        reference = statistics.median(times["float32, buckets"])
        results[config] = {name: {"seconds_per_epoch": round(statistics.median(t), 2),
                                  "speed_vs_float32_buckets": round(reference / statistics.median(t), 3),
                                  "all": [round(x, 2) for x in t]} for name, t in times.items()}
        results[config]["limit"] = LIMITS.get(config, 4000)
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "epochs": args.epochs, "rounds": args.rounds,
           "configs": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
