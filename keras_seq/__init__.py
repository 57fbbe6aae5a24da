"""keras-seq: recurrent sequence models for Keras 3.

The layers, the CRF, the task models and decoding need keras and numpy only,
on any Keras backend (TensorFlow, JAX, PyTorch); importing this package
registers every layer for ``.keras`` save / load. The rooms are subpackages:
`keras_seq.pipelines` (tf.data, training; TensorFlow), `keras_seq.export`
(SavedModel and ONNX; TensorFlow), `keras_seq.serving` (ONNX Runtime predictor,
server, clients; no TensorFlow, no keras), `keras_seq.contracts` (the file
formats), `keras_seq.tasks` (the task registry) and `keras_seq.cli`.

In an install without keras (``pip install keras-seq[serving]``) the package
still imports, for the serving room; asking for a layer then says what is missing.
"""
import sys as _sys
from importlib.util import find_spec as _find_spec

from keras_seq._version import __version__


def _keras_available() -> bool:
    if "keras" in _sys.modules:  # None there: made unimportable on purpose
        return _sys.modules["keras"] is not None
    return _find_spec("keras") is not None


_LAYERS = ("RecurrentCell", "ElmanCell", "GRUCell", "LSTMCell", "Recurrent", "Elman", "GRU", "LSTM",
           "SequencePooling", "CRF", "CharacterWordEncoder", "build_classifier", "build_tagger",
           "build_language_model", "tagger_loss", "LanguageModelStepper", "decoding")

if _keras_available():
    from keras_seq import _quiet

    with _quiet.importing_backend():  # the keras-seq command starts quietly (keras_seq/_quiet.py)
        import keras  # noqa: F401

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
else:  # the serving-only install: contracts, tasks and keras_seq.serving still work

    def __getattr__(name: str):
        if name in _LAYERS:
            raise ImportError(f"keras_seq.{name} needs keras and a backend: pip install keras-seq "
                              "(plus tensorflow, jax or torch), or keras-seq[tf]")
        raise AttributeError(f"module 'keras_seq' has no attribute {name!r}")


__all__ = ["__version__", *_LAYERS]
