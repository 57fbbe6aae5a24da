"""Training speed of our Elman / GRU / LSTM layers against PyTorch's, at float32, on this CPU.

    python -m benchmarks.bench_torch_training [--torch-python PATH] [--rounds 3]

The harness of issue #34: a recurrent layer (B=64, T=100, D=128, H=256) → Dense(1) on the last
state, mean squared error, plain SGD, one training step at a time; tokens/s = B·T / median step
time. Variants, each in its own process (one backend per process), rounds rotating their order:

* ``torch``: ``nn.RNN / nn.GRU / nn.LSTM`` (PyTorch's fused CPU kernels), in the interpreter of
  `--torch-python` / $TORCH_PYTHON (PyTorch lives in its own environment);
* ``ours-tf``: `keras_seq.Elman / GRU / LSTM` on TensorFlow, ``jit_compile=False`` (Keras'
  default on a CPU-only machine) and ``ours-tf-xla`` (``jit_compile=True``, XLA);
* ``keras-tf``: Keras' own ``SimpleRNN / GRU / LSTM`` on TensorFlow, the reference we matched;
* ``ours-jax``: our layers on JAX (always compiled by XLA).

Every process gets the same thread budget (all cores of this machine). Prints tokens/s and the
ratio to PyTorch per cell; writes benchmarks/results/bench_torch_training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

B, T, D, H = 64, 100, 128, 256
CELLS = ("lstm", "gru", "elman")
STEPS = 15
VARIANTS = {  # name: (interpreter kind, environment)
    "torch": ("torch", {}),
    "ours-tf": ("keras", {"KERAS_BACKEND": "tensorflow", "BENCH_LAYERS": "ours", "BENCH_JIT": "0"}),
    "ours-tf-xla": ("keras", {"KERAS_BACKEND": "tensorflow", "BENCH_LAYERS": "ours", "BENCH_JIT": "1"}),
    "keras-tf": ("keras", {"KERAS_BACKEND": "tensorflow", "BENCH_LAYERS": "keras", "BENCH_JIT": "0"}),
    "ours-jax": ("keras", {"KERAS_BACKEND": "jax", "BENCH_LAYERS": "ours", "BENCH_JIT": "1"}),
}


def worker_torch() -> dict:
    import numpy as np
    import torch

    from benchmarks.timing import median_seconds

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(B, T, D)).astype("float32"))
    y = torch.from_numpy(rng.normal(size=(B, 1)).astype("float32"))
    out = {"version": torch.__version__}
    for cell in CELLS:
        rnn = {"elman": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](D, H, batch_first=True)
        head = torch.nn.Linear(H, 1)
        optimizer = torch.optim.SGD([*rnn.parameters(), *head.parameters()], lr=0.01)

        def step() -> None:
            optimizer.zero_grad()
            outputs, _ = rnn(x)
            loss = torch.nn.functional.mse_loss(head(outputs[:, -1]), y)
            loss.backward()
            optimizer.step()

        out[cell] = B * T / median_seconds(step, repeats=STEPS, warmup=3)
    return out


def worker_keras() -> dict:
    import keras
    import numpy as np

    import keras_seq
    from benchmarks.timing import median_seconds

    ours = os.environ["BENCH_LAYERS"] == "ours"
    layers = (
        {"elman": keras_seq.Elman, "gru": keras_seq.GRU, "lstm": keras_seq.LSTM}
        if ours
        else {"elman": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, 1)).astype("float32")
    out = {"version": f"keras {keras.__version__}, {keras.backend.backend()}"}
    for cell in CELLS:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((T, D))
        model = keras.Model(inputs, keras.layers.Dense(1)(layers[cell](H)(inputs)))
        model.compile(keras.optimizers.SGD(0.01), "mse", jit_compile=os.environ["BENCH_JIT"] == "1")
        out[cell] = B * T / median_seconds(lambda: model.train_on_batch(x, y), repeats=STEPS, warmup=3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["torch", "keras"], help=argparse.SUPPRESS)
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker_torch() if args.worker == "torch" else worker_keras()))
        return
    if "torch" in args.variants and not args.torch_python:
        raise SystemExit("give --torch-python (or set TORCH_PYTHON): a Python with torch")
    from keras_seq.pipelines.precision import machine_summary

    runs: dict = {v: [] for v in args.variants}
    versions: dict = {}
    root = Path(__file__).resolve().parent.parent
    for round_index in range(args.rounds):
        shift = round_index % len(args.variants)
        for variant in args.variants[shift:] + args.variants[:shift]:
            kind, env = VARIANTS[variant]
            python = args.torch_python if kind == "torch" else sys.executable
            done = subprocess.run(
                [python, str(Path(__file__).resolve()), "--worker", kind],
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(root), **env},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"{variant}: {done.stderr.strip().splitlines()[-1:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            versions[variant] = result.pop("version")
            runs[variant].append(result)
            print(f"round {round_index + 1} {variant:>12}: "
                  + "  ".join(f"{c} {result[c]:9.0f}" for c in CELLS), file=sys.stderr)  # fmt: skip
    table = {v: {c: round(statistics.median(r[c] for r in rs)) for c in CELLS} for v, rs in runs.items()}
    print(f"tokens/s (median of {args.rounds}); B={B} T={T} D={D} H={H}, SGD, float32")
    print(f"{'variant':>12} " + " ".join(f"{c:>9} {'/torch':>6}" for c in CELLS))
    for variant, row in table.items():
        ratios = [row[c] / table["torch"][c] if "torch" in table else float("nan") for c in CELLS]
        print(f"{variant:>12} " + " ".join(f"{row[c]:>9} {r:>6.2f}" for c, r in zip(CELLS, ratios)))
    report = {
        "machine": machine_summary(),
        "shape": {"B": B, "T": T, "D": D, "H": H},
        "precision": "float32",
        "rounds": args.rounds,
        "versions": versions,
        "tokens_per_s": table,
        "vs_torch": {
            v: {c: round(row[c] / table["torch"][c], 3) for c in CELLS} for v, row in table.items() if "torch" in table
        },
        "runs": runs,
    }
    out = Path(__file__).parent / "results" / "bench_torch_training.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
