"""Metrics of a trained run on any source of the same format (`keras-seq evaluate`).

classify: accuracy; tag: masked token accuracy, plus entity-level span F1
(seqeval, exact BIO spans) when the tags are BIO; lm: loss in nats per token,
perplexity and bits per token (= per character at char level).
"""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_seq
from pipelines.datasets import LabelLookup, batched, encoded_dataset, split_lengths
from pipelines.readers import open_corpus
from pipelines.vocab import TextEncoder, Vocabulary

LABEL_FILES = {"classify": "labels.txt", "tag": "tags.txt"}


def load_run_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.toml)") from None


def corpus_from_config(config: dict, source: str | None = None):
    data = config["data"]
    keys = ("text_column", "label_column", "tag_column", "train_fraction", "holdout_every")
    return open_corpus(source or data["source"], config["task"], **{k: data[k] for k in keys if k in data})


def lm_stream(corpus, split: str, encoder: TextEncoder) -> np.ndarray:
    return np.concatenate([np.asarray(ids) for ids in encoded_dataset(corpus, split, encoder)])


def lm_windows(ids: np.ndarray, batch: int, window: int) -> tf.data.Dataset:
    from pipelines.batching import lm_tracks

    return lm_tracks(ids, batch, window).prefetch(tf.data.AUTOTUNE)


def is_bio(tags: list[str]) -> bool:
    """Whether a tag set is BIO-encoded (entity spans can be scored)."""
    return any(t.startswith(("B-", "I-")) for t in tags)


def evaluate_run(run_dir: str | Path, source: str | None = None, split: str = "test", *, corpus=None,
                 model: keras.Model | None = None, limit: int | None = None) -> dict:
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    task = config["task"]
    corpus = corpus or corpus_from_config(config, source)
    if corpus.task != task:
        raise ValueError(f"the run is a {task} model; the source was opened for {corpus.task}")
    if model is None:
        model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    encoder = TextEncoder(run_dir)
    if task == "lm":
        return _evaluate_lm(config, model, lm_stream(corpus, split, encoder))
    vocab = Vocabulary.load(run_dir / LABEL_FILES[task], level="label")
    dataset = encoded_dataset(corpus, split, encoder, LabelLookup(vocab))
    if limit is not None:
        dataset = dataset.take(limit)
    dataset = dataset.cache()
    lengths = split_lengths(dataset)
    if lengths.size == 0:
        raise ValueError(f"{corpus.source}: the {split} split holds no examples")
    batches = batched(dataset, lengths, shuffle=False, cache=False, max_batch=64, tokens_per_batch=8192)
    predict = compiled_predict(model)
    if task == "classify":
        correct = total = 0
        for ids, labels in batches:
            predicted = np.asarray(predict(ids)).argmax(-1)
            labels = labels.numpy()
            if np.any(labels < 0):
                raise ValueError(f"{corpus.source}: a label is not among the run's labels {vocab.tokens}")
            correct += int((predicted == labels).sum())
            total += len(labels)
        return {"accuracy": correct / total, "examples": total}
    return tagging_metrics(model, predict, batches, vocab)


def compiled_predict(model: keras.Model):
    """The model as one traced function: eager calls would run the time loop op by op."""
    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


def tagging_metrics(model: keras.Model, predict, batches, vocab: Vocabulary) -> dict:
    """Masked token accuracy (+ seqeval entity P/R/F1 for BIO tags) of `predict` over (inputs, tags) batches."""
    crf = [layer for layer in model.layers if isinstance(layer, keras_seq.CRF)]
    correct = total = sentences = 0
    gold_seqs, pred_seqs = [], []
    for inputs, tags in batches:
        ids = (inputs[0] if isinstance(inputs, tuple) else inputs).numpy()
        tags = tags.numpy()
        out = predict(inputs)
        mask = ids != 0
        if crf:
            predicted = np.asarray(crf[0].decode(out, mask)[0])
        else:
            predicted = np.asarray(out).argmax(-1)
        correct += int(((predicted == tags) & mask).sum())
        total += int(mask.sum())
        sentences += len(ids)
        for row_gold, row_pred, row_mask in zip(tags, predicted, mask):
            gold_seqs.append([vocab.tokens[i] for i in row_gold[row_mask]])
            pred_seqs.append([vocab.tokens[i] for i in row_pred[row_mask]])
    result = {"token_accuracy": correct / max(total, 1), "tokens": total, "sentences": sentences}
    if is_bio(vocab.tokens):
        from seqeval.metrics import f1_score, precision_score, recall_score

        # Reserved/unknown predictions are "O" for the span scorer.
        clean = [[t if t.startswith(("B-", "I-")) or t == "O" else "O" for t in s] for s in pred_seqs]
        result.update(entity_f1=f1_score(gold_seqs, clean), entity_precision=precision_score(gold_seqs, clean),
                      entity_recall=recall_score(gold_seqs, clean))
    return result


def _evaluate_lm(config: dict, model: keras.Model, ids: np.ndarray) -> dict:
    train, m = config["train"], config["model"]
    batch = train.get("lm_batch", 32)
    window = train.get("lm_window", 100)
    while batch > 1 and (len(ids) - 1) // batch < window:
        batch //= 2  # short texts: fewer tracks
    stateful = keras_seq.build_language_model(
        model.get_layer("logits").units, cell=m["cell"], embed_dim=m["embed_dim"], units=m["units"],
        depth=m["depth"], batch_size=batch, stateful=True)
    stateful.set_weights(model.get_weights())
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    total, count = 0.0, 0
    predict = compiled_predict(stateful)
    for x, y in lm_windows(ids, batch, min(window, max(1, (len(ids) - 1) // batch))):
        total += float(loss_fn(y, predict(x)))
        count += int(np.prod(y.shape))
    nats = total / count
    return {"loss_nats": nats, "perplexity": math.exp(nats), "bits_per_token": nats / math.log(2),
            "tokens": count}
