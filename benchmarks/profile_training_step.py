"""Where one training step of our recurrent layers goes on TensorFlow: matmuls against the rest.

    python -m benchmarks.profile_training_step [--cells lstm,gru,elman]

The harness of `bench_torch_training` (B=64, T=100, D=128, H=256 → Dense(1), SGD, float32). Per
cell it measures, in one process, medians of 15 calls after 3 warm-ups:

* ``step``: one training step (`train_on_batch`), and ``forward``: the model called on the batch
  inside a `tf.function`;
* ``gemm_floor``: the matrix products the step cannot avoid, as bare ``tf.matmul`` calls of the
  same shapes in one `tf.function`: the input projection (N·L × D by D × G·H), forward and
  backward, and per time step the recurrent product h·U plus, in the backward pass, dgates·Uᵀ
  and hᵀ·dgates (G = gates: 4 LSTM, 3 GRU, 1 Elman);
* ``ops_per_step``: the operations in the bodies of the step's while loops (forward and
  backward), read from its graph: each runs once per time step.

``rest = step - gemm_floor`` is what the elementwise gate math, the loop and the executor cost;
``rest / (ops_per_step × L)`` is the mean cost of one such operation. Writes
benchmarks/results/profile_training_step.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.timing import median_seconds

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

B, T, D, H = 64, 100, 128, 256
GATES = {"lstm": 4, "gru": 3, "elman": 1}


def median_ms(fn) -> float:
    return 1000 * median_seconds(fn, repeats=15, warmup=3)


def gemm_floor_ms(gates: int) -> float:
    import tensorflow as tf

    g = gates * H
    x = tf.random.normal((B * T, D))
    w = tf.random.normal((D, g))
    u = tf.random.normal((H, g))
    h = tf.random.normal((B, H))
    dgates = tf.random.normal((B, g))
    dproj = tf.random.normal((B * T, g))

    @tf.function
    def products():
        total = tf.reduce_sum(tf.matmul(x, w))  # input projection
        total += tf.reduce_sum(tf.matmul(dproj, w, transpose_b=True))  # its input gradient
        total += tf.reduce_sum(tf.matmul(x, dproj, transpose_a=True))  # its weight gradient
        for _ in range(T):  # per step: h·U; dgates·Uᵀ and hᵀ·dgates in the backward pass
            total += tf.reduce_sum(tf.matmul(h, u))
            total += tf.reduce_sum(tf.matmul(dgates, u, transpose_b=True))
            total += tf.reduce_sum(tf.matmul(h, dgates, transpose_a=True))
        return total

    return median_ms(lambda: products().numpy())


def loop_ops(model, x, y) -> dict:
    """Operations in the bodies of the train step's while loops, by loop (forward, backward)."""
    import tensorflow as tf

    # Keras' train_function takes an iterator; this traces the same forward + gradient directly
    @tf.function
    def traced(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(xb, training=True) - yb))
        return tape.gradient(loss, model.trainable_variables)

    graph_def = traced.get_concrete_function(tf.constant(x), tf.constant(y)).graph.as_graph_def()
    library = {f.signature.name: f for f in graph_def.library.function}
    nodes = list(graph_def.node) + [n for f in library.values() for n in f.node_def]
    counts = [
        sum(1 for n in library[node.attr["body"].func.name].node_def if n.op not in ("Identity", "NoOp"))
        for node in nodes
        if node.op in ("While", "StatelessWhile")
    ]
    return {"loops": counts, "ops_per_step": sum(counts)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", default="lstm,gru,elman")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import keras_seq
    from keras_seq.pipelines.precision import machine_summary

    layers = {"elman": keras_seq.Elman, "gru": keras_seq.GRU, "lstm": keras_seq.LSTM}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, 1)).astype("float32")
    report: dict = {"machine": machine_summary(), "shape": {"B": B, "T": T, "D": D, "H": H}, "cells": {}}
    print(f"{'cell':>6} {'step ms':>8} {'forward':>8} {'gemm floor':>10} {'rest':>7} {'ops/step':>8} {'µs/op':>6}")
    for cell in args.cells.split(","):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((T, D))
        model = keras.Model(inputs, keras.layers.Dense(1)(layers[cell](H)(inputs)))
        model.compile(keras.optimizers.SGD(0.01), "mse")
        step = median_ms(lambda: model.train_on_batch(x, y))
        forward_fn = tf.function(lambda xb: model(xb, training=False))
        xt = tf.constant(x)
        forward = median_ms(lambda: forward_fn(xt).numpy())
        floor = gemm_floor_ms(GATES[cell])
        ops = loop_ops(model, x, y)
        rest = step - floor
        per_op = 1000 * rest / max(1, ops["ops_per_step"] * T)
        row = {
            "step_ms": round(step, 1),
            "forward_ms": round(forward, 1),
            "gemm_floor_ms": round(floor, 1),
            "rest_ms": round(rest, 1),
            "gemm_share": round(floor / step, 3),
            **ops,
            "us_per_loop_op": round(per_op, 2),
        }
        report["cells"][cell] = row
        print(f"{cell:>6} {step:8.1f} {forward:8.1f} {floor:10.1f} {rest:7.1f} {ops['ops_per_step']:8} {per_op:6.2f}")
    out = Path(__file__).parent / "results" / "profile_training_step.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
