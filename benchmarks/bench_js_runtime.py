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
text at a time, and texts/s with 64 texts at a time, over 3 rounds with the order rotated; each
ratio is to Python measured in the same run. Writes benchmarks/results/bench_js_runtime.json.
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


def measure(name: str, export_dir: Path, texts: list[str], repeats: int, rounds: int, tmp: Path) -> dict:
    """Each system `rounds` times, the order rotated each round (what runs first pays for a warm
    machine); per system the median over rounds of each round's medians."""
    from keras_seq.serving.demo_page import serve_static, write_demo_site
    from keras_seq.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(export_dir)
    batch = texts[:64]
    request = {"texts": texts, "repeats": repeats}
    site = write_demo_site(export_dir, tmp / f"site-{name}")
    server = serve_static(site)
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"

    def python() -> dict:
        return {
            "batch1_seconds": timed(
                lambda i: predictor.predict([texts[i % len(texts)]]), list(range(repeats)), repeats
            ),
            "batch64_seconds": timed(lambda: predictor.predict(batch), repeats=max(3, repeats // 5)),
        }

    systems = {
        "python_onnxruntime": python,
        "node_onnxruntime_node": lambda: _node("scripts/bench.mjs", str(export_dir), request=request),
        "chromium_onnxruntime_web": lambda: _node("scripts/bench-browser.mjs", url, request=request),
    }
    per_round: dict[str, list[dict]] = {system: [] for system in systems}
    order = list(systems)
    try:
        for round_ in range(rounds):
            for system in order[round_ % len(order) :] + order[: round_ % len(order)]:
                times = systems[system]()
                per_round[system].append(_summary(times["batch1_seconds"], times["batch64_seconds"], len(batch)))
    finally:
        server.shutdown()
    rows = {
        system: {key: round(statistics.median(r[key] for r in found), 3) for key in found[0]}
        for system, found in per_round.items()
    }
    python_row = rows["python_onnxruntime"]
    for row in rows.values():
        row["latency_vs_python"] = round(row["batch1_ms"] / python_row["batch1_ms"], 2)
        row["throughput_vs_python"] = round(row["batch64_texts_per_s"] / python_row["batch64_texts_per_s"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imdb", default=None, help="an IMDB classifier export (default: trained here)")
    parser.add_argument("--ewt", default=None, help="an EWT tagger export (default: trained here)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all systems, the order rotated")
    parser.add_argument("--keep", default=None, help="keep the exports trained here in this folder")
    args = parser.parse_args()

    from itertools import islice

    from keras_seq.pipelines.readers import open_corpus

    data = Path(args.data)
    reviews = [t for t, _ in open_corpus(data / "imdb" / "aclImdb_v1.tar.gz", "classify").examples("test")][::97]
    sentences = [" ".join(w) for w, _ in islice(open_corpus(data / "ud_english_ewt", "tag").examples("test"), 400)]
    import onnxruntime

    from keras_seq.pipelines.precision import machine_summary

    results = {
        "machine": machine_summary(),
        "versions": {
            "onnxruntime (Python)": onnxruntime.__version__,
            "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
            "chromium": subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.strip(),
            **{
                package: json.loads((JS / "node_modules" / package / "package.json").read_text())["version"]
                for package in ("onnxruntime-node", "onnxruntime-web")
            },
        },
        "repeats": args.repeats,
        "rounds": args.rounds,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exports = {
            "imdb_sentiment": Path(args.imdb) if args.imdb else _trained_export("imdb_sentiment", data, tmp / "imdb"),
            "ewt_upos": Path(args.ewt) if args.ewt else _trained_export("ewt_upos", data, tmp / "ewt"),
        }
        texts = {"imdb_sentiment": reviews, "ewt_upos": sentences}
        for name, export_dir in exports.items():
            results["models"][name] = measure(name, export_dir, texts[name], args.repeats, args.rounds, tmp)
        if args.keep:
            import shutil

            for name, export_dir in exports.items():
                shutil.copytree(export_dir, Path(args.keep) / name, dirs_exist_ok=True)
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
