"""A trained run directory (from `keras-seq train`), read for export, and the
tokenizer files every exported artifact carries beside the model."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import keras

import keras_seq
from keras_seq.contracts import RunDirectory, TokenizerSpec, read_labels
from keras_seq.export.tasks import TaskExport, export_for
from keras_seq.pipelines.evaluate import load_model
from keras_seq.tasks import Task, get_task
from keras_seq.tasks.tag import crf_layer

# Serving needs a bound on the work one request can cause; runs trained
# without `max_len` are exported with this many tokens (override: --max-len).
DEFAULT_SERVING_MAX_LEN = 1024


@dataclass
class TrainedRun:
    directory: Path
    config: dict
    task: Task
    model: keras.Model
    labels: list[str] | None  # class / tag names by id (None for lm)
    crf: keras_seq.CRF | None
    spec: TokenizerSpec

    @property
    def char_features(self) -> bool:
        return self.task.character_features and len(self.model.inputs) == 2

    @property
    def export_part(self) -> TaskExport:
        """The export room's part of the run's task (signatures, ONNX outputs)."""
        return export_for(self.task)

    @property
    def kind(self) -> str:
        """classify | tag | crf | lm | seq2seq: what the graph's output means."""
        return self.export_part.output_kind(self.model)


def load_trained_run(run_dir: str | Path) -> TrainedRun:
    run = RunDirectory(run_dir).check()
    config = run.config()
    task = get_task(config["task"])
    why = task.not_deployable(config)
    if why:
        raise ValueError(f"{run.path}: {why}")
    spec = run.tokenizer()
    labels = read_labels(run.file(task.label_file)) if task.label_file else None
    model = load_model(run.model)
    return TrainedRun(run.path, config, task, model, labels, crf_layer(model), spec)


def in_memory_run(model: keras.Model, tokenizer, labels: list[str] | None, task: str, directory: Path) -> TrainedRun:
    """A model trained in your own code, with its tokenizer (a `keras_seq.pipelines.TextTokenizer`
    or a folder holding ``tokenizer.json``) and label names, laid out in `directory` as a run's
    tokenizer and label files are."""
    from keras_seq.contracts.vocab import Vocabulary
    from keras_seq.pipelines.text_api import TextTokenizer

    task_ = get_task(task)
    tokenizer = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer.load(tokenizer)
    tokenizer.save(directory)
    if task_.label_file:
        if not labels:
            raise ValueError(f"a {task} model needs its label names (labels=[...], by id)")
        Vocabulary(list(labels), "label").save(directory / task_.label_file)
    elif labels:
        raise ValueError(f"a {task} model has no labels")
    return TrainedRun(
        directory,
        {"task": task, "from": "a Keras model in memory"},
        task_,
        model,
        list(labels) if labels else None,
        crf_layer(model),
        TokenizerSpec.load(directory),
    )


def stage_tokenizer(run: TrainedRun, directory: Path, max_len: int | None = None) -> TokenizerSpec:
    """Copies the vocabulary (and label) files into `directory` and writes the
    serving `tokenizer.json`: the run's, with `max_len` bounded for serving."""
    return serving_tokenizer(run.spec, run.directory, directory, max_len, also=(run.task.label_file,))


def serving_tokenizer(
    spec: TokenizerSpec, source: Path, directory: Path, max_len: int | None = None, also: tuple = ()
) -> TokenizerSpec:
    """The tokenizer in `source` (and the files named in `also`) copied to `directory`, its
    ``max_len`` bounded for serving: a model's own, else `max_len`, else DEFAULT_SERVING_MAX_LEN."""
    directory.mkdir(parents=True, exist_ok=True)
    if max_len is not None and spec.max_len is not None and max_len != spec.max_len:
        raise ValueError(
            f"the model was trained with max_len={spec.max_len}; serving truncates the same way "
            f"(drop --max-len, or retrain)"
        )
    limit = spec.max_len or max_len or DEFAULT_SERVING_MAX_LEN
    spec = replace(spec, max_len=limit)
    for name in (spec.vocab_file, spec.char_vocab_file, *also):
        if name:
            shutil.copyfile(Path(source) / name, directory / name)
    spec.save(directory)
    return spec


def check_padding_invariance(run: TrainedRun, tolerance: float = 1e-4) -> None:
    """Refuses models whose answers change with batch padding: the ONNX graph
    masks by `sequence_lens` and would then disagree with Keras. (Character
    taggers saved before the CharacterWordEncoder mask fix carry that bug in
    their saved graph; retrain them.)"""
    if run.task.stream:
        return  # causal: padding after a token cannot change the model's answers
    import numpy as np

    rng = np.random.default_rng(0)
    embeddings = [layer for layer in run.model.layers if isinstance(layer, keras.layers.Embedding)]
    vocab = int(embeddings[0].input_dim) if embeddings else 50
    ids = rng.integers(2, max(vocab, 3), size=(2, 5)).astype("int32")
    ids[1, 3:] = 0
    inputs = [ids]
    if run.char_features:
        char_vocab = int(run.model.get_layer("char_words").vocab_size)
        chars = rng.integers(2, max(char_vocab, 3), size=(2, 5, 3)).astype("int32")
        chars[ids == 0] = 0
        inputs.append(chars)
    padded = [np.pad(x, [[0, 0], [0, 4]] + [[0, 0]] * (x.ndim - 2)) for x in inputs]
    fixed = run.export_part.probe_inputs(run.model, rng)  # inputs the probe does not pad (a decoder's targets)
    inputs, padded = inputs + fixed, padded + fixed
    plain = np.asarray(run.model(inputs if len(inputs) > 1 else inputs[0], training=False))
    more = np.asarray(run.model(padded if len(padded) > 1 else padded[0], training=False))
    plain, more = run.export_part.padding_probe(plain, more, ids)
    if float(np.max(np.abs(plain - more))) > tolerance:
        raise ValueError(
            f"{run.directory}: the model's answers change with batch padding, so no runtime "
            "could reproduce them; it was likely trained before keras-seq fixed the character "
            "encoder's mask -- retrain it"
        )
