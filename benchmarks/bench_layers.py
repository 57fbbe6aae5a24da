"""Training throughput and inference latency: keras_seq layers vs Keras' built-ins
(and PyTorch's, when importable), measured in the same run.

    python -m benchmarks.bench_layers [--batch 64 --steps 100 --input 128 --hidden 256]
                                      [--iters 20] [--jit both|on|off] [--cells elman,gru,lstm]

Training: forward + backward + Adam update of Input -> layer -> Dense(1) on
random data (``train_on_batch``), tokens/s = batch * steps / time per batch.
Inference: ``predict_on_batch`` latency at batch 1 and 64 (median).
Ratios are ours / reference (higher is better for tokens/s, lower for latency).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seq  # noqa: E402
from benchmarks.timing import median_seconds  # noqa: E402

PAIRS = {
    "elman": (keras_seq.Elman, keras.layers.SimpleRNN),
    "gru": (keras_seq.GRU, keras.layers.GRU),
    "lstm": (keras_seq.LSTM, keras.layers.LSTM),
}


def _model(layer_cls, args, jit: bool) -> keras.Model:
    inputs = keras.Input((args.steps, args.input))
    outputs = keras.layers.Dense(1)(layer_cls(args.hidden)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse", jit_compile=jit)
    return model


def measure_keras(layer_cls, args, jit: bool) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.steps, args.input)).astype("float32")
    y = rng.normal(size=(args.batch, 1)).astype("float32")
    model = _model(layer_cls, args, jit)
    train = median_seconds(lambda: model.train_on_batch(x, y), repeats=args.iters, warmup=3)
    lat = {}
    for b in (1, 64):
        xb = x[:b] if b <= args.batch else np.resize(x, (b,) + x.shape[1:])
        lat[b] = median_seconds(lambda: model.predict_on_batch(xb), repeats=args.iters, warmup=3)
    return {"tokens_per_s": args.batch * args.steps / train, "lat1": lat[1], "lat64": lat[64]}


def measure_torch(name: str, args) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    rnn_cls = {"elman": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[name]
    rnn = rnn_cls(args.input, args.hidden, batch_first=True)
    head = torch.nn.Linear(args.hidden, 1)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params)
    x = torch.randn(args.batch, args.steps, args.input)
    y = torch.randn(args.batch, 1)

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
        loss.backward()
        opt.step()

    train = median_seconds(step, repeats=args.iters, warmup=3)
    lat = {}
    with torch.no_grad():
        for b in (1, 64):
            xb = torch.randn(b, args.steps, args.input)
            lat[b] = median_seconds(lambda: head(rnn(xb)[0][:, -1]), repeats=args.iters, warmup=3)
    return {"tokens_per_s": args.batch * args.steps / train, "lat1": lat[1], "lat64": lat[64]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--input", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--jit", choices=["both", "on", "off"], default="both")
    p.add_argument("--cells", default="elman,gru,lstm")
    p.add_argument("--out", default=None, help="append each row as a JSON line to this file")
    args = p.parse_args(argv)
    shape = {"B": args.batch, "T": args.steps, "D": args.input, "H": args.hidden}

    def record(row: dict) -> None:
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps({"shape": shape, "keras_version": keras.__version__, **row}) + "\n")

    jits = {"both": [False, True], "on": [True], "off": [False]}[args.jit]
    print(
        f"shape: B={args.batch} T={args.steps} input={args.input} hidden={args.hidden}; "
        f"median of {args.iters}; keras {keras.__version__}"
    )
    header = (
        f"{'cell':6} {'jit':4} {'ours tok/s':>11} {'keras tok/s':>12} {'train ratio':>11} "
        f"{'lat1 ratio':>10} {'lat64 ratio':>11}"
    )
    print(header)
    for name in args.cells.split(","):
        ours_cls, ref_cls = PAIRS[name]
        for jit in jits:
            ours = measure_keras(ours_cls, args, jit)
            ref = measure_keras(ref_cls, args, jit)
            print(
                f"{name:6} {str(jit):4} {ours['tokens_per_s']:11.0f} {ref['tokens_per_s']:12.0f} "
                f"{ours['tokens_per_s'] / ref['tokens_per_s']:10.2f}x "
                f"{ours['lat1'] / ref['lat1']:10.2f} {ours['lat64'] / ref['lat64']:11.2f}",
                flush=True,
            )
            record({"cell": name, "jit": jit, "ours": ours, "keras": ref})
        torch_result = measure_torch(name, args)
        if torch_result is not None:
            best = max(jits, key=lambda j: j)  # compare torch with our jit-compiled run when measured
            ours = measure_keras(ours_cls, args, best)
            print(
                f"{name:6} torch {torch_result['tokens_per_s']:10.0f} tok/s; ours(jit={best}) / torch: "
                f"train {ours['tokens_per_s'] / torch_result['tokens_per_s']:.2f}x, "
                f"lat1 {ours['lat1'] / torch_result['lat1']:.2f}, lat64 {ours['lat64'] / torch_result['lat64']:.2f}",
                flush=True,
            )
            import torch

            record(
                {
                    "cell": name,
                    "jit": best,
                    "ours": ours,
                    "torch": torch_result,
                    "torch_version": torch.__version__,
                    "torch_threads": torch.get_num_threads(),
                }
            )


if __name__ == "__main__":
    main()
