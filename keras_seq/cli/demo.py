"""``keras-seq demo``: the main job on built-in data, end to end, in about a minute.

Generates a review corpus in which word order decides the label, trains a
bidirectional GRU classifier (`keras_seq.pipelines.demo.train_demo`), exports
it as a verified SavedModel and ONNX model (`keras_seq.export.export_run`) and
answers the same sentences from TensorFlow and from ONNX Runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def run_demo(out: str | Path) -> dict:
    """Trains, exports and answers into OUT (``OUT/run``, ``OUT/export``); prints the results."""
    from keras_seq.export.exporter import export_run
    from keras_seq.pipelines.demo import train_demo
    from keras_seq.pipelines.synthetic import DEMO_SENTENCES
    from keras_seq.serving.predictor import OnnxPredictor
    from keras_seq.serving.savedmodel_predictor import SavedModelPredictor

    out = Path(out)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Keras' progress lines: stderr
        metrics = train_demo(out)
    print(
        f"\ntest accuracy {metrics['test']['accuracy']:.3f} on {metrics['test']['examples']} generated reviews; "
        f"a bag-of-words model on the same data: {metrics['bag_of_words_accuracy']:.3f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    for sample in metrics["samples"]:
        print(f"  {sample['label']} {sample['probability']:.2f}  {sample['text']}")
    start = time.perf_counter()
    summary = export_run(
        out / "run", out / "export", name="demo", version=1, overwrite=True, warmup_texts=DEMO_SENTENCES[:3]
    )
    report = summary["verification"]
    rnn_ops = [op for op in summary["onnx_operators"] if op in ("RNN", "GRU", "LSTM")]
    print(
        f"\nexported to {out / 'export'} in {time.perf_counter() - start:.0f} s: {summary['savedmodel']} "
        f"(verified: {', '.join(report['checked'])}) and {summary['onnx']} "
        f"(opset {summary['opset']}, {', '.join(rnn_ops)} nodes)"
    )
    saved = SavedModelPredictor(out / "export").predict(DEMO_SENTENCES)
    onnx = OnnxPredictor(out / "export").predict(DEMO_SENTENCES)
    print(f"\n{'SavedModel (TF)':<22}{'ONNX Runtime':<22}sentence")
    for sentence, a, b in zip(DEMO_SENTENCES, saved, onnx):
        print(
            f"{a['label']:<5}{a['probabilities'][a['label']]:.6f}{'':<6}{b['label']:<5}"
            f"{b['probabilities'][b['label']]:.6f}{'':<6}{sentence}"
        )
    metrics["export"] = {
        "savedmodel": summary["savedmodel"],
        "max_abs_diff": report["max_abs_diff"],
        "onnx_max_abs_diff": report["onnx"]["max_abs_diff"],
    }
    print(f'\nnext: keras-seq predict {out / "export"} "a text"   |   keras-seq serve {out / "export"}')
    return metrics


def _cmd_demo(args: argparse.Namespace) -> int:
    from keras_seq import register_layers

    register_layers()  # keras and TensorFlow, quietly for the command
    run_demo(args.out)
    return 0


def add_demo(sub) -> None:
    from keras_seq._command_line import add_command

    demo = add_command(
        sub,
        "demo",
        help="train on a generated corpus (no download), export both artifacts, answer from both runtimes",
        description="Generates a small review corpus where word order decides the label, trains a bidirectional "
        "GRU on it, exports it as a SavedModel and as ONNX, and prints both runtimes' answers side by side "
        "(about 70 s on 2 cores, no GPU, no download).",
        examples=["keras-seq demo", "keras-seq demo --out /tmp/demo"],
    )
    demo.add_argument("--out", default="demo-out", help="folder for the data, the run and the export")
    demo.set_defaults(func=_cmd_demo)
