"""The main window's keys, resolved against the platform's standard bindings so that no key
sequence is bound twice: Qt fires nothing for a sequence two actions (or one action twice)
hold, and prints "Ambiguous shortcut overload" instead. The standard keys differ by
platform and desktop: Redo is Ctrl+Y (and Ctrl+Shift+Z) on Windows, Ctrl+Shift+Z alone on
GNOME and KDE, where Delete is also Ctrl+D."""

from __future__ import annotations

from typing import Callable, Iterable

from PySide6.QtGui import QKeySequence

K = QKeySequence.StandardKey

# action name -> its keys, in the order the menu shows them: a standard key (the platform's
# bindings for it) or a portable key text (the keys the README documents on every platform)
KEYS: dict[str, tuple] = {
    "new": (K.New,), "open": (K.Open,), "save": (K.Save,), "save_as": (K.SaveAs,), "quit": (K.Quit,),
    "undo": (K.Undo,), "redo": (K.Redo, "Ctrl+Shift+Z"),
    "cut": (K.Cut,), "copy": (K.Copy,), "paste": (K.Paste,), "duplicate": ("Ctrl+D",),
    "delete": (K.Delete, "Backspace"), "select_all": (K.SelectAll,),
    "zoom_in": (K.ZoomIn, "Ctrl+="), "zoom_out": (K.ZoomOut,), "fit": ("F",), "layout": ("Ctrl+L",),
    "getting_started": ("F1",), "export_onnx": ("Ctrl+E",), "export_python": ("Ctrl+Shift+E",),
    "train": ("F5",), "stop": ("Shift+F5",), "profile": ("Ctrl+Shift+P",), "live_nodes": ("Ctrl+Shift+L",),
    "group": ("Ctrl+G",), "ungroup": ("Ctrl+Shift+G",),
}

Bindings = Callable[[QKeySequence.StandardKey], Iterable[QKeySequence]]
platform_bindings: Bindings = QKeySequence.keyBindings  # this platform's (a test gives GNOME's, KDE's)


def _text(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


def resolve(keys: dict[str, tuple] = KEYS, bindings: Bindings | None = None) -> dict[str, list[QKeySequence]]:
    """Each action's key sequences, with every sequence bound once in all: an action's own
    key texts come first (``Ctrl+D`` stays Duplicate where the platform also binds it to
    Delete), then the platform's bindings of its standard keys (``bindings``: a standard key
    to its sequences, ``platform_bindings`` unless given), each to the first action that
    asks for it. Repeats within one action are dropped too (Redo's Ctrl+Shift+Z on Linux)."""
    bindings = bindings or platform_bindings
    owner: dict[str, str] = {}
    for name, wanted in keys.items():
        for key in wanted:
            if isinstance(key, str):
                text = _text(QKeySequence(key))
                if owner.setdefault(text, name) != name:
                    raise ValueError(f"{key} is given to both {owner[text]!r} and {name!r}")
    resolved: dict[str, list[QKeySequence]] = {}
    for name, wanted in keys.items():
        mine: list[QKeySequence] = []
        for key in wanted:
            for sequence in ([QKeySequence(key)] if isinstance(key, str) else bindings(key)):
                text = _text(sequence)
                if sequence.isEmpty() or owner.setdefault(text, name) != name:
                    continue
                if all(_text(s) != text for s in mine):
                    mine.append(QKeySequence(sequence))
        resolved[name] = mine
    return resolved
