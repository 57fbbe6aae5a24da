"""Tagging answers: one tag per token, by argmax or by CRF Viterbi beside the graph."""

from __future__ import annotations

import numpy as np

from keras_seq.contracts import answers
from keras_seq.serving.scoring import viterbi
from keras_seq.serving.tasks.base import ANSWER_PARTS, TaskAnswers
from keras_seq.serving.tokenizer_twin import pad_rows


@ANSWER_PARTS.register
class TagAnswers(TaskAnswers):
    name = "tag"
    signature_key = "tags"
    takes_token_lists = True

    def answer_from_outputs(self, row, labels):
        n = int(row["lengths"])
        return {
            "tokens": [answers.text_of(t) for t in list(row["tokens"])[:n]],
            "tags": [answers.text_of(t) for t in list(row["tags"])[:n]],
        }

    def outputs_from_answer(self, answer, labels):
        return {"tokens": answer["tokens"], "tags": answer["tags"], "lengths": len(answer["tokens"])}

    def onnx_scores(self, predictor, texts):
        """(tokens per text, per-token scores per text): tag probabilities, or the CRF's emissions.
        A text may be a list of tokens, taken as split (`TextTokenizer.given_tokens`)."""
        tokenizer = predictor.tokenizer
        tokens = [tokenizer.tokens(t) if isinstance(t, (str, bytes)) else tokenizer.given_tokens(t) for t in texts]
        feeds = {"ids": pad_rows([tokenizer.lookup(row) for row in tokens])}
        if tokenizer.char_vocab is not None:
            words = [tokenizer.word_chars(row) for row in tokens]
            width = max([1, *(len(w) for row in words for w in row)])
            chars = np.zeros(feeds["ids"].shape + (width,), np.int64)
            for i, row in enumerate(words):
                for j, word in enumerate(row):
                    chars[i, j, : len(word)] = word
            feeds["chars"] = chars
        scores = predictor.session.run([predictor.output], feeds)[0]
        return tokens, [row[: len(row_tokens)] for row_tokens, row in zip(tokens, scores)]

    def onnx_answers(self, predictor, texts):
        tokens, scores = self.onnx_scores(predictor, texts)
        out = []
        for row_tokens, row_scores in zip(tokens, scores):
            n = len(row_tokens)
            crf = predictor.crf
            tag_ids = viterbi(row_scores, n, *crf) if crf is not None else row_scores[:n].argmax(-1)
            out.append(answers.tag_answer(row_tokens, tag_ids, predictor.labels))
        return out
