"""Moved: the tokenizer's pure-Python twin is `keras_seq.serving.tokenizer_twin` (this name, which
earlier READMEs documented, re-exports it)."""

import warnings

from keras_seq.serving.tokenizer_twin import *  # noqa: F403
from keras_seq.serving.tokenizer_twin import TextTokenizer, pad_rows  # noqa: F401

warnings.warn("keras_seq.serving.text moved to keras_seq.serving.tokenizer_twin", DeprecationWarning, stacklevel=2)
