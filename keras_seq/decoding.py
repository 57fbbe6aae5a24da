"""Decoding: greedy, temperature sampling and beam search.

Every search drives a *step function*::

    step(ids: (B,) int array, states: list of (B, ...) arrays)
        -> (log_probs: (B, V) array, new_states)

Language models (`keras_seq.models.LanguageModelStepper` makes their step) use
`greedy`, `sample` and `beam_search`, starting from the log-probabilities and
states after the prompt. Encoder-decoders (`keras_seq.Seq2SeqStepper`) use
`batch_greedy` and `batch_beam_search`: many sources at once, each hypothesis
ending at EOS or at its source's maximum length (`max_target_lengths`).

This module needs NumPy only: ``keras_seq.serving`` runs the same searches
beside the ONNX graphs, with the arithmetic and tie-breaking of the SavedModel's
in-graph search (ties go to the lower flat index, as ``tf.math.top_k``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

StepFn = Callable[[np.ndarray, list], tuple[np.ndarray, list]]

__all__ = [
    "greedy",
    "sample",
    "beam_search",
    "exhaustive_search",
    "Hypothesis",
    "normalized_score",
    "max_target_lengths",
    "batch_greedy",
    "batch_beam_search",
    "BatchHypotheses",
    "merge_classes",
    "class_tables",
]


def _check_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"`length` must be a non-negative integer; received {length!r}")


def _check_width(width: int) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"`beam_width` must be a positive integer; received {width!r}")


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


def sample(
    step: StepFn, log_probs: np.ndarray, states: list, length: int, temperature: float = 1.0, seed: int | None = None
) -> np.ndarray:
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


def beam_search(
    step: StepFn,
    log_probs: np.ndarray,
    states: list,
    length: int,
    beam_width: int = 4,
    eos_id: int | None = None,
    alpha: float = 1.0,
) -> list[Hypothesis]:
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
    _check_width(beam_width)
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
                finished.append(
                    Hypothesis(tokens, float(flat[index]), normalized_score(float(flat[index]), len(tokens), alpha))
                )
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


def exhaustive_search(
    step: StepFn, log_probs: np.ndarray, states: list, length: int, eos_id: int | None = None, alpha: float = 1.0
) -> Hypothesis:
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


# -- encoder-decoders: many sources at once ------------------------------------------


def max_target_lengths(source_lengths, factor: float = 2.0, extra: int = 5) -> np.ndarray:
    """The most target tokens (EOS included) each source may get: ``floor(factor * S) + extra``."""
    if not factor >= 0 or isinstance(extra, bool) or not isinstance(extra, int) or extra < 1:
        raise ValueError(f"need factor >= 0 and an integer extra >= 1; received factor={factor!r}, extra={extra!r}")
    return (np.floor(np.asarray(source_lengths, np.float64) * factor) + extra).astype(np.int64)


def class_tables(classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """For `merge_classes`: the membership matrix (V, C) bool and each token's class column (V,)."""
    classes = np.asarray(classes, np.int64)
    if classes.ndim != 1 or (classes < 0).any() or (classes >= len(classes)).any():
        raise ValueError("`classes` must hold one class id in [0, V) per token")
    representatives, column = np.unique(classes, return_inverse=True)
    return column[:, None] == np.arange(len(representatives))[None], column


def merge_classes(log_probs: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Next-token log-probabilities (N, V) with each class of tokens merged into one choice.

    A class's probability is the sum over its members; it goes to the member of highest
    log-probability (ties: the lower id), which is the token emitted and fed back, and
    the other members get -inf. A search over these ranks hypotheses by the probability
    of their class sequence (e.g. a pronunciation whatever its stress digits, with the
    classes of `keras_seq.contracts.vocab.stress_classes`) instead of by one spelling of
    it. Float32; the SavedModel's in-graph search computes the same.

    Example: tokens 1 and 2 form one class::

        >>> merged = merge_classes(np.log(np.array([[0.4, 0.3, 0.3]], np.float32)), [0, 1, 1])
        >>> [round(float(p), 4) for p in np.exp(merged[0])]
        [0.4, 0.6, 0.0]
    """
    return _merge(log_probs, *class_tables(classes))


def _merge(log_probs: np.ndarray, member: np.ndarray, column: np.ndarray) -> np.ndarray:
    log_probs = np.asarray(log_probs, np.float32)
    masked = np.where(member[None], log_probs[:, :, None], np.float32(-np.inf))  # (N, V, C)
    best = masked.max(axis=1)  # (N, C)
    shift = np.where(np.isfinite(best), best, np.float32(0.0))
    with np.errstate(divide="ignore"):  # a class with no allowed member: log 0 = -inf
        total = shift + np.log(np.exp(masked - shift[:, None, :]).sum(axis=1))  # log of the class's probability
    ids = np.arange(log_probs.shape[-1])
    first = np.where(member[None] & (masked == best[:, None, :]), ids[None, :, None], len(ids)).min(axis=1)
    return np.where(first[:, column] == ids[None], total[:, column], np.float32(-np.inf)).astype(np.float32)


@dataclass
class BatchHypotheses:
    """The best hypothesis per source: `tokens` (B, T) ids padded with 0 after EOS (EOS
    itself excluded), `lengths` (B,) their token counts, `scores` (B,) the ranking score
    (log p / (tokens + EOS)**alpha) and `log_probs` (B,) the raw log-probability."""

    tokens: np.ndarray
    lengths: np.ndarray
    scores: np.ndarray
    log_probs: np.ndarray

    def rows(self) -> list[list[int]]:
        return [row[:n].tolist() for row, n in zip(self.tokens, self.lengths)]


def batch_beam_search(
    step: StepFn,
    states: list,
    max_lengths,
    *,
    bos_id: int,
    eos_id: int,
    beam_width: int = 4,
    alpha: float = 1.0,
    banned: tuple[int, ...] = (0,),
    classes: Sequence[int] | None = None,
) -> BatchHypotheses:
    """Beam search for B sources at once; `states` hold one row per source (B, ...).

    The step function sees B*K rows, source-major (row b*K + k is beam k of source b).
    Every step extends each open beam by every token except `banned` ones (padding) and
    keeps, per source, the K candidates of highest ``log p / length**alpha`` (length
    counts EOS); a finished beam (EOS emitted, or its source's `max_lengths` reached)
    stays as one candidate of unchanged score, so finished and open hypotheses compete on
    the same scale. It stops when every beam is finished. Arithmetic is float32. With
    K = 1 this is `batch_greedy`; with K covering every sequence, an exhaustive search.
    `classes` (one class id per token): each step's choices are merged by class first
    (`merge_classes`), so hypotheses rank by the probability of their class sequence.

    Example, with a toy step where token 2 is EOS::

        >>> import numpy as np
        >>> def step(ids, states):
        ...     table = np.log(np.array([[0.1, 0.6, 0.3], [0.1, 0.2, 0.7], [0.1, 0.2, 0.7]]))
        ...     return table[ids], states
        >>> best = batch_beam_search(step, [np.zeros((1, 1))], [5], bos_id=0, eos_id=2, beam_width=2)
        >>> best.rows(), round(float(best.log_probs[0]), 4)
        ([[1]], -0.8675)
    """
    _check_width(beam_width)
    tables = None if classes is None else class_tables(classes)  # once per search, not per step
    max_lengths = np.asarray(max_lengths, np.int64)
    if max_lengths.ndim != 1 or (max_lengths < 1).any():
        raise ValueError("`max_lengths` must hold one integer >= 1 per source")
    batch, width = len(max_lengths), beam_width
    steps = int(max_lengths.max()) if batch else 0
    states = [np.repeat(np.asarray(s), width, axis=0) for s in states]
    scores = np.full((batch, width), -np.inf, np.float32)
    scores[:, 0] = 0.0  # one live beam per source at the start; the others are empty
    tokens = np.zeros((batch, width, max(steps, 1)), np.int64)
    lengths = np.zeros((batch, width), np.int64)  # tokens emitted, EOS included
    saw_eos = np.zeros((batch, width), bool)
    finished = ~np.isfinite(scores)
    previous = np.full(batch * width, bos_id, np.int64)
    rows = np.arange(batch)[:, None]
    alpha = np.float32(alpha)
    for t in range(steps):
        log_probs, new_states = step(previous, states)
        log_probs = np.array(log_probs, np.float32).reshape(batch, width, -1)
        vocab = log_probs.shape[-1]
        log_probs[..., list(banned)] = -np.inf
        if tables is not None:
            log_probs = _merge(log_probs.reshape(batch * width, vocab), *tables).reshape(batch, width, vocab)
        stay = np.full(vocab, -np.inf, np.float32)
        stay[eos_id] = 0.0
        totals = scores[..., None] + np.where(finished[..., None], stay, log_probs)  # (B, K, V)
        new_lengths = lengths + ~finished
        ranked = totals / np.power(np.maximum(new_lengths, 1).astype(np.float32), alpha)[..., None]
        top = np.argsort(-ranked.reshape(batch, -1), axis=-1, kind="stable")[:, :width]  # ties: lower index
        parent, token = top // vocab, top % vocab
        scores = np.take_along_axis(totals.reshape(batch, -1), top, axis=-1)
        was_finished = np.take_along_axis(finished, parent, axis=-1)
        lengths = np.take_along_axis(new_lengths, parent, axis=-1)
        saw_eos = np.take_along_axis(saw_eos, parent, axis=-1) | (~was_finished & (token == eos_id))
        tokens = tokens[rows, parent]
        tokens[:, :, t] = np.where(was_finished | (token == eos_id), 0, token)
        finished = was_finished | (token == eos_id) | (t + 1 >= max_lengths[:, None]) | ~np.isfinite(scores)
        states = [np.asarray(s)[(parent + rows * width).reshape(-1)] for s in new_states]
        previous = token.reshape(-1)
        if finished.all():
            break
    best_len = lengths[:, 0]
    ranked = scores[:, 0] / np.power(np.maximum(best_len, 1).astype(np.float32), alpha)
    return BatchHypotheses(tokens[:, 0], best_len - saw_eos[:, 0], ranked, scores[:, 0])


def batch_greedy(
    step: StepFn, states: list, max_lengths, *, bos_id: int, eos_id: int, banned: tuple[int, ...] = (0,)
) -> BatchHypotheses:
    """The most likely next token at every step, for B sources at once (beam width 1)."""
    return batch_beam_search(
        step, states, max_lengths, bos_id=bos_id, eos_id=eos_id, beam_width=1, alpha=0.0, banned=banned
    )
