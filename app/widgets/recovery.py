"""Autosave to the editor's recovery folder, and recovery after a crash.

Every 30 s a document with unsaved changes is written to the application's data folder
(``app.engine.session.recovery`` says how); a clean close removes the copy, and copies left
by a process that is gone are offered back at start-up.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from ..engine.session import recovery
from ..engine.session.recovery import Recovery, forget
from .document import Document

__all__ = ["INTERVAL_MS", "Autosaver", "Recovery", "forget", "pending_recoveries", "recovery_dir"]

INTERVAL_MS = 30_000


def recovery_dir() -> Path:
    """The editor's recovery folder (made when missing): recovery copies, the weights of
    never-saved projects' runs, imported weights."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    folder = Path(base or Path.home() / ".netcanvas") / "recovery"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pending_recoveries() -> list[Recovery]:
    """Recovery copies in the recovery folder whose process is gone (a crash), newest first."""
    return recovery.pending_recoveries(recovery_dir())


class Autosaver(QObject):
    """Writes the document's recovery copy every ``interval_ms`` while it has unsaved changes."""

    def __init__(self, doc: Document, interval_ms: int = INTERVAL_MS, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.copy = recovery.RecoveryCopy(recovery_dir)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    @property
    def file(self) -> Path:
        return self.copy.file

    @property
    def meta(self) -> Path:
        return self.copy.meta

    def save_now(self) -> bool:
        """Write the recovery copy if there are unsaved changes; True when written."""
        if not self.doc.dirty:
            return False
        try:
            self.copy.write(self.doc.project, self.doc.weights.unsaved_file)
        except OSError:
            return False  # a full disk must not interrupt editing; the next tick tries again
        return True

    def discard(self) -> None:
        self.copy.discard()
