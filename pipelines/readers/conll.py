"""Token-per-line tagging formats: CoNLL-U (UD treebanks) and the CoNLL-2003
column format (``token ... TAG``, blank line between sentences)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from keras_seq.pipelines.readers.errors import ReaderError, read_utf8

_CONLLU_COLUMNS = {"upos": 3, "xpos": 4}


def _blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Numbered non-blank lines, grouped by the blank lines between sentences."""
    block: list[tuple[int, str]] = []
    for n, line in enumerate(read_utf8(path).split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            block.append((n, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def iter_conllu(path: str | Path, column: str = "upos") -> Iterator[tuple[list[str], list[str]]]:
    """(words, tags) per sentence; skips comments, multiword ranges (1-2) and
    empty nodes (8.1)."""
    if column not in _CONLLU_COLUMNS:
        raise ValueError(f"CoNLL-U tag column must be one of {sorted(_CONLLU_COLUMNS)}; received {column!r}")
    index = _CONLLU_COLUMNS[column]
    path = Path(path)
    for block in _blocks(path):
        words: list[str] = []
        tags: list[str] = []
        for n, line in block:
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 10:
                raise ReaderError(path, n, f"expected 10 tab-separated columns, found {len(fields)}")
            token_id = fields[0]
            if "-" in token_id or "." in token_id:
                continue
            if not token_id.isdigit():
                raise ReaderError(path, n, f"token ID {token_id!r} is not an integer")
            if not fields[1] or not fields[index] or (fields[index] == "_" and column == "upos"):
                raise ReaderError(path, n, "a token line without a word or a tag")
            words.append(fields[1])
            tags.append(fields[index])
        if words:
            yield words, tags


def iter_conll_columns(path: str | Path) -> Iterator[tuple[list[str], list[str]]]:
    """(tokens, tags) per sentence from ``token [other columns] TAG`` lines;
    tolerates ``-DOCSTART-`` lines."""
    path = Path(path)
    width = None
    for block in _blocks(path):
        tokens: list[str] = []
        tags: list[str] = []
        for n, line in block:
            fields = line.split()
            if fields[0] == "-DOCSTART-":
                continue
            if len(fields) < 2:
                raise ReaderError(path, n, "a line without both a token and a tag")
            width = width or len(fields)
            if len(fields) != width:
                raise ReaderError(path, n, f"expected {width} columns as on earlier lines, found {len(fields)}")
            tokens.append(fields[0])
            tags.append(fields[-1])
        if tokens:
            yield tokens, tags
