"""The critical path of a recurrent layer, measured: how much of a step is the recurrent chain,
how much is the loop itself, and how far two identical Keras layers differ from each other.

    python -m benchmarks.bench_chain [--shapes 64x100x128x256,32x200x256x512,16x50x64x128]
                                     [--cells elman,gru,lstm] [--rounds 6] [--out FILE]

Issue #13 asks that a case which stays below 1.0x of Keras' built-in be explained by the measured
chain time. Per (shape, cell, mask), on the TensorFlow backend (no XLA, the training default), in
microseconds per time step:

- ``loop``: a ``tf.while_loop`` of T steps whose body is one multiply on the (B, H) state: the
  executor's floor per step, which every implementation pays.
- ``chain``: the same loop with the body ``h = tanh((h @ U)[:, :H])``, U of shape (H, gates x H):
  the recurrent matmul that no implementation can move off the critical path. Inference runs it
  forward; training forward and backward (``tf.GradientTape``), as the layers do.
- ``keras``, ``keras_again`` and ``ours``: a training step (``train_on_batch``) and a batch-B
  forward pass (``predict_on_batch``) of Input -> [Masking] -> layer -> Dense(1), divided by T.
  ``keras_again`` is a second Keras model with the same weights: ``keras_again / keras`` is the
  spread of this machine between two identical models, the noise floor of any ours / Keras ratio.
  ``ours`` runs ``projection="auto"``.

The models come from ``bench_projection`` (the same harness, so the ratios compare), timed in
alternating rounds, each model leading in turn; medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_seq.pipelines.precision import machine_summary  # noqa: E402

tf.get_logger().setLevel("ERROR")  # the retracing notices of the alternating shapes

from benchmarks.bench_projection import PAIRS, _batch, _model, _seconds, add_matrix_arguments, matrix, rotated  # noqa: E402

GATES = {"elman": 1, "gru": 3, "lstm": 4}


def _loops(shape, gates: int):
    """The empty loop and the chain, forward (inference) and forward + backward (training)."""
    batch, steps, _, units = shape
    h0 = tf.constant(np.random.default_rng(1).normal(size=(batch, units)).astype("float32"))
    kernel = tf.Variable(
        np.random.default_rng(2).normal(scale=units**-0.5, size=(units, gates * units)).astype("float32")
    )

    def run(body):
        return tf.while_loop(lambda t, h: t < steps, lambda t, h: (t + 1, body(h)), (tf.constant(0), h0))[1]

    def chain_body(h):
        return tf.tanh(tf.matmul(h, kernel)[:, :units])

    def backward(body):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(run(body))
        return tape.gradient(loss, kernel, unconnected_gradients="zero")

    return {
        "loop": {
            "inference": tf.function(lambda: run(lambda h: h * 0.5)),
            "training": tf.function(lambda: backward(lambda h: h * 0.5 + 0.0 * kernel[0, 0])),
        },
        "chain": {
            "inference": tf.function(lambda: run(chain_body)),
            "training": tf.function(lambda: backward(chain_body)),
        },
    }


def measure_case(cell: str, shape, masked: bool, rounds: int) -> dict:
    ours_cls, keras_cls = PAIRS[cell]
    batch, steps, _, units = shape
    x, y = _batch(shape, masked, np.random.default_rng(0))
    models = {
        "keras": _model(keras_cls(units), shape, masked, False),
        "keras_again": _model(keras_cls(units), shape, masked, False),
        "ours": _model(ours_cls(units, projection="auto"), shape, masked, False),
    }
    weights = models["keras"].get_weights()
    loops = _loops(shape, GATES[cell])
    for model in models.values():
        model.set_weights(weights)
        for _ in range(2):  # warm-up: tracing
            model.train_on_batch(x, y), model.predict_on_batch(x)
    for fns in loops.values():
        for fn in fns.values():
            fn(), fn()
    times = {mode: {name: [] for name in (*loops, *models)} for mode in ("training", "inference")}
    for round_index in range(rounds):
        for name, fns in loops.items():
            for mode, fn in fns.items():
                times[mode][name].append(_seconds(fn))
        for name, model in rotated(models, round_index):
            times["training"][name].append(_seconds(lambda: model.train_on_batch(x, y)))
            times["inference"][name].append(_seconds(lambda: model.predict_on_batch(x)))
    result = {}
    for mode, by_name in times.items():
        per_step = {name: round(1e6 * statistics.median(values) / steps, 2) for name, values in by_name.items()}
        per_step["ours_vs_keras"] = round(per_step["keras"] / per_step["ours"], 3)  # higher: ours faster
        per_step["keras_again_vs_keras"] = round(per_step["keras"] / per_step["keras_again"], 3)
        per_step["chain_share_of_keras"] = round(per_step["chain"] / per_step["keras"], 3)
        result[mode] = per_step
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_matrix_arguments(p)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_chain.json"))
    args = p.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        sys.exit("bench_chain: the chain is timed with tf.while_loop; run it with KERAS_BACKEND=tensorflow")
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}; microseconds per step, median of "
        f"{args.rounds} alternating rounds; ratios Keras / X (higher: X faster)",
        file=sys.stderr,
    )
    print(
        f"{'B x T x D x H':16} {'cell':6} {'mask':4} {'mode':9} {'loop':>7} {'chain':>7} {'keras':>7} "
        f"{'ours':>7} {'ours/K':>7} {'K2/K':>6} {'chain/K':>7}"
    )
    cases = []
    for shape, cell, _, mask in matrix(args):
        result = measure_case(cell, shape, mask == "on", args.rounds)
        cases.append({"cell": cell, "masked": mask == "on", "shape": dict(zip("BTDH", shape)), "us_per_step": result})
        for mode, r in result.items():
            print(
                f"{'x'.join(map(str, shape)):16} {cell:6} {mask:4} {mode:9} {r['loop']:7.1f} "
                f"{r['chain']:7.1f} {r['keras']:7.1f} {r['ours']:7.1f} {r['ours_vs_keras']:6.2f}x "
                f"{r['keras_again_vs_keras']:5.2f}x {r['chain_share_of_keras']:7.2f}",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": machine_summary(),
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "rounds": args.rounds,
                "cases": cases,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
