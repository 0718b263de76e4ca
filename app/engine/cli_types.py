"""Argument types the headless commands share (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse


def integer_in(low: int, high: int):
    """An argparse type for an integer from ``low`` to ``high``; anything else is refused
    with the range and what was received."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}; received {text!r}")
        return value

    parse.__name__ = "integer"
    return parse
