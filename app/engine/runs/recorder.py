"""The recorder: one run of a ``RunSupervisor`` written into a ``RunStore`` as it goes.

    store = RunStore(store_path_for(weights_target)); store.fail_stale()
    recorder = RunRecorder(store, supervisor, project, weights_target)
    supervisor.start(project, weights_path=weights_target, ...)

It begins the run on ``ready``, writes minibatches (at most one transaction a second) and
epochs, and closes it on ``finished`` (status from the reason, test metrics, the run's own
weights copied to ``NAME.runs/<id>.safetensors``) or ``failed`` (crashed, keeping what was
logged); then it disconnects itself. A problem with the store never stops the training:
the first one is kept in ``error``, and recording ends.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ..errors import NetCanvasError
from ..project import Project, project_to_dict
from ..weights import new_run_id
from .store import RunStore, copy_weights

STATUS = {"completed": "finished", "early_stopping": "finished", "stopped": "stopped", "diverged": "diverged"}
FLUSH_SECONDS = 1.0  # minibatches are written at least this often (a killed run loses at most these)
FLUSH_ROWS = 2000  # ... or once this many wait
NO_RESULT = "the run ended without a result (it was killed)"


class RunRecorder:
    """Connects to ``supervisor``'s Signals (ready, batches, epoch, finished, failed) and
    records the next run into ``store``: ``project`` as it is now (copied at once: later
    edits are not the run's), ``sweep``/``trial``/``params`` for a sweep's trial.
    ``weights_target``: the project's weights file the run writes (its own weights are
    kept in the store's runs folder). ``run_id``: set on ready; ``status``: the status it
    was closed with (None while it runs); ``error``: why recording stopped, or None."""

    def __init__(self, store: RunStore, supervisor, project: Project | dict, weights_target: str | Path | None,
                 sweep: str | None = None, trial: int | None = None, params: dict | None = None):
        self.store, self.supervisor = store, supervisor
        self.project = project_to_dict(project) if isinstance(project, Project) else dict(project)
        self.weights_target = Path(weights_target) if weights_target else None
        self.sweep, self.trial, self.params = sweep, trial, dict(params or {})
        self.run_id: str | None = None
        self.status: str | None = None
        self.error: str | None = None
        self.weights: str | None = None  # the run's own weights file, once kept
        self._pending: list[tuple] = []
        self._flushed = time.monotonic()
        self._open = False
        self._connected = True
        supervisor.ready.connect(self._ready)
        supervisor.batches.connect(self._batches)
        supervisor.epoch.connect(self._epoch)
        supervisor.finished.connect(self._finished)
        supervisor.failed.connect(self._failed)

    @property
    def recording(self) -> bool:
        """True from ready until the run is closed."""
        return self._open

    def detach(self, message: str | None = None) -> None:
        """Disconnect from the supervisor. A run still open (killed: no result came) is
        marked crashed with ``message`` (default NO_RESULT) and what it had logged."""
        if self._open:
            self._flush()
            self._close(lambda: self.store.mark_crashed(self.run_id, message or NO_RESULT), "crashed")
        if self._connected:
            self._connected = False
            for signal, slot in ((self.supervisor.ready, self._ready), (self.supervisor.batches, self._batches),
                                 (self.supervisor.epoch, self._epoch), (self.supervisor.finished, self._finished),
                                 (self.supervisor.failed, self._failed)):
                try:
                    signal.disconnect(slot)
                except ValueError:
                    pass

    # -- slots ----------------------------------------------------------------------------
    def _ready(self, info: dict) -> None:
        if self._open or self.run_id is not None:  # the next run's: this recorder's run was killed
            self.detach()
            return
        run_id = info.get("run_id") or new_run_id()
        self.run_id = run_id
        self._guard(lambda: self.store.begin(run_id, self.project, dict(info.get("settings") or {}),
                                             dict(info.get("dataset") or {}), str(info.get("device", "")),
                                             self.sweep, self.trial, self.params))
        self._open = self.error is None

    def _batches(self, events: list) -> None:
        if not self._open:
            return
        self._pending.extend((e.step, e.epoch, e.loss, e.accuracy, e.lr) for e in events)
        if len(self._pending) >= FLUSH_ROWS or time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush()

    def _epoch(self, e) -> None:
        if not self._open:
            return
        self._flush()
        self._guard(lambda: self.store.log_epoch(self.run_id, e.epoch, e.train_loss, e.train_accuracy, e.val_loss,
                                                 e.val_accuracy, e.lr, e.seconds))

    def _finished(self, event) -> None:
        if not self._open:
            self.detach()
            return
        self._flush()
        status = STATUS.get(event.reason, "finished")
        message = event.message
        weights = None
        if event.weights_path:
            try:
                weights = str(self._keep_weights(Path(event.weights_path)))
            except OSError as e:
                message += f" (its weights could not be kept in {self.store.runs_dir}: {e.strerror or e})"
        self.weights = weights
        self._close(lambda: self.store.finish(
            self.run_id, status, message, test_loss=event.test_loss, test_accuracy=event.test_accuracy,
            confusion=event.confusion, weights=weights, epochs=event.epochs_run, steps=event.steps,
            seconds=event.seconds), status)
        self.detach()

    def _failed(self, message: str) -> None:
        if self._open:
            self._flush()
            self._close(lambda: self.store.mark_crashed(self.run_id, message), "crashed")
        self.detach()  # failed before ready: nothing was trained, nothing is recorded

    # -- helpers -----------------------------------------------------------------------------
    def _keep_weights(self, written: Path) -> Path:
        """The run's own copy of the weights it wrote: ``runs_dir/<id>.safetensors`` (that
        very file when the run held its weights back there)."""
        own = self.store.run_weights_path(self.run_id)
        if own is None:
            raise OSError(f"the run id {self.run_id!r} cannot name a file")
        if written.exists() and own.exists() and os.path.samefile(written, own):
            return own
        return copy_weights(written, own)

    def _flush(self) -> None:
        rows, self._pending = self._pending, []
        self._flushed = time.monotonic()
        if rows and self._open:
            self._guard(lambda: self.store.log_batches(self.run_id, rows))

    def _close(self, write, status: str) -> None:
        self._open = False
        self._guard(write)
        self.status = status

    def _guard(self, write) -> None:
        """Run a write; a failure ends the recording (kept in ``error``), never the run."""
        if self.error is not None:
            return
        try:
            write()
        except (NetCanvasError, sqlite3.Error, OSError) as e:
            self.error = str(e)
            self._open = False
