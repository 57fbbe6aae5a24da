"""Language-model answers: the loss and perplexity of a text under the model."""

from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.serving.scoring import lm_scores
from keras_seq.serving.tasks.base import ANSWER_PARTS, TaskAnswers


@ANSWER_PARTS.register
class LanguageModelAnswers(TaskAnswers):
    name = "lm"
    signature_key = "loss"

    def answer_from_outputs(self, row, labels):
        return answers.lm_answer(float(row["loss"]), int(row["tokens_scored"]))

    def outputs_from_answer(self, answer, labels):
        return {"loss": answer["loss"], "perplexity": answer["perplexity"], "tokens_scored": answer["tokens_scored"]}

    def onnx_answers(self, predictor, texts):
        ids, lengths = predictor.tokenizer.encode_batch(texts)
        logits = predictor.session.run([predictor.output], {"ids": ids, **predictor.zero_states(len(texts))})[0]
        return lm_scores(logits, ids, lengths)

    def answer_numbers(self, answer):
        return [answer["loss"]]
