"""The exporters' subcommand: ``export`` (calls `keras_seq.export.export_run`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_export(args: argparse.Namespace) -> int:
    from keras_seq import register_layers
    from keras_seq.contracts import RunDirectory

    RunDirectory(args.run_dir).check()
    register_layers()  # keras and TensorFlow, quietly for the command
    from keras_seq.export.exporter import export_run

    summary = export_run(
        args.run_dir,
        args.out,
        name=args.name,
        version=args.version,
        overwrite=args.overwrite,
        max_len=args.max_len,
        generate_length=args.generate_length,
        verify=not args.no_verify,
        int8=args.int8,
        text_in=args.text_in,
    )
    report = summary["verification"] or {}
    print(
        json.dumps(
            {
                "savedmodel": str(Path(args.out) / summary["savedmodel"]),
                "onnx": str(Path(args.out) / summary["onnx"]),
                "task": summary["task"],
                "opset": summary["opset"],
                "onnx_operators": summary["onnx_operators"],
                "verified": report.get("checked", "skipped (--no-verify)"),
                "max_abs_diff": {
                    "savedmodel": report.get("max_abs_diff"),
                    "onnx": (report.get("onnx") or {}).get("max_abs_diff"),
                },
                **({"int8": report.get("onnx_int8") or summary.get("int8")} if args.int8 else {}),
            },
            indent=2,
        )
    )
    return 0


def add_commands(sub) -> None:
    """Adds ``export`` to the CLI's subparsers."""
    from keras_seq._command_line import add_command

    export = add_command(
        sub,
        "export",
        help="a trained run -> TF Serving SavedModel + ONNX model, verified",
        description="Writes OUT/savedmodel/NAME/VERSION (raw-text signatures for TF Serving), OUT/onnx/ (native "
        "RNN / GRU / LSTM nodes, the tokenizer files), OUT/export.json and OUT/MODEL_CARD.md. Both artifacts are "
        "checked in fresh processes against each other before they are installed; prints a JSON summary.",
        examples=[
            "keras-seq export runs/imdb --out exports/imdb --name imdb",
            "keras-seq export runs/ewt --out exports/ewt --int8",
        ],
    )
    export.add_argument("run_dir", help="a run directory written by keras-seq train")
    export.add_argument("--out", required=True, help="the export directory")
    export.add_argument("--name", default=None, help="model name in savedmodel/NAME/ (default: the run's folder name)")
    export.add_argument("--version", type=int, default=None, help="version number (default: the next free one)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument(
        "--max-len",
        type=int,
        default=None,
        help="serving truncation for runs trained without max_len (default 1024 tokens)",
    )
    export.add_argument("--generate-length", type=int, default=200, help="lm: tokens the generate signature adds")
    export.add_argument("--no-verify", action="store_true", help="skip the fresh-process verification")
    export.add_argument(
        "--int8",
        action="store_true",
        help="also int8 ONNX graphs (ONNX Runtime's dynamic "
        "quantization of MatMul, Gather and LSTM; GRU / RNN stay float): predict / serve --int8",
    )
    export.add_argument(
        "--text-in",
        action="store_true",
        help="also onnx/model_text.onnx: the tokenizer inside the graph, raw strings in (onnxruntime-extensions; "
        "word-level classifiers and softmax taggers)",
    )
    export.set_defaults(func=_cmd_export)
