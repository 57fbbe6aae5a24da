"""`keras-seq train`: config -> data -> model -> fit -> RUN_DIR.

RUN_DIR holds ``model.keras`` (the best epoch by ``train.monitor``),
``tokenizer.json`` + ``vocab.txt``, ``labels.txt`` (classify) or ``tags.txt``
(tag), ``config.toml`` (resolved), ``metrics.json``, ``history.csv``,
``curves.png``, ``logs/`` (TensorBoard) and, while a run is unfinished,
``backup/`` (``BackupAndRestore``: rerunning the same command resumes).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np

import keras_seq
from pipelines.config import dump_toml
from pipelines.datasets import (LabelLookup, batched, build_label_vocab, count_split_tokens, encoded_dataset,
                                key_counts, prepare_text_dir, split_lengths, word_dropout)
from pipelines.evaluate import (LABEL_FILES, compiled_predict, corpus_from_config, evaluate_run, is_bio, lm_stream,
                                 lm_windows, tagging_metrics)
from pipelines.tokenize import TokenizerSpec
from pipelines.vocab import load_word_vectors

class _TimeLimit(keras.callbacks.Callback):
    def __init__(self, minutes: float | None) -> None:
        super().__init__()
        self.deadline = None if minutes is None else time.monotonic() + 60.0 * minutes

    def on_epoch_end(self, epoch, logs=None):
        if self.deadline is not None and time.monotonic() > self.deadline:
            print(f"time limit reached after epoch {epoch + 1}; stopping")
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


class _TaggingValidation(keras.callbacks.Callback):
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


def _build_model(config: dict, vocab_size: int, num_labels: int, run_dir: Path, vocab,
                 char_vocab_size: int | None = None) -> keras.Model:
    task, m, train = config["task"], config["model"], config["train"]
    matrix = None
    if m["vectors"]:
        matrix, coverage = load_word_vectors(m["vectors"], vocab, m["embed_dim"], seed=train["seed"])
        print(f"pretrained vectors cover {coverage:.1%} of the vocabulary")
    common = dict(cell=m["cell"], embed_dim=m["embed_dim"], units=m["units"], depth=m["depth"],
                  dropout=m["dropout"], recurrent_dropout=m["recurrent_dropout"])
    if task == "classify":
        return keras_seq.build_classifier(vocab_size, num_labels, bidirectional=m["bidirectional"],
                                          pooling=m["pooling"], embedding_matrix=matrix, **common)
    if task == "tag":
        return keras_seq.build_tagger(vocab_size, num_labels, crf=m["crf"], embedding_matrix=matrix,
                                      char_vocab_size=char_vocab_size, char_embed_dim=m["char_embed_dim"],
                                      char_units=m["char_units"], **common)
    return keras_seq.build_language_model(vocab_size, batch_size=train["lm_batch"], stateful=True, **common)


def train_run(config: dict, run_dir: str | Path, verbose: int = 1) -> dict:
    """Trains as configured; returns the metrics also written to metrics.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task, data, train = config["task"], config["data"], config["train"]
    keras.utils.set_random_seed(train["seed"])
    (run_dir / "config.toml").write_text(dump_toml(config), encoding="utf-8")
    corpus = corpus_from_config(config)
    chars = task == "tag" and data["char_features"]
    spec = TokenizerSpec(level=data["level"], lower=data["lower"], max_len=data["max_len"], truncate=data["truncate"],
                         char_vocab_file="chars.txt" if chars else None, max_word_len=data["max_word_len"],
                         lower_words=data["lower_words"], zero_digits=data["zero_digits"])
    counts = count_split_tokens(corpus, "train", spec)  # once: the vocabulary and the singletons
    encoder = prepare_text_dir(corpus, run_dir, spec, vocab_size=data["vocab_size"], min_count=data["min_count"],
                               counts=counts)
    vocab_size = len(encoder.vocab)

    callbacks: list[keras.callbacks.Callback] = []
    if task == "lm":
        train_ids, val_ids = lm_stream(corpus, "train", encoder), lm_stream(corpus, "validation", encoder)
        train_ds = lm_windows(train_ids, train["lm_batch"], train["lm_window"])
        val_ds = lm_windows(val_ids, train["lm_batch"], train["lm_window"])
        callbacks.append(_StatefulValidation(val_ds))
        fit_validation, num_labels = None, 0
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        label_vocab = build_label_vocab(corpus, run_dir, LABEL_FILES[task])
        labels = LabelLookup(label_vocab)
        num_labels = len(label_vocab)
        train_raw = _limited(encoded_dataset(corpus, "train", encoder, labels), data["limit"]).cache()
        val_raw = _limited(encoded_dataset(corpus, "validation", encoder, labels), data["limit"]).cache()
        lengths, val_lengths = split_lengths(train_raw), split_lengths(val_raw)
        batching = dict(tokens_per_batch=train["tokens_per_batch"], max_batch=train["max_batch"],
                        buckets=train["buckets"], cache=False)
        train_ds = word_dropout(batched(train_raw, lengths, seed=train["seed"], **batching), train["word_dropout"],
                                train["seed"], *_singletons(counts, encoder, train.get("unk_singletons", 0.0)))
        fit_validation = batched(val_raw, val_lengths, shuffle=False, **batching)
        loss = None
        if task == "tag" and train["monitor"] != "val_loss":
            if train["monitor"] == "val_f1" and not is_bio(label_vocab.tokens):
                raise ValueError("train.monitor = 'val_f1' needs BIO tags (B-X / I-X); this corpus's tags are "
                                 f"{label_vocab.tokens[2:8]}...; use 'val_accuracy'")
            callbacks.append(_TaggingValidation(fit_validation, label_vocab))

    model = _build_model(config, vocab_size, num_labels, run_dir, encoder.vocab,
                         len(encoder.char_vocab) if encoder.char_vocab else None)
    if loss is None:
        loss = keras_seq.tagger_loss(model) if task == "tag" else "sparse_categorical_crossentropy"
    model.compile(optimizer=_optimizer(train), loss=loss, jit_compile=train["jit_compile"],
                  metrics=["accuracy"] if task == "classify" else None)
    best_path = run_dir / "best.weights.h5"
    monitor = train["monitor"]
    mode = "min" if monitor == "val_loss" else "max"
    callbacks += [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.ModelCheckpoint(str(best_path), monitor=monitor, mode=mode, save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=train["patience"]),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
        _TimeLimit(train["max_minutes"]),
    ]
    if train["lr_decay"]:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=train["lr_decay"],
                                                           patience=train["lr_patience"], min_delta=0.0, verbose=1))
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=fit_validation, epochs=train["epochs"], callbacks=callbacks,
                        verbose=verbose)
    train_seconds = time.perf_counter() - start
    if best_path.exists():
        model.load_weights(str(best_path))
        best_path.unlink()
    if task == "lm":  # deploy / generate with a stateless twin of the same weights
        stateless = keras_seq.build_language_model(
            vocab_size, **{k: config["model"][k] for k in ("cell", "embed_dim", "units", "depth")})
        stateless.set_weights(model.get_weights())
        model = stateless
    model.save(run_dir / "model.keras")

    metrics = {"task": task, "train_seconds": round(train_seconds, 1), "epochs_run": len(history.epoch),
               "parameters": int(model.count_params()),
               "best_val_loss": float(min(history.history.get("val_loss", [math.nan]))), "monitor": monitor}
    if monitor != "val_loss":
        metrics[f"best_{monitor}"] = float(max(history.history.get(monitor, [math.nan])))
    evaluation = evaluate_run(run_dir, None, split="test" if task != "lm" else "validation",
                              corpus=corpus, model=model, limit=data["limit"])
    metrics["validation" if task == "lm" else "test"] = evaluation
    if task != "lm":
        metrics["validation"] = evaluate_run(run_dir, None, split="validation", corpus=corpus, model=model,
                                             limit=data["limit"])
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    _plot_curves(history.history, run_dir / "curves.png")
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
