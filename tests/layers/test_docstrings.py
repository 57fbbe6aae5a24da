"""Every example in the layers' and builders' docstrings runs, and says what it shows."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "keras_seq.attention",
    "keras_seq.cells",
    "keras_seq.recurrent",
    "keras_seq.pooling",
    "keras_seq.crf",
    "keras_seq.charwords",
    "keras_seq.charcontext",
    "keras_seq.losses",
    "keras_seq.models",
    "keras_seq.encoder_decoder",
    "keras_seq.decoding",
    "keras_seq.tasks",
    "keras_seq.finetuning",
    "keras_seq.averaging",
    "keras_seq.transfer",
]
PUBLIC = [
    "RecurrentCell",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "Recurrent",
    "Elman",
    "GRU",
    "LSTM",
    "SequencePooling",
    "CRF",
    "CRFLoss",
    "AdditiveAttention",
    "MultiplicativeAttention",
    "AttentionDecoder",
    "CharacterWordEncoder",
    "ContextualCharEmbedding",
    "build_classifier",
    "build_tagger",
    "build_language_model",
    "build_seq2seq",
    "LanguageModelStepper",
    "LabelSmoothedCrossentropy",
    "layer_groups",
    "discriminative",
    "SlantedTriangular",
    "ValidateMovingAverage",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"


def test_every_public_layer_and_builder_has_a_runnable_example():
    import keras_seq

    missing = [name for name in PUBLIC if ">>>" not in (getattr(keras_seq, name).__doc__ or "")]
    assert missing == []
    assert all(">>>" in (getattr(keras_seq.decoding, f).__doc__ or "") for f in ("greedy", "sample", "beam_search"))
