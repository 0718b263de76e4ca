"""Recovery copies of unsaved work, and finding them after a crash.

A document with unsaved changes is written (atomically) to a recovery folder as
``ID.netcanvas.json``, with ``ID.meta.json`` naming the original file, the process that
wrote it, the time, the project's name and the unsaved weights held (``weights``, absent in
files written before it was recorded). A clean close removes both; copies left by a process
that is gone are offered back at start-up. The folder is the caller's (the editor's is its
application data folder).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write
from ..project import Project, dumps_project

PROJECT_SUFFIX = ".netcanvas.json"
META_SUFFIX = ".meta.json"


@dataclass
class Recovery:
    """A recovery copy whose process is gone: ``path`` (the project), ``original`` (the file
    it was opened from, None when never saved), ``saved_at`` (time.time()), ``name``, and
    ``weights`` (the unsaved weights held then, None when none were or not recorded)."""

    path: Path
    original: str | None
    saved_at: float
    name: str
    weights: Path | None = None


class RecoveryCopy:
    """One document's recovery copy in the folder ``folder()`` returns (asked at each use:
    the folder may be made or moved meanwhile)."""

    def __init__(self, folder: Callable[[], Path], copy_id: str | None = None):
        self._folder = folder
        self.id = copy_id or uuid.uuid4().hex[:12]

    @property
    def file(self) -> Path:
        return self._folder() / f"{self.id}{PROJECT_SUFFIX}"

    @property
    def meta(self) -> Path:
        return self._folder() / f"{self.id}{META_SUFFIX}"

    def write(self, project: Project, weights: Path | None = None) -> None:
        """Write ``project`` and its meta (``weights``: the unsaved weights held). Raises
        ``OSError`` when either cannot be written."""
        atomic_write(self.file, dumps_project(project).encode("utf-8"))
        meta = {"original": str(project.path) if project.path else None,
                "pid": os.getpid(), "saved_at": time.time(), "name": project.name}
        if weights is not None:
            meta["weights"] = str(weights)
        atomic_write(self.meta, json.dumps(meta).encode("utf-8"))

    def discard(self) -> None:
        """Remove the copy and its meta (the work was saved, or closed on purpose)."""
        for p in (self.file, self.meta):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def pending_recoveries(folder: Path) -> list[Recovery]:
    """The recovery copies in ``folder`` whose process is gone (a crash), newest first;
    unreadable meta files are passed over."""
    found = []
    for meta_path in folder.glob(f"*{META_SUFFIX}"):
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict):
            continue
        project = meta_path.with_name(meta_path.name.replace(META_SUFFIX, PROJECT_SUFFIX))
        if not project.exists() or process_alive(meta.get("pid")):
            continue
        weights = meta.get("weights")
        found.append(Recovery(project, meta.get("original"), float(meta.get("saved_at", 0)),
                              str(meta.get("name", "Untitled")), Path(weights) if isinstance(weights, str) else None))
    return sorted(found, key=lambda r: -r.saved_at)


def forget(recovery: Recovery) -> None:
    """Remove a recovery copy and its meta (recovered, or declined). Its weights stay: they
    are pruned with the other unsaved weights."""
    for p in (recovery.path, recovery.path.with_name(recovery.path.name.replace(PROJECT_SUFFIX, META_SUFFIX))):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def process_alive(pid) -> bool:
    """Whether another process with id ``pid`` runs (this process's own id, or not an int:
    False; one we may not signal: True)."""
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError among them: it exists, another user's
        return True
    return True
