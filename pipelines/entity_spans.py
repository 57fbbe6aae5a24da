"""Entity-level precision, recall and F1 over BIO tag sequences, by the CoNLL evaluation script's
chunk rules (`conlleval`): a chunk starts at B-X (or S-X), or at I-X / E-X after O, after another
type or after a closed chunk; it ends before B / S / O, after E / S, or where the type changes.
So IOB1 (I-X opening a chunk), IOB2 and IOBES all read as the script reads them, and a chunk counts
as found only with its type and both its ends.

Why not a library: seqeval computes the same scores but requires scikit-learn, and Keras imports
scikit-learn (and with it scipy.stats) on every `import keras` where it is installed, for its
scikit-learn wrappers: every process that trains, evaluates or exports started slower by that import
(`benchmarks/bench_import.py`), for a function of forty lines. This one gives seqeval's numbers
(its default mode, micro average; checked against it on random tag sequences when written).

    >>> entity_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 4)]
    >>> span_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    {'precision': 0.0, 'recall': 0.0, 'f1': 0.0, 'gold': 1, 'predicted': 1, 'correct': 0}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_OUTSIDE = ("O", "")  # the prefix and type of a tag outside every chunk


def _split(tag: str) -> tuple[str, str]:
    """("B", "PER") for "B-PER"; ("O", "") for "O"; a tag without a type is its own prefix."""
    prefix, _, kind = tag.partition("-")
    return (prefix[:1], kind) if tag not in ("O", "") else _OUTSIDE


def _ends(prev: str, prev_kind: str, tag: str, kind: str) -> bool:
    """Whether the chunk open at the previous tag ends before this one."""
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev != "O" and prev_kind != kind


def _starts(prev: str, prev_kind: str, tag: str, kind: str) -> bool:
    """Whether a chunk starts at this tag."""
    if tag in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and tag in ("I", "E"):
        return True
    return tag != "O" and prev_kind != kind


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks of one sentence's tags: (type, first index, last index)."""
    spans: list[tuple[str, int, int]] = []
    prev, prev_kind, begin = "O", "", 0
    for i, text in enumerate([*tags, "O"]):
        tag, kind = _split(text)
        if _ends(prev, prev_kind, tag, kind):
            spans.append((prev_kind, begin, i - 1))
        if _starts(prev, prev_kind, tag, kind):
            begin = i
        prev, prev_kind = tag, kind
    return spans


def span_scores(gold: Iterable[Sequence[str]], predicted: Iterable[Sequence[str]]) -> dict:
    """Micro-averaged entity precision, recall and F1 of `predicted` against `gold` (lists of
    sentences' tags, in the same order); 0.0 where a ratio has nothing to count."""
    n_gold = n_predicted = n_correct = 0
    for want_tags, got_tags in zip(gold, predicted, strict=True):
        want, got = set(entity_spans(want_tags)), set(entity_spans(got_tags))
        n_gold, n_predicted, n_correct = n_gold + len(want), n_predicted + len(got), n_correct + len(want & got)
    precision = n_correct / n_predicted if n_predicted else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "gold": n_gold,
        "predicted": n_predicted,
        "correct": n_correct,
    }
