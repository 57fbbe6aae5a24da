"""Training speed of the shipped configs: float32 against mixed_bfloat16, length buckets against
length-sorted batches, and this package's recurrent layers against Keras' built-ins in the same
pipeline, in one run; for the encoder-decoder, its decoder with and without input feeding.

    python -m benchmarks.bench_training [--configs imdb_sentiment,ewt_upos,...] [--rounds 2]

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
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from keras_seq.pipelines.precision import machine_summary

REPO = Path(__file__).resolve().parents[1]
F32 = 'train.mixed_precision="float32"'  # explicit: a config may say "auto"
VARIANTS = {  # name: (--set overrides, the model's recurrent layers)
    "float32, buckets": (['train.batching="buckets"', F32], "keras_seq"),
    "float32, sorted": (['train.batching="sorted"', F32], "keras_seq"),
    "bf16, sorted": (['train.batching="sorted"', 'train.mixed_precision="mixed_bfloat16"'], "keras_seq"),
    # XLA (model.compile(jit_compile=True)): one compilation per batch shape, so its first epoch pays for them
    "float32, sorted, XLA": (['train.batching="sorted"', F32, "train.jit_compile=true"], "keras_seq"),
    "bf16, sorted, XLA": (
        ['train.batching="sorted"', 'train.mixed_precision="mixed_bfloat16"', "train.jit_compile=true"],
        "keras_seq",
    ),
    # The same model and pipeline with Keras' built-in SimpleRNN / GRU / LSTM in the recurrent stack
    # (classifier and tagger stacks: `keras_seq.models.CELLS`; same weights layout, same defaults).
    "float32, sorted, Keras layers": (['train.batching="sorted"', F32], "keras"),
    # The encoder-decoder's decoder without input feeding: the bare cell in the loop, attention after it
    "float32, buckets, no input feeding": (['train.batching="buckets"', F32, "model.input_feeding=false"], "keras_seq"),
}
KERAS_LAYERS = (
    "import sys, keras, keras_seq.models as m; m.CELLS = {'elman': keras.layers.SimpleRNN, "
    "'gru': keras.layers.GRU, 'lstm': keras.layers.LSTM}; from keras_seq.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)
OPT_IN = ("float32, sorted, XLA", "bf16, sorted, XLA")  # run only when --variants names them
LIMITS = {"imdb_sentiment": 4000, "ewt_upos": 4000, "conll2003_ner_crf": 4000, "g2p_cmudict": 20000}
KERAS_LESS = ("g2p_cmudict",)  # the encoder-decoder's decoder needs this package's cells
SEQ2SEQ = ("g2p_cmudict",)
SEQ2SEQ_ONLY = ("float32, buckets, no input feeding",)


def seconds_per_epoch(config: str, sets: list[str], out: Path, layers: str = "keras_seq") -> float:
    start = [sys.executable, "-m", "keras_seq.cli"] if layers == "keras_seq" else [sys.executable, "-c", KERAS_LAYERS]
    command = [
        *start,
        "train",
        config,
        "--out",
        str(out),
        "--overwrite",
        "--progress",
        "0",
        *[a for s in sets for a in ("--set", s)],
    ]
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
    parser.add_argument(
        "--variants",
        default=";".join(v for v in VARIANTS if v not in OPT_IN),
        help="a semicolon-separated subset of: " + "; ".join(VARIANTS),
    )
    parser.add_argument("--limit", type=int, default=None, help="examples per split (default: per config)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_training.json"))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.variants.split(";")]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or "float32, buckets" not in chosen:
        parser.error(
            f"--variants: unknown {unknown}; choose from {list(VARIANTS)}"
            if unknown
            else "--variants must include 'float32, buckets' (the reference of every ratio)"
        )
    root = Path(tempfile.mkdtemp(prefix="bench-training-"))
    results = {}
    for config in args.configs.split(","):
        limit = args.limit or LIMITS.get(config, 4000)
        base = [f"data.limit={limit}", f"train.epochs={args.epochs}", "train.patience=100", "train.max_minutes=60"]
        variants = {
            k: v
            for k, v in VARIANTS.items()
            if k in chosen
            and (v[1] == "keras_seq" or config not in KERAS_LESS)
            and (k not in SEQ2SEQ_ONLY or config in SEQ2SEQ)
        }
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (sets, layers) in variants.items():
                times[name].append(seconds_per_epoch(config, base + sets, root / config, layers))
                print(f"{config:20s} {name:18s} {times[name][-1]:7.1f} s/epoch", file=sys.stderr)
        reference = statistics.median(times["float32, buckets"])
        results[config] = {
            name: {
                "seconds_per_epoch": round(statistics.median(t), 2),
                "speed_vs_float32_buckets": round(reference / statistics.median(t), 3),
                "all": [round(x, 2) for x in t],
            }
            for name, t in times.items()
        }
        results[config]["limit"] = limit
    out = {"machine": machine_summary(), "epochs": args.epochs, "rounds": args.rounds, "configs": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
