"""Classification answers: probabilities over the labels and the likeliest label."""

from __future__ import annotations

from keras_seq.contracts import answers
from keras_seq.serving.tasks.base import ANSWER_PARTS, TaskAnswers


@ANSWER_PARTS.register
class ClassifyAnswers(TaskAnswers):
    name = "classify"
    signature_key = "label_names"

    def answer_from_outputs(self, row, labels):
        names = [answers.text_of(n) for n in row["label_names"]]
        return answers.classify_answer(list(row["probabilities"]), names)

    def outputs_from_answer(self, answer, labels):
        probabilities = [answer["probabilities"].get(name, 0.0) for name in labels]
        return {
            "probabilities": probabilities,
            "label": answer["label"],
            "label_id": labels.index(answer["label"]),
            "label_names": labels,
        }

    def onnx_answers(self, predictor, texts):
        ids, _ = predictor.tokenizer.encode_batch(texts)
        probabilities = predictor.session.run([predictor.output], {"ids": ids})[0]
        return [answers.classify_answer(p.tolist(), predictor.labels) for p in probabilities]

    def answer_numbers(self, answer):
        return list(answer["probabilities"].values())
