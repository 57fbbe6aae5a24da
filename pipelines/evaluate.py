"""Metrics of a trained run on any source of the same format (`keras-seq evaluate`).

classify: accuracy; tag: masked token accuracy, plus entity-level span F1
(`entity_spans`: exact chunks by conlleval's rules) when the tags are BIO; lm: loss in nats per token,
perplexity and bits per token (= per character at char level).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_seq
from keras_seq.contracts import RunDirectory, Vocabulary
from keras_seq.pipelines.datasets import LabelLookup, batched, encoded_dataset, split_lengths
from keras_seq.pipelines.entity_spans import span_scores
from keras_seq.pipelines.readers import Corpus, open_corpus
from keras_seq.pipelines.tasks import pipeline_for
from keras_seq.pipelines.vocab import TextEncoder
from keras_seq.tasks import get_task
from keras_seq.tasks.tag import crf_layer

_CORPUS_OPTIONS = (
    "text_column",
    "label_column",
    "tag_column",
    "train_fraction",
    "holdout_every",
    "split_fractions",
    "split_seed",
    "source_column",
    "target_column",
    "strip_stress",
)


def corpus_from_config(config: dict, source: str | None = None) -> Corpus:
    data = config["data"]
    return open_corpus(source or data["source"], config["task"], **{k: data[k] for k in _CORPUS_OPTIONS if k in data})


def lm_stream(
    corpus, split: str, encoder: TextEncoder, direction: str = "forward", limit: int | None = None
) -> np.ndarray:
    """The split's token ids as one stream (its first `limit` texts when given), last token first for a
    backward language model."""
    texts = encoded_dataset(corpus, split, encoder)
    ids = np.concatenate([np.asarray(ids) for ids in (texts if limit is None else texts.take(limit))])
    return ids[::-1].copy() if direction == "backward" else ids


def lm_windows(ids: np.ndarray, batch: int, window: int) -> tf.data.Dataset:
    from keras_seq.pipelines.batching import lm_tracks

    return lm_tracks(ids, batch, window).prefetch(tf.data.AUTOTUNE)


def is_bio(tags: list[str]) -> bool:
    """Whether a tag set is BIO-encoded (entity spans can be scored)."""
    return any(t.startswith(("B-", "I-")) for t in tags)


@dataclass
class EvaluationContext:
    """What a task's `evaluate` reads: the run, the split and the model."""

    config: dict
    corpus: Corpus
    split: str
    model: keras.Model
    encoder: TextEncoder
    labels: Vocabulary | None
    limit: int | None = None
    labels_file: Path | None = None  # where `labels` came from (error messages name it)

    @property
    def predict(self):
        return compiled_predict(self.model)

    def batches(self) -> tf.data.Dataset:
        """The split's labelled examples, length-bucketed, in order."""
        dataset = encoded_dataset(self.corpus, self.split, self.encoder, LabelLookup(self.labels))
        if self.limit is not None:
            dataset = dataset.take(self.limit)
        dataset = dataset.cache()
        lengths = split_lengths(dataset)
        if lengths.size == 0:
            raise ValueError(f"{self.corpus.source}: the {self.split} split holds no examples")
        return batched(dataset, lengths, shuffle=False, cache=False, max_batch=64, tokens_per_batch=8192)


def evaluate_run(
    run_dir: str | Path,
    source: str | None = None,
    split: str = "test",
    *,
    corpus=None,
    model: keras.Model | None = None,
    limit: int | None = None,
    decode: dict | None = None,
) -> dict:
    """The run's metrics on `split` of `source` (default: the run's own source). `decode`: seq2seq
    search settings over the run's ``[decode]`` table, e.g. ``{"beam": 8, "alpha": 0.6}`` (to tune
    them on the validation split)."""
    context = evaluation_context(run_dir, source, split, corpus=corpus, model=model, limit=limit, decode=decode)
    return pipeline_for(context.config["task"]).evaluate(context)


def evaluation_context(
    run_dir: str | Path,
    source: str | None = None,
    split: str = "test",
    *,
    corpus=None,
    model: keras.Model | None = None,
    limit: int | None = None,
    decode: dict | None = None,
) -> EvaluationContext:
    """What `evaluate_run` scores, before scoring: the run's config (with `decode`), the opened
    source, the model (the run's own unless `model`), its encoder and labels."""
    run = RunDirectory(run_dir)
    config = run.config()
    task = get_task(config["task"])
    if decode:
        config = {**config, "decode": _decode_overrides(config, task, decode)}
    corpus = corpus or corpus_from_config(config, source)
    if corpus.task != task.name:
        raise ValueError(f"the run is a {task.name} model; the source was opened for {corpus.task}")
    if model is None:
        model = load_model(run.check().model)
    labels = Vocabulary.load(run.file(task.label_file), level="label") if task.label_file else None
    return EvaluationContext(
        config,
        corpus,
        split,
        model,
        TextEncoder(run.path),
        labels,
        limit,
        run.file(task.label_file) if task.label_file else None,
    )


def _decode_overrides(config: dict, task, decode: dict) -> dict:
    from keras_seq.tasks.seq2seq import check_decode_settings, decode_settings

    if not pipeline_for(task).transduces:
        raise ValueError(f"decode settings ({', '.join(decode)}) apply to seq2seq runs; this is a {task.name} run")
    check_decode_settings(decode)
    return {**decode_settings(config), **decode}


def load_model(path: Path) -> keras.Model:
    """A saved model, or one line naming the file when it cannot be read."""
    keras_seq.register_layers()  # our layers must be registered before keras reads the file
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: missing (the run's model)")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # zip, HDF5 and config errors from deep inside keras
        raise ValueError(
            f"{path}: not a readable Keras model ({type(error).__name__}: "
            f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else 'no detail'})"
        ) from None


# One traced function per model (or CRF layer) and distribution strategy, shared by a run's
# epoch-end validation and its final evaluations: each trace of a recurrent graph takes seconds.
# Held weakly both ways (the functions reach their owner through a weak reference).
_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _traced(owner, what: str, make):
    functions = _TRACED.setdefault(owner, {})
    key = (what, id(tf.distribute.get_strategy()))
    if key not in functions:
        functions[key] = make(weakref.ref(owner))
    return functions[key]


def compiled_predict(model: keras.Model):
    """The model as one traced function: eager calls would run the time loop op by op."""
    return _traced(
        model, "predict", lambda ref: tf.function(lambda inputs: ref()(inputs, training=False), reduce_retracing=True)
    )


def compiled_decode(crf):
    """The CRF layer's Viterbi as one traced function, emissions and mask to tags: eager calls would
    run its two time loops op by op."""
    return _traced(
        crf,
        "decode",
        lambda ref: tf.function(lambda emissions, mask: ref().decode(emissions, mask)[0], reduce_retracing=True),
    )


def tagging_metrics(model: keras.Model, predict, batches, vocab: Vocabulary) -> dict:
    """Masked token accuracy (+ entity P/R/F1 for BIO tags) of `predict` over (inputs, tags) batches;
    a CRF tagger's emissions are decoded by `compiled_decode`."""
    crf = crf_layer(model)
    decode = compiled_decode(crf) if crf is not None else None
    correct = total = sentences = 0
    gold_seqs, pred_seqs = [], []
    for inputs, tags in batches:
        ids = (inputs[0] if isinstance(inputs, tuple) else inputs).numpy()
        tags = tags.numpy()
        out = predict(inputs)
        mask = ids != 0
        if crf is not None:
            predicted = np.asarray(decode(out, tf.constant(mask)))
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
        # Reserved/unknown predictions are "O" for the span scorer.
        clean = [[t if t.startswith(("B-", "I-")) or t == "O" else "O" for t in s] for s in pred_seqs]
        scores = span_scores(gold_seqs, clean)
        result.update(entity_f1=scores["f1"], entity_precision=scores["precision"], entity_recall=scores["recall"])
    return result


def evaluate_stream(context: EvaluationContext) -> dict:
    """Language models: loss over the split's token stream, tracks carried window to window."""
    config, model = context.config, context.model
    train, m = config["train"], config["model"]
    ids = lm_stream(context.corpus, context.split, context.encoder, m.get("direction", "forward"), context.limit)
    batch = train.get("lm_batch", 32)
    window = train.get("lm_window", 100)
    while batch > 1 and (len(ids) - 1) // batch < window:
        batch //= 2  # short texts: fewer tracks
    stateful = keras_seq.build_language_model(
        model.get_layer("logits").units,
        cell=m["cell"],
        embed_dim=m["embed_dim"],
        units=m["units"],
        depth=m["depth"],
        batch_size=batch,
        stateful=True,
    )
    stateful.set_weights(model.get_weights())
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    total, count = 0.0, 0
    predict = compiled_predict(stateful)
    for x, y in lm_windows(ids, batch, min(window, max(1, (len(ids) - 1) // batch))):
        total += float(loss_fn(y, predict(x)))
        count += int(np.prod(y.shape))
    nats = total / count
    return {"loss_nats": nats, "perplexity": math.exp(nats), "bits_per_token": nats / math.log(2), "tokens": count}
