"""One training run at a time, wherever it runs: in a child process (``worker_main``, so
that running out of memory or a crashing kernel ends the child and never the caller), in a
thread of this process (the CLI), across N processes (``nproc``), or handed to a warm
worker that has already imported torch. Every run speaks the protocol of
``app/engine/training/protocol.py``; this module decodes it into engine Signals and fills
the run's metrics. No Qt here: the editor's ``TrainingSession`` calls ``poll`` from a timer.

    supervisor = RunSupervisor()
    supervisor.epoch.connect(print)
    supervisor.start(project, where="inline", overrides={"epochs": 5})
    finished = supervisor.wait()
"""

from __future__ import annotations

import os
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..project import Project, project_to_dict
from ..signals import Signal
from ..training.events import BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent
from ..training.protocol import is_snapshot
from ..training.spawning import spawn_child, worker_entry
from .budget import tick_seconds as default_tick_seconds
from .channels import ChildRun, InlineRun, end_all
from .metrics import RunMetrics

TICK_BUDGET = 0.006  # seconds one poll may spend on messages (the last may overrun)
TICK_MESSAGES = 1000  # and at most this many messages
EXIT_WAIT = 10.0  # seconds a child that said its last word may take to exit before it is ended
# The run's priority: the caller's own nice, under Linux's SCHED_BATCH (every thread of it).
# SCHED_BATCH keeps a CPU-bound run's fair share of the CPU, but its threads' wake-ups do not
# preempt other tasks, so the editor, idle most of the time, gets a core when it wakes. A run
# niced below the editor lost most of its throughput beside any other busy program
# (bench/priority.py and bench/training.py --load measure both).
TRAINING_NICE = 0
TRAINING_POLICY = "batch"
STOPPED_WHILE_STARTING = "stopped before the first minibatch"
ALIVE_SECONDS = 0.5  # how often a poll asks whether the run still goes (a dead child's pipe also reads EOF)
WHERE = ("process", "inline")


class RunSupervisor:
    """Runs one training at a time and reports it through engine Signals.

    Signals: ``ready(info)`` (the run is checked; info: device, dataset, notes,
    input_shape, num_classes, settings, pid), ``batch``/``epoch``/``snapshot``/``finished``
    (the engine's events), ``failed(message)`` (an error before training, a crash, or a
    child that died), ``state_changed(state)``: starting, running, paused, stopping, idle.
    ``finished`` and ``failed`` come after ``state_changed("idle")``, so their slots may
    start the next run. ``batches(list)`` carries the minibatches that arrived together (one
    emission a poll instead of one per minibatch); ``batch`` comes for each of them after.
    Nothing is emitted but from ``poll`` (and ``wait``), and from ``start``/``stop``/``kill``
    themselves: the caller's thread is the only one that sees the Signals.

    ``tick_seconds``: how often the caller polls (a run sends its minibatches no faster);
    ``keep_warm``: keep a child ready that has imported torch, for the next run in a
    process (``warm_up`` later; ``prepare`` has it load the data ahead); ``nice``/``policy``: the priority of runs in a process (``worker._lower_priority``;
    default TRAINING_NICE, TRAINING_POLICY).
    """

    def __init__(self, *, tick_seconds: float | None = None, keep_warm: bool = False,
                 nice: int | None = None, policy: str | None = None):
        self.ready, self.batches, self.batch = Signal(), Signal(), Signal()
        self.epoch, self.snapshot, self.finished = Signal(), Signal(), Signal()
        self.failed, self.state_changed = Signal(), Signal()
        self.tick_seconds = default_tick_seconds() if tick_seconds is None else tick_seconds
        self.keep_warm = keep_warm
        # None: the module's defaults as they are now (bench/training.py changes them)
        self.nice = TRAINING_NICE if nice is None else nice
        self.policy = TRAINING_POLICY if policy is None else policy
        self._child: ChildRun | InlineRun | None = None
        self._warm: ChildRun | None = None
        self._prepare: tuple | None = None  # the "prepare" message every warm worker gets
        # what the warm worker said: pid, ready (torch imported), prepared (its last
        # "prepared" answer), pending ("prepare" messages not answered yet)
        self.warm_info: dict | None = None
        self._exiting: list = []  # children whose run is over, waiting to exit
        self._children: list = []  # every live child (warm ones too): what clean-up ends
        self._state = "idle"
        self._paused = False
        self._result: FinishedEvent | None = None
        self.info: dict | None = None
        self.last_traceback: str | None = None  # the full text of the last crash
        self.dropped_batches = 0  # BatchEvents the run left out because they were read too slowly
        self.metrics = RunMetrics()
        # no orphan and no zombie when this object goes away or the program ends
        weakref.finalize(self, end_all, self._children)
        if keep_warm:
            self._make_warm()

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def running(self) -> bool:
        """True from ``start`` until the run finished, failed or was killed."""
        return self._child is not None

    @property
    def busy(self) -> bool:
        """True while ``poll`` has work: a run, or a finished child still to reap."""
        return self._child is not None or bool(self._exiting)

    @property
    def paused(self) -> bool:
        """True once ``pause`` was asked (``state`` turns "paused" when the run has)."""
        return self.running and self._paused

    @property
    def pid(self) -> int | None:
        """The run's process (this process's for an inline run); None when idle."""
        return self._child.pid if self._child else None

    @property
    def warm_pid(self) -> int | None:
        """The warm worker waiting for a run, if any."""
        return self._warm.pid if self._warm else None

    @property
    def warm_ready(self) -> bool:
        """Whether the warm worker has imported torch and loaded the data it was told of
        (as far as this supervisor has read: ``poll`` and ``wait_warm`` read it)."""
        info = self.warm_info
        return self._warm is not None and info is not None and info["ready"] and not info["pending"]

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_changed.emit(state)

    # -- control -------------------------------------------------------------------------
    def start(self, project: Project, *, where: str = "process", **options: Any) -> None:
        """Train ``project``: ``where`` "process" (a child, or the warm worker when one is
        ready) or "inline" (a thread of this process). ``options``: see
        ``app.engine.training.worker`` (weights_path, project_dir, overrides, nproc,
        snapshot_every, snapshot_samples, initial_weights, checkpoint_dir, threads,
        batch_seconds, nice and policy: default this supervisor's, for a process); None
        values mean the default. Raises RuntimeError while a run is in progress and
        ValueError for an unknown ``where``."""
        if self.running:
            raise RuntimeError("a training run is in progress; stop or kill it first")
        if where not in WHERE:
            raise ValueError(f"where must be one of {', '.join(WHERE)}; received {where!r}")
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if v is not None}
        options.setdefault("batch_seconds", self.tick_seconds)  # no faster than they are read
        if "project_dir" not in options and project.path is not None:
            options["project_dir"] = str(project.path.parent)
        if isinstance(options.get("snapshot_samples"), np.ndarray):
            options["snapshot_samples"] = np.ascontiguousarray(options["snapshot_samples"])
        if where == "inline":
            child = InlineRun(project, options)
        else:
            options.setdefault("nice", self.nice)
            options.setdefault("policy", self.policy)
            child = self._hand_to_warm(project, options) or self._spawn(project, options)
        self._child = child
        self._children.append(child)
        self._paused = False
        self._result = None
        self.info = None
        self.last_traceback = None
        self.dropped_batches = 0
        self.metrics = RunMetrics()
        self._set_state("starting")

    def _spawn(self, project: Project, options: dict) -> ChildRun:
        # several processes: the child launches them (a daemon may not)
        single = int(options.get("nproc") or 1) <= 1
        process, conn = spawn_child(worker_entry, (project_to_dict(project), options), daemon=single)
        return ChildRun(process, conn, options)

    def _hand_to_warm(self, project: Project, options: dict) -> ChildRun | None:
        """The warm worker, now running this run; None when there is none that fits (a
        distributed run, another priority) or it has died."""
        warm = self._warm
        if warm is None or int(options.get("nproc") or 1) > 1:
            return None
        if (options["nice"], options["policy"]) != (warm.options["nice"], warm.options["policy"]):
            return None
        self._read_warm()  # what it said so far (warm_info keeps it); a dead one is forgotten
        if self._warm is not warm:
            return None
        self._warm, self.warm_info = None, None
        if not warm.alive() or not warm.send(("run", project_to_dict(project), options)):
            self._forget(warm)
            warm.end()
            return None
        warm.options = options
        return warm

    def _make_warm(self) -> None:
        if self._warm is not None or not self.keep_warm:
            return
        options = {"nice": self.nice, "policy": self.policy}
        process, conn = spawn_child(worker_entry, (None, options), daemon=True)
        _batch_policy(process.pid, self.policy)  # its torch import, too, yields to the editor
        self._warm = ChildRun(process, conn, options)
        self._children.append(self._warm)
        self.warm_info = {"pid": self._warm.pid, "ready": False, "prepared": None, "pending": 0, "sent": None}
        if self._prepare is not None:
            self._send_prepare()

    # -- the warm worker -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Keep a warm worker from now on (``keep_warm``): one is started now, unless one
        waits already or a run is in progress (then it comes when the run is over)."""
        self.keep_warm = True
        if self._child is None:
            self._make_warm()

    def cool_down(self) -> None:
        """Keep no warm worker: the one waiting, if any, is ended (a run goes on)."""
        self.keep_warm = False
        warm, self._warm = self._warm, None
        self.warm_info = None
        if warm is not None:
            self._forget(warm)
            warm.end()

    def prepare(self, dataset: dict, base_dir: str | Path | None, input_shape, input_id: str = "input") -> None:
        """Tell the warm worker (and every one made later) the data the next run trains
        on: ``load_dataset``'s arguments (the project's dataset settings, the folder its
        relative paths resolve against, the Input's shape and id). It loads the data while
        it waits, and the run reuses it when the project it is handed gives the same (the
        worker checks the files' times too: ``protocol.py``). Costs nothing without a warm
        worker; the same data twice is sent once."""
        self._prepare = ("prepare", dict(dataset), None if base_dir is None else str(base_dir),
                         [int(d) for d in input_shape], str(input_id))
        if self._warm is not None:
            self._send_prepare()

    def _send_prepare(self) -> None:
        self._read_warm()  # its answers so far: unread, they would fill the pipe and block both ends
        if self._warm is None:  # (it died: the next one is told when it is made)
            return
        info = self.warm_info
        if info["sent"] == self._prepare:
            return
        if self._warm.send(self._prepare):
            info["sent"] = self._prepare
            info["pending"] += 1

    def wait_warm(self, timeout: float) -> bool:
        """Block until the warm worker has imported torch and loaded the data it was told
        of, at most ``timeout`` seconds; True when it has (False: none, or not yet)."""
        end = time.monotonic() + timeout
        while self._warm is not None and not self.warm_ready:
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._warm.wait(left)
            self._read_warm()
        return self.warm_ready

    def _read_warm(self) -> None:
        """Read what the warm worker said (never blocks); one that died is forgotten (the
        next run starts a fresh process, and a fresh warm worker follows it)."""
        warm = self._warm
        if warm is None:
            return
        try:
            while warm.readable():
                message = warm.recv()
                if isinstance(message, tuple) and message and message[0] == "warm":
                    self.warm_info["ready"] = True
                elif isinstance(message, tuple) and message and message[0] == "prepared":
                    self.warm_info["prepared"] = message[1]
                    self.warm_info["pending"] = max(0, self.warm_info["pending"] - 1)
        except (EOFError, OSError):
            self._warm, self.warm_info = None, None
            self._forget(warm)
            warm.end()

    def pause(self) -> None:
        if self._child and self._state in ("starting", "running") and not self._paused:
            self._paused = True
            self._child.send(("pause",))

    def resume(self) -> None:
        if self._child and self._paused and self._state != "stopping":
            self._paused = False
            self._child.send(("resume",))

    def stop(self) -> None:
        """Stop after the current minibatch; the run still tests and saves the weights,
        then ``finished`` comes with reason "stopped". A run in a process that has not said
        "ready" yet (it imports torch and loads the data: seconds) has trained nothing and
        written nothing: its process is ended at once, and ``finished`` comes now, with
        reason "stopped" and no steps (a run across several processes, which has launched
        them by then, and a run in this process stop as usual)."""
        child = self._child
        if child is None or self._state not in ("starting", "running", "paused"):
            return
        if self._state == "starting" and isinstance(child, ChildRun) and int(child.options.get("nproc") or 1) <= 1:
            self._child = None
            child.terminate()  # reaped by the polls (a process ends in a moment: no wait here)
            self._exiting.append(child)
            self._paused = False
            self._set_state("idle")
            self._result = FinishedEvent("stopped", STOPPED_WHILE_STARTING, 0, 0, 0.0)
            self._make_warm()
            self.finished.emit(self._result)
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
        """End the run now (a process: terminate, then kill, and reap it; a run in this
        process: abort it, which ends a distributed run's processes); no ``finished``
        follows."""
        child, self._child = self._child, None
        if child is not None:
            self._forget(child)
            child.end()
        self._paused = False
        self._set_state("idle")
        self._make_warm()

    def shutdown(self) -> None:
        """End the run (as ``kill``), the warm worker and every child still exiting, and
        emit nothing: the owner is going away (its slots may be gone already)."""
        self.keep_warm = False
        self._child = self._warm = None
        self.warm_info = None
        self._exiting.clear()
        self._paused = False
        self._state = "idle"
        end_all(self._children)

    # -- reading -------------------------------------------------------------------------
    def poll(self, budget: float | None = TICK_BUDGET, max_messages: int = TICK_MESSAGES) -> None:
        """Read and emit what the run sent, for at most ``budget`` seconds (None: no limit)
        and ``max_messages`` messages; a snapshot ends the poll (its drawing is a tick's
        worth). Notices a run that died, and reaps children that have exited. Never blocks."""
        deadline = None if budget is None else time.perf_counter() + budget
        for child in list(self._exiting):
            self._reap(child)
        self._read_warm()
        child = self._child
        if child is None:
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
                message = child.recv()
            except (EOFError, OSError):
                child.eof = True
                break
            self._handle(message)
            if self._child is not child:  # the run ended (or a slot killed it)
                return
            count += 1
            if count >= max_messages or (deadline is not None and time.perf_counter() > deadline) \
                    or is_snapshot(message):
                return  # more next time; the caller gets its turn
        if child.eof and alive:  # the pipe closed: the process should be gone in a moment
            child.over_since = child.over_since or time.perf_counter()
            alive = child.alive() and time.perf_counter() - child.over_since < EXIT_WAIT
        if not alive:
            self._died(child)

    def wait(self, timeout: float | None = None) -> FinishedEvent | None:
        """Poll until the run is over and its process (or thread) has ended, or ``timeout``
        seconds have passed; returns its FinishedEvent, or None when it failed, was killed,
        or is still going."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self.poll(budget=None)
            if not self.busy:
                break
            left = ALIVE_SECONDS if end is None else min(ALIVE_SECONDS, end - time.monotonic())
            if left <= 0:
                break
            waiting = self._child or self._exiting[0]
            if not waiting.eof:
                waiting.wait(left)
            else:
                time.sleep(min(left, 0.01))  # the pipe is closed: the process exits in a moment
        return None if self._child is not None else self._result

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
                self.metrics.add_epoch(event)
                self.epoch.emit(event)
            elif isinstance(event, SnapshotEvent):
                self.snapshot.emit(event)
            elif isinstance(event, FinishedEvent):
                self._result = event
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
        elif kind in ("warm", "prepared"):
            pass  # the warm worker that took the run said these before it (warm_info has them)
        elif kind == "error":
            self._over()
            self.failed.emit(str(message[1]))
        elif kind == "crash":
            self.last_traceback = str(message[1])
            self._over()
            self.failed.emit(_last_line(self.last_traceback))

    def _emit_batches(self, events: list, child) -> bool:
        """``batches`` once, then ``batch`` for each; False when a slot ended the run."""
        self.metrics.add_batches(events)
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
        self._make_warm()

    def _died(self, child) -> None:
        self._child = None
        self._forget(child)
        code = child.end()
        self._paused = False
        self._set_state("idle")
        self._make_warm()
        if isinstance(child, InlineRun):
            message = "the training run ended without a result"
        else:
            message = f"the training process ended unexpectedly (exit code {code})"
            if code == -9:
                message += "; it was killed, often because the computer ran out of memory"
        self.failed.emit(message)

    def _reap(self, child) -> None:
        """Read what a finished child still sends (its "done"), and end it once it exits."""
        try:
            while not child.eof and child.readable():
                child.recv()
        except (EOFError, OSError):
            child.eof = True
        late = child.over_since is not None and time.perf_counter() - child.over_since > EXIT_WAIT
        if not child.alive() or late:
            self._exiting.remove(child)
            self._forget(child)
            child.end()

    def _forget(self, child) -> None:
        if child in self._children:
            self._children.remove(child)


def _batch_policy(pid: int, policy: str | None) -> None:
    """Put a child that has just started under Linux's SCHED_BATCH (``policy`` "batch"): the
    child sets its priority itself only once it has imported torch, seconds of a core."""
    if policy != "batch" or not hasattr(os, "sched_setscheduler") or not hasattr(os, "SCHED_BATCH"):
        return
    try:
        os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        pass  # gone already, or not allowed here: it sets its own after its imports


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "the training process crashed"
