"""The one error type of the readers, and strict UTF-8 decoding with a line number."""

from __future__ import annotations


class ReaderError(ValueError):
    """A corpus file that cannot be read as its format; the message names file and line."""

    def __init__(self, path: object, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


def decode_utf8(data: bytes, path: object) -> str:
    """Decodes `data` or raises ReaderError with the line of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ReaderError(
            path, line, f"not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def read_utf8(path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ReaderError(path, None, "is a folder, expected a file") from None
    if not data.strip():
        raise ReaderError(path, 1, "the file is empty")
    return decode_utf8(data, path)
