"""The run store: every training run of a project kept in an SQLite file beside its weights
(``NAME.runs.sqlite`` beside ``NAME.safetensors``), each run's weights in its own file
(``NAME.runs/<run id>.safetensors``).

The file is opened in WAL mode with a busy timeout, and every write is one ``BEGIN
IMMEDIATE`` transaction retried with backoff while another process holds the lock, so that
the processes of one machine (a sweep's workers) write one after another. A process killed
mid-write leaves the last committed state (SQLite's journal); its run stays "running" until
``fail_stale`` (called when a store is opened) marks it crashed. Tables are prefixed
``netcanvas_``: an Optuna storage may share the file. Nothing read from the file is
executed: its columns are numbers, text and JSON.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import random
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ... import __version__
from ..errors import NetCanvasError
from ..project import Project, project_to_dict
from ..weights import runs_dir
from .run_weights import MAX_HEADER, copy_weights, use_run_weights, use_weights, weights_run_id
from .schema import (MIGRATIONS, SCHEMA_VERSION, STATUSES, RunNotFound, RunRecord, StoreError, migrate,
                     read_version)

# the schema and the weights helpers live in their own modules; their names are imported
# from here as well
__all__ = ["BUSY_TIMEOUT_MS", "MAX_HEADER", "MIGRATIONS", "RETRY_SECONDS", "SCHEMA_VERSION", "STATUSES",
           "RunNotFound", "RunRecord", "RunStore", "StoreError", "copy_weights", "migrate", "read_version",
           "store_path_for", "use_run_weights", "use_weights", "weights_run_id"]

BUSY_TIMEOUT_MS = 5000  # SQLite's own wait for a lock, per statement
RETRY_SECONDS = 60.0  # then our retries with backoff, in all, before giving up with a clear error
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # ids that may name a file


def store_path_for(weights_target: str | Path) -> Path:
    """The store beside a weights file: ``lenet.safetensors`` -> ``lenet.runs.sqlite``
    (its runs' weights are in ``weights.runs_dir``: ``lenet.runs/``)."""
    folder = runs_dir(weights_target)
    return folder.with_name(folder.name + ".sqlite")


# -- helpers ----------------------------------------------------------------------------------
def _versions() -> dict:
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {"netcanvas": __version__, "torch": torch_version, "python": platform.python_version()}


def _process_start(pid: int) -> str:
    """A token that tells a process from a later one with the same pid: its start time in
    clock ticks since boot (Linux); '' where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int, token: str) -> bool:
    """Whether process ``pid`` of this host still runs (and is the one that started, when
    ``token`` says which)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OSError:
        return False
    if token:
        now = _process_start(pid)
        return not now or now == token
    return True


def _dumps(value: Any) -> str:
    return json.dumps(_finite(value))


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no such numbers) and numpy
    scalars as plain numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy or torch scalar
        try:
            return _finite(value.item())
        except (TypeError, ValueError):
            return str(value)
    return value


def _loads(text: Any, default: Any) -> Any:
    """A JSON column; ``default`` when it is missing, not JSON, or of another kind."""
    if not isinstance(text, str):
        return default
    try:
        value = json.loads(text)
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _locked(e: sqlite3.OperationalError) -> bool:
    text = str(e).lower()
    return "locked" in text or "busy" in text


class RunStore:
    """The runs of one project, in the SQLite file ``path`` (created and migrated when
    needed). Raises ``StoreError`` (a NetCanvasError naming the file) when it is not an
    SQLite database, was written by a newer NetCanvas, or stays locked beyond
    RETRY_SECONDS. Safe to share between threads of one process (one lock around the
    connection) and between processes (SQLite's locks)."""

    def __init__(self, path: str | Path, *, retry_seconds: float = RETRY_SECONDS):
        self.path = Path(path)
        self.retry_seconds = retry_seconds
        # SQLite's own wait per statement, then our retries (no longer than asked for in all)
        self._busy_ms = int(min(BUSY_TIMEOUT_MS, retry_seconds * 1000))
        name = self.path.name
        stem = name[: -len(".runs.sqlite")] if name.endswith(".runs.sqlite") else self.path.stem
        self.runs_dir = self.path.with_name(stem + ".runs")  # each run's weights
        self._lock = threading.RLock()
        if self.path.is_dir():
            raise StoreError("is a folder, not a run store", str(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=self._busy_ms / 1000, isolation_level=None,
                                         check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot be opened: {e}", str(self.path)) from None
        try:
            self._retry(self._setup)
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise StoreError(f"is not a run store (not a readable SQLite database: {e})", str(self.path)) from None
        except BaseException:
            self._conn.close()
            raise

    def _setup(self) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode and str(mode[0]).lower() != "wal":  # a file system without shared memory
            self._conn.execute("PRAGMA journal_mode = DELETE")
        # WAL + NORMAL: a killed process loses nothing committed; only a power cut may lose
        # the last transactions (never the file's consistency)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        migrate(self._conn, self.path)

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------
    def _retry(self, work: Callable[[], Any]) -> Any:
        """``work()``, again after a pause (doubling, with jitter) while the database is
        locked by another process, for up to ``retry_seconds``."""
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.02
        while True:
            try:
                return work()
            except sqlite3.OperationalError as e:
                if not _locked(e):
                    raise StoreError(f"cannot be used: {e}", str(self.path)) from None
                if time.monotonic() + pause > deadline:
                    raise StoreError(f"stayed locked by another process for more than {self.retry_seconds:g} "
                                     "seconds; try again when the other runs have ended", str(self.path)) from None
            time.sleep(pause * (0.5 + random.random()))  # jitter: waiting writers do not retry in step
            pause = min(pause * 2, 1.0)

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """``work(conn)`` in one BEGIN IMMEDIATE transaction (the write lock from the start:
        no deadlock between two readers turning writers), retried while locked."""
        def attempt():
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._conn)
                    self._conn.execute("COMMIT")
                    return result
                except BaseException:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    raise

        return self._retry(attempt)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        def attempt():
            with self._lock:
                return self._conn.execute(sql, args).fetchall()

        try:
            return self._retry(attempt)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot be read: {e}", str(self.path)) from None

    # -- writing a run ---------------------------------------------------------------------
    def begin(self, run_id: str, project: Project | dict, settings: dict, dataset: dict, device: str,
              sweep: str | None = None, trial: int | None = None, params: dict | None = None) -> RunRecord:
        """Record the start of run ``run_id`` ("running"): the project as it is now
        (``project_to_dict``; a dict is taken as that already), the effective settings, the
        dataset's description and the device. Returns its record. Raises ``StoreError``
        when the id is taken."""
        data = project if isinstance(project, dict) else project_to_dict(project)
        pid = os.getpid()
        row = (run_id, "running", time.time(), _dumps(data), _dumps(settings), _dumps(dataset), str(device),
               _dumps(_versions()), sweep, trial, _dumps(params or {}), socket.gethostname(), pid,
               _process_start(pid))

        def work(conn):
            try:
                conn.execute("INSERT INTO netcanvas_runs (id, status, started, project, settings, dataset, device, "
                             "versions, sweep, trial, params, host, pid, process_start) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                raise StoreError(f"already has a run {run_id}", str(self.path)) from None

        self._write(work)
        return self.get(run_id)

    def log_batches(self, run_id: str, rows: list[tuple[int, int, float, float | None, float]]) -> None:
        """Minibatches ``(step, epoch, loss, accuracy, lr)`` of a run, in one transaction (a
        step logged again replaces the first)."""
        if not rows:
            return
        values = [(run_id, int(s), int(e), _number(loss), _number(acc), _number(lr)) for s, e, loss, acc, lr in rows]
        self._write(lambda conn: conn.executemany(
            "INSERT OR REPLACE INTO netcanvas_batches (run_id, step, epoch, loss, accuracy, lr) "
            "VALUES (?, ?, ?, ?, ?, ?)", values))

    def log_epoch(self, run_id: str, epoch: int, train_loss, train_accuracy, val_loss, val_accuracy, lr,
                  seconds) -> None:
        """One epoch's metrics; also updates the run's best validation metrics and epochs."""
        values = (run_id, int(epoch), *(_number(v) for v in (train_loss, train_accuracy, val_loss, val_accuracy,
                                                             lr, seconds)))

        def work(conn):
            conn.execute("INSERT OR REPLACE INTO netcanvas_epochs (run_id, epoch, train_loss, train_accuracy, "
                         "val_loss, val_accuracy, lr, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            self._summarize(conn, run_id)

        self._write(work)

    def _summarize(self, conn: sqlite3.Connection, run_id: str) -> None:
        """Best validation metrics, epochs and steps from what was logged."""
        conn.execute("""UPDATE netcanvas_runs SET
            best_val_accuracy = (SELECT MAX(val_accuracy) FROM netcanvas_epochs WHERE run_id = ?1),
            best_val_loss = (SELECT MIN(val_loss) FROM netcanvas_epochs WHERE run_id = ?1),
            epochs = MAX(epochs, (SELECT COUNT(*) FROM netcanvas_epochs WHERE run_id = ?1)),
            steps = MAX(steps, COALESCE((SELECT MAX(step) FROM netcanvas_batches WHERE run_id = ?1), 0))
            WHERE id = ?1""", (run_id,))

    def finish(self, run_id: str, status: str, message: str, *, test_loss=None, test_accuracy=None,
               confusion=None, weights: str | None = None, epochs: int = 0, steps: int = 0, seconds=None) -> None:
        """Close run ``run_id`` with ``status`` (one of STATUSES) and its final metrics;
        ``weights``: its own weights file (stored relative to ``runs_dir`` when inside it).
        Raises ``RunNotFound``, and ValueError for an unknown status."""
        self._check_status(status)
        stored = self._weights_name(weights)
        values = (status, time.time(), str(message), _number(test_loss), _number(test_accuracy),
                  None if confusion is None else _dumps(confusion), stored, int(epochs), int(steps),
                  _number(seconds), run_id)

        def work(conn):
            cur = conn.execute("UPDATE netcanvas_runs SET status = ?, ended = ?, message = ?, test_loss = ?, "
                               "test_accuracy = ?, confusion = ?, weights = ?, epochs = ?, steps = ?, seconds = ? "
                               "WHERE id = ?", values)
            if cur.rowcount == 0:
                raise self._not_found(run_id)
            self._summarize(conn, run_id)

        self._write(work)

    def mark_crashed(self, run_id: str, message: str) -> None:
        """Close a run that ended without a result: "crashed", with ``message`` and what it
        had logged (its epochs, steps and best validation metrics)."""
        def work(conn):
            cur = conn.execute("UPDATE netcanvas_runs SET status = 'crashed', ended = ?, message = ? WHERE id = ?",
                               (time.time(), str(message), run_id))
            if cur.rowcount == 0:
                raise self._not_found(run_id)
            self._summarize(conn, run_id)

        self._write(work)

    def set_status(self, run_id: str, status: str, message: str | None = None) -> None:
        """Change a run's status (a sweep marks the runs its pruner stopped "pruned")."""
        self._check_status(status)

        def work(conn):
            if message is None:
                cur = conn.execute("UPDATE netcanvas_runs SET status = ? WHERE id = ?", (status, run_id))
            else:
                cur = conn.execute("UPDATE netcanvas_runs SET status = ?, message = ? WHERE id = ?",
                                   (status, str(message), run_id))
            if cur.rowcount == 0:
                raise self._not_found(run_id)

        self._write(work)

    def fail_stale(self) -> list[str]:
        """Mark crashed the runs still "running" whose recording process, on this host, no
        longer exists (killed, or the computer went down); returns their ids. A store that
        cannot be written (read-only) is left as it is: []."""
        host = socket.gethostname()
        rows = self._read("SELECT id, pid, process_start FROM netcanvas_runs WHERE status = 'running' AND host = ?",
                          (host,))
        stale = [(run_id, pid) for run_id, pid, token in rows
                 if not _alive(int(pid or 0), str(token or ""))]
        done = []
        for run_id, pid in stale:
            try:
                self._write(lambda conn, r=run_id, p=pid: self._crash_if_running(conn, r, p))
            except StoreError:  # read-only: listing still works
                break
            done.append(run_id)
        return done

    def still_running(self, record: RunRecord) -> bool:
        """Whether ``record`` is "running" and its recording process lives (on this host;
        a run recorded on another host is taken to live)."""
        if record.status != "running":
            return False
        if record.host != socket.gethostname():
            return True
        rows = self._read("SELECT process_start FROM netcanvas_runs WHERE id = ?", (record.id,))
        return _alive(record.pid, str(rows[0][0] or "") if rows else "")

    def _crash_if_running(self, conn: sqlite3.Connection, run_id: str, pid: int) -> None:
        cur = conn.execute("UPDATE netcanvas_runs SET status = 'crashed', ended = COALESCE(ended, ?), message = ? "
                           "WHERE id = ? AND status = 'running'",
                           (time.time(), f"the process that recorded this run (pid {pid}) ended before the run "
                                         "did: killed, or the computer stopped", run_id))
        if cur.rowcount:
            self._summarize(conn, run_id)

    def set_note(self, run_id: str, note: str) -> None:
        self._update(run_id, "note", str(note))

    def set_tags(self, run_id: str, tags: list[str]) -> None:
        unique = list(dict.fromkeys(str(t) for t in tags))
        self._update(run_id, "tags", _dumps(unique))

    def _update(self, run_id: str, column: str, value: Any) -> None:
        def work(conn):
            if conn.execute(f"UPDATE netcanvas_runs SET {column} = ? WHERE id = ?", (value, run_id)).rowcount == 0:
                raise self._not_found(run_id)

        self._write(work)

    def delete(self, run_id: str) -> None:
        """Delete the run, its metrics and its weights file. Raises ``RunNotFound``, and
        a NetCanvasError for a run that a live process still records."""
        record = self.get(run_id)
        if self.still_running(record):
            raise NetCanvasError(f"run {run_id} is still running (recorded by process {record.pid}): stop it before "
                             "deleting it", str(self.path))

        def work(conn):
            for table, key in (("netcanvas_batches", "run_id"), ("netcanvas_epochs", "run_id"),
                               ("netcanvas_runs", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {key} = ?", (run_id,))

        self._write(work)
        own = self.run_weights_path(run_id)
        if own is not None and record.weights and Path(record.weights) == own:
            try:
                own.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise StoreError(f"run {run_id} was deleted, but its weights file {own} could not be "
                                 f"({e.strerror or e})", str(self.path)) from None

    # -- reading ------------------------------------------------------------------------
    _COLUMNS = ("id, status, started, ended, project, settings, dataset, device, versions, note, tags, sweep, "
                "trial, params, best_val_accuracy, best_val_loss, test_accuracy, test_loss, confusion, message, "
                "weights, epochs, steps, seconds, host, pid")

    def runs(self, *, sweep: str | None = None) -> list[RunRecord]:
        """Every run (or a sweep's), newest first."""
        where, args = ("WHERE sweep = ?", (sweep,)) if sweep is not None else ("", ())
        rows = self._read(f"SELECT {self._COLUMNS} FROM netcanvas_runs {where} ORDER BY started DESC, id DESC", args)
        return [self._record(row) for row in rows]

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id``; raises ``RunNotFound`` naming the id and this file."""
        rows = self._read(f"SELECT {self._COLUMNS} FROM netcanvas_runs WHERE id = ?", (run_id,))
        if not rows:
            raise self._not_found(run_id)
        return self._record(rows[0])

    def batches(self, run_id: str) -> dict[str, list]:
        """The run's minibatches in step order: step, epoch, loss, accuracy, lr."""
        rows = self._read("SELECT step, epoch, loss, accuracy, lr FROM netcanvas_batches WHERE run_id = ? "
                          "ORDER BY step", (run_id,))
        return {k: [r[i] for r in rows] for i, k in enumerate(("step", "epoch", "loss", "accuracy", "lr"))}

    def epochs(self, run_id: str) -> dict[str, list]:
        """The run's epochs in order: epoch, train_loss, train_accuracy, val_loss,
        val_accuracy, lr, seconds."""
        keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")
        rows = self._read(f"SELECT {', '.join(keys)} FROM netcanvas_epochs WHERE run_id = ? ORDER BY epoch",
                          (run_id,))
        return {k: [r[i] for r in rows] for i, k in enumerate(keys)}

    def integrity_ok(self) -> bool:
        """Whether SQLite's ``PRAGMA integrity_check`` finds the file sound."""
        try:
            rows = self._read("PRAGMA integrity_check")
        except StoreError:
            return False
        return [r[0] for r in rows] == ["ok"]

    def run_weights_path(self, run_id: str) -> Path | None:
        """Where run ``run_id`` keeps its own weights: ``runs_dir/<id>.safetensors`` (None
        for an id that cannot name a file)."""
        return self.runs_dir / f"{run_id}.safetensors" if _SAFE_ID.match(run_id) else None

    def _weights_name(self, weights: str | None) -> str | None:
        """A weights path as stored: its name when it lies in ``runs_dir`` (the store and
        its folder may move together), else absolute."""
        if not weights:
            return None
        path = Path(weights).absolute()
        return path.name if path.parent == self.runs_dir.absolute() else str(path)

    def _record(self, row: tuple) -> RunRecord:
        (run_id, status, started, ended, project, settings, dataset, device, versions, note, tags, sweep, trial,
         params, best_acc, best_loss, test_acc, test_loss, confusion, message, weights, epochs, steps, seconds,
         host, pid) = row
        if weights and "/" not in weights and "\\" not in weights:
            weights = str(self.runs_dir / weights)
        return RunRecord(
            id=str(run_id), status=str(status), started=_number(started) or 0.0, ended=_number(ended),
            project=_loads(project, {}), settings=_loads(settings, {}), dataset=_loads(dataset, {}),
            device=str(device or ""), versions=_loads(versions, {}), note=str(note or ""),
            tags=[str(t) for t in _loads(tags, [])], sweep=None if sweep is None else str(sweep),
            trial=trial if isinstance(trial, int) else None, params=_loads(params, {}),
            best_val_accuracy=_number(best_acc), best_val_loss=_number(best_loss), test_accuracy=_number(test_acc),
            test_loss=_number(test_loss), confusion=_loads(confusion, []) or None, message=str(message or ""),
            weights=weights or None, epochs=int(epochs or 0), steps=int(steps or 0), seconds=_number(seconds),
            host=str(host or ""), pid=int(pid or 0))

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"has no run {run_id!r}", str(self.path))

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; received {status!r}")
