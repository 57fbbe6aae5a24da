"""`ContractError` and the JSON reader every contract uses."""

from __future__ import annotations

import json
import os
from pathlib import Path


class ContractError(ValueError):
    """A contract file is malformed; the message names the file and the problem."""


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of `path`, or one clear line: missing, unreadable, not UTF-8, empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing ({what})") from None
    except UnicodeDecodeError as error:
        raise ContractError(f"{path}: not UTF-8 text (byte {error.start}; {what})") from None
    except OSError as error:
        raise ContractError(f"{path}: cannot be read ({error.strerror}; {what})") from None
    if not text.strip():
        raise ContractError(f"{path}: the file is empty ({what})")
    return text


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from `path`, or one clear line: missing, unreadable, not JSON, not an object."""
    text = read_text_file(path, what)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as error:
        detail = error.msg if isinstance(error, json.JSONDecodeError) else type(error).__name__
        raise ContractError(f"{path}: not valid JSON ({detail}; {what})") from None
    if not isinstance(data, dict):
        raise ContractError(f"{path}: expected a JSON object, found {type(data).__name__} ({what})")
    return data


def replace_atomically(path: Path, write) -> Path:
    """Calls `write(temporary_path)`, then renames the result onto `path`: a reader (or a
    rerun after a kill) sees the old file or the new one, never half of one. The temporary
    name keeps `path`'s suffixes (Keras checks them)."""
    path = Path(path)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_json(path: Path, data: dict, indent: int = 2) -> Path:
    """Writes `data` as JSON, atomically."""
    text = json.dumps(data, indent=indent, sort_keys=False) + "\n"
    return replace_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def check_type(path: Path, key: str, value, types: tuple, what: str) -> None:
    """One line naming the file and the field whose value has the wrong type."""
    # bool is an int subclass; a field that wants a number must not take true/false.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ContractError(f"{path}: field '{key}' must be {names}; found {value!r} ({what})")


class Directory:
    """A folder whose files a contract names; subclasses declare them with `file_in`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


def file_in(name: str, doc: str = "") -> property:
    """A property: the path of `name` inside the directory."""
    return property(lambda self: self.path / name, doc=doc or name)
