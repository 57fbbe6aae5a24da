"""The answer contract (one JSON shape per task, whatever the runtime) and the
NumPy pieces that run beside the ONNX graph: CRF Viterbi decoding, language
model scoring and greedy generation. No TensorFlow here.

Answers, one dict per input text:

* classify -- ``{"label": str, "probabilities": {label: float, ...}}``
* tag -- ``{"tokens": [str, ...], "tags": [str, ...]}``
* lm -- ``{"tokens_scored": int, "loss": float, "perplexity": float}``
  (loss in nats per predicted token; a text of fewer than two tokens predicts
  nothing: loss 0, perplexity 1); generation -- ``{"continuation": str}``
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

RESERVED = ("<PAD>", "<UNK>")


def classify_answer(probabilities: np.ndarray, labels: list[str]) -> dict:
    probabilities = np.asarray(probabilities, np.float32)
    return {"label": labels[int(np.argmax(probabilities))],
            "probabilities": {name: float(p) for name, p in zip(labels, probabilities) if name not in RESERVED}}


def tag_answer(tokens: list[str], tag_ids: np.ndarray, labels: list[str]) -> dict:
    return {"tokens": list(tokens), "tags": [labels[int(i)] for i in tag_ids[: len(tokens)]]}


def lm_answer(loss: float, count: int) -> dict:
    return {"tokens_scored": int(count), "loss": float(loss), "perplexity": float(math.exp(loss))}


def viterbi(emissions: np.ndarray, length: int, transitions: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> np.ndarray:
    """Best tag path of one sentence, in float32 with first-index tie-breaking,
    the same arithmetic as `keras_seq.CRF.decode`."""
    if length == 0:
        return np.zeros(0, np.int64)
    emissions = np.asarray(emissions[:length], np.float32)
    score = emissions[0] + start
    pointers = []
    for t in range(1, length):
        candidates = score[:, None] + transitions  # (previous, current)
        pointers.append(np.argmax(candidates, axis=0))
        score = np.max(candidates, axis=0) + emissions[t]
    score = score + end
    path = [int(np.argmax(score))]
    for pointer in reversed(pointers):
        path.append(int(pointer[path[-1]]))
    return np.array(path[::-1], np.int64)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def lm_scores(logits: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> list[dict]:
    """Per-text loss of next-token prediction: (B, T, V) logits, (B, T) ids."""
    answers = []
    for row_logits, row_ids, n in zip(logits, ids, lengths):
        n = int(n)
        if n < 2:
            answers.append(lm_answer(0.0, 0))
            continue
        log_probs = log_softmax(row_logits[: n - 1])
        nll = -float(log_probs[np.arange(n - 1), row_ids[1:n]].sum())
        answers.append(lm_answer(nll / (n - 1), n - 1))
    return answers


def greedy_tokens(first_logits: np.ndarray, step: Callable, states: list, length: int) -> np.ndarray:
    """Greedy continuation: `step(tokens (B,), states) -> (logits (B, V), states)`.
    <PAD> (id 0) is never chosen, so every generated step is a real one."""
    last = np.array(first_logits, np.float32, copy=True)
    out = np.zeros((last.shape[0], length), np.int64)
    for i in range(length):
        last[:, 0] = -np.inf
        token = np.argmax(last, axis=-1)
        out[:, i] = token
        if i + 1 < length:
            last, states = step(token, states)
            last = np.array(last, np.float32, copy=True)
    return out


def join_tokens(token_ids: np.ndarray, vocab: list[str], level: str) -> str:
    words = [vocab[int(i)] if int(i) > 1 else "" for i in token_ids]
    return ("" if level == "char" else " ").join(words)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def from_signature_outputs(task: str, row: dict, signature: str = "serving_default") -> dict:
    """One row of the SavedModel's outputs (as TF Serving returns them over REST
    or gRPC, or as the local server sends them) -> the task's answer."""
    if signature == "generate":
        return {"continuation": _text(row["continuation"])}
    if task == "classify":
        names = [_text(n) for n in row["label_names"]]
        return classify_answer(np.asarray(row["probabilities"], np.float32), names)
    if task == "tag":
        n = int(row["lengths"])
        tokens = [_text(t) for t in list(row["tokens"])[:n]]
        return {"tokens": tokens, "tags": [_text(t) for t in list(row["tags"])[:n]]}
    return lm_answer(float(row["loss"]), int(row["tokens_scored"]))


def rows_of(columns: dict) -> list[dict]:
    """Batched signature outputs {name: (B, ...)} -> one {name: value} per row."""
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def to_signature_outputs(task: str, answer: dict, labels: list[str] | None = None) -> dict:
    """The inverse, for the local server: an answer as the SavedModel's output row."""
    if "continuation" in answer:
        return {"continuation": answer["continuation"]}
    if task == "classify":
        probabilities = [answer["probabilities"].get(name, 0.0) for name in labels]
        return {"probabilities": probabilities, "label": answer["label"], "label_id": labels.index(answer["label"]),
                "label_names": labels}
    if task == "tag":
        return {"tokens": answer["tokens"], "tags": answer["tags"], "lengths": len(answer["tokens"])}
    return {"loss": answer["loss"], "perplexity": answer["perplexity"], "tokens_scored": answer["tokens_scored"]}
