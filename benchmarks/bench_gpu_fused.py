"""The fused-kernel path of our LSTM / GRU on a GPU (issue #13, item 2): does it run, does
it agree with our loop, and how fast is it against Keras' built-in layers, which call the
same backend kernel? One process per backend:

    python -m benchmarks.bench_gpu_fused [--backends torch,jax] [--shape 64,100,128,256] [--out FILE]

Per backend, cell (LSTM, GRU) and direction (one, Bidirectional):
* ``fused``: whether the layer with use_cudnn="auto" ran the backend's fused kernel
  (counted by wrapping `keras_seq._keras_compat.fused_lstm / fused_gru`);
  ``forced_fused_tokens_per_s``: use_cudnn=True, where "auto" chose the loop (JAX);
* ``parity``: max |ours(auto) - ours(loop)| and |ours(auto) - Keras|, forward, with full
  float32 matmuls (TF32 off), and the same after one SGD step from equal weights (so the
  gradients agree too); a right-padded mask too, where the backend falls back to the loop;
* ``tokens/s`` of `model.fit` (Sequential: layer -> Dense(1), MSE, SGD) for ours(auto),
  Keras' built-in and ours(loop): after a warm-up epoch, 5 alternating rounds of 3 epochs,
  the median of each, and the ratio ours / Keras; default precision (the backend's own
  TF32 choices).

No timing here is asserted anywhere; the numbers go to the note and benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _layers(keras, keras_seq, cell: str, bidirectional: bool, units: int, use_cudnn):
    ours = {"lstm": keras_seq.LSTM, "gru": keras_seq.GRU}[cell](units, use_cudnn=use_cudnn)
    return keras.layers.Bidirectional(ours) if bidirectional else ours


def _builtin(keras, cell: str, bidirectional: bool, units: int):
    theirs = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell](units)
    return keras.layers.Bidirectional(theirs) if bidirectional else theirs


def worker(shape: tuple[int, int, int, int]) -> dict:
    import keras
    import numpy as np

    import keras_seq
    from keras_seq import _keras_compat as compat

    backend = keras.backend.backend()
    calls = {"lstm": 0, "gru": 0}
    for name in ("lstm", "gru"):
        original = getattr(compat, f"fused_{name}")

        def counted(*args, _original=original, _name=name, **kwargs):
            result = _original(*args, **kwargs)  # raises NotImplementedError where it cannot run
            calls[_name] += 1
            return result

        setattr(compat, f"fused_{name}", counted)

    def precise(on: bool) -> None:
        if backend == "torch":
            import torch

            torch.backends.cudnn.allow_tf32 = not on
            torch.backends.cuda.matmul.allow_tf32 = not on
        elif backend == "jax":
            import jax

            jax.config.update("jax_default_matmul_precision", "highest" if on else None)

    B, T, D, H = shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    lengths = rng.integers(T // 2, T + 1, size=B)
    mask = np.arange(T)[None, :] < lengths[:, None]
    data_x = rng.normal(size=(B * 10, T, D)).astype("float32")
    data_y = rng.normal(size=(B * 10, 1)).astype("float32")
    report = {"backend": backend, "shape": dict(zip("BTDH", shape)), "device": _device(backend), "cases": []}

    def model_of(layer):
        model = keras.Sequential([keras.Input((T, D)), layer, keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.01), "mse")
        return model

    for cell in ("lstm", "gru"):
        for bidirectional in (False, True):
            case = {"cell": cell, "bidirectional": bidirectional}
            precise(True)
            auto = _layers(keras, keras_seq, cell, bidirectional, H, "auto")
            loop = _layers(keras, keras_seq, cell, bidirectional, H, False)
            theirs = _builtin(keras, cell, bidirectional, H)
            reference = keras.ops.convert_to_numpy(theirs(x))
            auto(x), loop(x)
            auto.set_weights(theirs.get_weights()), loop.set_weights(theirs.get_weights())
            before = calls[cell]
            got = keras.ops.convert_to_numpy(auto(x))
            case["fused"] = calls[cell] > before
            case["max_diff_auto_vs_loop"] = float(np.abs(got - keras.ops.convert_to_numpy(loop(x))).max())
            case["max_diff_auto_vs_keras"] = float(np.abs(got - reference).max())
            before = calls[cell]
            masked = keras.ops.convert_to_numpy(auto(x, mask=mask))
            case["masked_fused"] = calls[cell] > before
            case["masked_max_diff_auto_vs_loop"] = float(
                np.abs(masked - keras.ops.convert_to_numpy(loop(x, mask=mask))).max()
            )
            models = [model_of(auto), model_of(loop)]
            models[1].set_weights(models[0].get_weights())
            stepped = []
            for model in models:
                model.fit(data_x[:B], data_y[:B], batch_size=B, epochs=1, verbose=0, shuffle=False)
                stepped.append(np.concatenate([w.ravel() for w in model.get_weights()]))
            case["max_diff_after_one_sgd_step"] = float(np.abs(stepped[0] - stepped[1]).max())

            precise(False)
            variants = [
                ("ours_auto", _layers(keras, keras_seq, cell, bidirectional, H, "auto")),
                ("keras", _builtin(keras, cell, bidirectional, H)),
                ("ours_loop", _layers(keras, keras_seq, cell, bidirectional, H, False)),
            ]
            if not case["fused"]:
                variants.append(("ours_forced_fused", _layers(keras, keras_seq, cell, bidirectional, H, True)))
            models = {}
            for label, layer in variants:
                models[label] = model_of(layer)
                try:
                    models[label].fit(data_x, data_y, batch_size=B, epochs=1, verbose=0)  # warm-up: compile, autotune
                except ValueError:  # use_cudnn=True where no fused kernel runs (a CPU)
                    del models[label]
            rounds = {label: [] for label in models}
            for _ in range(5):  # alternating rounds, the median of each: one GPU's timings drift
                for label, model in models.items():
                    start = time.perf_counter()
                    model.fit(data_x, data_y, batch_size=B, epochs=3, verbose=0)
                    rounds[label].append(3 * data_x.shape[0] * T / (time.perf_counter() - start))
            speeds = {label: float(np.median(values)) for label, values in rounds.items()}
            case["tokens_per_s"] = {k: round(v) for k, v in speeds.items()}
            case["ratio_ours_auto_vs_keras"] = round(speeds["ours_auto"] / speeds["keras"], 3)
            case["ratio_fused_vs_loop"] = round(speeds["ours_auto"] / speeds["ours_loop"], 2)
            report["cases"].append(case)
            print(json.dumps(case), file=sys.stderr, flush=True)
    return report


def _device(backend: str) -> str:
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import jax

    return str(jax.devices()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="torch,jax")
    parser.add_argument("--shape", default="64,100,128,256", help="B,T,D,H")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_gpu_fused.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    if args.worker:
        print(json.dumps(worker(shape)))
        return
    reports = []
    for backend in args.backends.split(","):
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        }
        # The worker's stderr passes through: each case's line shows as soon as it is measured.
        result = subprocess.run(
            [sys.executable, __file__, "--worker", "--shape", args.shape], env=env, stdout=subprocess.PIPE, text=True
        )
        if result.returncode != 0:
            reports.append({"backend": backend, "error": f"exit {result.returncode} (see stderr)"})
            continue
        reports.append(json.loads(result.stdout.strip().splitlines()[-1]))
    for report in reports:
        for case in report.get("cases", []):
            print(
                f"{report['backend']:6} {case['cell']:4} {'bi ' if case['bidirectional'] else 'uni'} "
                f"fused={case['fused']!s:5} diff(loop)={case['max_diff_auto_vs_loop']:.1e} "
                f"diff(keras)={case['max_diff_auto_vs_keras']:.1e} step={case['max_diff_after_one_sgd_step']:.1e} "
                f"masked fused={case['masked_fused']!s:5} diff={case['masked_max_diff_auto_vs_loop']:.1e} "
                f"ours/keras={case['ratio_ours_auto_vs_keras']} fused/loop={case['ratio_fused_vs_loop']} "
                f"{case['tokens_per_s']}"
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
