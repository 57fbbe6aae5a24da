"""`keras_seq.export.to_savedmodel`: a Keras model -> one verified version of a TF Serving
model folder (``PATH/VERSION/``; point ``--model_base_path`` at PATH).

With `task` (classify, tag, lm) the signatures are those of ``keras-seq export``
(see `keras_seq.export.savedmodel.signatures`). Without one, the model's own outputs are
exported, named after its output layers:

* ``serving_default``: ``text`` (a batch of strings) -> the outputs, plus
  ``lengths`` (tokens per text; the model saw them right-padded with id 0), when
  a `tokenizer` is given; otherwise the model's inputs -> the outputs;
* ``predict_ids``: the model's inputs -> the outputs (with a tokenizer).

Either way: warmup records that TF Serving replays at load time, a reload in a
fresh process that imports neither keras nor keras_seq (tf.saved_model.load,
the TF1 loader, the warmup replay, saved_model_cli, and the C API for a text
signature) whose answers must equal this process' ones, then an atomic rename
into place.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_seq.export.checks.probes import adversarial_texts
from keras_seq.export.checks.processes import remove_debris, scratch_dir
from keras_seq.export.checks.verify import text_feeds, verify_savedmodel
from keras_seq.export.savedmodel.signatures import (
    TEXT,
    _at_least_one_step,
    install_atomically,
    text_requests,
    write_savedmodel,
    write_warmup,
)

logger = logging.getLogger(__name__)
DEFAULT_WARMUP = ["", "A short example.", "This one is a little longer, with punctuation: (yes) - and numbers 42!"]


def _tensor_name(name: str, fallback: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", name or "") or fallback
    return name if name[0].isalpha() else f"x{name}"


class ModelFunctions:
    """The signatures of a task-less export: the model's outputs, by output layer name."""

    def __init__(self, model: keras.Model, encoder=None) -> None:
        if not getattr(model, "inputs", None):
            raise ValueError(
                f"model {model.name!r} has no inputs yet: build it on keras.Input(...) (or call it once) before export"
            )
        self.model, self.encoder = model, encoder
        self.input_specs = [
            tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=_tensor_name(t.name, f"input_{i}"))
            for i, t in enumerate(model.inputs)
        ]
        if len({s.name for s in self.input_specs}) < len(self.input_specs):
            self.input_specs = [
                tf.TensorSpec(s.shape, s.dtype, name=f"input_{i}") for i, s in enumerate(self.input_specs)
            ]
        names = list(getattr(model, "output_names", None) or [])
        count = len(model.outputs)
        self.output_names = (
            [_tensor_name(n, f"output_{i}") for i, n in enumerate(names)]
            if len(set(names)) == count
            else [f"output_{i}" for i in range(count)]
        )
        if encoder is not None:
            if len(self.input_specs) != 1 or self.input_specs[0].shape.rank != 2:
                raise ValueError(
                    f"a raw-text signature feeds one (batch, time) ids input; model {model.name!r} "
                    f"takes {[tuple(s.shape) for s in self.input_specs]} (export it without "
                    "tokenizer=, or with task=)"
                )
            if "lengths" in self.output_names:
                raise ValueError("an output layer named 'lengths' clashes with the text signature's lengths output")

    def signatures(self) -> dict:
        ids = (self.predict, self.input_specs)
        if self.encoder is None:
            return {"serving_default": ids}
        return {"serving_default": (self.predict_text, [TEXT]), "predict_ids": ids}

    def resources(self) -> list:
        return [self.model] + ([self.encoder] if self.encoder is not None else [])

    def predict(self, *inputs):
        outputs = self.model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        if isinstance(outputs, dict):
            outputs = [outputs[k] for k in outputs]
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(self.output_names, outputs))

    def predict_text(self, text):
        ids = self.encoder.encode(text)
        answer = self.predict(tf.cast(_at_least_one_step(ids.to_tensor(0)), self.input_specs[0].dtype))
        answer["lengths"] = ids.row_lengths()
        return answer


def probe_feed(model: keras.Model, specs: list) -> dict:
    """Two rows per input, the second right-padded: ids below the smallest Embedding's
    vocabulary for integer inputs (and for float inputs when the model embeds), else normals."""
    rng = np.random.default_rng(0)
    vocab = min(
        (int(layer.input_dim) for layer in model.layers if isinstance(layer, keras.layers.Embedding)), default=None
    )
    feed = {}
    for spec in specs:
        shape = [2] + [d if d is not None else (5 if i == 0 else 3) for i, d in enumerate(spec.shape[1:])]
        dtype = spec.dtype.as_numpy_dtype
        if spec.dtype.is_integer or vocab is not None:
            value = rng.integers(1, max(vocab or 50, 2), size=shape)
            if len(shape) > 1:
                value[1, shape[1] // 2 + 1 :] = 0
        else:
            value = rng.normal(size=shape)
        feed[spec.name] = value.astype(dtype)
    return feed


def answers_for(functions, feeds: dict) -> dict:
    """This process' answers: {signature: {output: array}} for each signature fed."""
    out = {}
    for name, (fn, spec) in functions.signatures().items():
        if name in feeds:
            args = [tf.constant(feeds[name][s.name], dtype=s.dtype) for s in spec]
            result = tf.function(fn, input_signature=spec, autograph=False)(*args)
            out[name] = {k: v.numpy() for k, v in result.items()}
    return out


def write_version(functions, staged: Path, name: str, warmup: dict, feeds: dict, verify: bool) -> tuple:
    """Writes the SavedModel and its warmup records to `staged`, computes this process'
    answers to `feeds` and (with `verify`) checks a fresh process gives the same;
    returns (answers, verification report or None)."""
    logger.info("writing the SavedModel ...")
    write_savedmodel(functions, staged)
    write_warmup(staged, name, warmup)
    reference = answers_for(functions, feeds)
    report = None
    if verify:
        logger.info(
            "verifying it in a fresh process (tf.saved_model.load, TF1 loader, warmup, saved_model_cli%s) ...",
            ", C API" if set(feeds["serving_default"]) == {"text"} else "",
        )
        report = verify_savedmodel(staged, feeds, reference)
    return reference, report


def write_signature_def(savedmodel: Path, out: Path) -> Path:
    """The SavedModel's signatures, as TF Serving's metadata API answers them
    (``{"signature_def": {NAME: SignatureDef}}`` in protobuf's JSON form), to ``out/signature_def.json``:
    what `keras-seq serve` answers at ``GET /v1/models/NAME/metadata``."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    from keras_seq.contracts.export_dir import SIGNATURE_DEF_FILE
    from keras_seq.contracts.files import write_json

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((savedmodel / "saved_model.pb").read_bytes())
    signatures = {
        key: json_format.MessageToDict(
            value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for key, value in sorted(saved.meta_graphs[0].signature_def.items())
        if not key.startswith("__")  # __saved_model_init_op: TF Serving leaves it out too
    }
    return write_json(out / SIGNATURE_DEF_FILE, {"signature_def": signatures})


def version_target(model_dir: Path, version: int | None, overwrite: bool) -> Path:
    """``model_dir/VERSION`` (the next free version when None), checked."""
    if version is None:
        versions = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()] if model_dir.is_dir() else []
        version = max(versions, default=0) + 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer; received {version!r}")
    target = model_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass --overwrite to replace it, or another --version)")
    return target


def to_savedmodel(
    model: keras.Model,
    path: str | Path,
    *,
    tokenizer=None,
    labels: list[str] | None = None,
    task: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    max_len: int | None = None,
    warmup_texts: list[str] | None = None,
    verify: bool = True,
) -> dict:
    """Writes `model` as version `version` (default: the next) of the TF Serving model folder
    `path`, verified in a fresh process and installed atomically; returns a summary
    (``savedmodel``: the version folder, ``signatures``, ``verification``).

    `tokenizer`: the `keras_seq.pipelines.TextTokenizer` the model was trained with (or its
    folder); it adds the raw-text ``serving_default``. `task` (classify, tag, lm; needs the
    tokenizer, and `labels` for classify and tag) gives the task signatures of ``keras-seq
    export``; without it the model's own outputs are exported. `max_len` bounds the tokens
    a request can cost when the tokenizer has none (default 1024)."""
    from keras_seq.pipelines.text_api import TextTokenizer
    from keras_seq.pipelines.vocab import TextEncoder

    if task is not None and tokenizer is None:
        raise ValueError(
            f"task={task!r} answers raw text, so it needs tokenizer= (the TextTokenizer the model was trained with)"
        )
    if task is None and labels is not None:
        raise ValueError("labels= names the classes of a task; pass task= too (or drop labels=)")
    model_dir = Path(path)
    target = version_target(model_dir, version, overwrite)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_debris(model_dir)
    staged = model_dir / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    with scratch_dir("keras-seq-savedmodel") as tmp:
        try:
            if task is not None:
                functions, warmup, feeds = _task_functions(
                    model, tokenizer, labels, task, tmp, max_len, warmup_texts or DEFAULT_WARMUP
                )
            else:
                encoder = None
                if tokenizer is not None:
                    from keras_seq.export.runs import serving_tokenizer

                    tokenizer = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer.load(tokenizer)
                    spec = serving_tokenizer(tokenizer.spec, tokenizer.directory, tmp / "tokenizer", max_len)
                    encoder = TextEncoder(tmp / "tokenizer")
                functions = ModelFunctions(model, encoder)
                ids_name = "predict_ids" if encoder is not None else "serving_default"
                probe = probe_feed(model, functions.input_specs)
                warmup = {ids_name: [{k: v[:1] for k, v in probe.items()}, probe]}
                feeds = {ids_name: probe}
                if encoder is not None:
                    texts = list(warmup_texts or DEFAULT_WARMUP)
                    warmup.update(text_requests(["serving_default"], texts))
                    feeds.update(text_feeds(texts + adversarial_texts(spec.max_len), ["serving_default"]))
            _, report = write_version(functions, staged, model_dir.name or "model", warmup, feeds, verify)
            install_atomically(staged, target, overwrite)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return {
        "savedmodel": str(target),
        "version": int(target.name),
        "task": task,
        "signatures": {k: [s.name for s in v[1]] for k, v in functions.signatures().items()},
        "outputs": None if task else functions.output_names,
        "verification": report,
    }


def _task_functions(model, tokenizer, labels, task, tmp: Path, max_len, warmup_texts):
    from keras_seq.export.runs import check_padding_invariance, in_memory_run, stage_tokenizer
    from keras_seq.export.savedmodel.signatures import ServingFunctions
    from keras_seq.pipelines.vocab import TextEncoder

    run = in_memory_run(model, tokenizer, labels, task, tmp / "run")
    check_padding_invariance(run)
    spec = stage_tokenizer(run, tmp / "tokenizer", max_len)
    functions = ServingFunctions(run, TextEncoder(tmp / "tokenizer"))
    signatures = run.export_part.text_signatures
    texts = list(warmup_texts) + adversarial_texts(spec.max_len)
    return functions, text_requests(signatures, warmup_texts), text_feeds(texts, signatures)
