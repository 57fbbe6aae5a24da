"""Inference latency and throughput, text in -> answer out, on real IMDB reviews:

* the SavedModel in TensorFlow (`serving_default`, tokenizer in the graph) -- the reference;
* our ONNX model in ONNX Runtime (`serving.predictor.OnnxPredictor`: twin tokenizer + native RNN nodes);
* `keras.Model.export(format="onnx")` of the same model (tf2onnx), in ONNX Runtime, fed by the same twin
  tokenizer.

    python -m benchmarks.bench_export RUN_DIR EXPORT_DIR [--reviews ../shared/data/imdb/aclImdb_v1.tar.gz]

Batch sizes 1, 8 and 64; prints median latency per batch, texts/s and each system's ratio to the
SavedModel measured in the same run; writes benchmarks/results/bench_export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from benchmarks.timing import timed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("export_dir")
    parser.add_argument("--reviews", default="../shared/data/imdb/aclImdb_v1.tar.gz")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every system")
    args = parser.parse_args()

    import keras
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    import keras_seq  # noqa: F401 - registers the layers
    from keras_seq.pipelines.readers import open_corpus
    from keras_seq.serving.predictor import OnnxPredictor
    from keras_seq.serving.savedmodel_predictor import SavedModelPredictor, latest_version
    from keras_seq.serving.tokenizer_twin import TextTokenizer

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    reviews = [text for text, _ in list(open_corpus(args.reviews, "classify").examples("test"))[::97]]
    export_dir = Path(args.export_dir)
    saved = SavedModelPredictor(export_dir)
    ours = OnnxPredictor(export_dir, threads=args.threads)
    tokenizer = TextTokenizer(export_dir / "onnx")

    systems = {"savedmodel_tf": saved.predict, "onnx_ours": ours.predict}
    notes = {"savedmodel_tf": str(latest_version(export_dir)), "onnx_ours": "native RNN nodes, opset 18"}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = keras.saving.load_model(Path(args.run_dir) / "model.keras", compile=False)
            model(np.ones((1, 4), "int32"))  # Model.export needs a model that has been called
            path = str(Path(tmp) / "keras_export.onnx")
            model.export(path, format="onnx", verbose=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            kind = np.int32 if "int32" in session.get_inputs()[0].type else np.int64
            ops = sorted(
                {n.op_type for n in __import__("onnx").load(path).graph.node} & {"Loop", "Scan", "LSTM", "GRU", "RNN"}
            )

            def keras_onnx(texts):
                ids, _ = tokenizer.encode_batch(texts)
                probabilities = session.run(None, {name: ids.astype(kind)})[0]
                return [int(np.argmax(p)) for p in probabilities]

            systems["onnx_keras_export"] = keras_onnx
            notes["onnx_keras_export"] = f"keras.Model.export(format='onnx'); recurrent ops: {ops}"
        except Exception as error:  # reported, not hidden
            notes["onnx_keras_export"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}"

        results = {"threads": args.threads, "reviews": len(reviews), "systems": notes, "batches": {}}
        for batch in (1, 8, 64):
            batches = [reviews[i : i + batch] for i in range(0, len(reviews) - batch + 1, batch)] or [reviews[:batch]]
            repeats = max(5, args.repeats if batch < 64 else args.repeats // 3)
            row = {}
            for system, fn in systems.items():
                times = timed(fn, batches, repeats)
                median = statistics.median(times)
                row[system] = {"median_ms": round(1000 * median, 2), "texts_per_s": round(batch / median, 1)}
            base = row["savedmodel_tf"]["texts_per_s"]
            for system in row:
                row[system]["throughput_vs_savedmodel"] = round(row[system]["texts_per_s"] / base, 2)
            results["batches"][batch] = row
            print(
                f"batch {batch:>2}: "
                + "  ".join(
                    f"{s} {r['median_ms']} ms ({r['texts_per_s']} texts/s, {r['throughput_vs_savedmodel']}x)"
                    for s, r in row.items()
                ),
                flush=True,
            )
    for system, note in notes.items():
        print(f"  {system}: {note}")
    out = Path(__file__).parent / "results" / "bench_export.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
