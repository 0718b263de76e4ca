"""One handler for every error that escapes in the GUI: it is written to a log file and
shown in a dialog with a "Copy details" button, and the editor keeps running.

Qt calls Python slots from its event loop; an exception there reaches ``sys.excepthook``
(PySide6 prints it and carries on), so installing our hook catches every one of them, as
``threading.excepthook`` does for other threads.
"""

from __future__ import annotations

import datetime
import sys
import threading
import traceback
from html import escape
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from .threads import emit_if_alive

MAX_LOG_BYTES = 2_000_000


def log_path() -> Path:
    folder = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "logs"
    return folder / "netcanvas.log"


def write_log(details: str) -> Path | None:
    """Append ``details`` to the log (started afresh past 2 MB); None when it cannot be written."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = "w" if path.exists() and path.stat().st_size > MAX_LOG_BYTES else "a"
        with open(path, mode, encoding="utf-8") as f:
            f.write(f"--- {datetime.datetime.now().isoformat(timespec='seconds')}\n{details}\n")
    except OSError:
        return None
    return path


class ErrorDialog(QDialog):
    def __init__(self, summary: str, details: str, log: Path | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("NetCanvas: an error occurred")
        self.details = details
        where = f"Written to the log: {log}" if log else "The log file could not be written."
        text = QLabel(f"<b>{escape(summary, quote=False)}</b><br>Your work is untouched and the editor goes on; "
                      f"saving now is a good idea.<br><small>{escape(where, quote=False)}</small>")
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QPlainTextEdit(details)
        box.setReadOnly(True)
        box.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy details")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.details))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(box)
        layout.addWidget(buttons)
        self.resize(720, 420)


class ErrorHandler(QObject):
    """``install()`` routes uncaught exceptions here; each is logged, then shown (in the
    GUI thread, whichever thread raised it). ``dialogs`` holds the ones still open."""

    _arrived = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.parent_widget = parent
        self.dialogs: list[ErrorDialog] = []
        self.last_log: Path | None = None
        self._previous = None
        self._arrived.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.handle
        threading.excepthook = lambda args: self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def uninstall(self) -> None:
        if self._previous:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None

    def handle(self, exc_type, value, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, value, tb)
            return
        details = "".join(traceback.format_exception(exc_type, value, tb))
        if sys.stderr is not None:  # None in a windowed build
            sys.stderr.write(details)
        self.last_log = write_log(details)
        summary = f"{exc_type.__name__}: {value}" if str(value) else exc_type.__name__
        emit_if_alive(self, self._arrived, summary, details)

    def _show(self, summary: str, details: str) -> None:
        if len(self.dialogs) >= 3:  # an error in a repaint repeats: do not bury the window
            return
        dialog = ErrorDialog(summary, details, self.last_log, self.parent_widget)
        dialog.finished.connect(lambda _result, d=dialog: self._closed(d))
        self.dialogs.append(dialog)
        dialog.show()

    def _closed(self, dialog: ErrorDialog) -> None:
        if dialog in self.dialogs:
            self.dialogs.remove(dialog)
        dialog.deleteLater()
