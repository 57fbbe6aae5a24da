"""CSV / TSV / JSON Lines with a text column and a label column."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from keras_seq.pipelines.readers.errors import ReaderError, read_utf8


def iter_table(path: str | Path, text_column: str = "text", label_column: str = "label") -> Iterator[tuple[str, str]]:
    path = Path(path)
    content = read_utf8(path)
    if path.suffix in (".jsonl", ".json", ".ndjson"):
        yield from _iter_jsonl(path, content, text_column, label_column)
        return
    delimiter = "\t" if path.suffix in (".tsv", ".tab") else ","
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = next(reader)
    for column in (text_column, label_column):
        if column not in header:
            raise ReaderError(path, 1, f"no column {column!r} in the header {header}")
    ti, li = header.index(text_column), header.index(label_column)
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            raise ReaderError(path, line, f"expected {len(header)} columns, found {len(row)}")
        yield row[ti], row[li]


def _iter_jsonl(path: Path, content: str, text_column: str, label_column: str) -> Iterator[tuple[str, str]]:
    for n, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReaderError(path, n, f"not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or text_column not in record or label_column not in record:
            raise ReaderError(path, n, f"expected an object with {text_column!r} and {label_column!r}")
        if not isinstance(record[text_column], str):
            raise ReaderError(path, n, f"{text_column!r} must be a string")
        yield record[text_column], str(record[label_column])
