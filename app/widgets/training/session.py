"""A training run seen from the GUI: the engine's ``RunSupervisor`` as a QObject with Qt
signals. A timer polls the supervisor while it is busy, in slices of a few milliseconds,
so a run that reports thousands of minibatches a second never blocks the GUI thread.

    session = TrainingSession(parent)
    session.epoch.connect(curves.add_epoch)
    session.start(project, weights_path="run.safetensors", overrides={"epochs": 5})
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...engine.project import Project
from ...engine.session.supervisor import RunSupervisor

STARTING_TICK_MS = 20  # how often a run is read until its first minibatch came: Train shows it at once
WARM_WORKER_VARIABLE = "NETCANVAS_WARM_WORKER"  # "0": the editor keeps no warm training worker


def warm_worker_wanted() -> bool:
    """Whether the editor keeps a warm training worker (``NETCANVAS_WARM_WORKER``, default
    on; "0", "false", "no" or "off" turn it off: the widget tests, which open hundreds of
    windows, and machines short of memory)."""
    return os.environ.get(WARM_WORKER_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


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
        self._tick_ms = round(1000 * s.tick_seconds)
        self._timer.setInterval(self._tick_ms)
        self._timer.timeout.connect(self._tick)
        s.batches.connect(self._first_batches)
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
    def warm_pid(self) -> int | None:
        """The warm worker waiting for the next run (``warm_up``), if any."""
        return self.supervisor.warm_pid

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
        self._timer.start(STARTING_TICK_MS)  # until the first minibatch (``_first_batches``)

    def warm_up(self) -> None:
        """Keep a worker that has imported torch waiting for the next run from now on
        (``RunSupervisor.warm_up``): Train then starts in a moment."""
        self.supervisor.warm_up()

    def cool_down(self) -> None:
        """Keep no warm worker (the one waiting is ended)."""
        self.supervisor.cool_down()

    def prepare(self, dataset: dict, base_dir: str | Path | None, input_shape, input_id: str = "input") -> None:
        """Have the warm worker load the data the next run trains on
        (``RunSupervisor.prepare``)."""
        self.supervisor.prepare(dataset, base_dir, input_shape, input_id)

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

    def _first_batches(self, _events: list) -> None:
        if self._timer.interval() != self._tick_ms:
            self._timer.setInterval(self._tick_ms)  # from now on the run sends no faster

    def _keep_ticking(self) -> None:
        if not self.supervisor.busy:
            self._timer.stop()
            self._timer.setInterval(self._tick_ms)
