"""The JavaScript runtime's speed against the Python one, text in -> answer out (tokenization included):

* `keras_seq.serving.OnnxPredictor` in Python on onnxruntime -- the reference;
* the js/ package on Node (onnxruntime-node), `js/scripts/bench.mjs`;
* the js/ package in headless Chromium (onnxruntime-web, WebAssembly, one thread: a static page
  without cross-origin isolation gets no WebAssembly threads), `js/scripts/bench-browser.mjs` on
  the demo page `keras-seq kit --demo-page` writes.

    python -m benchmarks.bench_js_runtime [--imdb EXPORT] [--ewt EXPORT] [--repeats 40]

Without exports it trains the shipped `imdb_sentiment` and `ewt_upos` configs (their architectures:
speed does not depend on the weights) for one epoch on the first 2,000 examples, and exports them.
Texts: every 97th IMDB test review, EWT's test sentences. Per system: the median latency of one
text at a time, and texts/s with 64 texts at a time; each ratio is to Python measured in the same
run. Writes benchmarks/results/bench_js_runtime.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.timing import timed

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
JS = REPO / "js"


def _trained_export(config: str, data_dir: Path, out: Path) -> Path:
    from keras_seq.export.exporter import export_run
    from keras_seq.pipelines.config import load_config
    from keras_seq.pipelines.train import train_run

    os.environ.setdefault("KERAS_SEQ_DATA", str(data_dir))
    settings = ["data.limit=2000", "train.epochs=1", "train.max_minutes=4"]
    train_run(load_config(config, settings), out / "run", verbose=0)
    export_run(out / "run", out / "export", name=config, verify=False)
    return out / "export"


def _node(script: str, *args: str, request: dict) -> dict:
    result = subprocess.run(
        ["node", script, *args], input=json.dumps(request).encode(), capture_output=True, cwd=JS, timeout=1800
    )
    if result.returncode != 0:
        raise SystemExit(f"{script}: {result.stderr.decode()[-2000:]}")
    return json.loads(result.stdout)


def _summary(batch1: list[float], batch64: list[float], texts: int) -> dict:
    return {
        "batch1_ms": round(statistics.median(batch1) * 1000, 3),
        "batch64_texts_per_s": round(texts / statistics.median(batch64), 1),
    }


def measure(name: str, export_dir: Path, texts: list[str], repeats: int, tmp: Path) -> dict:
    from keras_seq.serving.demo_page import serve_static, write_demo_site
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(export_dir)
    batch = texts[:64]
    python = _summary(
        timed(lambda i: predictor.predict([texts[i % len(texts)]]), list(range(repeats)), repeats),
        timed(lambda: predictor.predict(batch), repeats=max(3, repeats // 5)),
        len(batch),
    )
    request = {"texts": texts, "repeats": repeats}
    node = _node("scripts/bench.mjs", str(export_dir), request=request)
    site = write_demo_site(export_dir, tmp / f"site-{name}")
    server = serve_static(site)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        browser = _node("scripts/bench-browser.mjs", url, request=request)
    finally:
        server.shutdown()
    rows = {
        "python_onnxruntime": python,
        "node_onnxruntime_node": _summary(node["batch1_seconds"], node["batch64_seconds"], len(batch)),
        "chromium_onnxruntime_web": _summary(browser["batch1_seconds"], browser["batch64_seconds"], len(batch)),
    }
    for row in rows.values():
        row["latency_vs_python"] = round(row["batch1_ms"] / python["batch1_ms"], 2)
        row["throughput_vs_python"] = round(row["batch64_texts_per_s"] / python["batch64_texts_per_s"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imdb", default=None, help="an IMDB classifier export (default: trained here)")
    parser.add_argument("--ewt", default=None, help="an EWT tagger export (default: trained here)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    from itertools import islice

    from keras_seq.pipelines.readers import open_corpus

    data = Path(args.data)
    reviews = [t for t, _ in open_corpus(data / "imdb" / "aclImdb_v1.tar.gz", "classify").examples("test")][::97]
    sentences = [" ".join(w) for w, _ in islice(open_corpus(data / "ud_english_ewt", "tag").examples("test"), 400)]
    results = {"machine": f"{os.cpu_count()} cores", "repeats": args.repeats, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exports = {
            "imdb_sentiment": Path(args.imdb) if args.imdb else _trained_export("imdb_sentiment", data, tmp / "imdb"),
            "ewt_upos": Path(args.ewt) if args.ewt else _trained_export("ewt_upos", data, tmp / "ewt"),
        }
        texts = {"imdb_sentiment": reviews, "ewt_upos": sentences}
        for name, export_dir in exports.items():
            results["models"][name] = measure(name, export_dir, texts[name], args.repeats, tmp)
    print("| model | system | ms per text, batch 1 | texts/s, batch 64 | latency / Python | throughput / Python |")
    print("|---|---|---|---|---|---|")
    for name, rows in results["models"].items():
        for system, row in rows.items():
            print(
                f"| {name} | {system} | {row['batch1_ms']} | {row['batch64_texts_per_s']} | "
                f"{row['latency_vs_python']} | {row['throughput_vs_python']} |"
            )
    out = REPO / "benchmarks" / "results" / "bench_js_runtime.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
