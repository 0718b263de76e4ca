"""Every key binding of a window, and the desktops' standard key tables, for the shortcut
tests. Run as a script (``python -m tests.widgets.keys``) it builds the real main window on
this process's Qt platform, checks its bindings and presses Redo's keys: the shortcut test
runs it under the X11 platform (GNOME, KDE) where Xvfb is installed.

The tables are Qt 6's own for the standard keys the window uses, read from
``QKeySequence.keyBindings`` under the xcb platform with XDG_CURRENT_DESKTOP=GNOME and KDE
(GNOME and KDE agree on these keys), and under the offscreen platform (Windows-like)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict

from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QMenu, QMenuBar, QTabBar, QWidget

K = QKeySequence.StandardKey

_X11 = {
    K.New: ["Ctrl+N", "New"], K.Open: ["Ctrl+O", "Open"], K.Save: ["Ctrl+S", "Save"],
    K.SaveAs: ["Ctrl+Shift+S", "Shift+Save"], K.Quit: ["Ctrl+Q", "Exit"],
    K.Undo: ["Ctrl+Z", "F14", "Undo"], K.Redo: ["Ctrl+Shift+Z", "Redo"],
    K.Cut: ["Ctrl+X", "Shift+Del", "F20", "Cut"], K.Copy: ["Ctrl+C", "Ctrl+Ins", "F16", "Copy"],
    K.Paste: ["Ctrl+V", "Ctrl+Shift+Ins", "Shift+Ins", "F18", "Paste"], K.Delete: ["Del", "Ctrl+D"],
    K.SelectAll: ["Ctrl+A"], K.ZoomIn: ["Ctrl++", "Zoom In"], K.ZoomOut: ["Ctrl+-", "Zoom Out"],
}
TABLES = {
    "GNOME": _X11,
    "KDE": _X11,
    "Windows": {
        K.New: ["Ctrl+N", "New"], K.Open: ["Ctrl+O", "Open"], K.Save: ["Ctrl+S", "Save"],
        K.SaveAs: ["Ctrl+Shift+S", "Shift+Save"], K.Quit: [],
        K.Undo: ["Ctrl+Z", "Alt+Backspace", "Undo"], K.Redo: ["Ctrl+Y", "Alt+Shift+Backspace", "Ctrl+Shift+Z", "Redo"],
        K.Cut: ["Ctrl+X", "Shift+Del", "Cut"], K.Copy: ["Ctrl+C", "Ctrl+Ins", "Copy"],
        K.Paste: ["Ctrl+V", "Shift+Ins", "Paste"], K.Delete: ["Del"],
        K.SelectAll: ["Ctrl+A"], K.ZoomIn: ["Ctrl++", "Zoom In"], K.ZoomOut: ["Ctrl+-", "Zoom Out"],
    },
}


def table_bindings(name: str):
    """A ``bindings`` function (standard key -> sequences) from one of ``TABLES``."""
    table = TABLES[name]
    return lambda key: [QKeySequence(text) for text in table[key]]


def text(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


def bindings_in(window: QWidget) -> dict[str, list[str]]:
    """Every key sequence bound in ``window`` -> what binds it: the shortcuts of its actions
    (menus, toolbar, docks, canvas) and QShortcuts, and the Alt+letter mnemonics of its menu
    bar, buttons, labels, group boxes and tabs."""
    found: dict[str, list[str]] = defaultdict(list)
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            found[text(sequence)].append(f"action {action.text()!r}")
    for shortcut in window.findChildren(QShortcut):
        for sequence in shortcut.keys():
            found[text(sequence)].append(f"shortcut {shortcut.objectName()!r}")
    titled = [(f"menu {a.text()!r}", a.text()) for bar in window.findChildren(QMenuBar) for a in bar.actions()]
    titled += [(f"button {b.text()!r}", b.text()) for b in window.findChildren(QAbstractButton)
               if not isinstance(b.parent(), QMenuBar)]
    titled += [(f"label {lab.text()!r}", lab.text()) for lab in window.findChildren(QLabel) if lab.buddy()]
    titled += [(f"group {g.title()!r}", g.title()) for g in window.findChildren(QGroupBox)]
    titled += [(f"tab {t.tabText(i)!r}", t.tabText(i)) for t in window.findChildren(QTabBar) for i in range(t.count())]
    for owner, title in titled:
        mnemonic = QKeySequence.mnemonic(title)
        if not mnemonic.isEmpty():
            found[text(mnemonic)].append(owner)
    return dict(found)


def bound_twice(window: QWidget) -> dict[str, list[str]]:
    return {key: owners for key, owners in bindings_in(window).items() if len(owners) > 1}


def menu_mnemonics_twice(window: QWidget) -> dict[str, list[str]]:
    """Within each menu, the letters that more than one item underlines."""
    twice = {}
    for menu in window.findChildren(QMenu):
        letters = defaultdict(list)
        for action in menu.actions():
            mnemonic = QKeySequence.mnemonic(action.text())
            if not mnemonic.isEmpty():
                letters[text(mnemonic)].append(action.text())
        twice.update({f"{menu.title()}: {k}": v for k, v in letters.items() if len(v) > 1})
    return twice


def _main() -> int:
    """Build the main window on this platform, report its bindings bound twice, and whether
    each of Redo's keys redoes an edit when pressed (JSON on stdout)."""
    import tempfile

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.engine.examples import example_path
    from app.engine.session.history import Command
    from app.widgets.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(settings=QSettings(f"{folder}/s.ini", QSettings.Format.IniFormat))
        window.open_file(example_path("xor"), example=True, ask=False)
        window.show()
        window.activateWindow()
        for _ in range(200):  # an X server without a window manager takes a moment
            app.processEvents()
            if QApplication.activeWindow() is window:
                break
            QTest.qWait(10)
        redo = window.actions_by_name["redo"]
        pressed = {}
        for sequence in redo.shortcuts():
            combo = sequence[0]
            if combo.key() in (Qt.Key.Key_Redo,):  # a dedicated key no keyboard here has
                continue
            window.doc.history.push(Command())
            window.doc.history.undo()
            before = window.doc.history.index
            QTest.keyClick(window, combo.key(), combo.keyboardModifiers())
            app.processEvents()
            pressed[text(sequence)] = window.doc.history.index == before + 1
        result = {"platform": app.platformName(), "active": QApplication.activeWindow() is window,
                  "redo": [text(s) for s in redo.shortcuts()], "twice": bound_twice(window),
                  "menu_twice": menu_mnemonics_twice(window), "redo_pressed": pressed}
        window.doc.history.set_clean()
        window.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
