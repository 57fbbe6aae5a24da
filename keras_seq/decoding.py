"""Decoding for language models: greedy, temperature sampling and beam search.

All three drive a *step function*::

    step(ids: (B,) int array, states: list of (B, n) arrays)
        -> (log_probs: (B, V) array, new_states)

(`keras_seq.models.LanguageModelStepper` makes one from a trained model), and
start from the log-probabilities and states after the prompt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

StepFn = Callable[[np.ndarray, list], tuple[np.ndarray, list]]

__all__ = ["greedy", "sample", "beam_search", "exhaustive_search", "Hypothesis", "normalized_score"]


def _check_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"`length` must be a non-negative integer; received {length!r}")


def greedy(step: StepFn, log_probs: np.ndarray, states: list, length: int) -> np.ndarray:
    """The most likely next token, `length` times: (B, length) ids.

    Example, with a toy step that always prefers token 2::

        >>> import numpy as np
        >>> step = lambda tokens, states: (np.log(np.tile([0.1, 0.2, 0.7], (len(tokens), 1))), states)
        >>> greedy(step, np.log(np.array([[0.5, 0.3, 0.2]])), [], 3).tolist()
        [[0, 2, 2]]
    """
    _check_length(length)
    out = []
    for i in range(length):
        ids = np.argmax(log_probs, axis=-1)
        out.append(ids)
        if i + 1 < length:
            log_probs, states = step(ids, states)
    return np.stack(out, axis=1) if out else np.zeros((log_probs.shape[0], 0), np.int64)


def sample(step: StepFn, log_probs: np.ndarray, states: list, length: int, temperature: float = 1.0,
           seed: int | None = None) -> np.ndarray:
    """Samples from softmax(log_probs / temperature); seeded, so reproducible.

    Example::

        >>> import numpy as np
        >>> step = lambda tokens, states: (np.log(np.tile([0.1, 0.2, 0.7], (len(tokens), 1))), states)
        >>> first = sample(step, np.log(np.array([[0.5, 0.3, 0.2]])), [], 5, temperature=0.8, seed=1)
        >>> bool((first == sample(step, np.log(np.array([[0.5, 0.3, 0.2]])), [], 5, temperature=0.8, seed=1)).all())
        True
    """
    _check_length(length)
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0; received {temperature!r}")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(length):
        logits = log_probs / temperature
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        cumulative = probs.cumsum(axis=-1)
        draws = rng.random((probs.shape[0], 1))
        ids = np.minimum((cumulative < draws).sum(axis=-1), probs.shape[-1] - 1)
        out.append(ids)
        if i + 1 < length:
            log_probs, states = step(ids, states)
    return np.stack(out, axis=1) if out else np.zeros((log_probs.shape[0], 0), np.int64)


@dataclass
class Hypothesis:
    tokens: tuple[int, ...]
    log_prob: float
    score: float  # length-normalised


def normalized_score(log_prob: float, length: int, alpha: float) -> float:
    """log p / length**alpha (alpha = 0: raw log-probability; 1: per-token mean)."""
    return log_prob / max(length, 1) ** alpha


def beam_search(step: StepFn, log_probs: np.ndarray, states: list, length: int, beam_width: int = 4,
                eos_id: int | None = None, alpha: float = 1.0) -> list[Hypothesis]:
    """Beam search for one prompt (B = 1): hypotheses best first.

    A hypothesis ends at `eos_id` (included in its tokens) or after `length`
    tokens. Finished hypotheses are ranked by ``log p / len**alpha``; the
    search stops when no open beam can still enter the top `beam_width`.

    Example::

        >>> import numpy as np
        >>> step = lambda tokens, states: (np.log(np.tile([0.1, 0.2, 0.7], (len(tokens), 1))), states)
        >>> best = beam_search(step, np.log(np.array([[0.5, 0.3, 0.2]])), [], 2, beam_width=2)[0]
        >>> list(best.tokens)
        [0, 2]
    """
    _check_length(length)
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`beam_width` must be a positive integer; received {beam_width!r}")
    if log_probs.shape[0] != 1:
        raise ValueError("beam_search decodes one prompt at a time (batch size 1)")
    vocab = log_probs.shape[-1]
    beams = [((), 0.0)]
    beam_log_probs = log_probs
    beam_states = states
    finished: list[Hypothesis] = []
    for position in range(length):
        totals = np.array([lp for _, lp in beams])[:, None] + beam_log_probs  # (beams, V)
        flat = totals.reshape(-1)
        order = np.argsort(-flat, kind="stable")[: beam_width * 2 + 1]
        candidates = []
        for index in order:
            b, token = divmod(int(index), vocab)
            tokens = beams[b][0] + (token,)
            if (eos_id is not None and token == eos_id) or position + 1 == length:
                finished.append(Hypothesis(tokens, float(flat[index]), normalized_score(float(flat[index]),
                                                                                        len(tokens), alpha)))
            elif len(candidates) < beam_width:
                candidates.append((b, tokens, float(flat[index])))
        if not candidates:
            break
        finished.sort(key=lambda h: -h.score)
        finished = finished[:beam_width]
        # Every open beam's score can only fall (log p decreases) except by the
        # normalisation; stop when even the best case cannot beat the worst kept.
        if len(finished) == beam_width and alpha == 0.0 and max(c[2] for c in candidates) <= finished[-1].score:
            break
        parents = np.array([c[0] for c in candidates])
        ids = np.array([c[1][-1] for c in candidates])
        beam_log_probs, beam_states = step(ids, [s[parents] for s in beam_states])
        beams = [(c[1], c[2]) for c in candidates]
    finished.sort(key=lambda h: -h.score)
    return finished[:beam_width]


def exhaustive_search(step: StepFn, log_probs: np.ndarray, states: list, length: int,
                      eos_id: int | None = None, alpha: float = 1.0) -> Hypothesis:
    """The best hypothesis by enumerating every sequence (for tests; V**length calls)."""
    best: Hypothesis | None = None

    def visit(tokens: tuple, total: float, lp: np.ndarray, st: Sequence) -> None:
        nonlocal best
        for token in range(lp.shape[-1]):
            new_total = total + float(lp[0, token])
            new_tokens = tokens + (token,)
            if (eos_id is not None and token == eos_id) or len(new_tokens) == length:
                h = Hypothesis(new_tokens, new_total, normalized_score(new_total, len(new_tokens), alpha))
                if best is None or h.score > best.score:
                    best = h
            else:
                next_lp, next_st = step(np.array([token]), list(st))
                visit(new_tokens, new_total, next_lp, next_st)

    if length > 0:
        visit((), 0.0, log_probs, states)
    return best
