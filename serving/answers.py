"""Moved: the NumPy decoding beside the ONNX graph is `keras_seq.serving.scoring`, the mapping to and
from signature outputs `keras_seq.serving.signature_outputs` (this name, which earlier READMEs
documented, re-exports both)."""

import warnings

from keras_seq.serving.scoring import *  # noqa: F403
from keras_seq.serving.signature_outputs import *  # noqa: F403

warnings.warn(
    "keras_seq.serving.answers moved to keras_seq.serving.signature_outputs and keras_seq.serving.scoring",
    DeprecationWarning,
    stacklevel=2,
)
