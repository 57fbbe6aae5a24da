"""A trained run as a TF Serving SavedModel: raw UTF-8 text in, answers out.

Written through Keras' own `keras.export.ExportArchive` (it tracks the model's
variables and our lookup tables; `tf.saved_model.save` on a Keras 3 object has
produced models the graph loaders cannot restore). The tokenizer inside the
graph is `pipelines.tokenize` / `pipelines.vocab.TextEncoder`, unchanged: core
TF ops only, vocabularies as SavedModel assets.

Signatures (inputs -> outputs; every output has the batch as first axis, as
TF Serving's row format needs):

* classify: ``serving_default`` text -> probabilities, label, label_id,
  label_names (the class names, repeated per row);
  ``predict_ids`` ids, lengths -> the same without the text step.
* tag: ``serving_default`` text -> tokens, tags, tag_ids, scores, lengths
  (tokens/tags right-padded with ""); ``predict_ids`` ids, lengths (+ chars).
  ``scores`` are tag probabilities, or CRF emissions (tags from Viterbi).
* seq2seq: ``serving_default`` text -> output, output_ids, output_lengths, score
  (beam search in the graph: `export.seq2seq_graph`); ``predict_ids`` ids, lengths.
* lm: ``serving_default`` text -> loss (nats per predicted token),
  perplexity, tokens_scored; ``generate`` text -> continuation (greedy,
  `generate_length` tokens); ``score_ids`` ids, lengths -> the scores.

Every batch is padded to at least one time step, so empty strings get answers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_seq
from keras_seq.contracts.export_dir import WARMUP_FILE
from keras_seq.contracts.files import fsync_path, fsync_tree
from keras_seq.export.runs import TrainedRun
from keras_seq.pipelines.vocab import TextEncoder

TEXT = tf.TensorSpec([None], tf.string, name="text")
IDS = tf.TensorSpec([None, None], tf.int64, name="ids")
LENGTHS = tf.TensorSpec([None], tf.int64, name="lengths")
CHARS = tf.TensorSpec([None, None, None], tf.int64, name="chars")


def _at_least_one_step(dense: tf.Tensor) -> tf.Tensor:
    missing = tf.maximum(0, 1 - tf.shape(dense)[1])
    padding = [[0, 0], [0, missing]] + [[0, 0]] * (len(dense.shape) - 2)
    return tf.pad(dense, padding)


def _valid(ids: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    return tf.sequence_mask(lengths, tf.shape(ids)[1])


class ServingFunctions:
    """The tf functions behind the signatures, for one trained run."""

    def __init__(self, run: TrainedRun, encoder: TextEncoder, generate_length: int = 200) -> None:
        self.run, self.encoder, self.model = run, encoder, run.model
        self.char_features = run.char_features
        self.generate_length = int(generate_length)
        self.stepper = None
        self._cached: dict = {}
        if run.labels is not None:
            self.label_names = tf.constant(run.labels)
        if run.task.generates:
            self.stepper = keras_seq.LanguageModelStepper(run.model, masked=True)
            tokens = [t if i > 1 else "" for i, t in enumerate(encoder.vocab.tokens)]  # <PAD>, <UNK> print as ""
            self.token_strings = tf.constant(tokens)

    def signatures(self) -> dict:
        """name -> (function, input signature); the first is `serving_default` (the task chooses)."""
        return self.run.export_part.serving_signatures(self)

    def cached(self, name: str, factory):
        """One helper object per export (a task's signatures may be asked for more than once)."""
        if name not in self._cached:
            self._cached[name] = factory()
        return self._cached[name]

    def resources(self) -> list:
        extra = [self.stepper.model] if self.stepper is not None else []
        return [self.model, self.encoder, *extra]

    # -- text -> padded ids ------------------------------------------------------
    def _encode(self, text):
        ids = self.encoder.encode(text)
        return _at_least_one_step(ids.to_tensor(0)), ids.row_lengths()

    # -- classify --------------------------------------------------------------
    def classify_ids(self, ids, lengths):
        ids = tf.where(_valid(ids, lengths), ids, tf.zeros_like(ids))
        probabilities = self.model(tf.cast(ids, tf.int32), training=False)
        label_id = tf.argmax(probabilities, axis=-1)
        # label_names repeats the class names per row: TF Serving's row format needs
        # every output to be batched, and REST answers then stand on their own.
        names = tf.tile(self.label_names[None, :], tf.stack([tf.shape(label_id)[0], 1]))
        return {
            "probabilities": probabilities,
            "label": tf.gather(self.label_names, label_id),
            "label_id": label_id,
            "label_names": names,
        }

    def classify_text(self, text):
        return self.classify_ids(*self._encode(text))

    # -- tag -------------------------------------------------------------------
    def tag_ids(self, ids, lengths, chars=None):
        valid = _valid(ids, lengths)
        ids = tf.where(valid, ids, tf.zeros_like(ids))
        inputs = tf.cast(ids, tf.int32)
        if chars is not None:
            chars = tf.where(valid[:, :, None], chars, tf.zeros_like(chars))
            inputs = [inputs, tf.cast(chars, tf.int32)]
        scores = self.model(inputs, training=False)
        if self.run.crf is not None:
            tag_ids = tf.cast(self.run.crf.decode(scores, valid)[0], tf.int64)
        else:
            tag_ids = tf.argmax(scores, axis=-1)
        tag_ids = tf.where(valid, tag_ids, tf.zeros_like(tag_ids))
        tags = tf.where(valid, tf.gather(self.label_names, tag_ids), "")
        return {"tags": tags, "tag_ids": tag_ids, "scores": scores, "lengths": lengths}

    def tag_text(self, text):
        tokens = self.encoder.tokens(text)
        ids = _at_least_one_step(self.encoder.lookup(tokens).to_tensor(0))
        chars = None
        if self.run.char_features:
            ragged = self.encoder.encode_chars(tokens)
            width = tf.maximum(tf.reduce_max(tf.concat([ragged.values.row_lengths(), [1]], 0)), 1)
            shape = tf.stack([tf.shape(ids)[0], tf.shape(ids)[1], tf.cast(width, tf.int32)])
            chars = ragged.to_tensor(0, shape=tf.cast(shape, tf.int64))
        answer = self.tag_ids(ids, tokens.row_lengths(), chars)
        answer["tokens"] = _at_least_one_step(tokens.to_tensor(""))
        return answer

    # -- language model ----------------------------------------------------------
    def score_ids(self, ids, lengths):
        ids = tf.where(_valid(ids, lengths), ids, tf.zeros_like(ids))
        logits = self.model(tf.cast(ids, tf.int32), training=False)
        log_probs = tf.nn.log_softmax(logits[:, :-1], axis=-1)
        picked = tf.gather(log_probs, ids[:, 1:], batch_dims=2)
        scored = tf.sequence_mask(tf.maximum(lengths - 1, 0), tf.shape(ids)[1] - 1)
        count = tf.reduce_sum(tf.cast(scored, tf.int64), axis=1)
        nll = -tf.reduce_sum(tf.where(scored, picked, tf.zeros_like(picked)), axis=1)
        loss = nll / tf.cast(tf.maximum(count, 1), nll.dtype)
        return {"loss": loss, "perplexity": tf.exp(loss), "tokens_scored": count}

    def score_text(self, text):
        return self.score_ids(*self._encode(text))

    def generate_text(self, text):
        ids, lengths = self._encode(text)
        batch = tf.shape(ids)[0]
        states = [tf.zeros([batch, size]) for size in self.stepper.state_sizes]
        logits, *states = self.stepper.model([tf.cast(ids, tf.int32), *states], training=False)
        last = tf.gather(logits, tf.maximum(lengths - 1, 0), batch_dims=1)  # after each row's last token

        never_pad = tf.one_hot(0, tf.shape(last)[-1], on_value=-np.inf, off_value=0.0)  # id 0 is not a token

        def step(i, last, states, generated):
            token = tf.argmax(last + never_pad, axis=-1, output_type=tf.int32)
            generated = generated.write(i, token)
            logits, *states = self.stepper.model([token[:, None], *states], training=False)
            return i + 1, logits[:, -1], states, generated

        generated = tf.TensorArray(tf.int32, size=self.generate_length)
        _, _, _, generated = tf.while_loop(
            lambda i, *_: i < self.generate_length, step, [tf.constant(0), last, states, generated]
        )
        tokens = tf.transpose(generated.stack())  # (B, N)
        words = tf.gather(self.token_strings, tokens)
        joiner = "" if self.encoder.spec.level == "char" else " "
        continuation = tf.strings.reduce_join(words, axis=1, separator=joiner)
        return {"continuation": tf.where(lengths > 0, continuation, "")}  # nothing to continue from


def write_savedmodel(functions: ServingFunctions, directory: Path) -> None:
    """Writes the SavedModel to `directory` (which must not exist)."""
    archive = keras.export.ExportArchive()
    for resource in functions.resources():
        archive.track(resource)
    for name, (fn, spec) in functions.signatures().items():
        archive.add_endpoint(name, fn, input_signature=spec)
    archive.write_out(str(directory), verbose=False)


def text_requests(signatures, texts: list[str]) -> dict[str, list[dict]]:
    """Warmup feeds for text signatures: per signature, each text alone, then all together."""
    batches = [[t] for t in texts] + [list(texts)]
    return {name: [{"text": np.array(batch, dtype=object)} for batch in batches] for name in signatures}


def write_warmup(directory: Path, model_name: str, requests: dict[str, list[dict]]) -> Path:
    """`assets.extra/tf_serving_warmup_requests`: PredictionLog records that TF Serving
    replays at load time, one per feed ({input name: array}) in `requests[signature]`."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path = directory / "assets.extra" / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, feeds in requests.items():
            for feed in feeds:
                request = predict_pb2.PredictRequest()
                request.model_spec.name = model_name
                request.model_spec.signature_name = signature
                for name, value in feed.items():
                    value = np.asarray(value)
                    dtype = tf.string if value.dtype == object else tf.as_dtype(value.dtype)
                    request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())
    return path


def install_atomically(staged: Path, target: Path, overwrite: bool) -> None:
    """Renames a finished `staged` directory to `target` (same file system, so a
    server polling the parent sees either nothing or the whole version); its files are
    flushed to the disk first and the parent folder after, so a power loss cannot leave
    a renamed folder of empty files."""
    fsync_tree(staged)
    if target.exists():
        if not overwrite:
            raise FileExistsError(f"{target} already exists (pass --overwrite to replace it)")
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, retired)
        os.replace(staged, target)
        shutil.rmtree(retired)
    else:
        os.replace(staged, target)
    fsync_path(target.parent)
