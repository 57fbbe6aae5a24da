"""The answer contract: one JSON shape per task, whatever the runtime
(SavedModel, ONNX Runtime, the local server, TF Serving through the clients).

One dict per input text:

* classify -- ``{"label": str, "probabilities": {label: float, ...}}``
* tag -- ``{"tokens": [str, ...], "tags": [str, ...]}``
* lm -- ``{"tokens_scored": int, "loss": float, "perplexity": float}``
  (loss in nats per predicted token; a text of fewer than two tokens predicts
  nothing: loss 0, perplexity 1); generation -- ``{"continuation": str}``
* seq2seq -- ``{"output": [str, ...], "score": float}``: the decoded target tokens (EOS
  not included) and the search's score, log p / (tokens + 1)**alpha
* any text that could not be answered -- ``{"error": str}``
"""

from __future__ import annotations

import math
from collections.abc import Sequence

NUMBER_FIELDS = ("probabilities", "loss", "perplexity", "_scores", "score")  # compared within a tolerance, not exactly
RESERVED_LABELS = ("<PAD>", "<UNK>")  # tag files reserve ids 0/1; they are never an answer's probability key


def classify_answer(probabilities: Sequence[float], labels: Sequence[str]) -> dict:
    values = [float(p) for p in probabilities]
    best = max(range(len(values)), key=values.__getitem__)  # first index on ties, as argmax
    return {
        "label": labels[best],
        "probabilities": {name: p for name, p in zip(labels, values) if name not in RESERVED_LABELS},
    }


def tag_answer(tokens: Sequence[str], tag_ids: Sequence[int], labels: Sequence[str]) -> dict:
    return {"tokens": list(tokens), "tags": [labels[int(i)] for i in list(tag_ids)[: len(tokens)]]}


def lm_answer(loss: float, count: int) -> dict:
    return {"tokens_scored": int(count), "loss": float(loss), "perplexity": float(math.exp(loss))}


def generate_answer(continuation: str) -> dict:
    return {"continuation": continuation}


def seq2seq_answer(tokens: Sequence[str], score: float) -> dict:
    return {"output": list(tokens), "score": float(score)}


def error_answer(message: str) -> dict:
    return {"error": message}


def text_of(value) -> str:
    """A string output as the runtimes return it (bytes from TF, str from JSON) -> str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
