"""Encoder-decoder answers: the best target sequence and its score, by beam search over the graphs."""

from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.serving.tasks.base import ANSWER_PARTS, TaskAnswers


@ANSWER_PARTS.register
class Seq2SeqAnswers(TaskAnswers):
    name = "seq2seq"
    signature_key = "output"

    def answer_from_outputs(self, row, labels):
        count = int(row["output_lengths"])
        return answers.seq2seq_answer([answers.text_of(t) for t in list(row["output"])[:count]], float(row["score"]))

    def outputs_from_answer(self, answer, labels):
        return {"output": answer["output"], "output_lengths": len(answer["output"]), "score": answer["score"]}

    def onnx_answers(self, predictor, texts):
        # on first use: the search (keras_seq.decoding) loads keras_seq's layer package, which an
        # install without keras (the [serving] extra) has no need of for the other tasks
        from keras_seq.serving.encoder_decoder import onnx_decode

        return onnx_decode(predictor, texts)

    def answer_numbers(self, answer):
        return [answer["score"]]
