"""No key is bound twice in the main window, on any desktop's standard keys: Qt fires
nothing for a sequence bound twice ("Ambiguous shortcut overload"), which left Redo dead on
Linux, where the standard Redo is already Ctrl+Shift+Z."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

from app.engine.session.history import Command
from app.widgets import shortcuts
from app.widgets.shortcuts import KEYS, resolve
from tests.widgets.keys import TABLES, bound_twice, menu_mnemonics_twice, table_bindings, text

ROOT = Path(__file__).resolve().parents[2]


def _texts(resolved):
    return {name: [text(s) for s in seqs] for name, seqs in resolved.items()}


@pytest.mark.parametrize("desktop", sorted(TABLES))
def test_each_key_is_bound_once_with_each_desktops_standard_keys(desktop):
    bindings = table_bindings(desktop)
    naive = [t for keys in KEYS.values() for key in keys
             for t in ([key] if isinstance(key, str) else TABLES[desktop][key])]
    if desktop != "Windows":  # what the window did: Redo's own key again, Delete's Ctrl+D on Duplicate
        assert naive.count("Ctrl+Shift+Z") == 2 and naive.count("Ctrl+D") == 2
    keys = _texts(resolve(KEYS, bindings))
    everything = [t for seqs in keys.values() for t in seqs]
    assert [t for t, n in Counter(everything).items() if n > 1] == []
    assert "Ctrl+Shift+Z" in keys["redo"] and keys["undo"][0] == "Ctrl+Z"
    assert keys["duplicate"] == ["Ctrl+D"] and keys["delete"][0] == "Del"
    for name, wanted in KEYS.items():  # the documented keys, and each standard key's first binding
        for key in wanted:
            first = key if isinstance(key, str) else next(iter(TABLES[desktop][key]), None)
            assert first is None or first in keys[name], (name, first)


def test_a_key_given_to_two_actions_is_refused():
    with pytest.raises(ValueError, match="Ctrl\\+L"):
        resolve({"a": ("Ctrl+L",), "b": ("Ctrl+L",)}, lambda key: [])


@pytest.mark.parametrize("desktop", ["GNOME", "KDE"])
def test_the_window_on_x11_desktops_binds_each_key_once_and_redo_works_from_the_keyboard(
        qtbot, tmp_path, monkeypatch, desktop):
    from PySide6.QtCore import QSettings

    from app.widgets.main_window import MainWindow

    monkeypatch.setattr(shortcuts, "platform_bindings", table_bindings(desktop))
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window, before_close_func=lambda w: w.doc.history.set_clean())
    assert [text(s) for s in window.actions_by_name["redo"].shortcuts()] == ["Ctrl+Shift+Z", "Redo"]
    assert bound_twice(window) == {} and menu_mnemonics_twice(window) == {}
    _redo_by_keyboard(qtbot, window, QKeySequence("Ctrl+Shift+Z"))
    duplicated = len(window.doc.graph.nodes)
    window.editor.add_layer("ReLU")
    window.scene.select_nodes(list(window.doc.graph.nodes)[-1:])
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)  # Duplicate, not Delete
    assert len(window.doc.graph.nodes) == duplicated + 2


def test_the_window_takes_its_keys_from_the_resolved_table(window):
    """Every shortcut in the window is one resolve() gave (no action binds keys of its own
    outside the table), and nothing is bound twice on this platform either."""
    resolved = _texts(resolve())
    for name, keys in resolved.items():
        assert [text(s) for s in window.actions_by_name[name].shortcuts()] == keys, name
    assert bound_twice(window) == {} and menu_mnemonics_twice(window) == {}


def test_redo_fires_from_each_of_its_keys(qtbot, window):
    for sequence in window.actions_by_name["redo"].shortcuts():
        if sequence[0].key() != Qt.Key.Key_Redo:
            _redo_by_keyboard(qtbot, window, sequence)


def _redo_by_keyboard(qtbot, window, sequence: QKeySequence) -> None:
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    stack = window.doc.history
    stack.push(Command())
    stack.undo()
    before = stack.index
    combo = sequence[0]
    qtbot.keyClick(window, combo.key(), combo.keyboardModifiers())
    assert stack.index == before + 1, text(sequence)


def test_on_the_real_x11_desktops_where_xvfb_is_installed():
    """The real window in a process of its own: under the xcb platform as GNOME and KDE set
    it up where Xvfb is installed (CI without it runs the same check on offscreen)."""
    xvfb = shutil.which("xvfb-run")
    runs = {}
    for desktop in ("GNOME", "KDE") if xvfb else ("offscreen",):
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        env.update(XDG_CURRENT_DESKTOP=desktop, QT_QPA_PLATFORM="xcb" if xvfb else "offscreen")
        command = [sys.executable, "-m", "tests.widgets.keys"]
        runs[desktop] = subprocess.Popen(([xvfb, "-a"] if xvfb else []) + command, cwd=ROOT, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for desktop, proc in runs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["twice"] == {} and result["menu_twice"] == {}, (desktop, result)
        assert "Ambiguous" not in err
        assert result["active"] and result["redo_pressed"].get("Ctrl+Shift+Z") is True, (desktop, result)
        if xvfb:
            assert result["platform"] == "xcb" and result["redo"] == ["Ctrl+Shift+Z", "Redo"]
