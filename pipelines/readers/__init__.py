"""Readers for real corpus formats. Each yields plain Python examples lazily:

* classification: ``(text, label)``;
* tagging: ``(tokens, tags)``;
* language modelling: one string per split.

A malformed file raises :class:`ReaderError` naming the file and line.
"""

from keras_seq.pipelines.readers.errors import ReaderError, decode_utf8
from keras_seq.pipelines.readers.sources import Corpus, open_corpus

__all__ = ["ReaderError", "decode_utf8", "Corpus", "open_corpus"]
