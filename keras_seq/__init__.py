"""keras-seq: recurrent sequence models for Keras 3.

Importing this package registers every layer for ``.keras`` save / load.
"""
from keras_seq import decoding
from keras_seq.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell
from keras_seq.charwords import CharacterWordEncoder
from keras_seq.crf import CRF
from keras_seq.models import (
    LanguageModelStepper,
    build_classifier,
    build_language_model,
    build_tagger,
    tagger_loss,
)
from keras_seq.pooling import SequencePooling
from keras_seq.recurrent import GRU, LSTM, Elman, Recurrent

__version__ = "0.1.0"

__all__ = [
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
    "CharacterWordEncoder",
    "build_classifier",
    "build_tagger",
    "build_language_model",
    "tagger_loss",
    "LanguageModelStepper",
    "decoding",
]
