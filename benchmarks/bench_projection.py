"""Hoisted against per-step input projection, and both against Keras' built-in layers, over the
matrix of issue #13: Elman / GRU / LSTM, one direction and both, masked and not, three shapes,
on the backend Keras runs (KERAS_BACKEND=tensorflow | jax).

    python -m benchmarks.bench_projection [--shapes 64x100x128x256,32x200x256x512,16x50x64x128]
                                          [--cells elman,gru,lstm] [--rounds 6] [--control] [--out FILE]

Model: Input (B, T, D) [-> Masking, right-padded, lengths drawn from T/4..T] -> layer (H units,
or Bidirectional of it) -> Dense(1); Adam, MSE, ``train_on_batch`` (no XLA on TF: the training
default; JAX always compiles). Training tokens/s counts B x T per step; inference is the latency
of ``predict_on_batch`` at batch 1 and at B. For each case the three models (ours with
``projection="hoisted"``, ours with ``"per_step"``, Keras') are timed in alternating rounds,
`--rounds` rounds of one step each, each model leading in turn, and the median is kept, so drift
on a shared machine and the cost of going first hit all three alike. Ratios are ours / Keras'
(tokens/s: higher is better; latency: Keras' / ours, so higher is better too).

The last table is what ``projection="auto"`` should pick per cell on this backend, in training
(the higher geometric mean of tokens/s over the cases), answering one row (of 1 / latency at batch
1) and answering a batch (at B): `keras_seq.projection.AUTO_PROJECTION`. Then what
``projection="auto"`` as shipped runs in every cell, against Keras' layer (`auto_summary`), and with
``--control`` the same ratio for a second Keras model identical to the first, timed in the same
rotation: how far apart noise alone puts two equal models in this run. ``--from FILE`` prints both
for an earlier run's JSON without measuring (on the backend it was measured on).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402
from keras_seq.pipelines.precision import machine_summary  # noqa: E402

PAIRS = {
    "elman": (keras_seq.Elman, keras.layers.SimpleRNN),
    "gru": (keras_seq.GRU, keras.layers.GRU),
    "lstm": (keras_seq.LSTM, keras.layers.LSTM),
}
CONTROL = "keras_again"  # --control: a second, identical Keras model: the run's own A/A noise floor
MODES = ("training", "inference", "inference_batched")  # AUTO_PROJECTION's


def _model(layer, shape, masked: bool, bidirectional: bool) -> keras.Model:
    _, steps, features, _ = shape
    inputs = keras.Input((steps, features))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    x = keras.layers.Bidirectional(layer)(x) if bidirectional else layer(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile(optimizer="adam", loss="mse", jit_compile=keras.backend.backend() == "jax")
    return model


def _batch(shape, masked: bool, rng: np.random.Generator):
    batch, steps, features, _ = shape
    x = rng.normal(size=(batch, steps, features)).astype("float32")
    if masked:  # right-padded, varied lengths (no row empty)
        lengths = rng.integers(max(1, steps // 4), steps + 1, size=batch)
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    return x, rng.normal(size=(batch, 1)).astype("float32")


def rotated(models: dict, round_index: int) -> list:
    """The models' (name, model) pairs, starting at `round_index` (mod their number). The first
    model timed in a round ran up to 19 % slower than an identical one timed next (16x50x64x128,
    the first bench_chain run; benchmarks/README.md), so every model leads a round in turn."""
    items = list(models.items())
    start = round_index % len(items)
    return items[start:] + items[:start]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_case(cell: str, shape, masked: bool, bidirectional: bool, rounds: int, control: bool = False) -> dict:
    ours_cls, keras_cls = PAIRS[cell]
    units = shape[3]
    rng = np.random.default_rng(0)
    x, y = _batch(shape, masked, rng)
    one = x[:1]
    models = {
        "hoisted": _model(ours_cls(units, projection="hoisted"), shape, masked, bidirectional),
        "per_step": _model(ours_cls(units, projection="per_step"), shape, masked, bidirectional),
        "keras": _model(keras_cls(units), shape, masked, bidirectional),
    }
    if control:
        models[CONTROL] = _model(keras_cls(units), shape, masked, bidirectional)
    variants = list(models)
    weights = models["keras"].get_weights()
    for model in models.values():
        model.set_weights(weights)  # the same layout: the same arithmetic
        for _ in range(2):  # warm-up: tracing / compiling
            model.train_on_batch(x, y), model.predict_on_batch(x), model.predict_on_batch(one)
    train = {v: [] for v in variants}
    latency_b = {v: [] for v in variants}
    latency_1 = {v: [] for v in variants}
    for round_index in range(rounds):
        for name, model in rotated(models, round_index):
            train[name].append(_seconds(lambda: model.train_on_batch(x, y)))
            latency_b[name].append(_seconds(lambda: model.predict_on_batch(x)))
            latency_1[name].append(_seconds(lambda: model.predict_on_batch(one)))
    batch, steps = shape[0], shape[1]
    result = {
        v: {
            "train_tokens_per_s": round(batch * steps / statistics.median(train[v]), 1),
            "latency_batch1_ms": round(1e3 * statistics.median(latency_1[v]), 3),
            f"latency_batch{batch}_ms": round(1e3 * statistics.median(latency_b[v]), 3),
        }
        for v in variants
    }
    for v in (name for name in variants if name != "keras"):
        result[v]["vs_keras"] = {
            "train": round(result[v]["train_tokens_per_s"] / result["keras"]["train_tokens_per_s"], 3),
            "latency_batch1": round(result["keras"]["latency_batch1_ms"] / result[v]["latency_batch1_ms"], 3),
            f"latency_batch{batch}": round(
                result["keras"][f"latency_batch{batch}_ms"] / result[v][f"latency_batch{batch}_ms"], 3
            ),
        }
    return result


def _geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def choose(cases: list[dict]) -> dict:
    """Per cell and mode (`keras_seq.projection.AUTO_PROJECTION`'s: training tokens/s; "inference",
    1 / latency at batch 1; "inference_batched", 1 / latency at batch B), the geometric mean over
    its cases of per-step / hoisted speed, and the pick."""
    picks = {}
    for cell in sorted({c["cell"] for c in cases}):
        mine = [c for c in cases if c["cell"] == cell]

        def speedup(key: str, c: dict) -> float:  # per-step / hoisted, higher: per-step faster
            h, p = c["result"]["hoisted"][key], c["result"]["per_step"][key]
            return p / h if key.endswith("_per_s") else h / p

        ratios = {
            "training": [speedup("train_tokens_per_s", c) for c in mine],
            "inference": [speedup("latency_batch1_ms", c) for c in mine],
            "inference_batched": [speedup(f"latency_batch{c['shape']['B']}_ms", c) for c in mine],
        }
        picks[cell] = {}
        for mode, values in ratios.items():
            mean = _geometric_mean(values)
            picks[cell][mode] = {
                "per_step_over_hoisted": round(mean, 3),
                "pick": "per_step" if mean > 1.0 else "hoisted",
            }
    return picks


def _ratio_key(mode: str, case: dict) -> str:
    """The `vs_keras` entry of a case that measures `mode`."""
    return {"training": "train", "inference": "latency_batch1"}.get(mode, f"latency_batch{case['shape']['B']}")


def auto_summary(cases: list[dict]) -> dict:
    """What ``projection="auto"`` runs in each case -- keras_seq's own pick (`projection_form`, on
    the running backend, for a layer of the case's shape) -- against Keras' layer: how many of the
    cells (case x mode) reach 1.0x, 0.85-1.0x, less, their geometric mean and the cells under 1.0x.
    With a --control run, the same for the second Keras model: the spread noise alone gives."""
    auto, control, below = [], [], []
    for case in cases:
        shape = case["shape"]
        layer = PAIRS[case["cell"]][0](shape["H"])
        layer.build((None, shape["T"], shape["D"]))
        for mode in MODES:
            key = _ratio_key(mode, case)
            form = layer.projection_form(mode == "training", 1 if mode == "inference" else shape["B"])
            ratio = case["result"][form]["vs_keras"][key]
            auto.append(ratio)
            if CONTROL in case["result"]:
                control.append(case["result"][CONTROL]["vs_keras"][key])
            if ratio < 1.0:
                below.append(
                    {
                        "cell": case["cell"],
                        "bidirectional": case["bidirectional"],
                        "masked": case["masked"],
                        "shape": shape,
                        "mode": mode,
                        "form": form,
                        "ratio": ratio,
                    }
                )

    def counts(values: list[float]) -> dict:
        return {
            "cells": len(values),
            "at_least_1": sum(v >= 1.0 for v in values),
            "from_0.85_to_1": sum(0.85 <= v < 1.0 for v in values),
            "under_0.85": sum(v < 0.85 for v in values),
            "geometric_mean": round(_geometric_mean(values), 3),
            "min": min(values),
            "max": max(values),
        }

    summary = {"auto_vs_keras": counts(auto), "below_1": sorted(below, key=lambda b: b["ratio"])}
    if control:
        summary["keras_again_vs_keras"] = counts(control)
    return summary


def _print_summary(summary: dict) -> None:
    print("\nprojection='auto' against Keras' layer, every cell (case x training / batch 1 / batch B):")
    for name, row in summary.items():
        if name != "below_1":
            print(
                f"  {name:21} {row['at_least_1']:3} >= 1.0x, {row['from_0.85_to_1']:3} in 0.85-1.0x, "
                f"{row['under_0.85']:3} < 0.85x of {row['cells']}; geometric mean {row['geometric_mean']:.3f}, "
                f"range {row['min']:.2f}-{row['max']:.2f}"
            )


def add_matrix_arguments(p: argparse.ArgumentParser) -> None:
    """The case matrix of issue #13: --shapes, --cells, --masks, --rounds."""
    p.add_argument("--shapes", default="64x100x128x256,32x200x256x512,16x50x64x128", help="BxTxDxH,...")
    p.add_argument("--cells", default="elman,gru,lstm")
    p.add_argument("--masks", default="off,on")
    p.add_argument("--rounds", type=int, default=6)


def matrix(args: argparse.Namespace, directions: str = "uni"):
    """(shape (B, T, D, H), cell, "uni" | "bi", "off" | "on") for every case the arguments name."""
    for shape in [tuple(int(n) for n in text.split("x")) for text in args.shapes.split(",")]:
        for cell in args.cells.split(","):
            for direction in directions.split(","):
                for mask in args.masks.split(","):
                    yield shape, cell, direction, mask


def _print_picks(picks: dict) -> None:
    print("\nprojection='auto' on this backend (geometric mean of per-step / hoisted speed):")
    for cell, modes in picks.items():
        print(
            "  "
            + f"{cell:6} "
            + "; ".join(f"{mode} {p['per_step_over_hoisted']:.3f} -> {p['pick']}" for mode, p in modes.items())
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_matrix_arguments(p)
    p.add_argument("--directions", default="uni,bi")
    p.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/bench_projection-BACKEND.json)")
    p.add_argument(
        "--control",
        action="store_true",
        help="time a second, identical Keras model too (the A/A noise floor of the run)",
    )
    p.add_argument("--from", dest="from_file", default=None, help="print the picks of this JSON; measure nothing")
    args = p.parse_args(argv)
    backend = keras.backend.backend()
    if args.from_file:
        earlier = json.loads(Path(args.from_file).read_text())
        _print_picks(choose(earlier["cases"]))
        if earlier["backend"] != backend:
            p.error(
                f"--from {args.from_file}: measured on {earlier['backend']}; run with KERAS_BACKEND="
                f"{earlier['backend']} to see what projection='auto' picks there"
            )
        _print_summary(auto_summary(earlier["cases"]))
        return
    out = Path(args.out or Path(__file__).parent / "results" / f"bench_projection-{backend}.json")
    print(
        f"backend {backend}, keras {keras.__version__}; median of {args.rounds} alternating rounds; "
        f"ratios ours / Keras (higher is better)",
        file=sys.stderr,
    )
    print(
        f"{'cell':6} {'dir':3} {'mask':4} {'B x T x D x H':16} {'keras tok/s':>11} {'hoisted':>8} {'per-step':>8} "
        f"{'lat1 h/p':>11} {'latB h/p':>11}"
    )
    cases = []
    for shape, cell, direction, mask in matrix(args, args.directions):
        result = measure_case(cell, shape, mask == "on", direction == "bi", args.rounds, args.control)
        cases.append(
            {
                "cell": cell,
                "bidirectional": direction == "bi",
                "masked": mask == "on",
                "shape": dict(zip("BTDH", shape)),
                "result": result,
            }
        )
        h, s = result["hoisted"]["vs_keras"], result["per_step"]["vs_keras"]
        lat_b = f"latency_batch{shape[0]}"
        print(
            f"{cell:6} {direction:3} {mask:4} {'x'.join(map(str, shape)):16} "
            f"{result['keras']['train_tokens_per_s']:11.0f} {h['train']:7.2f}x {s['train']:7.2f}x "
            f"{h['latency_batch1']:5.2f}/{s['latency_batch1']:<5.2f} {h[lat_b]:5.2f}/{s[lat_b]:<5.2f}",
            flush=True,
        )
    picks, summary = choose(cases), auto_summary(cases)
    _print_picks(picks)
    _print_summary(summary)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": machine_summary(),
                "backend": backend,
                "keras": keras.__version__,
                "rounds": args.rounds,
                "cases": cases,
                "auto": picks,
                "auto_vs_keras": summary,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
