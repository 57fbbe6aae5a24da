"""The serving room's subcommands: ``predict`` and ``serve``.

`predict` answers from an export in either runtime (`OnnxPredictor`: no
TensorFlow; `SavedModelPredictor`); `serve` runs `keras_seq.serving.server.serve`;
"""

from __future__ import annotations

import argparse
import json
import sys

from keras_seq._command_line import ExitCode, add_command
from keras_seq.contracts.answers import error_answer


def read_jsonl_texts(path: str) -> list:
    """One JSON string per line -> a list of str, or an error message (str in a
    one-item tuple) for a line that holds something else. Every line gets its own
    result, whatever it holds (a 5,000-digit number, nesting 3,000 deep, bad bytes)."""
    items: list = []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (the --input file)") from None
    with f:
        for number, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\r\n")
            try:
                value = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                items.append(
                    (
                        f"line {number}: not valid UTF-8 (byte {error.start}); "
                        "write the text as a JSON string with \\u escapes",
                    )
                )
                continue
            except json.JSONDecodeError as error:
                items.append((f"line {number}: not valid JSON ({error.msg})",))
                continue
            except RecursionError:
                items.append((f"line {number}: not valid JSON (nested too deeply)",))
                continue
            except ValueError as error:  # e.g. an integer past Python's digit limit
                items.append((f"line {number}: not valid JSON ({str(error).split(';')[0][:120]})",))
                continue
            if not isinstance(value, str):
                items.append((f"line {number}: expected a JSON string, got {type(value).__name__}",))
                continue
            items.append(value)
    if not items:
        raise ValueError(f"{path}: the --input file is empty (expected one JSON string per line)")
    return items


def answer_all(predict, items: list) -> list[dict]:
    """Answers the texts among `items` together; error items pass through, and a
    text the model cannot take gets an error without failing the others."""
    texts = [(i, t) for i, t in enumerate(items) if isinstance(t, str)]
    out: list[dict] = [error_answer(item[0]) if isinstance(item, tuple) else {} for item in items]
    try:
        answers = predict([t for _, t in texts])
    except Exception:  # isolate the text at fault
        answers = []
        for _, text in texts:
            try:
                answers.append(predict([text])[0])
            except Exception as error:  # noqa: BLE001 - reported per line
                answers.append(error_answer(f"{type(error).__name__}: {error}"))
    for (i, _), answer in zip(texts, answers):
        out[i] = answer
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    if bool(args.texts) == bool(args.input):
        raise ValueError("give the texts as arguments or --input FILE (JSON Lines), not both / neither")
    items = read_jsonl_texts(args.input) if args.input else list(args.texts)
    if args.runtime == "onnx":
        from keras_seq.serving.predictor import OnnxPredictor

        predictor = OnnxPredictor(args.export_dir, int8=args.int8)
    else:
        if args.int8:
            raise ValueError("--int8 answers from the export's int8 ONNX graphs: use it with --runtime onnx")
        from keras_seq._quiet import import_quietly
        from keras_seq.serving.savedmodel_predictor import SavedModelPredictor

        import_quietly("tensorflow")
        predictor = SavedModelPredictor(args.export_dir)
    predict = predictor.generate if args.generate else predictor.predict
    failed = []
    for number, answer in enumerate(answer_all(predict, items), 1):
        print(json.dumps(answer, ensure_ascii=False))
        if "error" in answer:
            failed.append(number)
    if failed:
        shown = ", ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else "")
        print(
            f"keras-seq predict: {len(failed)} of {len(items)} inputs got an error (line {shown}); "
            "the others were answered",
            file=sys.stderr,
        )
        return ExitCode.PARTIAL
    return 0


def positive(kind, zero: bool = False):
    """An argparse type: a number > 0 (>= 0 with `zero`)."""
    wanted = "a number >= 0" if zero else "a positive number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}") from None
        if not (value >= 0 if zero else value > 0):
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}")
        return value

    return parse


def _cmd_serve(args: argparse.Namespace) -> int:
    from keras_seq.serving.model_config import parse_label
    from keras_seq.serving.server import serve

    what = args.model_config_file or ", ".join(args.export_dirs)
    print(f"serving {what} on http://{args.host}:{args.port}", file=sys.stderr)
    serve(
        args.export_dirs,
        port=args.port,
        host=args.host,
        name=args.name,
        max_texts=args.max_texts,
        max_body_bytes=args.max_body_bytes,
        body_timeout=args.body_timeout,
        head_timeout=args.head_timeout,
        int8=args.int8,
        model_config_file=args.model_config_file,
        versions=args.versions,
        labels=dict(parse_label(item) for item in args.labels),
        poll_seconds=args.poll_seconds,
        drain_grace=args.drain_grace,
        drain_seconds=args.drain_seconds,
        demo_page=args.demo_page,
        access_log=args.access_log,
        intra_op_threads=args.intra_op_threads,
        batching=batching_options(
            args.batching,
            args.batching_parameters_file,
            max_batch_size=args.max_batch_size,
            batch_timeout_micros=args.batch_timeout_micros,
            num_batch_threads=args.num_batch_threads,
        ),
    )
    return 0


def batching_options(enabled: bool | None, parameters_file: str | None = None, **options: int | None):
    """The server's `BatchingOptions` from the serve flags: TF Serving's batching parameters file
    (if given), then the flags over it. On by default (`enabled` None; unlike TF Serving, which
    needs --enable_batching: it measured faster under load and no slower for one client,
    benchmarks/bench_server.py); None when `enabled` is False."""
    import dataclasses

    from keras_seq.serving.batching import BatchingOptions, read_batching_parameters

    chosen = {name: value for name, value in options.items() if value is not None}
    if enabled is False:
        if parameters_file or chosen:
            raise ValueError("--no-batching cannot be given with batching options")
        return None
    base = read_batching_parameters(parameters_file) if parameters_file else BatchingOptions()
    return dataclasses.replace(base, **chosen)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1-65535; got {port}")
    return port


def add_commands(sub) -> None:
    """Adds ``predict`` and ``serve`` to the CLI's subparsers."""
    predict = add_command(
        sub,
        "predict",
        help="answers from an exported model (ONNX Runtime or the SavedModel)",
        description="Prints one JSON answer per text, in order: the task's answer shape "
        "(keras_seq.contracts.answers). With --input, every line of a JSON Lines file gets its answer or its "
        "own error, and the command exits 3 when some lines failed.",
        examples=[
            'keras-seq predict exports/imdb "a good film , not bad at all"',
            "keras-seq predict exports/ewt --input sentences.jsonl --runtime savedmodel",
        ],
    )
    predict.add_argument("export_dir", help="an export directory written by keras-seq export")
    predict.add_argument("texts", nargs="*", help="texts to answer")
    predict.add_argument("--runtime", choices=["savedmodel", "onnx"], default="onnx", help="which artifact answers")
    predict.add_argument("--input", default=None, help="a JSON Lines file: one JSON string per line")
    predict.add_argument("--generate", action="store_true", help="lm: greedy continuations instead of scores")
    predict.add_argument("--int8", action="store_true", help="onnx: the export's int8 graphs (export --int8)")
    predict.set_defaults(func=_cmd_predict, trailing_texts=True)

    serve = add_command(
        sub,
        "serve",
        help="a model server on the ONNX export (TF Serving's REST API and model lifecycle, KServe V2)",
        description="Answers TF Serving's REST API (/v1/models/NAME[/versions/N|/labels/L]:predict, status, "
        "metadata) and KServe's V2 protocol from ONNX Runtime, without TensorFlow. Serves the numbered version "
        "folders of each export's savedmodel/NAME (or of a base path, or of TF Serving's models.config), "
        "polls them, loads and checks a new version off the request path, switches to it, and unloads the "
        "old one when its requests end. Binds loopback unless --host says otherwise. SIGTERM drains: "
        "readiness turns false, the listener closes after --drain-grace, requests in flight finish.",
        examples=[
            "keras-seq serve exports/imdb",
            "keras-seq serve exports/imdb --versions latest:2 --labels stable=1 --labels canary=2",
            "keras-seq serve --model-config-file kit/models.config --host 0.0.0.0 --port 8501",
        ],
    )
    serve.add_argument("export_dirs", nargs="*", help="export directories, or base paths of numbered versions")
    serve.add_argument(
        "--model-config-file", default=None, help="TF Serving's models.config (names, base paths, policies, labels)"
    )
    serve.add_argument("--versions", default="latest:1", help="version policy: latest:N, all or specific:1,2")
    serve.add_argument(
        "--labels", action="append", default=[], help="LABEL=VERSION (repeat): version labels (default: none)"
    )
    serve.add_argument(
        "--poll-seconds",
        type=positive(float, zero=True),
        default=1.0,
        help="how often base paths are looked at again (0: never)",
    )
    serve.add_argument(
        "--drain-grace",
        type=positive(float, zero=True),
        default=2.0,
        help="seconds after SIGTERM that new connections are still taken",
    )
    serve.add_argument(
        "--drain-seconds", type=positive(float), default=30.0, help="seconds requests in flight get after that"
    )
    serve.add_argument("--port", type=_port, default=8080, help="the port to listen on")
    serve.add_argument("--host", default="127.0.0.1", help="the interface to listen on")
    serve.add_argument("--name", default=None, help="model name in the URL (default: the export's name)")
    serve.add_argument("--int8", action="store_true", help="answer from the export's int8 ONNX graphs")
    serve.add_argument(
        "--demo-page",
        action="store_true",
        help="also serve the JavaScript demo page at / (answers in the browser; needs js/ with make js-install)",
    )
    serve.add_argument("--max-texts", type=positive(int), default=256, help="most texts per request (V1 and V2)")
    serve.add_argument(
        "--access-log", action="store_true", help="log one line per request (off by default, as in TF Serving)"
    )
    serve.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="answer concurrent requests in batches, as TF Serving's --enable_batching (default: on)",
    )
    serve.add_argument(
        "--batching-parameters-file",
        default=None,
        help="TF Serving's BatchingParameters text file (keras-seq kit writes batching_parameters.txt)",
    )
    serve.add_argument("--max-batch-size", type=positive(int), default=None, help="texts per batch (default 64)")
    serve.add_argument(
        "--batch-timeout-micros",
        type=positive(int, zero=True),
        default=None,
        help="the longest a request waits for others to join its batch (default 0: no waiting)",
    )
    serve.add_argument(
        "--num-batch-threads", type=positive(int), default=None, help="batches answered at once (default: cores)"
    )
    serve.add_argument(
        "--intra-op-threads",
        type=positive(int, zero=True),
        default=1,
        help="ONNX Runtime threads per call (default 1: requests run side by side; 0: every core)",
    )
    serve.add_argument(
        "--max-body-bytes", type=positive(int), default=4 * 1024 * 1024, help="larger request bodies get 413"
    )
    serve.add_argument(
        "--body-timeout", type=positive(float), default=30.0, help="seconds for a request body to arrive (408 after)"
    )
    serve.add_argument(
        "--head-timeout",
        type=positive(float),
        default=10.0,
        help="seconds for a request head, from connecting or the previous answer (then closed)",
    )
    serve.set_defaults(func=_cmd_serve)
