"""Training in a child process, so that running out of memory or a crashing kernel ends
the child and never the editor. No Qt here: the parent side lives in
``app/widgets/training/session.py``.

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    ctx.Process(target=worker_main, args=(child, project_to_dict(project), options),
                daemon=True).start()

The protocol: every message is a tuple whose first item names it.

child -> parent
    ("ready", info)          the run is checked and the model built; ``info``: device,
                             dataset (``datasets.describe``), notes, input_shape,
                             num_classes, settings, pid
    ("event", event)         a BatchEvent, EpochEvent, SnapshotEvent or FinishedEvent
    ("bunch", [message, ...]) several of these messages, in order, in one: BatchEvents
                             are sent together every BATCH_SECONDS (other messages at
                             once, with the BatchEvents before them), so that a small model's
                             hundreds of minibatches a second wake neither side each time
    ("dropped", n)           n BatchEvents were left out here because the parent read too
                             slowly (only BatchEvents are ever dropped)
    ("paused", step)         training now waits (acknowledges "pause"; no BatchEvent
                             follows until "resumed")
    ("resumed", step)        training goes on
    ("done",)                the last message of a run that ended normally (after its
                             FinishedEvent); exit code 0
    ("error", message)       a NetCanvasError (bad project, data, device, settings): the
                             last message; exit code 0
    ("crash", traceback)     any other exception: the last message; exit code 1

parent -> child
    ("pause",)  ("resume",)  ("stop",)  ("snapshot", samples: np.ndarray | None)

``options`` (all optional): project_dir (relative dataset paths resolve against it),
overrides (training settings such as epochs or device), weights_path, checkpoint_dir,
initial_weights, snapshot_every, snapshot_samples (np.ndarray), threads
(``torch.set_num_threads``), nice (run that many steps below normal priority) and policy
("batch": Linux's SCHED_BATCH for every thread of the run; see ``_lower_priority``),
batch_seconds (how often BatchEvents go; default
BATCH_SECONDS), queue_size (BatchEvents waiting to be sent beyond which new ones are
dropped; default QUEUE_SIZE for every BATCH_SECONDS of batch_seconds), and _test_crash
(raise after "ready": tests the crash path).
"""

from __future__ import annotations

import collections
import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..datasets import describe
from ..errors import NetCanvasError
from ..project import SUFFIX, Project, parse_project
from .events import BatchEvent, FinishedEvent
from .trainer import Trainer, prepare_run

QUEUE_SIZE = 256  # BatchEvents waiting for the sender; more are dropped and counted
BATCH_SECONDS = 0.05  # BatchEvents go in bunches, at most this often (other messages at once)
FLUSH_SECONDS = 30.0  # how long the last messages may take to reach a parent that reads slowly
PARENT_GONE_GRACE = 30.0  # a stopped run may finish and save its weights; then the orphan exits


def worker_main(conn, project_data: dict, options: dict) -> None:
    """The child's entry point (``multiprocessing`` spawn context): train the project
    described by ``project_data`` (``project_to_dict``), reporting to and taking commands
    from the pipe end ``conn``. Ends the process: exit code 0 after "done" or "error", 1
    after "crash"."""
    _lower_priority(options.get("nice"), options.get("policy"))
    from multiprocessing import Pipe
    from multiprocessing.connection import wait

    # the listener sleeps until a command comes or the run ends (``wake``): a listener that
    # looked every few milliseconds would take the CPU from training that often
    woken, waker = Pipe(duplex=False)

    def recv():
        if conn in wait([conn, woken]):
            return conn.recv()
        raise queue.Empty  # woken: the run has ended

    def parent_gone() -> None:
        # nobody listens any more: stop (a stopped run still saves its weights), and make
        # sure this process does not outlive its parent for long
        timer = threading.Timer(PARENT_GONE_GRACE, os._exit, (0,))
        timer.daemon = True
        timer.start()

    def send_many(messages: list) -> None:
        conn.send(messages[0] if len(messages) == 1 else ("bunch", messages))

    code = _serve(project_data, options, conn.send, recv, parent_gone, send_many, wake=lambda: waker.send(None))
    try:
        conn.close()
    except OSError:
        pass
    # everything is sent and the weights are on disk; tearing down torch's interpreter
    # state would only add a second of CPU before the exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code)


def run_inline(project: Project | dict, options: dict, send: Callable[[tuple], None],
               commands: "queue.Queue | None" = None) -> int:
    """Do what the child does, in this process: messages go to ``send`` (called from a
    sender thread), commands are read from ``commands`` (a queue of command tuples).
    Returns the exit code the child would have: 0, or 1 after a crash."""
    inbox: queue.Queue = queue.Queue()  # the caller's commands, and None at the run's end
    ended = threading.Event()

    def forward() -> None:  # in-process only (tests): looking every 50 ms costs nobody much
        while not ended.is_set():
            try:
                inbox.put(commands.get(timeout=0.05))
            except queue.Empty:
                pass

    def recv():
        command = inbox.get()
        if command is None:
            raise queue.Empty
        return command

    if commands is not None:
        threading.Thread(target=forward, name="netcanvas-inline-commands", daemon=True).start()

    def wake() -> None:
        ended.set()
        inbox.put(None)

    return _serve(project, options, send, recv, lambda: None, wake=wake)


def _lower_priority(nice, policy=None) -> None:
    """Run this process ``nice`` steps below normal priority (Linux and macOS) and, with
    ``policy`` "batch", under Linux's SCHED_BATCH (a CPU-bound task's policy: it gets its
    fair share of the CPU, but does not preempt the tasks that wake up, such as the editor).
    On Linux both are a thread's: new threads take this one's, and those already started by
    the imports are set one by one."""
    batch = policy == "batch" and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH")
    if not nice and not batch:
        return
    value = None
    if nice and hasattr(os, "nice"):
        try:
            value = os.nice(int(nice))
        except OSError:
            pass  # not allowed here: train at the priority we have
    tasks = [0]
    if sys.platform.startswith("linux"):
        try:
            tasks = [int(task) for task in os.listdir("/proc/self/task")]
        except OSError:
            pass
    for task in tasks:
        try:
            if value is not None and task:
                os.setpriority(os.PRIO_PROCESS, task, value)
            if batch:
                os.sched_setscheduler(task, os.SCHED_BATCH, os.sched_param(0))
        except OSError:
            pass  # a thread that has ended since, or a policy not allowed here


# -- the run ---------------------------------------------------------------------------------
def outbox_settings(options: dict) -> tuple[float, int]:
    """How often BatchEvents go, and how many may wait: QUEUE_SIZE for every BATCH_SECONDS
    between bunches, so that a longer interval drops no more of a fast run's minibatches."""
    batch_seconds = float(options.get("batch_seconds") or BATCH_SECONDS)
    queue_size = int(options.get("queue_size") or round(QUEUE_SIZE * max(1.0, batch_seconds / BATCH_SECONDS)))
    return batch_seconds, queue_size


def _serve(project: Project | dict, options: dict, send, recv, parent_gone, send_many=None, *,
           wake: Callable[[], None]) -> int:
    """Train, sending through ``send`` (or ``send_many``) and obeying the commands
    ``recv()`` returns; ``recv`` blocks until there is one, and raises queue.Empty once
    ``wake()`` was called (the run has ended)."""
    batch_seconds, queue_size = outbox_settings(options)
    outbox = _Outbox(send, queue_size, batch_seconds=batch_seconds, send_many=send_many)
    control = _Control()
    ended = threading.Event()

    def lost() -> None:
        control.handle(("stop",))
        parent_gone()

    outbox.on_broken = lost
    listener = threading.Thread(target=_listen, args=(recv, control, ended, lost),
                                name="netcanvas-commands", daemon=True)
    listener.start()
    try:
        code = _train(project, options, outbox, control)
    finally:
        ended.set()
        wake()
        outbox.close(FLUSH_SECONDS)
        listener.join(1.0)
    if outbox.failure is not None and not isinstance(outbox.failure, (OSError, EOFError)):
        raise outbox.failure  # a bug in ``send`` itself (run_inline), not a parent that left
    return code


def _train(project: Project | dict, options: dict, outbox: "_Outbox", control: "_Control") -> int:
    try:
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        if not isinstance(project, Project):
            project = parse_project(project)
        if options.get("project_dir"):
            project.path = Path(options["project_dir"]) / ("project" + SUFFIX)
        run = prepare_run(project, **dict(options.get("overrides") or {}))
        input_shape = list(run.analysis.shapes[run.analysis.inputs[0]])
        control.input_shape = input_shape
        if int(options.get("nproc") or 1) > 1:
            return _train_distributed(project, run, int(options["nproc"]), options, outbox, control)
        trainer = Trainer(
            run, outbox.event,
            # the parent learns that no BatchEvent follows "paused"
            on_pause=lambda paused, step: outbox.put(("paused" if paused else "resumed", step)),
            weights_path=options.get("weights_path"), checkpoint_dir=options.get("checkpoint_dir"),
            initial_weights=options.get("initial_weights"),
            snapshot_every=int(options.get("snapshot_every") or 0),
            snapshot_samples=_samples(options.get("snapshot_samples"), input_shape))
        outbox.put(("ready", {"device": str(trainer.device), "dataset": describe(run.dataset),
                              "notes": list(run.notes), "input_shape": input_shape,
                              "num_classes": int(run.dataset.num_classes),
                              "settings": dict(run.settings), "pid": os.getpid()}))
        if options.get("_test_crash"):
            raise RuntimeError("simulated crash after ready (the _test_crash option)")
        if control.attach(trainer):  # stopped before the first minibatch: keep any old weights
            outbox.event(FinishedEvent("stopped", "stopped by the user before training started", 0, 0, 0.0))
        else:
            trainer.run()
        outbox.put(("done",))
        return 0
    except NetCanvasError as e:
        outbox.put(("error", str(e)))
        return 0
    except Exception:
        text = traceback.format_exc()
        print(text, file=sys.stderr, end="")
        outbox.put(("crash", text))
        return 1


def _train_distributed(project: Project, run, nproc: int, options: dict, outbox: "_Outbox",
                       control: "_Control") -> int:
    """The run across ``nproc`` local processes (DistributedDataParallel, one GPU each
    with nccl): process 0's events come through; "stop" ends every process after the same
    step; pause and snapshots are not served (their commands are ignored)."""
    from .distributed import check_launch, train_distributed

    device, backend = check_launch(run, nproc)
    stop = threading.Event()
    notes = [*run.notes, f"{nproc} processes ({backend}, DistributedDataParallel); pausing and live "
                         "filters and activations are not available in this mode"]
    outbox.put(("ready", {"device": f"{nproc} x {device}", "dataset": describe(run.dataset), "notes": notes,
                          "input_shape": control.input_shape, "num_classes": int(run.dataset.num_classes),
                          "settings": dict(run.settings), "pid": os.getpid(), "nproc": nproc}))
    if control.attach(_StopOnly(stop)):
        outbox.event(FinishedEvent("stopped", "stopped by the user before training started", 0, 0, 0.0))
    else:
        train_distributed(project, nproc, overrides=dict(options.get("overrides") or {}), callback=outbox.event,
                          weights_path=options.get("weights_path"), batch_events=True, run=run, stop_when=stop)
    outbox.put(("done",))
    return 0


class _StopOnly:
    """The commands a distributed run takes: stop; the others are ignored."""

    def __init__(self, stop: threading.Event):
        self._stop = stop

    def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def request_snapshot(self, samples=None) -> None:
        pass


def _samples(samples: Any, input_shape: list[int]) -> torch.Tensor | None:
    """Samples ``[n, *input_shape]`` as a float tensor; one sample without the batch
    dimension gets one."""
    if samples is None:
        return None
    array = np.array(samples, dtype=np.float32)  # a copy: writable and contiguous
    if array.ndim == len(input_shape):
        array = array[None]
    return torch.from_numpy(array)


# -- commands --------------------------------------------------------------------------------
class _Control:
    """Commands from the parent, applied to the Trainer (whose methods are thread-safe);
    those that come before it exists wait for it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._trainer: Trainer | None = None
        self._pending: list[tuple] = []
        self._stop_wanted = False
        self.input_shape: list[int] = []

    def handle(self, command: Any) -> None:
        if not isinstance(command, tuple) or not command:
            return
        with self._lock:
            if command[0] == "stop":
                self._stop_wanted = True
            if self._trainer is None:
                self._pending.append(command)
                return
            trainer = self._trainer
        self._apply(trainer, command)

    def attach(self, trainer: Trainer) -> bool:
        """Start serving commands; True when a stop came before training started."""
        with self._lock:
            self._trainer = trainer
            pending, self._pending = self._pending, []
            stop = self._stop_wanted
        for command in pending:
            self._apply(trainer, command)
        return stop

    def _apply(self, trainer: Trainer, command: tuple) -> None:
        name = command[0]
        if name == "pause":
            trainer.pause()
        elif name == "resume":
            trainer.resume()
        elif name == "stop":
            trainer.stop()
        elif name == "snapshot":
            samples = command[1] if len(command) > 1 else None
            trainer.request_snapshot(_samples(samples, self.input_shape))
        # anything else: a newer parent's command; ignored


def _listen(recv, control: _Control, ended: threading.Event, lost: Callable[[], None]) -> None:
    while not ended.is_set():
        try:
            command = recv()
        except queue.Empty:
            continue
        except (EOFError, OSError):  # the parent closed its end or died
            lost()
            return
        control.handle(command)


# -- sending ---------------------------------------------------------------------------------
class _Outbox:
    """Messages for the parent, sent in order by one thread so that a parent that reads
    slowly never blocks training. BatchEvents are sent in bunches, at most every
    ``BATCH_SECONDS`` (any other message goes at once, with the BatchEvents before it): a
    small model trains hundreds of minibatches a second, and a wake-up of the sender (and of
    the parent) for each of them takes the CPU from the training threads. Only BatchEvents
    are dropped, when more than ``limit`` wait; a ("dropped", n) message then takes their
    place in the stream."""

    def __init__(self, send: Callable[[tuple], None], limit: int, batch_seconds: float | None = None,
                 send_many: Callable[[list], None] | None = None):
        self._send = send
        self._send_many = send_many  # sends several messages at once (one pipe message, one wake-up)
        self._limit = max(1, limit)
        self._interval = BATCH_SECONDS if batch_seconds is None else batch_seconds
        self._items: collections.deque = collections.deque()
        self._batches = 0  # BatchEvents in _items
        self._dropped = 0  # dropped since the last message that was queued
        self._urgent = False  # a message that is not a BatchEvent waits: send now
        self._due = 0.0  # when waiting BatchEvents go (monotonic clock)
        self._cond = threading.Condition()
        self._closed = False
        self.failure: BaseException | None = None
        self.on_broken: Callable[[], None] = lambda: None
        self.dropped_total = 0
        self._thread = threading.Thread(target=self._loop, name="netcanvas-sender", daemon=True)
        self._thread.start()

    def event(self, event: Any) -> None:
        self.put(("event", event), droppable=isinstance(event, BatchEvent))

    def put(self, message: tuple, droppable: bool = False) -> None:
        with self._cond:
            if self.failure is not None:
                return
            if droppable:
                if self._batches >= self._limit:
                    self._dropped += 1
                    self.dropped_total += 1
                    return
                self._batches += 1
            if self._dropped:
                self._items.append(("dropped", self._dropped))
                self._dropped = 0
            self._items.append(message)
            if not droppable:
                self._urgent = True
            if self._urgent:  # else the sender finds it when it next looks (every BATCH_SECONDS)
                self._cond.notify()

    def close(self, timeout: float) -> bool:
        """Send what waits (up to ``timeout`` seconds); True when all of it went."""
        with self._cond:
            if self._dropped:
                self._items.append(("dropped", self._dropped))
                self._dropped = 0
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed and not self._items:
                        return
                    wait = self._due - time.monotonic()
                    if self._items and (self._urgent or self._closed or wait <= 0):
                        break
                    # BatchEvents do not wake this thread: it looks every BATCH_SECONDS
                    self._cond.wait(wait if self._items else self._interval)
                messages = list(self._items)
                self._items.clear()
                self._batches = 0
                self._urgent = False
            try:
                if self._send_many is not None:
                    self._send_many(messages)
                else:
                    for message in messages:
                        self._send(message)
            except BaseException as e:  # the parent is gone (or ``send`` failed): stop sending
                with self._cond:
                    self.failure = e
                    self._items.clear()
                    self._batches = 0
                self.on_broken()
                return
            self._due = time.monotonic() + self._interval
