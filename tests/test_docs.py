"""The README's generated parts are current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_catalogue():
    spec = importlib.util.spec_from_file_location("make_catalogue", ROOT / "docs" / "make_catalogue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_catalogue_table_is_generated_from_the_current_declarations():
    make = _make_catalogue()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert make.updated(text) == text, "run: python docs/make_catalogue.py README.md"


def test_the_catalogue_table_has_a_row_per_type():
    from app.engine.layers import CATALOGUE
    table = _make_catalogue().table()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(CATALOGUE)
    assert any("`MultiheadAttention`" in r and "Outputs: output, weights" in r for r in rows)
