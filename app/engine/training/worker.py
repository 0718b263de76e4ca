"""A training run served over the message protocol (``protocol.py``): in a child process
(``worker_main``), so that running out of memory or a crashing kernel ends the child and
never the editor, or in a thread of this process (``run_inline``). No Qt here: the side
that starts and reads runs is ``app/engine/session/supervisor.py``; ``launch.py`` spawns
the processes.

``options`` (all optional): project_dir (relative dataset paths resolve against it),
overrides (training settings such as epochs or device), weights_path, checkpoint_dir,
initial_weights, snapshot_every, snapshot_samples (np.ndarray), threads
(``torch.set_num_threads``), nice (run that many steps below normal priority) and policy
("batch": Linux's SCHED_BATCH for every thread of the run; see ``_lower_priority``),
batch_seconds (how often BatchEvents go; default protocol.BATCH_SECONDS), queue_size
(BatchEvents waiting to be sent beyond which new ones are dropped; default
protocol.QUEUE_SIZE for every BATCH_SECONDS of batch_seconds), nproc (train across that
many local processes: ``distributed.py``), batch_events (False: such a run sends no
BatchEvents; default True), set_aside_incomparable (the Trainer's: where nobody can be
asked, the CLI), run_id (the run's id, default a new one: said in "ready" as info["run_id"] and
carried by the FinishedEvent), _test_crash (raise after "ready": tests the crash path), and
_warm (set by a warm worker for its run: said in "ready" as info["warm"]).

A warm worker (``worker_main`` with no project) imports torch, then waits: it may be told
ahead which data the next run trains on (a "prepare" message: it loads the data then and
keeps it in a ``DataCache``, keyed by what it was loaded from), and its run reuses that data
when the key still matches (the same settings, base folder, Input, and files unchanged).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from multiprocessing import Pipe
from multiprocessing.connection import wait
from typing import Any, Callable

import numpy as np
import torch

from ..datasets import describe
from ..errors import NetCanvasError
from ..project import Project, parse_project, stand_in_path
from ..weights import new_run_id
from .distributed import check_launch, per_process_batch, train_distributed
from .events import FinishedEvent
from .multinode import Nodes
from .data_cache import DataCache
from .protocol import FLUSH_SECONDS, Outbox, bunch, outbox_settings
from .trainer import Trainer, prepare_run

PARENT_GONE_GRACE = 30.0  # a stopped run may finish and save its weights; then the orphan exits


def worker_main(conn, project_data: dict | None, options: dict) -> None:
    """The child's entry point (``multiprocessing`` spawn context): train the project
    described by ``project_data`` (``project_to_dict``), reporting to and taking commands
    from the pipe end ``conn``. A warm worker (``project_data`` None) has imported torch,
    says ("warm", info) and waits for its run: a ("run", project_data, options) message
    (those options add to ``options``); "prepare" messages before it load the data ahead
    (``DataCache``); it exits when the pipe closes first. Ends the process: exit code 0 after
    "done" or "error", 1 after "crash"."""
    _lower_priority(options.get("nice"), options.get("policy"))
    cache = None
    if project_data is None:
        cache = DataCache()
        project_data, more = _wait_for_run(conn, cache)
        options = {**options, **more, "_warm": True}

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
        conn.send(bunch(messages))

    code = _serve(project_data, options, conn.send, recv, parent_gone, send_many, wake=lambda: waker.send(None),
                  cache=cache)
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


def _wait_for_run(conn, cache: "DataCache") -> tuple[dict, dict]:
    """A warm worker's wait: say "warm", load the data each "prepare" names (answering
    "prepared"), and return the ("run", project_data, options) message's project and
    options. Exits the process when the pipe closes (nobody needs this worker any more)."""
    try:
        try:
            _warm_up()
        except Exception:  # only a head start: the run does all of it again anyway
            pass
        conn.send(("warm", {"pid": os.getpid()}))
        while True:
            message = conn.recv()
            if not isinstance(message, tuple) or not message:
                continue
            if message[0] == "run" and len(message) == 3:
                return message[1], dict(message[2] or {})
            if message[0] == "prepare" and len(message) == 5:
                conn.send(("prepared", cache.prepare(*message[1:])))
            # anything else: a newer parent's message; ignored
    except (EOFError, OSError):  # nobody needs it any more
        os._exit(0)


def _warm_up() -> None:
    """Do once what a run's first steps would do slowly for the first time: building an
    optimizer imports torch._dynamo (a second or more on a small machine), and the first
    convolution and backward pass set up their kernels and threads."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(2, 2))
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.01), torch.optim.Adam(model.parameters())):
        loss = torch.nn.functional.cross_entropy(model(torch.zeros(2, 1, 4, 4)), torch.zeros(2, dtype=torch.long))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def run_inline(project: Project | dict, options: dict, send: Callable[[tuple], None],
               commands: "queue.Queue | None" = None, *, bunched: bool = False) -> int:
    """Do what the child does, in this process: messages go to ``send`` (called from a
    sender thread; with ``bunched``, BatchEvents and what follows them come as bunches, as
    through a pipe), commands are read from ``commands`` (a queue of command tuples; this
    function puts None there once the run has ended, so the queue is the run's alone).
    Returns the exit code the child would have: 0, or 1 after a crash."""
    commands = queue.Queue() if commands is None else commands

    def recv():
        command = commands.get()
        if command is None:
            raise queue.Empty
        return command

    send_many = (lambda messages: send(bunch(messages))) if bunched else None
    return _serve(project, options, send, recv, lambda: None, send_many, wake=lambda: commands.put(None))


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
def _serve(project: Project | dict, options: dict, send, recv, parent_gone, send_many=None, *,
           wake: Callable[[], None], cache: "DataCache | None" = None) -> int:
    """Train, sending through ``send`` (or ``send_many``) and obeying the commands
    ``recv()`` returns; ``recv`` blocks until there is one, and raises queue.Empty once
    ``wake()`` was called (the run has ended). ``cache``: data loaded ahead (a warm worker's)."""
    batch_seconds, queue_size = outbox_settings(options)
    outbox = Outbox(send, queue_size, batch_seconds=batch_seconds, send_many=send_many)
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
        code = _train(project, options, outbox, control, cache)
    finally:
        ended.set()
        wake()
        outbox.close(FLUSH_SECONDS)
        listener.join(1.0)
    if outbox.failure is not None and not isinstance(outbox.failure, (OSError, EOFError)):
        raise outbox.failure  # a bug in ``send`` itself (run_inline), not a parent that left
    return code


def _train(project: Project | dict, options: dict, outbox: Outbox, control: "_Control",
           cache: "DataCache | None" = None) -> int:
    try:
        began = time.perf_counter()
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        if not isinstance(project, Project):
            project = parse_project(project)
        if options.get("project_dir"):
            project.path = stand_in_path(options["project_dir"])
        dataset = cache.take(project) if cache is not None else None
        run = prepare_run(project, dataset, **dict(options.get("overrides") or {}))
        prepared = time.perf_counter()
        input_shape = list(run.analysis.shapes[run.analysis.inputs[0]])
        control.input_shape = input_shape
        if int(options.get("nproc") or 1) > 1 or options.get("nodes"):
            return _train_distributed(project, run, int(options.get("nproc") or 1), options, outbox, control)
        trainer = Trainer(
            run, outbox.event,
            # the parent learns that no BatchEvent follows "paused"
            on_pause=lambda paused, step: outbox.put(("paused" if paused else "resumed", step)),
            weights_path=options.get("weights_path"), checkpoint_dir=options.get("checkpoint_dir"),
            initial_weights=options.get("initial_weights"),
            snapshot_every=int(options.get("snapshot_every") or 0),
            snapshot_samples=_samples(options.get("snapshot_samples"), input_shape),
            set_aside_incomparable=bool(options.get("set_aside_incomparable")), run_id=options.get("run_id"))
        outbox.put(("ready", {"device": str(trainer.device), "dataset": describe(run.dataset),
                              "notes": list(run.notes), "input_shape": input_shape,
                              "num_classes": int(run.dataset.num_classes),
                              "settings": dict(run.settings), "pid": os.getpid(), "run_id": trainer.run_id,
                              "warm": bool(options.get("_warm")), "dataset_cached": dataset is not None,
                              "seconds": {"prepare": prepared - began,
                                          "model": time.perf_counter() - prepared}}))
        if options.get("_test_crash"):
            raise RuntimeError("simulated crash after ready (the _test_crash option)")
        if control.attach(trainer):  # stopped before the first minibatch: keep any old weights
            outbox.event(FinishedEvent("stopped", "stopped by the user before training started", 0, 0, 0.0,
                                       run_id=trainer.run_id))
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


def _train_distributed(project: Project, run, nproc: int, options: dict, outbox: Outbox,
                       control: "_Control") -> int:
    """The run across ``nproc`` local processes (DistributedDataParallel, one GPU each
    with nccl): process 0's events come through; "stop" ends every process after the same
    step; pause and snapshots are not served (their commands are ignored)."""
    nodes = Nodes.coerce(options.get("nodes"))
    device, backend = check_launch(run, nproc, nodes)
    world = nproc * (nodes.count if nodes else 1)
    run_id = options.get("run_id") or new_run_id()  # one id for every process
    stop = threading.Event()
    where = f"{nproc} processes" if nodes is None else f"{nproc} process(es) on {nodes.describe()}, {world} in all"
    notes = [*run.notes, f"{where} ({backend}, DistributedDataParallel); pausing and live "
                         "filters and activations are not available in this mode"]
    outbox.put(("ready", {"device": f"{nproc} x {device}", "dataset": describe(run.dataset), "notes": notes,
                          "input_shape": control.input_shape, "num_classes": int(run.dataset.num_classes),
                          "settings": dict(run.settings), "pid": os.getpid(), "run_id": run_id, "nproc": nproc,
                          "device_type": device.type, "backend": backend,
                          "per_process_batch": per_process_batch(run.settings["batch_size"], world),
                          "nnodes": nodes.count if nodes else 1, "node_rank": nodes.rank if nodes else 0}))
    if control.attach(_StopOnly(stop)):
        outbox.event(FinishedEvent("stopped", "stopped by the user before training started", 0, 0, 0.0,
                                   run_id=run_id))
    else:
        train_distributed(project, nproc, overrides=dict(options.get("overrides") or {}),
                          on_message=outbox.put, weights_path=options.get("weights_path"),
                          batch_events=options.get("batch_events", True), run=run, stop_when=stop,
                          abort_when=control.aborted, run_id=run_id, nodes=nodes)
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
        self.aborted = threading.Event()  # ("abort",): a run in this process that must end now

    def handle(self, command: Any) -> None:
        if not isinstance(command, tuple) or not command:
            return
        if command[0] == "abort":
            self.aborted.set()
            command = ("stop",)  # all a Trainer in this process can do
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
