"""Classification in the exporters: one ``probabilities`` output per text."""

from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.export.tasks.base import EXPORT_PARTS, TaskExport


@EXPORT_PARTS.register
class ClassifyExport(TaskExport):
    name = "classify"

    def onnx_output(self, kind):
        return "probabilities"

    def onnx_output_axes(self):
        return ["batch", "classes"]

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel.signatures import IDS, LENGTHS, TEXT

        return {
            "serving_default": (functions.classify_text, [TEXT]),
            "predict_ids": (functions.classify_ids, [IDS, LENGTHS]),
        }

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        import tensorflow as tf

        return [answers.classify_answer(p.tolist(), run.labels) for p in predict(tf.cast(ids, tf.int32)).numpy()]

    def text_graph_decodes(self, kind):
        return True

    def text_graph_fields(self, graph, output, labels, tokenized):
        return {"label": graph.labels_of(graph.op("ArgMax", [output], axis=-1, keepdims=0), labels)}
