"""Entity spans by the CoNLL script's rules, on cases worked out by hand (the scores seqeval gives)."""

from __future__ import annotations

import doctest

import pytest

from keras_seq.pipelines import entity_spans as module
from keras_seq.pipelines.entity_spans import entity_spans, span_scores


def test_the_module_examples_run():
    result = doctest.testmod(module, verbose=False)
    assert result.attempted and not result.failed


@pytest.mark.parametrize(
    "tags, spans",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),  # IOB2
        (["I-PER", "I-PER", "O", "I-LOC", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4)]),  # IOB1
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),  # a type change closes and opens
        (["S-PER", "B-LOC", "E-LOC", "I-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)]),  # IOBES
        (["B-MISC", "B-MISC", "I-MISC"], [("MISC", 0, 0), ("MISC", 1, 2)]),
        (["O", "O"], []),
        ([], []),
    ],
)
def test_chunks_follow_the_conll_script(tags, spans):
    assert entity_spans(tags) == spans


def test_scores_count_a_chunk_only_with_its_type_and_both_ends():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], ["O"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"], ["B-MISC"]]
    scores = span_scores(gold, predicted)
    # gold: PER 0-1, LOC 3, ORG 0 (3); predicted: PER 0, LOC 3, ORG 0, MISC 0 (4); correct: LOC, ORG (2)
    assert (scores["gold"], scores["predicted"], scores["correct"]) == (3, 4, 2)
    assert scores["precision"] == pytest.approx(0.5) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    # sentences are scored apart: a chunk never runs from one into the next
    assert span_scores([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])["correct"] == 2


def test_nothing_to_count_scores_zero_and_unequal_lengths_are_refused():
    assert span_scores([["O"]], [["O"]]) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "gold": 0,
        "predicted": 0,
        "correct": 0,
    }
    with pytest.raises(ValueError):
        span_scores([["O"], ["O"]], [["O"]])
