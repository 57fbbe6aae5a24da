"""The deploy room's subcommand: ``kit`` (`keras_seq.deploy.tfserving.write_kit` for exports,
`keras_seq.deploy.kubeflow.write_training_kit` for ``--train``)."""

from __future__ import annotations

import argparse
import sys

from keras_seq._command_line import add_command
from keras_seq.serving.commands import positive


def _cmd_kit(args: argparse.Namespace) -> int:
    if not args.export_dirs and not args.train:
        raise ValueError("give one or more export folders (serving) and/or --train CONFIG (a training job)")
    if args.train:
        from keras_seq.deploy.kubeflow import write_training_kit

        job = write_training_kit(
            args.train,
            args.out,
            workers=args.workers,
            image=args.image,
            claim=args.claim,
            sets=args.set or [],
            name=args.job_name,
            data_service_workers=args.data_service_workers,
            cpu=args.cpu,
            memory=args.memory,
            gpus=args.gpus,
            wheel=args.wheel,
            namespace=args.namespace,
        )
        print("\n".join(str(p) for p in job["files"]))
        print(
            f"training job: {' '.join(job['command'])}\n  image {job['image']}; run directory {job['run']}",
            file=sys.stderr,
        )
        if not args.export_dirs:
            return 0
    from keras_seq.deploy.tfserving import write_kit

    kit = write_kit(
        args.export_dirs,
        args.out,
        storage_uri=args.storage_uri,
        versions=args.versions or "latest:1",
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        onnx=args.onnx,
        wheel=args.wheel,
        namespace=args.namespace,
        labels=args.labels,
    )
    print("\n".join(str(p) for p in kit["files"]))
    for target, urls in kit["urls"].items():
        for name, url in urls.items():
            print(f"{target}: {name} -> {url}")
    if args.demo_page:
        from pathlib import Path

        from keras_seq.serving.demo_page import write_demo_site

        for export_dir in args.export_dirs:
            site = write_demo_site(export_dir, Path(args.out) / "demo" / Path(export_dir).resolve().name)
            print(f"demo page: {site}/index.html (host the folder as static files)")
    return 0


def add_commands(sub) -> None:
    """Adds ``kit`` to the CLI's subparsers."""
    kit = add_command(
        sub,
        "kit",
        help="TF Serving / KServe deployment files for exports, and/or a Kubeflow TFJob (--train)",
        description="For exports: TF Serving's models.config, batching and monitoring configs, a docker-compose.yml "
        "(tensorflow/serving at the exporting TensorFlow's version) and a KServe InferenceService per model; with "
        "--onnx also a container for keras-seq serve. With --train: a Kubeflow TFJob training a config on several "
        "workers. Prints the files it wrote.",
        examples=[
            "keras-seq kit exports/imdb --out kit",
            "keras-seq kit exports/imdb exports/ewt --out kit --onnx --versions imdb=latest:2",
            "keras-seq kit --train imdb_sentiment --workers 4 --out train-kit",
        ],
    )
    kit.add_argument("export_dirs", nargs="*", help="export directories written by keras-seq export")
    kit.add_argument("--out", required=True, help="folder for models.config, docker-compose.yml, ...")
    kit.add_argument(
        "--storage-uri",
        action="append",
        metavar="[NAME=]URI",
        help="KServe storageUri of a model's savedmodel/NAME folder, one per model (repeatable; "
        "default pvc://models/NAME)",
    )
    kit.add_argument(
        "--versions",
        action="append",
        metavar="[NAME=]POLICY",
        help="TF Serving version policy, latest:N | all | specific:1,2; NAME=POLICY for one model, "
        "a bare POLICY for all (default latest:1)",
    )
    kit.add_argument(
        "--labels",
        action="append",
        metavar="[NAME:]LABEL=VERSION",
        help="TF Serving version labels (e.g. stable=1, canary=2); NAME: for one of several models (default: none)",
    )
    kit.add_argument("--max-batch-size", type=positive(int), default=64, help="server-side batching (default 64)")
    kit.add_argument(
        "--batch-timeout-micros",
        type=positive(int),
        default=2000,
        help="longest wait for a batch to fill (default 2000)",
    )
    kit.add_argument(
        "--onnx",
        action="store_true",
        help="also a container for `keras-seq serve` (no TensorFlow) and its KServe InferenceService",
    )
    kit.add_argument(
        "--wheel",
        default=None,
        help="the keras-seq wheel the container installs (default: built from this source tree)",
    )
    kit.add_argument("--namespace", default=None, help="Kubernetes namespace of the InferenceServices / the job")
    kit.add_argument(
        "--demo-page",
        action="store_true",
        help="also OUT/demo/EXPORT/: the JavaScript demo page with the model, a static site (needs js/ installed)",
    )
    train = kit.add_argument_group("training job (--train)")
    train.add_argument(
        "--train",
        default=None,
        metavar="CONFIG",
        help="a TFJob training this config (a shipped name or a TOML file) with MultiWorkerMirroredStrategy",
    )
    train.add_argument("--workers", type=positive(int), default=2, help="pods: 1 chief + N-1 workers (default 2)")
    train.add_argument(
        "--image", default="keras-seq-train:latest", help="the training image (train/Dockerfile builds one)"
    )
    train.add_argument(
        "--claim",
        default="keras-seq-runs",
        help="the ReadWriteMany PersistentVolumeClaim mounted at /runs in every pod (data, run and backup directories)",
    )
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help='config overrides for the pods (e.g. data.source="/runs/data/imdb.tar.gz")',
    )
    train.add_argument("--job-name", default=None, help="the TFJob's name (default: the config's, as a DNS label)")
    train.add_argument(
        "--data-service-workers",
        type=int,
        default=0,
        help="also a tf.data service with this many workers feeding the (single) trainer",
    )
    train.add_argument("--cpu", default="4", help="CPU per training pod (default 4)")
    train.add_argument("--memory", default="8Gi", help="memory per training pod (default 8Gi)")
    train.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu per training pod (default 0)")
    kit.set_defaults(func=_cmd_kit)
