"""Text in -> answer out, from an export: the SavedModel in TensorFlow (the reference) against
our ONNX graphs in ONNX Runtime, float and int8, on the export's own test split.

    python -m benchmarks.bench_latency EXPORT_DIR [EXPORT_DIR ...] [--repeats 30] [--full-test]

* Latency: median seconds per batch of 1, 8 and 64 texts (the test split's texts, every k-th),
  each system's ratio to the SavedModel measured in the same run. Taggers with a CRF decode with
  Viterbi in the SavedModel's graph and in NumPy beside ONNX Runtime (`keras_seq.serving.signature_outputs`).
* Accuracy (``--full-test``): every test example answered by the float and the int8 ONNX graphs,
  scored against the gold labels (classify: accuracy; tag: token accuracy), and the share of
  answers where the two disagree. Taggers answer the corpus's own tokens (`OnnxPredictor`
  takes token lists), so every sentence is scored; latency is timed on the raw texts.

Run it from the repository root (the shipped configs name their data relative to it). Writes
benchmarks/results/bench_latency.json (one entry per export, by its name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.timing import median_seconds

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]


def _median_batch_seconds(predict, texts: list, batch: int, repeats: int) -> float:
    batches = [texts[i : i + batch] for i in range(0, len(texts) - batch + 1, batch)] or [texts[:batch]]
    return median_seconds(predict, batches, repeats)


def _gold(corpus):
    """(raw texts, inputs to score, gold answers' symbols) of the test split; a tagger's inputs
    are the gold token lists."""
    task = corpus.pipeline
    examples = list(corpus.examples("test"))
    texts = [task.text_of(e) for e in examples]
    if task.name == "classify":
        return texts, texts, [e[1] for e in examples]
    return texts, [list(e[0]) for e in examples], [list(e[1]) for e in examples]


def _scores(answers: list, gold: list, task: str) -> dict:
    if task == "classify":
        return {"accuracy": sum(a["label"] == g for a, g in zip(answers, gold)) / len(gold), "examples": len(gold)}
    right = total = cut = 0
    for answer, tags in zip(answers, gold):
        right += sum(a == b for a, b in zip(answer["tags"], tags))  # tokens past max_len count as wrong
        total += len(tags)
        cut += len(answer["tags"]) < len(tags)
    return {"token_accuracy": right / total, "tokens": total, "sentences_cut_at_max_len": cut}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dirs", nargs="+")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-test", action="store_true", help="also score float and int8 on the whole test split")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_latency.json"))
    args = parser.parse_args()

    import tensorflow as tf

    from keras_seq.contracts import ExportDirectory, RunDirectory
    from keras_seq.pipelines.evaluate import corpus_from_config
    from keras_seq.serving.predictor import OnnxPredictor
    from keras_seq.serving.savedmodel_predictor import SavedModelPredictor

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for export_dir in map(Path, args.export_dirs):
        info = ExportDirectory(export_dir).info()
        corpus = corpus_from_config(RunDirectory(info["run"]).config())  # the run's own source and split
        texts, inputs, gold = _gold(corpus)
        sample = texts[:: max(1, len(texts) // 640)][:640]
        systems = {
            "savedmodel": SavedModelPredictor(export_dir).predict,
            "onnx": OnnxPredictor(export_dir, threads=args.threads).predict,
        }
        if info.get("int8"):
            systems["onnx_int8"] = OnnxPredictor(export_dir, threads=args.threads, int8=True).predict
        latency = {}
        for batch in (1, 8, 64):
            seconds = {name: _median_batch_seconds(fn, sample, batch, args.repeats) for name, fn in systems.items()}
            latency[batch] = {
                name: {
                    "ms": round(1000 * s, 3),
                    "texts_per_s": round(batch / s, 1),
                    "speed_vs_savedmodel": round(seconds["savedmodel"] / s, 2),
                }
                for name, s in seconds.items()
            }
            print(
                f"{info['name']} batch {batch}: "
                + ", ".join(f"{k} {v['ms']} ms ({v['speed_vs_savedmodel']}x)" for k, v in latency[batch].items()),
                file=sys.stderr,
            )
        entry = {
            "task": info["task"],
            "kind": info["kind"],
            "operators": info["onnx_operators"],
            "int8": info.get("int8"),
            "latency": latency,
            "sample_texts": len(sample),
        }
        if args.full_test:
            answers = {name: fn(inputs) for name, fn in systems.items() if name.startswith("onnx")}
            entry["test"] = {name: _scores(a, gold, info["task"]) for name, a in answers.items()}
            if "onnx_int8" in answers:
                key = "label" if info["task"] == "classify" else "tags"
                entry["test"]["int8_answers_that_differ"] = sum(
                    a[key] != b[key] for a, b in zip(answers["onnx"], answers["onnx_int8"])
                ) / len(texts)
            print(f"{info['name']} test: {json.dumps(entry['test'])}", file=sys.stderr)
        results[info["name"]] = entry
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
