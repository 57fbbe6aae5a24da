"""Parity of Keras, the reloaded SavedModel (fresh process) and ONNX Runtime on
real inputs from ../shared/data plus the adversarial set.

    python -m benchmarks.bench_parity RUN_DIR EXPORT_DIR [SOURCE] [--n 1000]

SOURCE: the data the texts come from (an aclImdb folder / .tar.gz, a CoNLL
file folder, or tinyshakespeare's input.txt); default: the run's own source,
split as the run split it (g2p_cmudict: its test words). Prints one JSON object and
writes it to benchmarks/results/bench_parity-<export name>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from keras_seq.contracts import ExportDirectory, RunDirectory  # noqa: E402
from keras_seq.export.checks.parity import parity  # noqa: E402
from keras_seq.export.checks.probes import adversarial_texts  # noqa: E402
from keras_seq.pipelines.evaluate import corpus_from_config  # noqa: E402
from keras_seq.pipelines.tasks import pipeline_for  # noqa: E402


def real_texts(run_dir: str, source: str | None, task: str, n: int) -> list[str]:
    """About `n` held-out texts of the source, as the task reads them."""
    return pipeline_for(task).sample_texts(corpus_from_config(RunDirectory(run_dir).config(), source), n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("export_dir")
    parser.add_argument("source", nargs="?", default=None)
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    info = ExportDirectory(args.export_dir).info()
    texts = real_texts(args.run_dir, args.source, info["task"], args.n) + adversarial_texts(info["max_len"])
    start = time.perf_counter()
    result = parity(args.run_dir, args.export_dir, texts)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["real_texts"] = len(texts) - len(adversarial_texts(info["max_len"]))
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"bench_parity-{info['name']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
