"""keras-seq: recurrent sequence models for Keras 3.

The layers, the CRF, the task models and decoding need keras and numpy only,
on any Keras backend (TensorFlow, JAX, PyTorch); importing this package
registers every layer for ``.keras`` save / load. The rooms are subpackages:
`keras_seq.pipelines` (tf.data, training; TensorFlow), `keras_seq.export`
(SavedModel and ONNX; TensorFlow), `keras_seq.serving` (ONNX Runtime predictor,
server, clients; no TensorFlow, no keras), `keras_seq.contracts` (the file
formats), `keras_seq.tasks` (the task registry) and `keras_seq.cli`.

In an install without a Keras backend (``pip install keras-seq[serving]``:
keras but no TensorFlow, JAX or torch) the package still imports, for the
serving room; asking for a layer then says what is missing.
"""
import sys as _sys
from importlib.util import find_spec as _find_spec

from keras_seq._version import __version__


_BACKENDS = ("tensorflow", "jax", "jaxlib", "torch")


def _keras_with_backend() -> str | None:
    """None when keras and its backend import; otherwise what is missing."""
    if "keras" in _sys.modules and _sys.modules["keras"] is None:  # made unimportable on purpose
        return "keras"
    if "keras" not in _sys.modules and _find_spec("keras") is None:
        return "keras"
    from keras_seq import _quiet

    try:
        with _quiet.importing_backend():  # the keras-seq command starts quietly (keras_seq/_quiet.py)
            import keras  # noqa: F401
    except ModuleNotFoundError as error:  # keras is there, its backend is not (a [serving]-only install)
        if (error.name or "").split(".")[0] not in _BACKENDS:
            raise
        return f"keras's backend ({error.name})"
    return None


_LAYERS = ("RecurrentCell", "ElmanCell", "GRUCell", "LSTMCell", "Recurrent", "Elman", "GRU", "LSTM",
           "SequencePooling", "CRF", "CharacterWordEncoder", "build_classifier", "build_tagger",
           "build_language_model", "tagger_loss", "LanguageModelStepper", "decoding")

_MISSING = _keras_with_backend()
if _MISSING is None:
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
            raise ImportError(f"keras_seq.{name} needs keras and a backend, and {_MISSING} is missing: "
                              "pip install keras-seq[tf] (or keras-seq plus jax or torch, with KERAS_BACKEND set)")
        raise AttributeError(f"module 'keras_seq' has no attribute {name!r}")


__all__ = ["__version__", *_LAYERS]
