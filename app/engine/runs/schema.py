"""The run store's schema: the tables of its SQLite file (prefixed ``netcanvas_``), the
schema version written in it and the migrations from one version to the next, the record one
run's row is read into (``RunRecord``), the statuses a run may have, and the errors a store
raises. ``store`` (the ``RunStore`` that reads and writes the file) re-exports every name.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import NetCanvasError

SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "stopped", "diverged", "crashed", "pruned")


class RunNotFound(NetCanvasError):
    """No run with that id in the store."""


class StoreError(NetCanvasError):
    """A run store that cannot be opened, read or written."""


@dataclass
class RunRecord:
    """One run as stored (times are unix seconds; ``weights``: the run's own weights file,
    absolute, when one was kept)."""

    id: str
    status: str
    started: float
    ended: float | None
    project: dict
    settings: dict
    dataset: dict
    device: str
    versions: dict
    note: str
    tags: list[str]
    sweep: str | None
    trial: int | None
    params: dict
    best_val_accuracy: float | None
    best_val_loss: float | None
    test_accuracy: float | None
    test_loss: float | None
    confusion: list[list[int]] | None
    message: str
    weights: str | None
    epochs: int
    steps: int
    seconds: float | None
    host: str
    pid: int

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (the run's own ``seconds`` when known)."""
        if self.seconds is not None:
            return self.seconds
        return None if self.ended is None else max(0.0, self.ended - self.started)


# -- the schema and its migrations ----------------------------------------------------------
def _create_v1(conn: sqlite3.Connection) -> None:
    conn.execute("""CREATE TABLE IF NOT EXISTS netcanvas_runs (
        id TEXT PRIMARY KEY, status TEXT NOT NULL, started REAL NOT NULL, ended REAL,
        project TEXT NOT NULL, settings TEXT NOT NULL, dataset TEXT NOT NULL,
        device TEXT NOT NULL DEFAULT '', versions TEXT NOT NULL DEFAULT '{}',
        note TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '[]',
        sweep TEXT, trial INTEGER, params TEXT NOT NULL DEFAULT '{}',
        best_val_accuracy REAL, best_val_loss REAL, test_accuracy REAL, test_loss REAL,
        confusion TEXT, message TEXT NOT NULL DEFAULT '', weights TEXT,
        epochs INTEGER NOT NULL DEFAULT 0, steps INTEGER NOT NULL DEFAULT 0, seconds REAL,
        host TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0,
        process_start TEXT NOT NULL DEFAULT '')""")
    conn.execute("CREATE INDEX IF NOT EXISTS netcanvas_runs_started ON netcanvas_runs (started)")
    conn.execute("CREATE INDEX IF NOT EXISTS netcanvas_runs_sweep ON netcanvas_runs (sweep, trial)")
    conn.execute("""CREATE TABLE IF NOT EXISTS netcanvas_batches (
        run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER NOT NULL, loss REAL,
        accuracy REAL, lr REAL, PRIMARY KEY (run_id, step)) WITHOUT ROWID""")
    conn.execute("""CREATE TABLE IF NOT EXISTS netcanvas_epochs (
        run_id TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, train_accuracy REAL,
        val_loss REAL, val_accuracy REAL, lr REAL, seconds REAL,
        PRIMARY KEY (run_id, epoch)) WITHOUT ROWID""")


# MIGRATIONS[n] turns a version-n store into a version-(n+1) one, inside one transaction
# (version 0: a file without our tables, new or an Optuna storage).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {0: _create_v1}


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version written in the store (0 when it has no NetCanvas tables yet)."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'netcanvas_schema'").fetchone()
    if not has:
        return 0
    row = conn.execute("SELECT version FROM netcanvas_schema WHERE id = 1").fetchone()
    return int(row[0]) if row and isinstance(row[0], int) else 0


def migrate(conn: sqlite3.Connection, path: str | Path, *, target: int = SCHEMA_VERSION,
            migrations: dict[int, Callable[[sqlite3.Connection], None]] | None = None) -> int:
    """Bring the store on ``conn`` (autocommit mode) to schema version ``target``, one step
    of ``migrations`` (default MIGRATIONS) at a time, all in one transaction. Returns the
    version found. Raises ``StoreError`` naming ``path`` and both versions when the store
    was written by a newer NetCanvas, or when a step is missing."""
    steps = MIGRATIONS if migrations is None else migrations
    found = read_version(conn)  # first without a lock: opening a current store waits for no writer
    _check_newer(found, target, path)
    if found == target:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = read_version(conn)  # again: another process may have migrated it meanwhile
        _check_newer(found, target, path)
        version = found
        while version < target:
            if version not in steps:
                raise StoreError(f"is a run store of version {found}, and no migration from version {version} "
                                 f"to {target} exists", str(path))
            steps[version](conn)
            version += 1
        if found < target:
            conn.execute("CREATE TABLE IF NOT EXISTS netcanvas_schema (id INTEGER PRIMARY KEY CHECK (id = 1), "
                         "version INTEGER NOT NULL)")
            conn.execute("INSERT OR REPLACE INTO netcanvas_schema (id, version) VALUES (1, ?)", (target,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _check_newer(found: int, target: int, path: str | Path) -> None:
    if found > target:
        raise StoreError(f"is a run store of version {found}, written by a newer NetCanvas; this one reads "
                         f"versions up to {target}: update NetCanvas to open it", str(path))
