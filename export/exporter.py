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

from keras_seq.contracts.export_dir import ONNX_DIR, ONNX_MODEL_FILE, ExportDirectory, write_export_info
from keras_seq.contracts.files import StorageFullError, storage_full
from keras_seq.contracts.writer_lock import one_writer
from keras_seq.export.checks.probes import adversarial_texts
from keras_seq.export.checks.processes import remove_debris
from keras_seq.export.checks.verify import int8_agreement, text_feeds, verify_onnx
from keras_seq.export.model_card import write_model_card
from keras_seq.export.runs import TrainedRun, check_padding_invariance, load_trained_run, stage_tokenizer
from keras_seq.export.savedmodel.keras_model import DEFAULT_WARMUP, version_target, write_signature_def, write_version
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
    text_in: bool = False,
) -> dict:
    """Both artifacts of a trained model, verified, then installed atomically; returns the summary.
    `int8`: also int8 ONNX graphs (`keras_seq.export.onnx.quantize`), their agreement with the float
    answers measured (not required) on the check texts. `text_in`: also ``onnx/model_text.onnx``, the
    tokenizer inside the graph (`keras_seq.export.onnx.text_graph`; needs onnxruntime-extensions),
    checked against the twin's answers on the check texts."""
    check_padding_invariance(run)
    if text_in:  # refused before anything is written
        from keras_seq.export.onnx.text_graph import text_graph_supported

        why = text_graph_supported(run.spec, run.task.name, run.kind)
        if why:
            raise ValueError(f"--text-in (text_in=True): this model cannot have a text-in graph: {why}")
    out = Path(out)
    layout = ExportDirectory(out)
    if not _NAME.match(name):
        raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-' (it becomes a URL path)")
    model_dir = layout.model_dir(name)
    with one_writer(out, "keras-seq export"):  # one writer per export directory, for the whole export
        remove_debris(model_dir, out)  # staging folders of exports killed before (we hold the lock)
        target = version_target(model_dir, version, overwrite)
        staged_onnx, staged = _staging(layout.onnx_dir), _staging(target)
        try:
            summary = _stage(
                run, name, staged, staged_onnx, max_len, generate_length, warmup_texts, verify, int8, text_in
            )
            summary.update(version=int(target.name), savedmodel=str(target.relative_to(out)))
            _install(run, layout, summary, staged, target, staged_onnx, overwrite)
        except Exception as error:
            if storage_full(error):
                raise StorageFullError(
                    f"{out}: the export could not be written (the disk is full or a file-size limit was "
                    "reached); the previous export is kept -- free space and export again"
                ) from error
            raise
        finally:
            for leftover in (staged, staged_onnx):
                if leftover.exists():
                    shutil.rmtree(leftover)
    return summary


def _stage(
    run: TrainedRun,
    name: str,
    staged: Path,
    staged_onnx: Path,
    max_len: int | None,
    generate_length: int,
    warmup_texts: list[str] | None,
    verify: bool,
    int8: bool,
    text_in: bool = False,
) -> dict:
    """Writes and verifies both artifacts in their staging folders; returns the summary."""
    from keras_seq.export.onnx.task_graphs import write_onnx_dir
    from keras_seq.pipelines.vocab import TextEncoder

    spec = stage_tokenizer(run, staged_onnx, max_len)
    functions = ServingFunctions(run, TextEncoder(staged_onnx), generate_length)
    warmup = list(warmup_texts or DEFAULT_WARMUP)
    texts = warmup + adversarial_texts(spec.max_len)
    signatures = run.export_part.text_signatures
    reference, report = write_version(
        functions, staged, name, text_requests(signatures, warmup), text_feeds(texts, signatures), verify
    )
    write_signature_def(staged, staged_onnx)
    logger.info("writing the ONNX model ...")
    onnx_info = write_onnx_dir(run, staged_onnx, generate_length, int8=int8, text_in=text_in)
    if verify:
        logger.info("checking ONNX Runtime against the SavedModel's answers ...")
        report["onnx"] = verify_onnx(staged_onnx, texts, reference)
        if text_in:
            from keras_seq.export.checks.text_graph import verify_text_graph

            report["onnx_text"] = verify_text_graph(staged_onnx, texts)
        if int8:
            report["onnx_int8"] = {**onnx_info["int8"], **int8_agreement(staged_onnx, texts)}
    # The version folder carries its ONNX half too: TF Serving and `keras-seq serve` poll the same
    # numbered folders (TF Serving reads only the SavedModel's files in them).
    shutil.copytree(staged_onnx, staged / ONNX_DIR)
    return {
        "task": run.task.name,
        "kind": run.kind,
        "name": name,
        "version": None,
        "savedmodel": None,
        "onnx": f"{ONNX_DIR}/{ONNX_MODEL_FILE}",
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


def _install(
    run: TrainedRun,
    layout: ExportDirectory,
    summary: dict,
    staged: Path,
    target: Path,
    staged_onnx: Path,
    overwrite: bool,
) -> None:
    """Installs the staged version and ``onnx/``, then export.json; if writing export.json fails
    (a full disk), ``onnx/`` and the version go back to what they were, so the export stays whole."""
    new_version = not target.exists()
    install_atomically(staged, target, overwrite)
    previous_onnx = layout.onnx_dir.with_name(f".{ONNX_DIR}.old-{os.getpid()}")
    if layout.onnx_dir.exists():
        os.replace(layout.onnx_dir, previous_onnx)
    os.replace(staged_onnx, layout.onnx_dir)
    try:
        write_export_info(layout.path, summary)
        write_model_card(layout.path, summary, _run_metrics(run), None if run.config.get("from") else run.config)
    except BaseException:
        shutil.rmtree(layout.onnx_dir, ignore_errors=True)
        if previous_onnx.exists():
            os.replace(previous_onnx, layout.onnx_dir)
        if new_version:
            shutil.rmtree(target, ignore_errors=True)
        raise
    shutil.rmtree(previous_onnx, ignore_errors=True)


def _run_metrics(run: TrainedRun) -> dict | None:
    """The run directory's metrics.json, when the model came from ``keras-seq train``."""
    from keras_seq.contracts import RunDirectory
    from keras_seq.contracts.files import read_json_object

    metrics_file = RunDirectory(run.directory).metrics_file
    return read_json_object(metrics_file, "the run's metrics") if metrics_file.exists() else None


__all__ = ["export", "export_run", "export_trained", "TrainedRun"]
