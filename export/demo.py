"""`keras-seq demo`: train on the built-in corpus, export both artifacts,
and answer the same sentences from the SavedModel and from ONNX Runtime."""
from __future__ import annotations

import time
from pathlib import Path

from pipelines.demo import run_demo
from pipelines.synthetic import DEMO_SENTENCES


def run_full_demo(out: str | Path) -> dict:
    from export.exporter import export_run
    from serving.predictor import OnnxPredictor
    from serving.savedmodel_predictor import SavedModelPredictor

    out = Path(out)
    metrics = run_demo(out)
    start = time.perf_counter()
    summary = export_run(out / "run", out / "export", name="demo", version=1, overwrite=True,
                         warmup_texts=DEMO_SENTENCES[:3])
    report = summary["verification"]
    print(f"\nexported to {out / 'export'} in {time.perf_counter() - start:.0f} s: {summary['savedmodel']} "
          f"(verified: {', '.join(report['checked'])}) and onnx/model.onnx "
          f"(opset {summary['opset']}, {', '.join(op for op in summary['onnx_operators'] if op in ('RNN', 'GRU', 'LSTM'))} nodes)")
    saved = SavedModelPredictor(out / "export").predict(DEMO_SENTENCES)
    onnx = OnnxPredictor(out / "export").predict(DEMO_SENTENCES)
    print(f"\n{'SavedModel (TF)':<22}{'ONNX Runtime':<22}sentence")
    for sentence, a, b in zip(DEMO_SENTENCES, saved, onnx):
        print(f"{a['label']:<5}{a['probabilities'][a['label']]:.6f}{'':<6}{b['label']:<5}"
              f"{b['probabilities'][b['label']]:.6f}{'':<6}{sentence}")
    metrics["export"] = {"savedmodel": summary["savedmodel"], "max_abs_diff": report["max_abs_diff"],
                         "onnx_max_abs_diff": report["onnx"]["max_abs_diff"]}
    return metrics
