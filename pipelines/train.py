"""`keras-seq train`: config -> data -> model -> fit -> RUN_DIR.

RUN_DIR holds ``model.keras`` (the best epoch by ``train.monitor``),
``tokenizer.json`` + ``vocab.txt``, ``labels.txt`` (classify) or ``tags.txt``
(tag), ``config.toml`` (resolved), ``metrics.json``, ``history.csv``,
``curves.png``, ``logs/`` (TensorBoard) and, until metrics.json is written,
``backup/`` (`keras_seq.pipelines.resume`: rerunning the same command resumes
exactly where it stopped; a finished run is refused unless ``overwrite``).
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_seq.contracts import RunDirectory
from keras_seq.pipelines.config import dump_toml
from keras_seq.contracts.errors import replace_atomically, write_json
from keras_seq.pipelines.datasets import (LabelLookup, batched, build_label_vocab, count_split_tokens, encoded_dataset,
                                          epoch_batches, key_counts, prepare_text_dir, split_lengths)
from keras_seq.pipelines.evaluate import (compiled_predict, corpus_from_config, evaluate_run, lm_stream, lm_windows,
                                          tagging_metrics)
from keras_seq.pipelines.readers import Corpus
from keras_seq.pipelines.resume import (RunBackup, best_file, checkpoint_for, history_columns, history_rows,
                                        open_backup)
from keras_seq.pipelines.tokenize import TokenizerSpec
from keras_seq.pipelines.vocab import TextEncoder, load_word_vectors
from keras_seq.tasks import get_task

logger = logging.getLogger(__name__)


class _TimeLimit(keras.callbacks.Callback):
    """Stops after the epoch that passes `minutes` of training, counted over every process of the run."""

    def __init__(self, minutes: float | None, spent_seconds: float = 0.0) -> None:
        super().__init__()
        self.deadline = None if minutes is None else time.monotonic() + 60.0 * minutes - spent_seconds

    def on_epoch_end(self, epoch, logs=None):
        if self.deadline is not None and time.monotonic() > self.deadline:
            logger.info("time limit reached after epoch %d; stopping", epoch + 1)
            self.model.stop_training = True


class _StatefulValidation(keras.callbacks.Callback):
    """LM: fresh states each epoch; validation loss over the validation tracks
    in order (states carried window to window), logged as val_loss."""

    def __init__(self, validation) -> None:
        super().__init__()
        self.validation = validation

    def _reset(self):
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        self._reset()
        logs["val_loss"] = float(self.model.evaluate(self.validation, verbose=0))
        self._reset()


class TaggingValidation(keras.callbacks.Callback):
    """Tagging: token accuracy (and entity F1 for BIO tags) on the validation
    batches at each epoch end, logged as val_accuracy / val_f1 so checkpoints,
    early stopping and learning-rate decay can select on what is reported
    (validation loss keeps rising on over-confident tokens while accuracy still
    improves)."""

    def __init__(self, validation, tags) -> None:
        super().__init__()
        self.validation, self.tags = validation, tags
        self.predict = None

    def on_epoch_end(self, epoch, logs=None):
        if self.predict is None:
            self.predict = compiled_predict(self.model)
        result = tagging_metrics(self.model, self.predict, self.validation, self.tags)
        logs["val_accuracy"] = result["token_accuracy"]
        if "entity_f1" in result:
            logs["val_f1"] = result["entity_f1"]


def _singletons(counts: dict, encoder, rate: float) -> tuple[int | None, float]:
    """(first id of the words seen once in training, rate): the vocabulary is
    ordered by count, so those words are its tail. `counts`: training token counts."""
    if not rate:
        return None, 0.0
    keys = key_counts(counts, encoder.spec)
    ids = [encoder.vocab.index[t] for t, c in keys.items() if c == 1 and t in encoder.vocab.index]
    return (min(ids), rate) if ids else (None, 0.0)


def _optimizer(train: dict) -> keras.optimizers.Optimizer:
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD,
               "rmsprop": keras.optimizers.RMSprop}
    if train["optimizer"] not in classes:
        raise ValueError(f"train.optimizer must be one of {sorted(classes)}; received {train['optimizer']!r}")
    return classes[train["optimizer"]](learning_rate=train["learning_rate"], clipnorm=train["clipnorm"])


def _limited(dataset, limit):
    return dataset if limit is None else dataset.take(limit)


@dataclass
class TrainingSetup:
    """What a task's `fit_data` reads: the config, the run directory, the corpus and its encoder."""

    config: dict
    run: RunDirectory
    corpus: Corpus
    encoder: TextEncoder
    counts: dict  # training token counts (before rule 7's keys)
    epochs: range  # the epochs still to train (a resumed run starts later)


@dataclass
class FitData:
    """What a task's `fit_data` returns: fit's data and the task's callbacks."""

    train: object  # tf.data.Dataset
    validation: object | None
    callbacks: list
    label_vocab: object | None = None
    steps_per_epoch: int | None = None  # set when `train` streams every epoch in one dataset


def labeled_fit_data(task, setup: TrainingSetup) -> FitData:
    """Examples with labels (classify, tag): bucketed batches, shuffled per epoch, with word dropout."""
    data, train = setup.config["data"], setup.config["train"]
    label_vocab = build_label_vocab(setup.corpus, setup.run.path, task.label_file)
    labels = LabelLookup(label_vocab)
    train_raw = _limited(encoded_dataset(setup.corpus, "train", setup.encoder, labels), data["limit"]).cache()
    val_raw = _limited(encoded_dataset(setup.corpus, "validation", setup.encoder, labels), data["limit"]).cache()
    lengths, val_lengths = split_lengths(train_raw), split_lengths(val_raw)
    batching = dict(tokens_per_batch=train["tokens_per_batch"], max_batch=train["max_batch"],
                    buckets=train["buckets"], cache=False)
    singletons = _singletons(setup.counts, setup.encoder, train.get("unk_singletons", 0.0))
    dropout = dict(rate=train["word_dropout"], singletons_from=singletons[0], singleton_rate=singletons[1])
    train_ds, steps = epoch_batches(train_raw, lengths, setup.epochs, seed=train["seed"], dropout=dropout, **batching)
    validation = batched(val_raw, val_lengths, shuffle=False, **batching)
    callbacks = task.validation_callbacks(validation, label_vocab, train["monitor"])
    return FitData(train_ds, validation, callbacks, label_vocab, steps)


def stream_fit_data(setup: TrainingSetup) -> FitData:
    """One token stream (language models): B parallel tracks in windows; validation by a callback."""
    train = setup.config["train"]
    train_ids = lm_stream(setup.corpus, "train", setup.encoder)
    val_ids = lm_stream(setup.corpus, "validation", setup.encoder)
    train_ds = lm_windows(train_ids, train["lm_batch"], train["lm_window"])
    val_ds = lm_windows(val_ids, train["lm_batch"], train["lm_window"])
    return FitData(train_ds, None, [_StatefulValidation(val_ds)])


def train_run(config: dict, run_dir: str | Path, verbose: int = 1, overwrite: bool = False) -> dict:
    """Trains as configured; returns the metrics also written to metrics.json.

    Rerunning an unfinished run resumes it exactly (same batches, same callback
    state); a finished one raises FileExistsError unless `overwrite`."""
    run = RunDirectory(run_dir)
    config_text = dump_toml(config)
    state = open_backup(run, config_text, overwrite)
    run.path.mkdir(parents=True, exist_ok=True)
    task = get_task(config["task"])
    data, train, m = config["data"], config["train"], config["model"]
    keras.utils.set_random_seed(train["seed"])
    run.config_file.write_text(config_text, encoding="utf-8")
    corpus = corpus_from_config(config)
    chars = bool(data["char_features"]) and task.character_features
    spec = TokenizerSpec(level=data["level"], lower=data["lower"], max_len=data["max_len"], truncate=data["truncate"],
                         char_vocab_file="chars.txt" if chars else None, max_word_len=data["max_word_len"],
                         lower_words=data["lower_words"], zero_digits=data["zero_digits"])
    counts = count_split_tokens(corpus, "train", spec)  # once: the vocabulary and the singletons
    encoder = prepare_text_dir(corpus, run.path, spec, vocab_size=data["vocab_size"], min_count=data["min_count"],
                               counts=counts)
    done = state.epoch if state else 0
    epochs = range(done, train["epochs"]) if not (state and state.stopped) else range(done, done)
    fit = task.fit_data(TrainingSetup(config, run, corpus, encoder, counts, epochs))
    matrix = None
    if m["vectors"]:
        matrix, coverage = load_word_vectors(m["vectors"], encoder.vocab, m["embed_dim"], seed=train["seed"])
        logger.info("pretrained vectors cover %.1f%% of the vocabulary", 100 * coverage)
    label_vocab = fit.label_vocab
    model = task.build_model(config, len(encoder.vocab), len(label_vocab) if label_vocab else 0, matrix,
                             len(encoder.char_vocab) if encoder.char_vocab else None)
    model.compile(optimizer=_optimizer(train), loss=task.loss(model), jit_compile=train["jit_compile"],
                  metrics=task.metrics())
    monitor = train["monitor"]
    mode = "min" if monitor == "val_loss" else "max"
    run.backup.mkdir(exist_ok=True)
    history_rows(run.history, epochs=done)  # rows of epochs the backup does not hold are trained again
    callbacks = fit.callbacks + [checkpoint_for(run.backup, monitor, mode),
                                 keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=train["patience"])]
    if train["lr_decay"]:  # before the CSV logger: history.csv gets the learning rate of every epoch
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=train["lr_decay"],
                                                           patience=train["lr_patience"], min_delta=0.0,
                                                           verbose=int(verbose > 0)))
    callbacks += [keras.callbacks.CSVLogger(str(run.history), append=True),
                  keras.callbacks.TensorBoard(str(run.logs), write_graph=False),
                  _TimeLimit(train["max_minutes"], state.train_seconds if state else 0.0)]
    backup = RunBackup(run.backup, state, callbacks, started=time.perf_counter())
    if len(epochs):
        # shuffle=False: the datasets shuffle themselves (seeded per epoch); Keras would only warn that it cannot.
        model.fit(fit.train, validation_data=fit.validation, epochs=epochs.stop, initial_epoch=epochs.start,
                  steps_per_epoch=fit.steps_per_epoch, callbacks=callbacks + [backup], verbose=verbose,
                  shuffle=False)
    else:
        logger.info("%s: every epoch is trained (backup after epoch %d); finishing the run", run.path, done)
    final = backup.state
    if final.best_epoch:
        model.load_weights(str(run.backup / best_file(final.best_epoch)))
    model = task.deployable(model, config)
    replace_atomically(run.model, lambda tmp: model.save(tmp))

    history = history_columns(history_rows(run.history))
    metrics = {"task": task.name, "train_seconds": round(final.train_seconds, 1),
               "epochs_run": len(history.get("loss", [])), "kept_epoch": final.best_epoch,
               "parameters": int(model.count_params()),
               "best_val_loss": float(min(history.get("val_loss", [math.nan]))), "monitor": monitor,
               "data_split": corpus.split_rule()}
    if monitor != "val_loss":
        metrics[f"best_{monitor}"] = float(max(history.get(monitor, [math.nan])))
    metrics[task.report_split] = evaluate_run(run.path, None, split=task.report_split, corpus=corpus, model=model,
                                              limit=data["limit"])
    if task.report_split != "validation":
        metrics["validation"] = evaluate_run(run.path, None, split="validation", corpus=corpus, model=model,
                                             limit=data["limit"])
    _plot_curves(history, run.curves)
    write_json(run.metrics_file, metrics)
    shutil.rmtree(run.backup)  # only now: a kill before this line resumes, after it the run is finished
    return metrics


def _plot_curves(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = sorted(k for k in history if k.endswith(("accuracy", "_f1")))
    fig, axes = plt.subplots(1, 2 if scores else 1, figsize=(11 if scores else 6, 4), squeeze=False)
    for ax, keys, label in ((axes[0, 0], sorted(k for k in history if "loss" in k), "loss"),
                            *(((axes[0, 1], scores, "accuracy / F1"),) if scores else ())):
        for key in keys:
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", label=key)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
