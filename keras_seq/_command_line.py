"""What every room's subcommands share: the exit codes, the help layout (a description, examples,
each option's default) and the options every command takes (``-v``). In the core so that each
room registers its commands without importing the CLI."""

from __future__ import annotations

import argparse
from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of every ``keras-seq`` command (docs: reference/exit-codes)."""

    OK = 0
    UNEXPECTED = 1  # an error keras-seq did not foresee
    BAD_INPUT = 2  # usage or input error, named in one line
    PARTIAL = 3  # some items failed, the others succeeded (predict --input)
    STORAGE = 4  # the disk (or a file-size limit) refused a write; what was there before is kept
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM (servers exit OK on it)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows each option's default, unless its help says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and not isinstance(action.default, list)
        if shown and action.option_strings and "default" not in text and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def add_verbose(parser: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    """``-v/--verbose`` logging, before or after the command (the top-level parser counts from 0)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more logging on stderr: -v adds TensorFlow's own messages, -vv debug logs",
    )


def add_command(
    sub, name: str, *, help: str, description: str, examples: list[str], json_output: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with its description, examples, ``-v`` and (for commands with a result) ``--json``."""
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=HelpFormatter,
    )
    add_verbose(parser)
    if json_output:
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    return parser


def add_group(sub, name: str, *, help: str, description: str, dest: str):
    """A command whose subcommands do the work (``keras-seq data stats``, ``keras-seq config init``)."""
    parser = sub.add_parser(name, help=help, description=description, formatter_class=HelpFormatter)
    add_verbose(parser)
    return parser.add_subparsers(dest=dest, required=True, metavar="COMMAND")


def add_progress(parser: argparse.ArgumentParser, default: int) -> None:
    """Keras' own progress output (not logging: that is -v)."""
    parser.add_argument(
        "--progress",
        "--keras-verbose",
        dest="keras_verbose",
        type=int,
        default=default,
        choices=[0, 1, 2],
        help="Keras' progress output on stderr: 0 none, 1 a bar, 2 a line per epoch",
    )
