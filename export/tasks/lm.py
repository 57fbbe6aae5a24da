"""Language models in the exporters: scoring and greedy generation signatures, logits and states in ONNX."""

from __future__ import annotations

from keras_seq.export.tasks.base import EXPORT_PARTS, TaskExport


@EXPORT_PARTS.register
class LanguageModelExport(TaskExport):
    name = "lm"
    text_signatures = ("serving_default", "generate")

    def onnx_output(self, kind):
        return "logits"

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel.signatures import IDS, LENGTHS, TEXT

        return {
            "serving_default": (functions.score_text, [TEXT]),
            "generate": (functions.generate_text, [TEXT]),
            "score_ids": (functions.score_ids, [IDS, LENGTHS]),
        }

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        import tensorflow as tf

        from keras_seq.serving.signature_outputs import lm_scores

        return lm_scores(predict(tf.cast(ids, tf.int32)).numpy(), ids.numpy(), lengths)
