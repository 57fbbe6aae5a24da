"""Parity of Keras, the reloaded SavedModel (fresh process) and ONNX Runtime on
real inputs from ../shared/data plus the adversarial set.

    python benchmarks/export_parity.py RUN_DIR EXPORT_DIR SOURCE [--n 1000]

SOURCE: the data the texts come from (an aclImdb folder / .tar.gz, a CoNLL
file folder, or tinyshakespeare's input.txt). Prints one JSON object and
writes it to benchmarks/results/parity-<export name>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_seq.export.parity import parity  # noqa: E402
from keras_seq.export.probes import adversarial_texts  # noqa: E402
from keras_seq.pipelines.readers import open_corpus  # noqa: E402


def real_texts(source: str, task: str, n: int) -> list[str]:
    if task == "lm":
        text = Path(source).read_text(encoding="utf-8")
        held_out = text[int(len(text) * 0.9):]  # the validation part
        width = min(300, len(held_out) // n)
        return [held_out[i * width : (i + 1) * width] for i in range(n)]
    corpus = open_corpus(source, task)
    examples = list(corpus.examples("test"))
    step = max(1, len(examples) // n)
    picked = examples[::step][:n]
    if task == "classify":
        return [text for text, _ in picked]
    return [" ".join(tokens) for tokens, _ in picked]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("export_dir")
    parser.add_argument("source")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    info = json.loads((Path(args.export_dir) / "export.json").read_text(encoding="utf-8"))
    texts = real_texts(args.source, info["task"], args.n) + adversarial_texts(info["max_len"])
    start = time.perf_counter()
    result = parity(args.run_dir, args.export_dir, texts)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["real_texts"] = len(texts) - len(adversarial_texts(info["max_len"]))
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / f"parity-{info['name']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
