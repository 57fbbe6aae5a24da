"""One writer per directory: the lock that training, resuming, exporting and the kit hold on
their target folder for the whole job.

DIR/.keras-seq.lock         the lock itself: an OS lock (flock, through the filelock package) on
                            this file, so the kernel releases it when its process ends, however
                            it ends (SIGKILL, OOM), and a lock on a shared volume (NFS) is seen
                            from every host that mounts it
DIR/.keras-seq.lock.json    who holds it: host, process id, command, since when (for the message
                            a second writer gets; the lock, not this file, decides)

A second writer is refused at once (`DirectoryBusyError`, a FileExistsError: exit status 2),
with one line naming the holder. Whatever a writer finds of an earlier writer's staging folders
once it holds the lock is debris of a killed job: no other writer can be running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".keras-seq.lock"
HOLDER_FILE = ".keras-seq.lock.json"
logger = logging.getLogger(__name__)


class DirectoryBusyError(FileExistsError):
    """Another process holds the directory's writer lock."""


def _holder_text(directory: Path) -> str:
    try:
        holder = json.loads((directory / HOLDER_FILE).read_text(encoding="utf-8"))
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["since"])))
        return f"`{holder['command']}` (host {holder['host']}, process {holder['pid']}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):  # written a moment after the lock is taken
        return "another process"


@contextlib.contextmanager
def one_writer(directory: str | Path, command: str) -> Iterator[Path]:
    """Holds `directory`'s writer lock (creating the folder) while the block runs; raises
    `DirectoryBusyError` at once if another process holds it."""
    from filelock import FileLock, Timeout

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(directory / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise DirectoryBusyError(
            f"{directory}: {_holder_text(directory)} is writing it (one writer per directory); wait for it "
            f"to end or choose another folder. A crashed writer releases the lock with its process; if its "
            f"host died with the lock on a shared volume, delete {directory / LOCK_FILE}"
        ) from None
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "command": command, "since": time.time()}
    try:
        (directory / HOLDER_FILE).write_text(json.dumps(holder) + "\n", encoding="utf-8")
        logger.debug("holding the writer lock of %s", directory)
        yield directory
    finally:
        with contextlib.suppress(OSError):
            (directory / HOLDER_FILE).unlink()
        lock.release()
