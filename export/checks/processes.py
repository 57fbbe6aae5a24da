"""Child processes and scratch folders of an export, and the debris of a killed one.

A SIGKILLed export runs no cleanup. It leaves staging folders beside their targets
(``.NAME.staging-PID``, ``.NAME.old-PID``): the next export holds the export directory's
writer lock (`keras_seq.contracts.writer_lock`), so every such folder it finds there
belongs to no running export -- on this host or any other sharing the volume -- and is
removed. Scratch folders in this host's temporary directory (``keras-seq-verify-PID-*``,
``keras-seq-parity-PID-*``) are removed when their process is gone (`remove_debris`). Its checking children (fresh
interpreters, ``saved_model_cli``) get SIGKILL when their parent dies
(Linux' parent-death signal), so none outlives the export.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)
SCRATCH_PREFIXES = ("keras-seq-verify", "keras-seq-parity", "keras-seq-savedmodel")
_STAGED = re.compile(r"^\..+\.(?:staging|old)-(\d+)$")
_SCRATCH = re.compile(rf"^(?:{'|'.join(SCRATCH_PREFIXES)})-(\d+)-")
# Asks Linux for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG, kept across exec),
# checks the parent did not die first, then becomes the command. A launcher rather than
# subprocess' preexec_fn, which is unsafe in a process with threads (TensorFlow's).
_GUARD = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0); "
    "os.getppid() == int(sys.argv[1]) or os._exit(137); os.execv(sys.argv[2], sys.argv[2:])"
)


def run_child(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`subprocess.run`, with the child killed if this process dies first (Linux; call it
    from the main thread: the signal follows the thread that started the child)."""
    if sys.platform.startswith("linux"):
        executable = shutil.which(command[0]) or command[0]
        command = [sys.executable, "-c", _GUARD, str(os.getpid()), executable, *command[1:]]
    return subprocess.run(command, **kwargs)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder named after this process (`remove_debris` can tell whose it is)."""
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-{os.getpid()}-") as tmp:
        yield Path(tmp)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_debris(*folders: Path) -> list[Path]:
    """Staging folders in `folders` (call it holding their export directory's lock) and scratch
    folders in the temporary directory of export processes that no longer run."""
    staged = [p for folder in folders if Path(folder).is_dir() for p in Path(folder).iterdir() if _STAGED.match(p.name)]
    scratch = Path(tempfile.gettempdir())
    matches = [(p, _SCRATCH.match(p.name)) for p in scratch.iterdir()] if scratch.is_dir() else []
    return [p for p in staged if p.is_dir()] + [
        path for path, match in matches if match and path.is_dir() and not _alive(int(match.group(1)))
    ]


def remove_debris(*folders: Path) -> list[Path]:
    """Removes `find_debris(*folders)`; returns what it removed."""
    removed = find_debris(*folders)
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    if removed:
        logger.info("removed %d folder(s) left by killed exports: %s", len(removed), ", ".join(p.name for p in removed))
    return removed
