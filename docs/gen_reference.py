"""Writes the generated pages of the documentation site (run by mkdocs-gen-files at build time):
the command-line reference from the CLI's own parser, the configuration reference from the one
definition of the config keys, and the benchmarks and changelog pages from their files.

``python docs/gen_reference.py --sources`` (make docs runs it first) lays out the sources the API
reference reads: mkdocstrings resolves its search paths when it starts, before this script runs
inside the build."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: where mkdocstrings reads the sources: the installed layout (setup.cfg's package_dir puts pipelines/, export/,
#: serving/ and deploy/ under keras_seq), copied, so the API reference is read statically, without importing
API_SOURCES = REPO / "build" / "docs-src"
ROOMS = ("pipelines", "export", "serving", "deploy")


def copy_installed_layout() -> None:
    import shutil

    package = API_SOURCES / "keras_seq"
    shutil.rmtree(package, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "keras_seq", package, ignore=ignore)
    for room in ROOMS:
        shutil.copytree(REPO / room, package / room, ignore=ignore)


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "keras-seq"):
    """(command line, parser) of every subcommand, depth first."""
    for action in parser._actions:  # argparse keeps subparsers here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subcommands(sub, f"{prefix} {name}")


def cli_page() -> str:
    from keras_seq.cli import build_parser

    parser = build_parser()
    lines = ["# Command line", "", "Generated from `keras_seq.cli.build_parser()`: what `--help` prints.", ""]
    lines += ["## keras-seq", "", "```text", parser.format_help().rstrip(), "```", ""]
    for command, sub in _subcommands(parser):
        lines += [f"## {command}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def _value(value) -> str:
    return "—" if value is None else f"`{json.dumps(value)}`"


def config_page() -> str:
    from keras_seq.pipelines.config_keys import KEYS, TABLES

    lines = [
        "# Configuration",
        "",
        "Generated from `keras_seq.pipelines.config_keys.KEYS`, the one definition that validation, "
        "`keras-seq config init` and this page read. A config file names only what it changes; an unknown "
        "key is an error. Override any key on the command line: `--set train.epochs=3`.",
        "",
        "| key | type | default | tasks | meaning |",
        "|---|---|---|---|---|",
    ]
    for table in ("", *TABLES):
        for key in KEYS.values():
            if key.table != table:
                continue
            choices = f" One of {', '.join(f'`{c}`' for c in key.choices)}." if key.choices else ""
            meaning = key.help.replace("|", "\\|") + choices
            tasks = ", ".join(key.tasks) or "all"
            lines.append(f"| `{key.name}` | {key.type_name} | {_value(key.default)} | {tasks} | {meaning} |")
    return "\n".join(lines) + "\n"


def benchmarks_page() -> str:
    text = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    # result files are in the repository, not on the site: name them as code
    return re.sub(r"\]\((results/[^)]+)\)", r"](#) (`benchmarks/\1`)", text)


def changelog_page() -> str:
    return (REPO / "CHANGELOG.md").read_text(encoding="utf-8")


def write_pages() -> None:
    import mkdocs_gen_files

    for path, write in [
        ("reference/cli.md", cli_page),
        ("reference/config.md", config_page),
        ("benchmarks.md", benchmarks_page),
        ("changelog.md", changelog_page),
    ]:
        with mkdocs_gen_files.open(path, "w") as out:
            out.write(write())


copy_installed_layout()
if "--sources" not in sys.argv:  # inside the build (mkdocs-gen-files runs this file)
    write_pages()
