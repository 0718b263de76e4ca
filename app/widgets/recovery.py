"""Autosave to a recovery file, and recovery after a crash.

Every 30 s a document with unsaved changes is written (atomically) to the application's
data folder, with a small meta file naming the original file and this process. A clean
close removes both; files left by a process that is gone are offered back at start-up.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from ..engine.files import atomic_write
from ..engine.project import dumps_project
from .document import Document

INTERVAL_MS = 30_000


def recovery_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    folder = Path(base or Path.home() / ".netcanvas") / "recovery"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Recovery:
    path: Path
    original: str | None
    saved_at: float
    name: str


class Autosaver(QObject):
    def __init__(self, doc: Document, interval_ms: int = INTERVAL_MS, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.id = uuid.uuid4().hex[:12]
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()

    @property
    def file(self) -> Path:
        return recovery_dir() / f"{self.id}.netcanvas.json"

    @property
    def meta(self) -> Path:
        return recovery_dir() / f"{self.id}.meta.json"

    def save_now(self) -> bool:
        """Write the recovery copy if there are unsaved changes; True when written."""
        if not self.doc.dirty:
            return False
        try:
            atomic_write(self.file, dumps_project(self.doc.project).encode("utf-8"))
            meta = {"original": str(self.doc.project.path) if self.doc.project.path else None,
                    "pid": os.getpid(), "saved_at": time.time(), "name": self.doc.project.name}
            atomic_write(self.meta, json.dumps(meta).encode("utf-8"))
        except OSError:
            return False  # a full disk must not interrupt editing; the next tick tries again
        return True

    def discard(self) -> None:
        for p in (self.file, self.meta):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def pending_recoveries() -> list[Recovery]:
    """Recovery files whose process is gone (a crash), newest first."""
    found = []
    for meta_path in recovery_dir().glob("*.meta.json"):
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        project = meta_path.with_name(meta_path.name.replace(".meta.json", ".netcanvas.json"))
        if not project.exists() or _alive(meta.get("pid")):
            continue
        found.append(Recovery(project, meta.get("original"), float(meta.get("saved_at", 0)),
                              str(meta.get("name", "Untitled"))))
    return sorted(found, key=lambda r: -r.saved_at)


def forget(recovery: Recovery) -> None:
    for p in (recovery.path, recovery.path.with_name(recovery.path.name.replace(".netcanvas.json", ".meta.json"))):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


UNSAVED_WEIGHTS_DAYS = 7  # how long the weights of a run of a never-saved project are kept


def unsaved_weights_path() -> Path:
    """Where a run of a project that was never saved writes its weights: a new file in the
    recovery folder (weights of such runs older than UNSAVED_WEIGHTS_DAYS are removed first,
    so that they do not pile up there)."""
    prune_unsaved_weights()
    return recovery_dir() / f"unsaved-{uuid.uuid4().hex[:8]}.safetensors"


def prune_unsaved_weights(max_age_days: float = UNSAVED_WEIGHTS_DAYS) -> list[Path]:
    """Remove the weights of unsaved projects' runs last written more than
    ``max_age_days`` ago; returns what was removed."""
    cutoff = time.time() - max_age_days * 86400
    removed = []
    folder = recovery_dir()
    # the runs held back beside them (unsaved-NAME.runs/RUN.safetensors) too
    for path in [*folder.glob("unsaved-*.safetensors"), *folder.glob("unsaved-*.runs/*.safetensors")]:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    for runs in folder.glob("unsaved-*.runs"):
        try:
            runs.rmdir()  # only when empty
        except OSError:
            continue
    return removed


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
