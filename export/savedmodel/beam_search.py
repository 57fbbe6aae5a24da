"""Beam search inside the SavedModel (seq2seq task): a ``tf.while_loop`` over the model's
own encoder and decoder step, with the arithmetic and tie-breaking of
`keras_seq.decoding.batch_beam_search` (which runs beside the ONNX graphs): float32
scores, ranking by ``log p / length**alpha``, ``tf.math.top_k`` (ties: the lower flat
index, as the NumPy search's stable sort), finished beams kept at their score, and
``decode.merge_stress`` merging each step's stress variants as `keras_seq.decoding.merge_classes`.

Signatures: ``serving_default`` text -> output (B, T) target tokens right-padded with "",
output_ids, output_lengths (B,), score (B,); ``predict_ids`` ids, lengths -> the same.
The beam width and length limits are the run's ``[decode]`` settings, fixed at export.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import keras_seq
from keras_seq.contracts.vocab import BOS_ID, EOS_ID


def merge_classes(log_probs, member, column):
    """`keras_seq.decoding.merge_classes` in TF, with the same float32 arithmetic and ties:
    `member` (V, C) bool and `column` (V,) from `keras_seq.decoding.class_tables`."""
    vocab = tf.shape(log_probs, out_type=tf.int64)[-1]
    masked = tf.where(member[None], log_probs[:, :, None], -np.inf)  # (N, V, C)
    best = tf.reduce_max(masked, axis=1)
    shift = tf.where(tf.math.is_finite(best), best, 0.0)
    total = shift + tf.math.log(tf.reduce_sum(tf.exp(masked - shift[:, None, :]), axis=1))
    ids = tf.range(vocab, dtype=tf.int64)
    first = tf.reduce_min(
        tf.where(member[None] & tf.equal(masked, best[:, None, :]), ids[None, :, None], vocab), axis=1
    )
    return tf.where(tf.equal(tf.gather(first, column, axis=1), ids[None]), tf.gather(total, column, axis=1), -np.inf)


class Seq2SeqServing:
    def __init__(self, run, encoder) -> None:
        from keras_seq.decoding import class_tables
        from keras_seq.tasks.seq2seq import decode_settings, target_classes

        self.stepper = keras_seq.Seq2SeqStepper(run.model)
        self.encoder = encoder
        settings = decode_settings(run.config)
        self.width, self.alpha = int(settings["beam"]), float(settings["alpha"])
        self.factor, self.extra = float(settings["max_length_factor"]), int(settings["max_length_extra"])
        tokens = [t if i > 3 else "" for i, t in enumerate(run.labels)]  # reserved ids print as ""
        self.token_strings = tf.constant(tokens)
        self.vocab = len(run.labels)
        classes = target_classes(settings, list(run.labels))
        self.classes = None if classes is None else [tf.constant(t) for t in class_tables(classes)]

    def text(self, text):
        from keras_seq.export.savedmodel.signatures import _at_least_one_step

        ids = self.encoder.encode(text)
        return self.ids(_at_least_one_step(ids.to_tensor(0)), ids.row_lengths())

    def ids(self, ids, lengths):
        ids = tf.where(tf.sequence_mask(lengths, tf.shape(ids)[1]), ids, tf.zeros_like(ids))
        tokens, counts, scores = self.search(tf.cast(ids, tf.int32))
        words = tf.where(tokens > 0, tf.gather(self.token_strings, tokens), "")
        return {"output": words, "output_ids": tokens, "output_lengths": counts, "score": scores}

    def search(self, ids):
        """(tokens (B, T) int64, lengths (B,) int64, scores (B,) float32) of the best hypotheses."""
        stepper, decoder, width = self.stepper, self.stepper.decoder, self.width
        memory, *states = stepper.encoder(ids, training=False)
        mask = tf.not_equal(ids, 0)
        batch = tf.shape(ids)[0]
        source_lengths = tf.reduce_sum(tf.cast(mask, tf.float64), axis=1)
        max_lengths = tf.cast(tf.floor(source_lengths * self.factor), tf.int32) + self.extra
        steps = tf.reduce_max(tf.concat([max_lengths, [0]], 0))
        rows = tf.repeat(tf.range(batch), width)
        memory, mask = tf.gather(memory, rows), tf.gather(mask, rows)
        keys = decoder.prepare_memory(memory)
        carry = [tf.gather(c, rows) for c in decoder.initial_carry(list(states))]
        vocab = self.vocab
        banned = tf.one_hot(0, vocab, on_value=-np.inf, off_value=0.0)  # padding is never emitted
        stay = tf.one_hot(EOS_ID, vocab, on_value=0.0, off_value=-np.inf)
        scores = tf.tile(tf.concat([[0.0], tf.fill([width - 1], -np.inf)], 0)[None], [batch, 1])
        finished = tf.math.is_inf(scores)
        lengths = tf.zeros([batch, width], tf.int32)
        saw_eos = tf.zeros([batch, width], tf.bool)
        history = tf.zeros([batch, width, 0], tf.int32)
        previous = tf.fill([batch * width], BOS_ID)
        alpha = tf.constant(self.alpha, tf.float32)

        def step(t, scores, finished, lengths, saw_eos, history, previous, carry):
            embedded = stepper.embedding(previous)
            output, _, new_carry = decoder.step(embedded, list(carry), memory, mask, keys)
            log_probs = tf.nn.log_softmax(stepper.logits(output), axis=-1) + banned
            if self.classes is not None:
                log_probs = merge_classes(log_probs, *self.classes)
            log_probs = tf.reshape(log_probs, [batch, width, vocab])
            totals = scores[..., None] + tf.where(finished[..., None], stay, log_probs)
            new_lengths = lengths + tf.cast(~finished, tf.int32)
            ranked = totals / tf.pow(tf.cast(tf.maximum(new_lengths, 1), tf.float32), alpha)[..., None]
            _, top = tf.math.top_k(tf.reshape(ranked, [batch, width * vocab]), width)
            parent, token = top // vocab, top % vocab
            scores = tf.gather(tf.reshape(totals, [batch, width * vocab]), top, batch_dims=1)
            was_finished = tf.gather(finished, parent, batch_dims=1)
            lengths = tf.gather(new_lengths, parent, batch_dims=1)
            ended = ~was_finished & tf.equal(token, EOS_ID)
            saw_eos = tf.gather(saw_eos, parent, batch_dims=1) | ended
            written = tf.where(was_finished | tf.equal(token, EOS_ID), 0, token)
            history = tf.concat([tf.gather(history, parent, batch_dims=1), written[..., None]], axis=-1)
            finished = was_finished | tf.equal(token, EOS_ID) | (t + 1 >= max_lengths[:, None]) | tf.math.is_inf(scores)
            flat_parent = tf.reshape(parent + tf.range(batch)[:, None] * width, [-1])
            carry = [tf.gather(c, flat_parent) for c in new_carry]
            return t + 1, scores, finished, lengths, saw_eos, history, tf.reshape(token, [-1]), carry

        def running(t, scores, finished, *_):
            return (t < steps) & ~tf.reduce_all(finished)

        loop = tf.while_loop(
            running,
            step,
            [tf.constant(0), scores, finished, lengths, saw_eos, history, previous, carry],
            shape_invariants=[
                tf.TensorShape([]),
                scores.shape,
                finished.shape,
                lengths.shape,
                saw_eos.shape,
                tf.TensorShape([None, width, None]),
                previous.shape,
                [c.shape for c in carry],
            ],
        )
        _, scores, _, lengths, saw_eos, history, _, _ = loop
        best_length = lengths[:, 0]
        ranked = scores[:, 0] / tf.pow(tf.cast(tf.maximum(best_length, 1), tf.float32), alpha)
        tokens = history[:, 0]
        tokens = tf.pad(tokens, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(tokens)[1])]])  # at least one column
        return tf.cast(tokens, tf.int64), tf.cast(best_length - tf.cast(saw_eos[:, 0], tf.int32), tf.int64), ranked
