"""Quiet start for the ``keras-seq`` command: TensorFlow's C++ side prints
absl/CUDA-stub/oneDNN lines while it is imported, some before its own log
level (``TF_CPP_MIN_LOG_LEVEL``) is read. The command line silences them;
``keras-seq -v`` or ``KERAS_SEQ_DEBUG=1`` keep them. Library users are never
silenced: this acts only when the process was started as the command.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "ABSL_MIN_LOG_LEVEL": "3"}


def invoked_as_cli() -> bool:
    """Whether this process is ``keras-seq ...`` or ``python -m keras_seq.cli ...``."""
    if os.path.basename(sys.argv[0]) == "keras-seq" if sys.argv else False:
        return True
    original = list(getattr(sys, "orig_argv", []))
    return "-m" in original and "keras_seq.cli" in original


def wanted() -> bool:
    """Quiet unless asked for detail (``keras-seq -v COMMAND ...`` or KERAS_SEQ_DEBUG)."""
    if os.environ.get("KERAS_SEQ_DEBUG"):
        return False
    for arg in sys.argv[1:]:
        if not arg.startswith("-"):
            return True  # the command: options after it are its own
        if arg.startswith("-v") and set(arg[1:]) == {"v"}:
            return False
    return True


def apply() -> None:
    """Environment defaults (before TensorFlow is imported). Keras' Python warnings
    about our datasets are fixed where they arise (`fit(shuffle=False)`, known epoch lengths)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def importing_backend():
    """Around the first import of keras or TensorFlow: when the command runs
    quietly, file descriptor 2 goes to a temporary file, replayed only if the
    import fails."""
    if not (invoked_as_cli() and wanted()):
        yield
        return
    apply()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_quietly(name: str):
    """Imports `name` (TensorFlow, keras) under `importing_backend`: commands call it
    after their cheap input checks, so a bad argument is refused in well under a second."""
    import importlib

    with importing_backend():
        return importlib.import_module(name)
