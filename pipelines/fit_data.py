"""What `fit` reads in a training run: each task's batches for training and validation
(`labeled_fit_data` for examples with labels, `stream_fit_data` for a language model's token stream)
and the validation callbacks that score what the run selects its epoch by. A task's pipeline part
(`keras_seq.pipelines.tasks`) picks one; `keras_seq.pipelines.train` runs the fit."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from keras_seq.contracts import RunDirectory
from keras_seq.pipelines.datasets import (
    ExampleTable,
    LabelLookup,
    batched,
    build_label_vocab,
    encoded_dataset,
    epoch_batches,
    key_counts,
    sorted_fixed_batches,
    split_lengths,
)
from keras_seq.pipelines.evaluate import compiled_predict, lm_stream, lm_windows, tagging_metrics
from keras_seq.pipelines.readers import Corpus
from keras_seq.pipelines.vocab import TextEncoder


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

    def on_epoch_end(self, epoch, logs=None):
        # (the traced functions are the run's own: the final evaluations reuse them)
        result = tagging_metrics(self.model, compiled_predict(self.model), self.validation, self.tags)
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
    stream: np.ndarray | None = None  # a language model's training ids, in order

    def batches_per_epoch(self) -> int | None:
        """What a schedule over steps needs; None where tf.data cannot say."""
        if self.steps_per_epoch:
            return int(self.steps_per_epoch)
        count = int(self.train.cardinality())
        return count if count > 0 else None


def labeled_fit_data(part, setup: TrainingSetup) -> FitData:
    """Examples with labels (classify, tag, seq2seq): batches under a token budget (length-sorted, or length
    buckets: ``train.batching``), shuffled per epoch, with word dropout."""
    data, train = setup.config["data"], setup.config["train"]
    label_vocab = build_label_vocab(setup.corpus, setup.run.path, part.task.label_file)
    labels = LabelLookup(label_vocab)
    train_raw = _limited(encoded_dataset(setup.corpus, "train", setup.encoder, labels), data["limit"])
    val_raw = _limited(encoded_dataset(setup.corpus, "validation", setup.encoder, labels), data["limit"])
    budget = dict(tokens_per_batch=train["tokens_per_batch"], max_batch=train["max_batch"])
    if train["batching"] == "sorted":  # the splits in memory, batched by length order (batching.sorted_batches)
        train_raw, val_table = ExampleTable(train_raw), ExampleTable(val_raw)
        lengths = train_raw.lengths
        _check_not_empty(setup.corpus, {"train": len(lengths), "validation": len(val_table.lengths)})
        validation = sorted_fixed_batches(val_table, **budget)
    else:
        train_raw, val_raw = train_raw.cache(), val_raw.cache()
        lengths = split_lengths(train_raw)
        _check_not_empty(setup.corpus, {"train": len(lengths), "validation": len(split_lengths(val_raw))})
        validation = batched(
            val_raw, split_lengths(val_raw), shuffle=False, buckets=train["buckets"], cache=False, **budget
        )
    batching = dict(**budget, buckets=train["buckets"], cache=False)
    singletons = _singletons(setup.counts, setup.encoder, train.get("unk_singletons", 0.0))
    dropout = dict(rate=train["word_dropout"], singletons_from=singletons[0], singleton_rate=singletons[1])
    if train["data_service"] and len(setup.epochs):
        from keras_seq.pipelines.data_service import SHARDS_DIR, service_epoch_batches

        train_ds, steps = service_epoch_batches(
            setup.corpus,
            setup.encoder,
            labels,
            lengths,
            setup.epochs,
            setup.run.path / SHARDS_DIR,
            service=train["data_service"],
            shards=train["data_service_shards"],
            seed=train["seed"],
            dropout=dropout,
            limit=data["limit"],
            **{k: v for k, v in batching.items() if k != "cache"},
        )
    else:
        train_ds, steps = epoch_batches(
            train_raw,
            lengths,
            setup.epochs,
            seed=train["seed"],
            dropout=dropout,
            batching=train["batching"],
            **batching,
        )
    callbacks = part.validation_callbacks(validation, label_vocab, train["monitor"])
    return FitData(train_ds, validation, callbacks, label_vocab, steps)


def _check_not_empty(corpus, counts: dict) -> None:
    """Refuses, before any training, a split with no examples: training would run and then have nothing
    to keep an epoch by (a single file's examples go to the split a hash of their text picks, and exact
    duplicates stay together, so a file of a few distinct texts can leave a split empty)."""
    for split, count in counts.items():
        if count == 0:
            raise ValueError(
                f"{corpus.source}: the {split} split has no examples ({corpus.split_rule()['rule']}); "
                "give the file more distinct examples, or set data.split_fractions / data.holdout_every"
            )


def stream_fit_data(setup: TrainingSetup) -> FitData:
    """One token stream (language models): B parallel tracks in windows; validation by a callback."""
    train, direction = setup.config["train"], setup.config["model"]["direction"]
    limit = setup.config["data"]["limit"]
    train_ids = lm_stream(setup.corpus, "train", setup.encoder, direction, limit)
    val_ids = lm_stream(setup.corpus, "validation", setup.encoder, direction, limit)
    train_ds = lm_windows(train_ids, train["lm_batch"], train["lm_window"])
    val_ds = lm_windows(val_ids, train["lm_batch"], train["lm_window"])
    return FitData(train_ds, None, [_StatefulValidation(val_ds)], stream=train_ids)
