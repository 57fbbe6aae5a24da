"""Exports a trained G2P run (``keras-seq train g2p_cmudict``) and checks that Keras, the
SavedModel (beam search in the graph, loaded in a fresh process) and ONNX Runtime (two graphs,
NumPy beam search) give identical outputs on 1,000 test words plus the adversarial set.

    python benchmarks/g2p_parity.py RUN_DIR EXPORT_DIR [--words 1000]

Prints one JSON object and writes it to benchmarks/results/g2p_cmudict_parity.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from keras_seq.contracts import RunDirectory
from keras_seq.export.exporter import export_run
from keras_seq.export.parity import parity
from keras_seq.export.probes import adversarial_texts
from keras_seq.pipelines.evaluate import corpus_from_config

RESULTS = Path(__file__).resolve().parent / "results" / "g2p_cmudict_parity.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("export_dir")
    parser.add_argument("--words", type=int, default=1000)
    args = parser.parse_args()
    config = RunDirectory(args.run_dir).config()
    words = sorted({word for word, _ in corpus_from_config(config).examples("test")})
    picked = words[:: max(1, len(words) // args.words)][: args.words]
    started = time.perf_counter()
    summary = export_run(args.run_dir, args.export_dir, name="g2p", overwrite=True)
    export_seconds = time.perf_counter() - started
    adversarial = adversarial_texts(summary["max_len"]) + ["", "naïve", "straße", "日本語", "x" * 100, "a-b'c.d"]
    started = time.perf_counter()
    result = parity(args.run_dir, args.export_dir, picked + adversarial)
    result.update(test_words=len(picked), adversarial_texts=len(adversarial), export_seconds=round(export_seconds, 1),
                  parity_seconds=round(time.perf_counter() - started, 1), onnx_operators=summary["onnx_operators"],
                  verification=summary["verification"]["checked"], machine=platform.processor() or platform.machine())
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
