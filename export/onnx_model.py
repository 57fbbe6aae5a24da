"""Moved: the ONNX converter is `keras_seq.export.onnx.converter` (this name, which earlier READMEs
documented, re-exports its public function)."""

import warnings

from keras_seq.export.onnx.converter import model_to_onnx  # noqa: F401

warnings.warn("keras_seq.export.onnx_model moved to keras_seq.export.onnx.converter", DeprecationWarning, stacklevel=2)
