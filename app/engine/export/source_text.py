"""Text made safe for the Python source the exporters write (model.py, train.py)."""

from __future__ import annotations


def doc_text(text: str) -> str:
    """``text`` made safe inside a triple-quoted docstring: one line, no closing quotes."""
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace('"', '\\"')
