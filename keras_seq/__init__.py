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


_LAYERS = (
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
    "unigram_log_probs",
    "build_seq2seq",
    "attention_model",
    "Seq2SeqStepper",
    "tagger_loss",
    "LabelSmoothedCrossentropy",
    "LanguageModelStepper",
    "decoding",
    "layer_groups",
    "discriminative",
    "SlantedTriangular",
    "ValidateMovingAverage",
    "GradualUnfreezing",
    "TransferReport",
    "load_pretrained",
    "load_char_lm",
    "init_from",
)
_MISSING: str | None = ""  # "" = not checked yet; None = the layers are loaded


def register_layers() -> None:
    """Imports the layers (registering them for ``.keras`` loading) if not done yet.

    ``import keras_seq`` does this itself; only the ``keras-seq`` command defers it
    until a command needs keras, so ``keras-seq --help`` or an ONNX-only
    ``predict`` never start TensorFlow. Raises ImportError naming what is missing.
    """
    global _MISSING
    if _MISSING == "":
        _MISSING = _keras_with_backend()
        if _MISSING is None:
            from importlib import import_module

            for name in (
                "attention",
                "cells",
                "charwords",
                "charcontext",
                "crf",
                "losses",
                "models",
                "pooling",
                "recurrent",
                "encoder_decoder",
                "finetuning",
                "averaging",
                "transfer",
            ):
                module = import_module(f"keras_seq.{name}")
                globals().update({key: getattr(module, key) for key in module.__all__})
            globals()["decoding"] = import_module("keras_seq.decoding")
    if _MISSING is not None:
        raise ImportError(
            f"keras_seq's layers need keras and a backend, and {_MISSING} is missing: "
            "pip install keras-seq[tf] (or keras-seq plus jax or torch, with KERAS_BACKEND set)"
        )


def __getattr__(name: str):
    if name in _LAYERS:
        try:
            register_layers()
        except ImportError as error:
            raise ImportError(f"keras_seq.{name}: {error}") from None
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module 'keras_seq' has no attribute {name!r}")


def _load_at_import() -> None:
    from keras_seq import _quiet

    if _quiet.invoked_as_cli():
        return  # the command loads the layers when one of its commands needs them
    try:
        register_layers()
    except ImportError:
        if _MISSING is None:
            raise  # keras is fine: one of our own modules failed to import
        # a serving-only install: contracts, tasks and keras_seq.serving still work


_load_at_import()
__all__ = ["__version__", "register_layers", *_LAYERS]
