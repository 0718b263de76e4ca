"""app/engine never imports Qt: every engine module imports, and a check runs, in an
interpreter where PySide6, shiboken6 and pyqtgraph cannot be imported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "app" / "engine"

BLOCKER = r"""
import sys, importlib.abc, importlib.util, pkgutil, importlib
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'qtpy'):
            raise ImportError('Qt is blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
import app.engine
triton = importlib.util.find_spec('triton') is not None
for m in pkgutil.walk_packages(app.engine.__path__, 'app.engine.'):
    if m.name.endswith('triton_kernels') and not triton:  # Linux-only dependency
        continue
    importlib.import_module(m.name)
from app.engine import cli
sys.exit(cli.main(['check', 'lenet5']))
"""


def test_engine_runs_without_qt():
    proc = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=120,
                          cwd=ENGINE.parents[1])
    assert proc.returncode == 0, proc.stderr
    assert "44,426" in proc.stdout


def test_no_engine_source_mentions_a_qt_import():
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt[56]|pyqtgraph|qtpy|shiboken6)", re.M)
    offenders = [p.name for p in ENGINE.rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert offenders == []
