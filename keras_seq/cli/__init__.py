"""The ``keras-seq`` command line: the top room, over every other.

Each room contributes its subcommands through a plain function
(`keras_seq.pipelines.commands.add_commands`, `keras_seq.export.commands`,
`keras_seq.serving.commands`, `keras_seq.deploy.commands`); every subcommand calls one public
function a user can call from Python too. Results go to stdout, progress and logs to stderr.
TensorFlow's C++ logging is silenced before TensorFlow is imported; ``-v`` (before or after the
command) or ``KERAS_SEQ_DEBUG=1`` bring it (and tracebacks) back. Exit codes: `ExitCode`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading

from keras_seq._command_line import ExitCode, HelpFormatter, add_verbose
from keras_seq._terminate import Terminated, raise_terminated
from keras_seq.contracts import ContractError
from keras_seq.contracts.files import StorageFullError, storage_full


def _version() -> str:
    from keras_seq._version import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    from keras_seq.cli.demo import add_demo
    from keras_seq.deploy.commands import add_commands as add_deploy_commands
    from keras_seq.export.commands import add_commands as add_export_commands
    from keras_seq.pipelines.commands import add_commands as add_pipeline_commands
    from keras_seq.serving.commands import add_commands as add_serving_commands

    parser = argparse.ArgumentParser(
        prog="keras-seq",
        description="Recurrent sequence models for Keras 3: train, evaluate, export and serve.",
        epilog="examples:\n  keras-seq demo\n  keras-seq config init imdb_sentiment > my.toml\n"
        "  keras-seq train my.toml --out runs/mine\n  keras-seq COMMAND --help\n\n"
        "exit codes: 0 ok, 1 unexpected error, 2 usage or bad input, 3 partial failure, "
        "130 interrupted, 143 terminated",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keras-seq {_version()}")
    add_verbose(parser, default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo(sub)
    add_pipeline_commands(sub)
    add_export_commands(sub)
    add_serving_commands(sub)
    add_deploy_commands(sub)
    return parser


def quiet(verbosity: int = 0) -> None:
    """Silences what is not the user's business; call before TensorFlow is imported."""
    from keras_seq import _quiet

    if verbosity > 0 or os.environ.get("KERAS_SEQ_DEBUG"):
        return
    _quiet.apply()
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _configure_logging(verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("keras_seq")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
    root.propagate = False


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """`predict DIR --runtime onnx "text" ...`: texts may follow the options
    (argparse alone would stop collecting positionals at the first option)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not getattr(args, "trailing_texts", False) or any(e.startswith("--") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.texts = [*args.texts, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit status (`ExitCode`: 2 when the user's input was wrong)."""
    args = parse(argv)
    with _command_signals():
        return _run(args)


@contextlib.contextmanager
def _command_signals():
    """SIGTERM raised as `Terminated` where the command is (its cleanup runs), and a file past its
    size limit a write error we report, not a killed process; the caller's handlers come back after,
    since `main` also runs inside other programs (and their test suites). Signal handlers belong to
    the main thread: elsewhere the command runs with the process's own."""
    wanted = {signal.SIGTERM: raise_terminated}
    if hasattr(signal, "SIGXFSZ"):
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {number: signal.signal(number, handler) for number, handler in wanted.items()}
    try:
        yield
    finally:
        for number, handler in before.items():
            if handler is not None:  # None: set outside Python, so nothing Python can put back
                signal.signal(number, handler)


def _run(args: argparse.Namespace) -> int:
    quiet(args.verbose)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or ExitCode.OK)
    except Exception as error:  # a full disk first, whatever raised it: the one line says what was kept
        if not storage_full(error):
            return _other_error(args, error)
        message = str(error) if isinstance(error, StorageFullError) else f"a write failed ({error})"
        print(f"keras-seq {args.command}: error: {message.splitlines()[0][:500]}", file=sys.stderr)
        return ExitCode.STORAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Terminated:
        print("terminated", file=sys.stderr)
        return ExitCode.TERMINATED


_BAD_INPUT = (ValueError, FileNotFoundError, FileExistsError, TypeError, ContractError, ConnectionError)


def _other_error(args: argparse.Namespace, error: Exception) -> int:
    """One clear line for `error` (exit 2 for the user's input, 1 for the unforeseen); the traceback
    with KERAS_SEQ_DEBUG=1."""
    if os.environ.get("KERAS_SEQ_DEBUG"):
        raise error
    if isinstance(error, _BAD_INPUT):
        print(f"keras-seq {args.command}: error: {error}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    first_line = (str(error).strip().splitlines() or [""])[0][:500]
    print(
        f"keras-seq {args.command}: error ({type(error).__name__}): {first_line}\n"
        "(set KERAS_SEQ_DEBUG=1 to see the traceback)",
        file=sys.stderr,
    )
    return ExitCode.UNEXPECTED


__all__ = ["ExitCode", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
