"""`ContractError` and the JSON reader every contract uses."""

from __future__ import annotations

import errno
import json
import os
import shutil
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


class StorageFullError(OSError):
    """The disk (or a file-size limit, or a quota) refused a write; the previous file is kept."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.strerror)


_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def storage_full(error: BaseException | None) -> bool:
    """Whether `error` (or what it was raised from) says the storage is full."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _FULL:
            return True
        if "No space left" in str(error) or "File too large" in str(error):  # h5py's messages carry no errno
            return True
        error = error.__cause__ or error.__context__
    return False


def ensure_room(path: Path, nbytes: int) -> None:
    """Raises `StorageFullError` before a write of about `nbytes` to `path` that the disk (free space)
    or this process' file-size limit (RLIMIT_FSIZE) cannot take. For writers that do not fail
    cleanly on a full disk: h5py (Keras' weight files) crashes the process on the write error."""
    limit = _file_size_limit()
    try:
        stats = os.statvfs(Path(path).parent)
        free = stats.f_bavail * stats.f_frsize
    except (OSError, AttributeError):  # no statvfs (Windows): nothing to check against
        free = None
    if (limit is not None and nbytes > limit) or (free is not None and nbytes > free):
        room = ", ".join(
            [f"about {nbytes:,} bytes to write"]
            + ([f"{free:,} free"] if free is not None else [])
            + ([f"files limited to {limit:,}"] if limit is not None else [])
        )
        raise StorageFullError(
            f"{path}: could not be written (the disk is full or a file-size limit was reached: {room}); "
            "the previous version is kept -- free space and run the command again"
        )


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def fsync_path(path: Path) -> None:
    """Flushes a file's bytes, or a folder's entries (a rename is durable once its folder is synced)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if Path(path).is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Every file and folder under `root`, and `root` itself, flushed to the disk."""
    for folder, _, names in os.walk(root):
        for name in names:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def replace_atomically(path: Path, write) -> Path:
    """Calls `write(temporary_path)`, flushes it to the disk, then renames it onto `path` and
    flushes the folder: a reader (or a rerun after a kill or a power loss) sees the old file or
    the new one, never half of one. The temporary name keeps `path`'s suffixes (Keras checks
    them). A full disk raises `StorageFullError` naming `path`, with the old file in place."""
    path = Path(path)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(temporary)
        if temporary.is_dir():  # Keras writes some formats as folders
            fsync_tree(temporary)
        else:
            fsync_path(temporary)
        os.replace(temporary, path)
        fsync_path(path.parent)
    except Exception as error:
        if storage_full(error):
            raise StorageFullError(
                f"{path}: could not be written (the disk is full or a file-size limit was reached); "
                "the previous version is kept -- free space and run the command again"
            ) from error
        raise
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()
    return path


def write_text(path: Path, text: str) -> Path:
    """Writes UTF-8 `text`, atomically and durably (`replace_atomically`)."""
    return replace_atomically(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: dict, indent: int = 2) -> Path:
    """Writes `data` as JSON, atomically and durably."""
    return write_text(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


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
