"""A model written only with Keras' built-in layers, exported two ways, on real IMDB reviews:

    Embedding(mask_zero=True) -> Bidirectional(LSTM 128, return_sequences) -> GRU 128 -> Dense(2)

trained briefly (one epoch on 2,000 training reviews, max_len 200), then timed at batch 1, 8 and
64 on held-out reviews (ids in, probabilities out; the same ids for every system):

* the Keras model in TensorFlow (`model.predict_on_batch`) -- the reference;
* `keras_seq.export.to_onnx` in ONNX Runtime (native LSTM / GRU nodes);
* `model.export(format="onnx")` (tf2onnx) in ONNX Runtime.

Prints median latency per batch, each system's ratio to the Keras model measured in the same run,
the parity of each ONNX model against Keras (max abs difference of the probabilities), and each
graph's node count and whether any Loop remains. Writes benchmarks/results/bench_keras_onnx.json.

    python -m benchmarks.bench_keras_onnx [--reviews ../shared/data/imdb/aclImdb_v1.tar.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.timing import median_seconds

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--reviews", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb" / "aclImdb_v1.tar.gz")
    )
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import keras
    import numpy as np
    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    from keras_seq.export import to_onnx
    from keras_seq.pipelines import TextTokenizer, text_dataset
    from keras_seq.pipelines.readers import open_corpus

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    corpus = open_corpus(args.reviews, "classify")
    train = list(corpus.examples("train"))[:: max(1, 22500 // args.train)][: args.train]
    held_out = [text for text, _ in list(corpus.examples("test"))[::97]][:192]
    tok = TextTokenizer.fit([t for t, _ in train], vocab_size=20000, max_len=200)
    ds = text_dataset(
        [t for t, _ in train], [y for _, y in train], tokenizer=tok, tokens_per_batch=6400, shuffle_seed=0
    )
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(tok.vocab_size, 128, mask_zero=True)(ids)
    x = keras.layers.Bidirectional(keras.layers.LSTM(128, return_sequences=True))(x)
    x = keras.layers.GRU(128)(x)
    model = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    train_seconds = time.perf_counter() - started

    batches = {
        size: [tok(held_out[i : i + size]).astype(np.int32) for i in range(0, len(held_out), size)]
        for size in (1, 8, 64)
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    results = {
        "model": "Embedding(mask_zero) -> BiLSTM 128 -> GRU 128 -> Dense",
        "train_reviews": len(train),
        "train_seconds": round(train_seconds, 1),
        "threads": args.threads,
        "systems": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, theirs_path = Path(tmp) / "ours.onnx", Path(tmp) / "tf2onnx.onnx"
        to_onnx(model, ours_path)
        model.export(str(theirs_path), format="onnx", verbose=False)
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in (("to_onnx", ours_path), ("tf2onnx", theirs_path))
        }
        graphs = {name: onnx.load(str(path)) for name, path in (("to_onnx", ours_path), ("tf2onnx", theirs_path))}

    def run_session(session):
        name, kind = session.get_inputs()[0].name, session.get_inputs()[0].type
        dtype = np.int64 if "int64" in kind else np.int32
        return lambda batch: session.run(None, {name: batch.astype(dtype)})[0]

    systems = {
        "keras_tf": lambda batch: np.asarray(model.predict_on_batch(batch)),
        **{name: run_session(s) for name, s in sessions.items()},
    }
    reference = {size: [systems["keras_tf"](b) for b in bs] for size, bs in batches.items()}
    for name, fn in systems.items():
        entry = {"ms_per_batch": {}, "ratio_to_keras": {}}
        if name != "keras_tf":
            diffs = [
                float(np.max(np.abs(fn(b) - want)))
                for size, bs in batches.items()
                for b, want in zip(bs, reference[size])
            ]
            ops = {n.op_type for n in graphs[name].graph.node}
            entry.update(
                parity_max_abs_diff=max(diffs),
                nodes=len(graphs[name].graph.node),
                has_loop="Loop" in ops,
                recurrent_ops=sorted(ops & {"Loop", "Scan", "LSTM", "GRU", "RNN"}),
            )
        for size, bs in batches.items():
            entry["ms_per_batch"][size] = round(1000 * median_seconds(fn, bs, args.repeats), 2)
        results["systems"][name] = entry
    for entry in results["systems"].values():
        for size, ms in entry["ms_per_batch"].items():
            entry["ratio_to_keras"][size] = round(ms / results["systems"]["keras_tf"]["ms_per_batch"][size], 3)

    print(f"{results['model']}, trained {results['train_seconds']} s on {len(train)} reviews; {args.threads} threads")
    print(f"{'system':<10} {'batch':>5} {'ms/batch':>9} {'vs Keras':>9} {'parity':>9} {'nodes':>6} loop")
    for name, entry in results["systems"].items():
        for size, ms in entry["ms_per_batch"].items():
            parity = f"{entry['parity_max_abs_diff']:.1e}" if "parity_max_abs_diff" in entry else "-"
            print(
                f"{name:<10} {size:>5} {ms:>9.2f} {entry['ratio_to_keras'][size]:>8.2f}x {parity:>9} "
                f"{entry.get('nodes', '-'):>6} {entry.get('has_loop', '-')}"
            )
    out = Path(__file__).resolve().parent / "results" / "bench_keras_onnx.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
