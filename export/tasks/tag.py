"""Tagging in the exporters: per-token probabilities, or a CRF's emissions with its parameters."""

from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.export.tasks.base import EXPORT_PARTS, TaskExport
from keras_seq.tasks.tag import crf_layer


@EXPORT_PARTS.register
class TagExport(TaskExport):
    name = "tag"

    def output_kind(self, model):
        return "crf" if crf_layer(model) is not None else self.name

    def onnx_output(self, kind):
        return "emissions" if kind == "crf" else "probabilities"

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel.signatures import CHARS, IDS, LENGTHS, TEXT

        ids_inputs = [IDS, LENGTHS, CHARS] if functions.char_features else [IDS, LENGTHS]
        return {"serving_default": (functions.tag_text, [TEXT]), "predict_ids": (functions.tag_ids, ids_inputs)}

    def padding_probe(self, plain, padded, ids):
        valid = ids != 0
        return plain[valid], padded[:, : ids.shape[1]][valid]

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        import tensorflow as tf

        inputs = tf.cast(ids, tf.int32)
        if run.char_features:
            chars = encoder.encode_chars(tokens).to_tensor(0)
            chars = tf.pad(
                chars, [[0, 0], [0, tf.shape(ids)[1] - tf.shape(chars)[1]], [0, tf.maximum(0, 1 - tf.shape(chars)[2])]]
            )
            inputs = [inputs, tf.cast(chars, tf.int32)]
        scores = predict(inputs)
        if raw_scores is not None:
            raw_scores += [row[:n] for row, n in zip(scores.numpy(), lengths)]
        mask = tf.sequence_mask(lengths, tf.shape(ids)[1])
        tag_ids = run.crf.decode(scores, mask)[0].numpy() if run.crf is not None else scores.numpy().argmax(-1)
        return [
            answers.tag_answer([t.decode("utf-8") for t in row_tokens], row_tags, run.labels)
            for row_tokens, row_tags in zip(tokens.to_list(), tag_ids)
        ]

    def text_graph_decodes(self, kind):
        return kind != "crf"  # Viterbi runs beside the graph

    def text_graph_fields(self, graph, output, labels, tokenized):
        tags = graph.labels_of(graph.op("ArgMax", [output], axis=-1, keepdims=0), labels)
        return {"tokens": tokenized["tokens"], "tags": tags, "lengths": tokenized["lengths"]}
