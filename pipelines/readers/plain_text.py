"""Plain text for language modelling (e.g. tiny-shakespeare)."""

from __future__ import annotations

from pathlib import Path

from keras_seq.pipelines.readers.errors import read_utf8


def read_text(path: str | Path) -> str:
    return read_utf8(path)


def split_text(text: str, train_fraction: float = 0.9) -> dict[str, str]:
    """The usual char-LM split: the first `train_fraction` of characters train,
    the rest validation."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"`train_fraction` must be in (0, 1); received {train_fraction}")
    cut = int(len(text) * train_fraction)
    return {"train": text[:cut], "validation": text[cut:]}
