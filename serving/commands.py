"""The serving room's subcommands: ``predict``, ``serve``, ``kit``.

`predict` answers from an export in either runtime (`OnnxPredictor`: no
TensorFlow; `SavedModelPredictor`); `serve` runs `keras_seq.serving.server.serve`;
`kit` runs `keras_seq.serving.tfserving_kit.write_kit`.
"""
from __future__ import annotations

import argparse
import json
import sys

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
                items.append((f"line {number}: not valid UTF-8 (byte {error.start}); "
                              "write the text as a JSON string with \\u escapes",))
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
        print(f"keras-seq predict: {len(failed)} of {len(items)} inputs got an error (line {shown}); "
              "the others were answered", file=sys.stderr)
        return 1
    return 0


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
        return value
    return parse


def _cmd_serve(args: argparse.Namespace) -> int:
    from keras_seq.serving.server import serve

    print(f"serving {args.export_dir} on http://{args.host}:{args.port}", file=sys.stderr)
    serve(args.export_dir, port=args.port, host=args.host, name=args.name, max_texts=args.max_texts,
          max_body_bytes=args.max_body_bytes, body_timeout=args.body_timeout, head_timeout=args.head_timeout,
          int8=args.int8)
    return 0


def _cmd_kit(args: argparse.Namespace) -> int:
    if not args.export_dirs and not args.train:
        raise ValueError("give one or more export folders (serving) and/or --train CONFIG (a training job)")
    if args.train:
        from keras_seq.serving.training_kit import write_training_kit

        job = write_training_kit(args.train, args.out, workers=args.workers, image=args.image, claim=args.claim,
                                 sets=args.set or [], name=args.job_name,
                                 data_service_workers=args.data_service_workers, cpu=args.cpu, memory=args.memory,
                                 gpus=args.gpus, wheel=args.wheel, namespace=args.namespace)
        print("\n".join(str(p) for p in job["files"]))
        print(f"training job: {' '.join(job['command'])}\n  image {job['image']}; run directory {job['run']}",
              file=sys.stderr)
        if not args.export_dirs:
            return 0
    from keras_seq.serving.tfserving_kit import write_kit

    kit = write_kit(args.export_dirs, args.out, storage_uri=args.storage_uri, versions=args.versions or "latest:1",
                    max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros,
                    onnx=args.onnx, wheel=args.wheel, namespace=args.namespace)
    print("\n".join(str(p) for p in kit["files"]))
    for target, urls in kit["urls"].items():
        for name, url in urls.items():
            print(f"{target}: {name} -> {url}")
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"a port is 1-65535; got {port}")
    return port


def add_commands(sub) -> None:
    """Adds ``predict``, ``serve`` and ``kit`` to the CLI's subparsers."""
    predict = sub.add_parser("predict", help="answers from an exported model (SavedModel or ONNX Runtime)")
    predict.add_argument("export_dir")
    predict.add_argument("texts", nargs="*", help="texts to answer")
    predict.add_argument("--runtime", choices=["savedmodel", "onnx"], default="onnx")
    predict.add_argument("--input", default=None, help="a JSON Lines file: one JSON string per line")
    predict.add_argument("--generate", action="store_true", help="lm: greedy continuations instead of scores")
    predict.add_argument("--int8", action="store_true", help="onnx: the export's int8 graphs (export --int8)")
    predict.set_defaults(func=_cmd_predict, trailing_texts=True)

    serve = sub.add_parser("serve", help="a model server (KServe, TF Serving's REST protocol) on the ONNX export")
    serve.add_argument("export_dir")
    serve.add_argument("--port", type=_port, default=8080)
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default loopback)")
    serve.add_argument("--name", default=None, help="model name in the URL (default: the export's name)")
    serve.add_argument("--int8", action="store_true", help="answer from the export's int8 ONNX graphs")
    serve.add_argument("--max-texts", type=_positive(int), default=256, help="most texts per request (V1 and V2)")
    serve.add_argument("--max-body-bytes", type=_positive(int), default=4 * 1024 * 1024,
                       help="larger request bodies get 413 (default 4 MiB)")
    serve.add_argument("--body-timeout", type=_positive(float), default=30.0,
                       help="seconds for a request body to arrive (408 after)")
    serve.add_argument("--head-timeout", type=_positive(float), default=10.0,
                       help="seconds for a request head, from connecting or the previous answer (then closed)")
    serve.set_defaults(func=_cmd_serve)

    kit = sub.add_parser("kit", help="TF Serving / KServe deployment files for one or more exports, and/or a "
                         "Kubeflow TFJob to train a config on several workers (--train)")
    kit.add_argument("export_dirs", nargs="*")
    kit.add_argument("--out", required=True, help="folder for models.config, docker-compose.yml, ...")
    kit.add_argument("--storage-uri", action="append", metavar="[NAME=]URI",
                     help="KServe storageUri of a model's savedmodel/NAME folder, one per model (repeatable; "
                     "default pvc://models/NAME)")
    kit.add_argument("--versions", action="append", metavar="[NAME=]POLICY",
                     help="TF Serving version policy, latest:N | all | specific:1,2; NAME=POLICY for one model, "
                     "a bare POLICY for all (default latest:1)")
    kit.add_argument("--max-batch-size", type=_positive(int), default=64, help="server-side batching (default 64)")
    kit.add_argument("--batch-timeout-micros", type=_positive(int), default=2000,
                     help="longest wait for a batch to fill (default 2000)")
    kit.add_argument("--onnx", action="store_true", help="also a container for `keras-seq serve` (no TensorFlow) "
                     "and its KServe InferenceService")
    kit.add_argument("--wheel", default=None, help="the keras-seq wheel the container installs (default: built "
                     "from this source tree)")
    kit.add_argument("--namespace", default=None, help="Kubernetes namespace of the InferenceServices / the job")
    train = kit.add_argument_group("training job (--train)")
    train.add_argument("--train", default=None, metavar="CONFIG", help="a TFJob training this config (a shipped "
                       "name or a TOML file) with MultiWorkerMirroredStrategy")
    train.add_argument("--workers", type=_positive(int), default=2, help="pods: 1 chief + N-1 workers (default 2)")
    train.add_argument("--image", default="keras-seq-train:latest", help="the training image (train/Dockerfile "
                       "builds one)")
    train.add_argument("--claim", default="keras-seq-runs", help="the ReadWriteMany PersistentVolumeClaim mounted "
                       "at /runs in every pod (data, run and backup directories)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="config overrides for the pods "
                       "(e.g. data.source=\"/runs/data/imdb.tar.gz\")")
    train.add_argument("--job-name", default=None, help="the TFJob's name (default: the config's, as a DNS label)")
    train.add_argument("--data-service-workers", type=int, default=0, help="also a tf.data service with this many "
                       "workers feeding the (single) trainer")
    train.add_argument("--cpu", default="4", help="CPU per training pod (default 4)")
    train.add_argument("--memory", default="8Gi", help="memory per training pod (default 8Gi)")
    train.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu per training pod (default 0)")
    kit.set_defaults(func=_cmd_kit)
