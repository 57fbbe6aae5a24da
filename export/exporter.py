"""`keras-seq export RUN_DIR --out EXPORT_DIR`: both artifacts, verified, then
installed atomically.

EXPORT_DIR/
  export.json                  task, labels, signatures, opset, tool versions
  savedmodel/NAME/VERSION/     TF Serving layout; vocabularies in assets/,
                               warmup requests in assets.extra/
  onnx/model.onnx              native RNN/GRU/LSTM nodes, opset 18
  onnx/model.json              what the ONNX-side predictor needs beside it
  onnx/tokenizer.json, vocab files, label file

Order of work: everything is built in hidden staging folders beside its
target, the SavedModel is reloaded in a fresh process and checked against the
exporting model's answers, and only then renamed into place -- a server
polling ``savedmodel/NAME`` never sees a half-written or unverified version.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from keras_seq.contracts.export_dir import ONNX_MODEL_FILE, ExportDirectory, write_export_info
from keras_seq.export.checks.probes import adversarial_texts
from keras_seq.export.checks.processes import remove_debris
from keras_seq.export.checks.verify import int8_agreement, text_feeds, verify_onnx
from keras_seq.export.model_card import write_model_card
from keras_seq.export.runs import TrainedRun, check_padding_invariance, load_trained_run, stage_tokenizer
from keras_seq.export.savedmodel.keras_model import DEFAULT_WARMUP, version_target, write_version
from keras_seq.export.savedmodel.signatures import ServingFunctions, install_atomically, text_requests

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
logger = logging.getLogger(__name__)


def _tool_versions() -> dict:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf

    import keras_seq

    return {
        "keras_seq": keras_seq.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _staging(target: Path) -> Path:
    staged = target.with_name(f".{target.name}.staging-{os.getpid()}")
    if staged.exists():
        shutil.rmtree(staged)
    return staged


def export_run(run_dir: str | Path, out: str | Path, *, name: str | None = None, **options) -> dict:
    """Exports a trained run (``keras-seq export``); returns the export summary (also in export.json).
    `options`: those of `export_trained`."""
    return export_trained(load_trained_run(run_dir), out, name=name or Path(run_dir).resolve().name, **options)


def export(
    model,
    out: str | Path,
    *,
    tokenizer,
    labels: list[str] | None = None,
    task: str = "classify",
    name: str = "model",
    **options,
) -> dict:
    """Exports a model trained in your own code: the same layout as ``keras-seq export``
    (a verified SavedModel for TF Serving with raw-text signatures, the ONNX model and its
    tokenizer files, export.json), answered by ``keras-seq predict`` / ``serve`` and
    `OnnxPredictor`. `tokenizer`: the `keras_seq.pipelines.TextTokenizer` the model was
    trained with (or its saved folder); `labels`: class (or tag) names by id; `task`: what
    the model's output means (classify: probabilities (N, C); tag: (N, L, C); lm).
    `options`: those of `export_trained` (version, overwrite, max_len, verify, ...)."""
    import tempfile

    from keras_seq.export.runs import in_memory_run

    with tempfile.TemporaryDirectory(prefix="keras-seq-model-") as tmp:
        return export_trained(in_memory_run(model, tokenizer, labels, task, Path(tmp)), out, name=name, **options)


def export_trained(
    run: TrainedRun,
    out: str | Path,
    *,
    name: str,
    version: int | None = None,
    overwrite: bool = False,
    max_len: int | None = None,
    generate_length: int = 200,
    warmup_texts: list[str] | None = None,
    verify: bool = True,
    int8: bool = False,
) -> dict:
    """Both artifacts of a trained model, verified, then installed atomically; returns the summary.
    `int8`: also int8 ONNX graphs (`keras_seq.export.onnx.quantize`), their agreement with the float
    answers measured (not required) on the check texts."""
    from keras_seq.export.onnx.task_graphs import write_onnx_dir

    check_padding_invariance(run)
    out = Path(out)
    layout = ExportDirectory(out)
    if not _NAME.match(name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-' (it becomes a URL path)")
    model_dir = layout.model_dir(name)
    target = version_target(model_dir, version, overwrite)
    version = int(target.name)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_debris(model_dir, out)  # staging and scratch folders of exports killed before

    from keras_seq.pipelines.vocab import TextEncoder

    staged_onnx, staged = _staging(layout.onnx_dir), _staging(target)
    try:
        spec = stage_tokenizer(run, staged_onnx, max_len)
        functions = ServingFunctions(run, TextEncoder(staged_onnx), generate_length)
        warmup = list(warmup_texts or DEFAULT_WARMUP)
        texts = warmup + adversarial_texts(spec.max_len)
        signatures = run.export_part.text_signatures
        reference, report = write_version(
            functions, staged, name, text_requests(signatures, warmup), text_feeds(texts, signatures), verify
        )
        logger.info("writing the ONNX model ...")
        onnx_info = write_onnx_dir(run, staged_onnx, generate_length, int8=int8)
        if verify:
            logger.info("checking ONNX Runtime against the SavedModel's answers ...")
            report["onnx"] = verify_onnx(staged_onnx, texts, reference)
            if int8:
                report["onnx_int8"] = {**onnx_info["int8"], **int8_agreement(staged_onnx, texts)}
        install_atomically(staged, target, overwrite)
        install_atomically(staged_onnx, layout.onnx_dir, overwrite=True)
    finally:
        for leftover in (staged, staged_onnx):
            if leftover.exists():
                shutil.rmtree(leftover)
    summary = {
        "task": run.task.name,
        "kind": run.kind,
        "name": name,
        "version": version,
        "savedmodel": str(target.relative_to(out)),
        "onnx": str((layout.onnx_dir / ONNX_MODEL_FILE).relative_to(out)),
        "labels": run.labels,
        "labels_file": run.task.label_file,
        "signatures": {k: [s.name for s in v[1]] for k, v in functions.signatures().items()},
        "max_len": spec.max_len,
        "generate_length": generate_length if run.task.generates else None,
        "opset": onnx_info["opset"],
        "onnx_operators": onnx_info["operators"],
        "int8": onnx_info.get("int8"),
        "run": None if run.config.get("from") else str(Path(run.directory).resolve()),
        "tools": _tool_versions(),
        "verification": report,
    }
    write_export_info(out, summary)
    write_model_card(out, summary, _run_metrics(run), None if run.config.get("from") else run.config)
    return summary


def _run_metrics(run: TrainedRun) -> dict | None:
    """The run directory's metrics.json, when the model came from ``keras-seq train``."""
    from keras_seq.contracts import RunDirectory
    from keras_seq.contracts.files import read_json_object

    metrics_file = RunDirectory(run.directory).metrics_file
    return read_json_object(metrics_file, "the run's metrics") if metrics_file.exists() else None


__all__ = ["export", "export_run", "export_trained", "TrainedRun"]
