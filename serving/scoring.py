"""The NumPy pieces that run beside the ONNX graph: CRF Viterbi decoding, language-model
scoring and greedy generation. No TensorFlow, no keras."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_seq.contracts.answers import lm_answer

__all__ = ["viterbi", "log_softmax", "lm_scores", "greedy_tokens", "join_tokens"]


def viterbi(
    emissions: np.ndarray, length: int, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
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
