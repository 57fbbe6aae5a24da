"""Our ONNX export against PyTorch's own export path, on IMDB reviews in ONNX Runtime.

    python -m benchmarks.bench_torch_onnx EXPORT_DIR [--torch-python PATH] [--rounds 3]

The export's weights go to a PyTorch twin of the same architecture (`benchmarks/torch_twin.py`,
run by a PyTorch interpreter: `--torch-python`, or $TORCH_PYTHON), which `torch.onnx.export`
writes to ONNX. Both graphs then run in this process's ONNX Runtime (default session options,
CPU) on the same test reviews:

* ours: `OnnxPredictor.predict(texts)` -- raw text in, answers out (tokenization, length-sorted
  chunks and the answer dicts inside the time);
* ours, ids: our graph alone on the ids (`session.run`), to separate the graph from the text work;
* theirs: the PyTorch graph on the ids (tokenized beforehand, outside the time), as a PyTorch
  user runs it.

Batch 1 (one review a call) and batch 64 (64 reviews a call, padded to the longest): the
variants take turns call by call, the order rotating, `--rounds` passes over the inputs; medians.
Parity: both graphs on the same ids, max |Δ| of the probabilities and the labels that differ,
over every timed review. Writes
benchmarks/results/bench_torch_onnx.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

RECURRENT = ("GRU", "LSTM")


def twin_weights(onnx_file: Path) -> dict:
    """The weights the PyTorch twin loads, read from our ONNX graph (ONNX layouts), or one line
    saying what in the graph the twin does not model."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_file)).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    ops = [n.op_type for n in graph.node]
    cells = {n.op_type for n in graph.node if n.op_type in RECURRENT}
    if len(cells) != 1 or "Softmax" not in ops or not ({"ReduceMax", "ReduceSum"} & set(ops)):
        raise SystemExit(f"{onnx_file}: the twin models embedding → bidirectional GRU/LSTM → pooling → softmax")
    weights: dict = {
        "cell": np.array(cells.pop().lower()),
        "pooling": np.array("max" if "ReduceMax" in ops else "mean"),
    }
    recurrent = [n for n in graph.node if n.op_type in RECURRENT]
    for index, node in enumerate(recurrent):
        direction = next(a.s for a in node.attribute if a.name == "direction")
        if direction != b"bidirectional":
            raise SystemExit(f"{onnx_file}: the twin models bidirectional layers; {node.name} is {direction!r}")
        for key, name in zip(("W", "R", "B"), node.input[1:4]):
            weights[f"layer{index}/{key}"] = values[name]
    gather = next(n for n in graph.node if n.op_type == "Gather" and n.input[0] in values)
    weights["embedding"] = values[gather.input[0]]
    matmul = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in values][-1]
    add = next(n for n in graph.node if n.op_type == "Add" and matmul.output[0] in n.input)
    weights["kernel"] = values[matmul.input[1]]
    weights["bias"] = values[next(i for i in add.input if i in values)]
    return weights


def interleaved_ms(variants: dict, index: int, rounds: int) -> dict:
    """{variant: median ms} of `variants` ({name: (fn, inputs...)}) on their inputs[index - 1]
    (1: one text a call, 2: 64), call by call in turn, the order rotating each call: drift of
    the machine falls on every variant alike."""
    names = list(variants)
    times: dict = {name: [] for name in names}
    for name in names:  # warm-up
        variants[name][0](variants[name][index][0])
    calls = len(variants[names[0]][index])
    for turn in range(rounds * calls):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            fn, inputs = variants[name][0], variants[name][index]
            start = time.perf_counter()
            fn(inputs[turn % calls])
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export_dir")
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"), help="a Python with torch")
    parser.add_argument("--reviews", default="../shared/data/imdb/aclImdb_v1.tar.gz")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=200, help="batch-1 calls per round")
    parser.add_argument("--batches", type=int, default=12, help="batch-64 calls per round")
    args = parser.parse_args()
    if not args.torch_python:
        raise SystemExit("give --torch-python (or set TORCH_PYTHON): a Python with torch, e.g. a venv of its CPU wheel")

    import onnxruntime as ort

    from keras_seq.contracts.export_dir import ONNX_MODEL_FILE
    from keras_seq.pipelines.precision import machine_summary
    from keras_seq.pipelines.readers import open_corpus
    from keras_seq.serving.predictor import OnnxPredictor

    ours = OnnxPredictor(args.export_dir)
    reviews = [text for text, _ in list(open_corpus(args.reviews, "classify").examples("test"))[::13]]
    singles = [[t] for t in reviews[: args.single]]
    batches = [reviews[i * 64 : (i + 1) * 64] for i in range(args.batches)]
    weights = twin_weights(ours.directory / ONNX_MODEL_FILE)
    weights["probe_ids"] = ours.tokenizer.encode_batch(reviews[:8])[0]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "weights.npz", **weights)
        theirs_file = Path(tmp) / "torch.onnx"
        done = subprocess.run(
            [args.torch_python, str(Path(__file__).parent / "torch_twin.py"), str(Path(tmp) / "weights.npz"),
             str(theirs_file)], capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"the PyTorch twin failed: {done.stderr.strip().splitlines()[-1:]}")
        sidecar = json.loads(Path(str(theirs_file) + ".json").read_text())
        theirs = ort.InferenceSession(str(theirs_file), providers=["CPUExecutionProvider"])
        theirs_nodes = sorted({n.op_type for n in __import__("onnx").load(str(theirs_file)).graph.node})

    def ids_of(texts: list) -> np.ndarray:
        return ours.tokenizer.encode_batch(texts)[0]

    single_ids = [ids_of(t) for t in singles]
    batch_ids = [ids_of(b) for b in batches]
    # parity on every timed review: the two graphs on the same ids
    deltas, flipped = [], 0
    for ids in single_ids + batch_ids:
        a = ours.session.run(None, {"ids": ids})[0]
        b = theirs.run(None, {"ids": ids})[0]
        deltas.append(float(np.abs(a - b).max()))
        flipped += int((a.argmax(-1) != b.argmax(-1)).sum())
    probe = float(np.abs(np.asarray(sidecar["probe"]) - ours.session.run(None, {"ids": weights["probe_ids"]})[0]).max())

    variants = {
        "ours_text": (lambda texts: ours.predict(texts), singles, batches),
        "ours_ids": (lambda ids: ours.session.run(None, {"ids": ids}), single_ids, batch_ids),
        "theirs_ids": (lambda ids: theirs.run(None, {"ids": ids}), single_ids, batch_ids),
    }
    one, many = interleaved_ms(variants, 1, args.rounds), interleaved_ms(variants, 2, args.rounds)
    table = {name: {"batch1_ms": round(one[name], 3), "batch64_ms": round(many[name], 3)} for name in variants}
    for name in table:
        for key in ("batch1_ms", "batch64_ms"):
            table[name][key.replace("_ms", "_vs_theirs")] = round(table[name][key] / table["theirs_ids"][key], 3)
    report = {
        "machine": machine_summary(),
        "export": str(args.export_dir),
        "torch": sidecar["torch"],
        "exporter": sidecar["exporter"],
        "exporter_refusals": sidecar["refused"],
        "onnxruntime": ort.__version__,
        "their_operators": theirs_nodes,
        "parity": {
            "texts": len(reviews[: args.single]) + 64 * len(batches),
            "max_abs_diff": max(deltas),
            "labels_differing": flipped,
            "twin_in_torch_vs_ours_max_abs_diff": probe,
        },  # fmt: skip
        "rounds": args.rounds,
        "latency": table,
    }
    print(f"PyTorch {sidecar['torch']}, {sidecar['exporter']}; ONNX Runtime {ort.__version__}")
    print(f"parity: max |Δ| {max(deltas):.2e}, labels differing {flipped}")
    print(f"{'variant':>11} {'batch 1 ms':>10} {'/ theirs':>8} {'batch 64 ms':>11} {'/ theirs':>8}")
    for name, row in table.items():
        print(f"{name:>11} {row['batch1_ms']:>10} {row['batch1_vs_theirs']:>8} {row['batch64_ms']:>11} "
              f"{row['batch64_vs_theirs']:>8}")  # fmt: skip
    out = Path(__file__).parent / "results" / "bench_torch_onnx.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
