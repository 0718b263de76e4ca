"""The ``runs``  command (being written)."""

from __future__ import annotations

from typing import TextIO

COMMANDS: tuple[str, ...] = ()


def add_parsers(sub) -> None:
    """Add the sub-commands to ``sub`` (argparse sub-parsers)."""


def run(args, out: TextIO, err: TextIO) -> int:
    """Run the command parsed into ``args``; returns the exit code."""
    raise NotImplementedError(args.command)
