"""A training run seen from the GUI: the engine's ``RunSupervisor`` as a QObject with Qt
signals. A timer polls the supervisor while it is busy, in slices of a few milliseconds,
so a run that reports thousands of minibatches a second never blocks the GUI thread.

    session = TrainingSession(parent)
    session.epoch.connect(curves.add_epoch)
    session.start(project, weights_path="run.safetensors", overrides={"epochs": 5})
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...engine.project import Project
from ...engine.session.supervisor import RunSupervisor


class TrainingSession(QObject):
    """Runs one training at a time in a child process (``RunSupervisor``'s signals, the
    same arguments in the same order, as Qt signals): ``ready(info)``, ``batches(list)``,
    ``batch``/``epoch``/``snapshot``/``finished`` (the engine's events), ``failed(message)``,
    ``state_changed(state)``."""

    ready = Signal(dict)
    batches = Signal(list)
    batch = Signal(object)
    epoch = Signal(object)
    snapshot = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    state_changed = Signal(str)

    def __init__(self, parent: QObject | None = None, *, keep_warm: bool = False):
        super().__init__(parent)
        self.supervisor = RunSupervisor(keep_warm=keep_warm)
        s = self.supervisor
        for name in ("ready", "batches", "batch", "epoch", "snapshot", "finished", "failed", "state_changed"):
            getattr(s, name).connect(getattr(self, name).emit)
        self._timer = QTimer(self)
        self._timer.setInterval(round(1000 * s.tick_seconds))
        self._timer.timeout.connect(self._tick)
        # no orphan when this object goes away (the supervisor's finalizer covers the exit)
        self.destroyed.connect(functools.partial(RunSupervisor.shutdown, s))

    # -- state (the supervisor's) ---------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.supervisor.state

    @property
    def running(self) -> bool:
        return self.supervisor.running

    @property
    def paused(self) -> bool:
        return self.supervisor.paused

    @property
    def pid(self) -> int | None:
        return self.supervisor.pid

    @property
    def info(self) -> dict | None:
        return self.supervisor.info

    @property
    def last_traceback(self) -> str | None:
        return self.supervisor.last_traceback

    @property
    def dropped_batches(self) -> int:
        return self.supervisor.dropped_batches

    # -- control ----------------------------------------------------------------------------------
    def start(self, project: Project, **options: Any) -> None:
        """Train ``project`` in a child process (``RunSupervisor.start``'s options). Raises
        RuntimeError while a run is in progress."""
        self.supervisor.start(project, where="process", **options)
        self._timer.start()

    def pause(self) -> None:
        self.supervisor.pause()

    def resume(self) -> None:
        self.supervisor.resume()

    def stop(self) -> None:
        """``RunSupervisor.stop``: a run still starting ends at once."""
        self.supervisor.stop()
        self._keep_ticking()

    def request_snapshot(self, samples: np.ndarray | None = None) -> None:
        self.supervisor.request_snapshot(samples)

    def kill(self) -> None:
        """End the child now and reap it; no ``finished`` follows."""
        self.supervisor.kill()
        self._keep_ticking()

    def _tick(self) -> None:
        self.supervisor.poll()
        self._keep_ticking()

    def _keep_ticking(self) -> None:
        if not self.supervisor.busy:
            self._timer.stop()
