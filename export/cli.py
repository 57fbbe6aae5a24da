"""The full `keras-seq` command line: the pipelines' commands plus `export`
and `predict`, and the demo grown to export and answer from both runtimes.

(The pipelines' parser is extended here, so dependencies keep flowing one way:
pipelines never imports export.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipelines import cli as pipelines_cli


def _cmd_export(args: argparse.Namespace) -> int:
    from export.exporter import export_run

    summary = export_run(args.run_dir, args.out, name=args.name, version=args.version, overwrite=args.overwrite,
                         max_len=args.max_len, generate_length=args.generate_length, verify=not args.no_verify,
                         log=lambda m: print(m, file=sys.stderr))
    report = summary["verification"] or {}
    print(json.dumps({"savedmodel": str(Path(args.out) / summary["savedmodel"]),
                      "onnx": str(Path(args.out) / summary["onnx"]), "task": summary["task"],
                      "opset": summary["opset"], "onnx_operators": summary["onnx_operators"],
                      "verified": report.get("checked", "skipped (--no-verify)"),
                      "max_abs_diff": {"savedmodel": report.get("max_abs_diff"),
                                       "onnx": (report.get("onnx") or {}).get("max_abs_diff")}}, indent=2))
    return 0


def read_jsonl_texts(path: str) -> list:
    """One JSON string per line -> a list of str, or an error message (str in a
    one-item tuple) for a line that holds something else."""
    items: list = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\r\n")
            try:
                value = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                items.append((f"line {number}: not valid UTF-8 (byte {error.start}); "
                              "write the text as a JSON string with \\u escapes",))
                continue
            except json.JSONDecodeError as error:
                items.append((f"line {number}: not valid JSON ({error.msg})",))
                continue
            if not isinstance(value, str):
                items.append((f"line {number}: expected a JSON string, got {type(value).__name__}",))
                continue
            items.append(value)
    return items


def answer_all(predict, items: list) -> list[dict]:
    """Answers the texts among `items` together; error items pass through, and a
    text the model cannot take gets an error without failing the others."""
    texts = [(i, t) for i, t in enumerate(items) if isinstance(t, str)]
    out: list[dict] = [{"error": item[0]} if isinstance(item, tuple) else {} for item in items]
    try:
        answers = predict([t for _, t in texts])
    except Exception:  # isolate the text at fault
        answers = []
        for _, text in texts:
            try:
                answers.append(predict([text])[0])
            except Exception as error:  # noqa: BLE001 - reported per line
                answers.append({"error": f"{type(error).__name__}: {error}"})
    for (i, _), answer in zip(texts, answers):
        out[i] = answer
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    if bool(args.texts) == bool(args.input):
        raise ValueError("give the texts as arguments or --input FILE (JSON Lines), not both / neither")
    items = read_jsonl_texts(args.input) if args.input else list(args.texts)
    if args.runtime == "onnx":
        from serving.predictor import OnnxPredictor

        predictor = OnnxPredictor(args.export_dir)
    else:
        from serving.savedmodel_predictor import SavedModelPredictor

        predictor = SavedModelPredictor(args.export_dir)
    predict = predictor.generate if args.generate else predictor.predict
    for answer in answer_all(predict, items):
        print(json.dumps(answer, ensure_ascii=False))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from serving.server import serve

    serve(args.export_dir, port=args.port, host=args.host, name=args.name, max_texts=args.max_texts)
    return 0


def _cmd_kit(args: argparse.Namespace) -> int:
    from serving.tfserving_kit import write_kit

    written = write_kit(args.export_dirs, args.out, storage_uri=args.storage_uri, versions=args.versions)
    print("\n".join(str(p) for p in written))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from export.demo import run_full_demo

    run_full_demo(args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = pipelines_cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["demo"].set_defaults(func=_cmd_demo)
    sub.choices["demo"].description = "train on a generated corpus, export both artifacts, answer from both"

    export = sub.add_parser("export", help="a trained run -> TF Serving SavedModel + ONNX model, verified")
    export.add_argument("run_dir")
    export.add_argument("--out", required=True, help="the export directory")
    export.add_argument("--name", default=None, help="model name in savedmodel/NAME/ (default: the run's folder name)")
    export.add_argument("--version", type=int, default=None, help="version number (default: the next free one)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument("--max-len", type=int, default=None,
                        help="serving truncation for runs trained without max_len (default 1024 tokens)")
    export.add_argument("--generate-length", type=int, default=200, help="lm: tokens the generate signature adds")
    export.add_argument("--no-verify", action="store_true", help="skip the fresh-process verification")
    export.set_defaults(func=_cmd_export)

    predict = sub.add_parser("predict", help="answers from an exported model (SavedModel or ONNX Runtime)")
    predict.add_argument("export_dir")
    predict.add_argument("texts", nargs="*", help="texts to answer")
    predict.add_argument("--runtime", choices=["savedmodel", "onnx"], default="onnx")
    predict.add_argument("--input", default=None, help="a JSON Lines file: one JSON string per line")
    predict.add_argument("--generate", action="store_true", help="lm: greedy continuations instead of scores")
    predict.set_defaults(func=_cmd_predict)

    serve = sub.add_parser("serve", help="a model server (KServe, TF Serving's REST protocol) on the ONNX export")
    serve.add_argument("export_dir")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    serve.add_argument("--name", default=None, help="model name in the URL (default: the export's name)")
    serve.add_argument("--max-texts", type=int, default=256, help="most texts per request")
    serve.set_defaults(func=_cmd_serve)

    kit = sub.add_parser("kit", help="TF Serving / KServe deployment files for one or more exports")
    kit.add_argument("export_dirs", nargs="+")
    kit.add_argument("--out", required=True, help="folder for models.config, docker-compose.yml, ...")
    kit.add_argument("--storage-uri", default=None, help="KServe storageUri of the savedmodel/NAME folder")
    kit.add_argument("--versions", default="latest:1",
                     help="version policy: latest:N | all | specific:1,2 (default latest:1)")
    kit.set_defaults(func=_cmd_kit)
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """`predict DIR --runtime onnx "text" ...`: texts may follow the options
    (argparse alone would stop collecting positionals at the first option)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "command", None) != "predict" or any(e.startswith("--") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.texts = [*args.texts, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    return pipelines_cli.main(argv, parse)


if __name__ == "__main__":
    sys.exit(main())
