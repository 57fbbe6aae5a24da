"""A CLI that explains itself: every command has a description, examples and its defaults; -v works
before and after the command; exit codes are one table."""

from __future__ import annotations

import argparse

import pytest

from keras_seq.cli import ExitCode, build_parser, parse


def _commands(parser, prefix=()):
    for action in parser._actions:  # argparse has no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                has_children = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                if has_children:
                    yield from _commands(sub, (*prefix, name))
                else:
                    yield (*prefix, name), sub


COMMANDS = list(_commands(build_parser()))


def test_every_command_is_listed():
    names = {" ".join(c) for c, _ in COMMANDS}
    assert {"train", "evaluate", "export", "predict", "serve", "kit", "config init", "data stats", "demo"} <= names


@pytest.mark.parametrize("command, parser", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_help_has_a_description_an_example_and_the_defaults(command, parser):
    text = parser.format_help()
    assert parser.description and len(parser.description) > 30
    assert "examples:\n  keras-seq " + " ".join(command) in text
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and action.help:
            assert "default" in parser._get_formatter()._expand_help(action), (command, action.dest)
        if not action.option_strings and action.dest != "help":
            assert action.help, (command, action.dest)  # positionals say what they are


def test_verbose_before_and_after_the_command():
    assert parse(["-v", "evaluate", "runs/x"]).verbose == 1
    assert parse(["evaluate", "runs/x", "-vv"]).verbose == 2
    assert parse(["evaluate", "runs/x"]).verbose == 0


def test_exit_codes_are_one_table():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130, 143]


def test_main_gives_the_callers_signal_handlers_back():
    """`main` runs inside other programs too: its SIGTERM handler lasts as long as the command."""
    import contextlib
    import io
    import signal

    from keras_seq.cli import main

    def mine(signum, frame):
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = main(["config", "keys"])
        assert signal.getsignal(signal.SIGTERM) is mine, code
    finally:
        signal.signal(signal.SIGTERM, before)
