"""Encoder-decoders in the exporters: an encoder graph and a decoder-step graph in ONNX, the
beam search inside the SavedModel's graph."""

from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.contracts.vocab import BOS_ID
from keras_seq.export.tasks.base import EXPORT_PARTS, TaskExport
from keras_seq.tasks.seq2seq import decode_ids, decode_settings


@EXPORT_PARTS.register
class Seq2SeqExport(TaskExport):
    name = "seq2seq"

    def onnx_output(self, kind):
        return "memory"

    def probe_inputs(self, model, rng):
        targets = rng.integers(4, max(int(model.get_layer("logits").units), 5), size=(2, 3)).astype("int32")
        targets[:, 0] = BOS_ID
        return [targets]

    def onnx_info(self, run):
        return {"decode": decode_settings(run.config)}

    def onnx_models(self, model, metadata):
        from keras_seq.export.onnx.encoder_decoder import seq2seq_to_onnx

        return seq2seq_to_onnx(model, metadata)

    def serving_signatures(self, functions):
        from keras_seq.export.savedmodel.beam_search import Seq2SeqServing
        from keras_seq.export.savedmodel.signatures import IDS, LENGTHS, TEXT

        serving = functions.cached("seq2seq", lambda: Seq2SeqServing(functions.run, functions.encoder))
        return {"serving_default": (serving.text, [TEXT]), "predict_ids": (serving.ids, [IDS, LENGTHS])}

    def keras_answers(self, run, encoder, tokens, ids, lengths, predict, raw_scores=None):
        best = decode_ids(run.model, run.config, ids.numpy(), run.labels)
        return [
            answers.seq2seq_answer([run.labels[i] for i in row], score) for row, score in zip(best.rows(), best.scores)
        ]
