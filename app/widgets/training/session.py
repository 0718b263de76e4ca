"""A training run in a child process, seen from the GUI as a QObject with signals.

The child (``app.engine.training.worker.worker_main``) trains and reports through a pipe;
out of memory, a crashing kernel or a killed process ends the child, never the editor,
and shows up here as ``failed``. A timer drains the pipe in slices of a few milliseconds,
so a child that reports thousands of minibatches a second never blocks the GUI thread.

    session = TrainingSession(parent)
    session.epoch.connect(curves.add_epoch)
    session.start(project, weights_path="run.safetensors", overrides={"epochs": 5})
"""

from __future__ import annotations

import functools
import multiprocessing
import select
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...engine.project import Project, project_to_dict
from ...engine.training.events import BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent
from ...engine.training.worker import worker_main
from .budget import tick_seconds

# how often the pipe is read: 50 ms, or 200 ms where training takes every CPU (budget.py);
# the child sends its minibatches in bunches as often (its batch_seconds option)
TICK_MS = round(1000 * tick_seconds())
TICK_BUDGET = 0.006  # seconds of GUI time one tick may spend on messages (the last may overrun)
TICK_MESSAGES = 1000  # and at most this many messages
EXIT_WAIT = 10.0  # seconds a child that said its last word may take to exit before it is ended
# The run's priority: the editor's own nice, under Linux's SCHED_BATCH (every thread of it).
# SCHED_BATCH keeps a CPU-bound run's fair share of the CPU, but its threads' wake-ups do not
# preempt other tasks, so the editor, idle most of the time, gets a core when it wakes; its
# drawing stays cheap where training takes every CPU (budget.py). The run used to train 10
# steps below the editor: beside one other busy program at normal priority its threads then
# got 0.23 s of CPU for each second that program got (2.0 now), and 0.03-0.07 of the headless
# throughput (bench/priority.py and bench/training.py --load measure both).
TRAINING_NICE = 0
TRAINING_POLICY = "batch"
STOPPED_WHILE_STARTING = "stopped before the first minibatch"
ALIVE_SECONDS = 0.5  # how often a tick asks whether the child still runs (a dead one's pipe also reads EOF)


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(self, process, conn, options: dict | None = None):
        self.process = process
        self.conn = conn
        self.options = options or {}
        self.pid = process.pid
        self.eof = False  # the pipe is closed: nothing more will come
        self.over_since: float | None = None  # when the run said its last word
        self.checked = 0.0  # when alive() last asked
        # a poll object made once: Connection.poll(0) builds a selector on every call (~0.1 ms)
        self._poller = None
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(conn.fileno(), select.POLLIN)

    def readable(self) -> bool:
        """A message (or the end of the pipe) waits; never blocks."""
        if self._poller is None:
            return self.conn.poll(0)
        return bool(self._poller.poll(0))

    def alive(self) -> bool:
        self.checked = time.perf_counter()
        try:
            return self.process.is_alive()  # also reaps an exited child (no zombie)
        except ValueError:  # already closed
            return False

    def terminate(self) -> None:
        """Ask the process to end now (SIGTERM); ``alive`` and ``end`` reap it."""
        self.over_since = time.perf_counter()
        try:
            self.process.terminate()
        except (ValueError, OSError, AttributeError):
            pass  # closed already, or never started

    def send(self, message: tuple) -> bool:
        try:
            self.conn.send(message)
            return True
        except (OSError, ValueError):
            return False

    def end(self) -> int | None:
        """Terminate (then kill) the process if it still runs, reap it and close the pipe.
        Returns its exit code."""
        code = None
        try:
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(3)
                if self.process.is_alive():
                    self.process.kill()
            self.process.join(3)
            code = self.process.exitcode
            self.process.close()
        except (ValueError, OSError, AssertionError):
            pass  # closed already, or never started
        try:
            self.conn.close()
        except OSError:
            pass
        return code


def _end_all(children: list[_Child]) -> None:
    while children:
        children.pop().end()


class TrainingSession(QObject):
    """Runs one training at a time in a child process.

    Signals: ``ready(info)`` (the run is checked; info: device, dataset, notes,
    input_shape, num_classes, settings, pid), ``batch``/``epoch``/``snapshot``/``finished``
    (the engine's events), ``failed(message)`` (an error before training, a crash, or a
    child that died), ``state_changed(state)``: starting, running, paused, stopping, idle.
    ``finished`` and ``failed`` come after ``state_changed("idle")``, so their slots may
    start the next run. ``batches(list)`` carries the minibatches that arrived together (one
    emission a tick instead of one per minibatch); ``batch`` comes for each of them after."""

    ready = Signal(dict)
    batches = Signal(list)
    batch = Signal(object)
    epoch = Signal(object)
    snapshot = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    state_changed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._child: _Child | None = None
        self._exiting: list[_Child] = []  # children whose run is over, waiting to exit
        self._children: list[_Child] = []  # every live child: what clean-up ends
        self._state = "idle"
        self._paused = False
        self.info: dict | None = None
        self.last_traceback: str | None = None  # the full text of the last crash
        self.dropped_batches = 0  # BatchEvents the child left out because we read too slowly
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        # no orphan and no zombie when this object goes away or the program ends
        weakref.finalize(self, _end_all, self._children)
        self.destroyed.connect(functools.partial(_end_all, self._children))

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def running(self) -> bool:
        """True from ``start`` until the run finished, failed or was killed."""
        return self._child is not None

    @property
    def paused(self) -> bool:
        """True once ``pause`` was asked (``state`` turns "paused" when the child has)."""
        return self.running and self._paused

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    # -- control -------------------------------------------------------------------------
    def start(self, project: Project, **options: Any) -> None:
        """Train ``project`` in a new child process. ``options``: see
        ``app.engine.training.worker`` (weights_path, project_dir, overrides,
        snapshot_every, snapshot_samples, initial_weights, checkpoint_dir, threads,
        batch_seconds, nice: default TRAINING_NICE, policy: default TRAINING_POLICY); None
        values mean the default. Raises RuntimeError while a run is in progress."""
        if self.running:
            raise RuntimeError("a training run is in progress; stop or kill it first")
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if v is not None}
        options.setdefault("batch_seconds", self._timer.interval() / 1000)  # no faster than they are read
        options.setdefault("nice", TRAINING_NICE)
        options.setdefault("policy", TRAINING_POLICY)
        if "project_dir" not in options and project.path is not None:
            options["project_dir"] = str(project.path.parent)
        if isinstance(options.get("snapshot_samples"), np.ndarray):
            options["snapshot_samples"] = np.ascontiguousarray(options["snapshot_samples"])
        ctx = multiprocessing.get_context("spawn")
        conn, child_conn = ctx.Pipe(duplex=True)
        process = ctx.Process(target=worker_main, args=(child_conn, project_to_dict(project), options),
                              # several processes: the child launches them (a daemon may not)
                              name="netcanvas-training", daemon=int(options.get("nproc") or 1) <= 1)
        try:
            process.start()
        except BaseException:
            conn.close()
            child_conn.close()
            raise
        child_conn.close()  # only the child holds that end now: its death reads as EOF here
        self._child = _Child(process, conn, options)
        self._children.append(self._child)
        self._paused = False
        self.info = None
        self.last_traceback = None
        self.dropped_batches = 0
        self._set_state("starting")
        self._timer.start()

    def pause(self) -> None:
        if self._child and self._state in ("starting", "running") and not self._paused:
            self._paused = True
            self._child.send(("pause",))

    def resume(self) -> None:
        if self._child and self._paused and self._state != "stopping":
            self._paused = False
            self._child.send(("resume",))

    def stop(self) -> None:
        """Stop after the current minibatch; the child still tests and saves the weights,
        then ``finished`` comes with reason "stopped". A run that has not said "ready"
        yet (it imports torch and loads the data: seconds) has trained nothing and written
        nothing: its process is ended at once, and ``finished`` comes now, with reason
        "stopped" and no steps (a run across several processes, which has launched
        them by then, stops as usual)."""
        child = self._child
        if child is None or self._state not in ("starting", "running", "paused"):
            return
        if self._state == "starting" and int(child.options.get("nproc") or 1) <= 1:
            self._child = None
            child.terminate()  # reaped by the ticks (a process ends in a moment: no wait here)
            self._exiting.append(child)
            self._paused = False
            self._set_state("idle")
            self.finished.emit(FinishedEvent("stopped", STOPPED_WHILE_STARTING, 0, 0, 0.0))
            return
        child.send(("stop",))
        self._set_state("stopping")

    def request_snapshot(self, samples: np.ndarray | None = None) -> None:
        """Ask for a SnapshotEvent for ``samples`` (``[n, *input_shape]`` or one sample,
        normalized like the training data; None: the first test samples). Served between
        minibatches, and also while paused."""
        if self._child and self._state != "stopping":
            self._child.send(("snapshot", None if samples is None else np.ascontiguousarray(samples)))

    def kill(self) -> None:
        """End the child now (terminate, then kill) and reap it; no ``finished`` follows."""
        child, self._child = self._child, None
        if child is not None:
            self._forget(child)
            child.end()
        self._paused = False
        self._set_state("idle")
        self._stop_timer_if_done()

    # -- the pipe --------------------------------------------------------------------------
    def _tick(self) -> None:
        deadline = time.perf_counter() + TICK_BUDGET
        for child in list(self._exiting):
            self._reap(child)
        child = self._child
        if child is None:
            self._stop_timer_if_done()
            return
        # before reading: all it sent before dying is in the pipe (asked every ALIVE_SECONDS;
        # a child that dies closes the pipe, which reads as EOF, and that asks at once)
        now = time.perf_counter()
        alive = child.alive() if now - child.checked >= ALIVE_SECONDS else True
        count = 0
        while not child.eof:
            try:
                if not child.readable():
                    break
                message = child.conn.recv()
            except (EOFError, OSError):
                child.eof = True
                break
            self._handle(message)
            if self._child is not child:  # the run ended (or a slot killed it)
                return
            count += 1
            if count >= TICK_MESSAGES or time.perf_counter() > deadline or _is_snapshot(message):
                return  # more next tick; the GUI gets its turn (a snapshot's drawing is a tick's worth)
        if child.eof and alive:  # the pipe closed: the process should be gone in a moment
            child.over_since = child.over_since or time.perf_counter()
            alive = child.alive() and time.perf_counter() - child.over_since < EXIT_WAIT
        if not alive:
            self._died(child)

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "bunch":
            child, run = self._child, []
            for inner in message[1]:
                if inner[0] == "event" and isinstance(inner[1], BatchEvent):
                    run.append(inner[1])
                    continue
                if run and not self._emit_batches(run, child):
                    return
                run = []
                self._handle(inner)
                if self._child is not child:  # the run ended (or a slot killed it)
                    return
            if run:
                self._emit_batches(run, child)
        elif kind == "event":
            event = message[1]
            if isinstance(event, BatchEvent):
                self._emit_batches([event], self._child)
            elif isinstance(event, EpochEvent):
                self.epoch.emit(event)
            elif isinstance(event, SnapshotEvent):
                self.snapshot.emit(event)
            elif isinstance(event, FinishedEvent):
                self._over()
                self.finished.emit(event)
        elif kind == "dropped":
            self.dropped_batches += message[1]
        elif kind == "ready":
            self.info = message[1]
            if self._state == "starting":
                self._set_state("running")
            self.ready.emit(message[1])
        elif kind == "paused":
            if self._state == "running":
                self._set_state("paused")
        elif kind == "resumed":
            if self._state == "paused":
                self._set_state("running")
        elif kind == "done":
            self._over()
        elif kind == "error":
            self._over()
            self.failed.emit(str(message[1]))
        elif kind == "crash":
            self.last_traceback = str(message[1])
            self._over()
            self.failed.emit(_last_line(self.last_traceback))

    def _emit_batches(self, events: list, child: _Child | None) -> bool:
        """``batches`` once, then ``batch`` for each; False when a slot ended the run."""
        self.batches.emit(events)
        for event in events:
            if self._child is not child:
                return False
            self.batch.emit(event)
        return self._child is child

    def _over(self) -> None:
        """The run said its last word: the child exits by itself and is reaped later."""
        child, self._child = self._child, None
        if child is not None:
            child.over_since = time.perf_counter()
            self._exiting.append(child)
        self._paused = False
        self._set_state("idle")

    def _died(self, child: _Child) -> None:
        self._child = None
        self._forget(child)
        code = child.end()
        self._paused = False
        self._set_state("idle")
        message = f"the training process ended unexpectedly (exit code {code})"
        if code == -9:
            message += "; it was killed, often because the computer ran out of memory"
        self.failed.emit(message)
        self._stop_timer_if_done()

    def _reap(self, child: _Child) -> None:
        """Read what a finished child still sends (its "done"), and end it once it exits."""
        try:
            while not child.eof and child.readable():
                child.conn.recv()
        except (EOFError, OSError):
            child.eof = True
        late = child.over_since is not None and time.perf_counter() - child.over_since > EXIT_WAIT
        if not child.alive() or late:
            self._exiting.remove(child)
            self._forget(child)
            child.end()

    def _forget(self, child: _Child) -> None:
        if child in self._children:
            self._children.remove(child)

    def _stop_timer_if_done(self) -> None:
        if self._child is None and not self._exiting:
            self._timer.stop()


def _is_snapshot(message: tuple) -> bool:
    if message[0] == "bunch":
        return any(_is_snapshot(inner) for inner in message[1])
    return message[0] == "event" and isinstance(message[1], SnapshotEvent)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "the training process crashed"
