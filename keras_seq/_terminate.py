"""SIGTERM as an exception, shared by the CLI (which installs the handler) and the long-running
commands of every room (which stop on it), so no room imports the CLI."""

from __future__ import annotations


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so its cleanup (`finally`, temporary folders) runs."""


def raise_terminated(signum, frame):
    raise Terminated()
