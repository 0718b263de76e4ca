"""Training across several local processes with DistributedDataParallel.

    result = train_distributed(project, 2, on_message=print, weights_path="xor.safetensors")

launches the processes with torch.distributed's own elastic launcher (what ``torchrun``
runs; master on 127.0.0.1, a free port). Each process runs the engine's ``Trainer`` with
the model wrapped in ``DistributedDataParallel`` and its share of every epoch from a
``DistributedSampler`` (gloo on the CPU, nccl on CUDA, one GPU per process). The project's
batch size stays the global batch: each of N processes takes batch_size / N samples per
step, so an epoch has as many steps as in one process. Every process evaluates the
validation split, so all take the same early-stopping decision; process 0 reports its
messages (the worker protocol's tuples, ``protocol.py``, bunched) to ``on_message`` in the
calling process and saves the weights. Ctrl-C (SIGINT) stops every process after the same
step, and the weights are saved, as in one process; a second Ctrl-C ends the processes at
once.

    result = train_distributed(project, 1, nodes=Nodes(2, 1, "10.0.0.1", 29500))

runs this machine's processes as one node of a job across several machines (``multinode.py``;
torchrun's static rendezvous). Global rank 0 is on node 0: that node reports the epochs and
saves the weights; on another node, its first process sends only its FinishedEvent, whose
message says that it is a worker node.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from ..datasets import batch_count, batches
from ..devices import resolve_device
from ..errors import NetCanvasError, TrainingError
from ..project import Project, parse_project, project_to_dict, stand_in_path
from .events import BatchEvent, FinishedEvent
from .launch import launch_ranks, queue_and_events
from .multinode import Nodes, wait_for_node0, worker_message
from .protocol import FLUSH_SECONDS, Outbox, bunch, outbox_settings, unbunch
from .trainer import Trainer, TrainingRun, prepare_run

INTERRUPTED = "training was interrupted; no weights were saved"


def check_launch(run: TrainingRun, nproc: int, nodes: Nodes | dict | None = None) -> tuple[torch.device, str]:
    """The device and backend for ``nproc`` processes training ``run`` here (as one node of
    ``nodes``: then one process is enough); raises ``TrainingError`` when they cannot be had
    here."""
    nodes = Nodes.coerce(nodes)
    if nproc < 1 or (nodes is None and nproc < 2):
        raise TrainingError(f"distributed training needs at least 2 processes; received {nproc}")
    device = resolve_device(run.settings["device"])
    if device.type == "cuda":
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise TrainingError(f"{nproc} processes need {nproc} GPUs (one each, for nccl), but this "
                                f"machine has {gpus}; lower --nproc or train on the CPU (--device cpu)")
        return device, "nccl"
    if device.type != "cpu":
        raise TrainingError(f"distributed training runs on the CPU or CUDA GPUs, not {device.type}; "
                            "use --device cpu")
    return device, "gloo"


def per_process_batch(batch_size: int, nproc: int) -> int:
    """Samples each process takes per step so that together they make ``batch_size``."""
    return max(1, math.ceil(batch_size / nproc))


def train_distributed(project: Project, nproc: int, *, overrides: dict | None = None,
                      on_message: Callable[[tuple], None] | None = None,
                      weights_path: str | Path | None = None, batch_events: bool = True,
                      run: TrainingRun | None = None, stop_when: threading.Event | None = None,
                      abort_when: threading.Event | None = None, nodes: Nodes | dict | None = None,
                      run_id: str | None = None) -> FinishedEvent:
    """Train ``project`` in ``nproc`` local processes; returns process 0's FinishedEvent.
    ``nodes``: these processes are one node of a job across machines (``multinode.Nodes``
    or its ``as_option`` dict); on a node other than node 0, the FinishedEvent is that
    node's first process's (no weights; its message says it was a worker node), and
    ``on_message`` gets nothing else. ``run_id``: the run's id, given to the Trainer of
    every process (the weights' metadata says it).
    ``overrides``: training settings as for ``prepare_run``; ``run``: that run, when the
    caller has already prepared it. ``on_message`` receives process 0's messages (worker
    protocol: its events, bunched, and "dropped"; BatchEvents only with ``batch_events``),
    from a thread of this process. ``stop_when``: once set (from any thread), every process
    stops after the same step and the weights are saved, as with Ctrl-C; ``abort_when``:
    once set, the processes end at once and nothing is saved. Raises ``NetCanvasError``
    for a project, data or device that cannot train (checked here before any process
    starts), and ``TrainingError`` when a process fails, the run was aborted, or (across
    machines) the nodes did not meet at the rendezvous."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    nodes = Nodes.coerce(nodes)
    run = run or prepare_run(project, **overrides)
    _, backend = check_launch(run, nproc, nodes)
    options = {
        "overrides": overrides,
        "project_dir": str(project.path.parent) if project.path else None,
        "weights_path": str(weights_path) if weights_path else None,
        "backend": backend,
        "batch_events": batch_events,
        # processes share the cores instead of each starting one thread per core
        "threads": max(1, (os.cpu_count() or 1) // nproc) if backend == "gloo" else None,
        "nodes": nodes.as_option() if nodes else None,
        "run_id": run_id,
    }
    messages, stop, abort = queue_and_events()
    received: dict[str, Any] = {}
    reader = threading.Thread(target=_read, args=(messages, on_message or (lambda m: None), received),
                              name="netcanvas-ddp-events", daemon=True)
    reader.start()
    launched = threading.Event()
    relays = [threading.Thread(target=_relay, args=(outside, inside, launched), daemon=True, name="netcanvas-ddp-stop")
              for outside, inside in ((stop_when, stop), (abort_when, abort))
              if outside is not None]  # an outside stop (or abort) reaches the processes
    for relay in relays:
        relay.start()
    # the launcher turns SIGTERM and friends into an exception that ends the processes; SIGINT
    # (Ctrl-C) is ours: it asks for a stop that every process takes at the same step
    try:
        with _signals_restored(stop):
            if nodes is not None and not nodes.main and \
                    not wait_for_node0(nodes, lambda: stop.is_set() or abort.is_set()):
                raise _GaveUp
            launch_ranks(nproc, _process, (project_to_dict(project), options, messages, stop, abort), nodes)
    except ChildFailedError as e:
        _finish_reading(messages, reader)
        if abort.is_set():
            raise TrainingError(INTERRUPTED) from None
        if "error" in received:
            raise TrainingError(received["error"]) from None
        raise TrainingError(f"a training process failed: {_failure(e)}") from None
    except SignalException as e:
        _finish_reading(messages, reader)
        raise TrainingError(f"training was ended by {e.sigval.name}; no weights were saved") from None
    except KeyboardInterrupt:  # a second Ctrl-C: the launcher has ended the processes
        _finish_reading(messages, reader)
        raise TrainingError(INTERRUPTED) from None
    except _GaveUp:
        _finish_reading(messages, reader)
        raise TrainingError(f"stopped while waiting for node 0 at {nodes.endpoint}; nothing was trained") from None
    except (dist.DistError, TimeoutError) as e:  # across machines: the nodes did not meet
        _finish_reading(messages, reader)
        if nodes is None:
            raise
        raise TrainingError(_rendezvous_failure(nodes, e)) from None
    finally:
        launched.set()
        for relay in relays:  # they hold the shared events, whose semaphores go with them
            relay.join()
    _finish_reading(messages, reader)
    if abort.is_set() and "finished" not in received:
        raise TrainingError(INTERRUPTED)
    if "error" in received:
        raise TrainingError(received["error"])
    if "finished" not in received:
        raise TrainingError("the training processes ended without a result")
    return received["finished"]


def _relay(outside: threading.Event, inside, ended: threading.Event) -> None:
    while not ended.is_set():
        if outside.wait(0.1):
            inside.set()
            return


@contextlib.contextmanager
def _signals_restored(stop):
    """Ctrl-C sets ``stop`` (a second one interrupts); the launcher's signal handlers are
    replaced by the ones that were there before, once it returns."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    previous = {s: signal.getsignal(s) for s in (getattr(signal, n, None) for n in names) if s is not None}

    def interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _finish_reading(messages, reader: threading.Thread) -> None:
    messages.put(None)
    reader.join(10)


def _read(messages, on_message: Callable[[tuple], None], received: dict) -> None:
    """Pass process 0's messages on until the ``None`` that ends them; an "error" (from
    any process: the first is the one shown) is kept in ``received``, not passed on."""
    while True:
        message = messages.get()
        if message is None:
            return
        if message[0] == "error":
            received.setdefault("error", message[1])
            continue
        for inner in unbunch(message):
            if inner[0] == "event" and isinstance(inner[1], FinishedEvent):
                received["finished"] = inner[1]
        on_message(message)


class _GaveUp(Exception):
    """A stop came while this node waited for node 0."""


def _rendezvous_failure(nodes: Nodes, e: Exception) -> str:
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    if isinstance(e, TimeoutError) or "timed out" in first.lower():
        others = "the other node" if nodes.count == 2 else f"the other {nodes.count - 1} nodes"
        if nodes.main:
            return (f"node 0 of {nodes.count} did not meet {others} at the rendezvous {nodes.endpoint} within "
                    f"{nodes.timeout} s (--rdzv-timeout): start them with --nnodes {nodes.count} --rdzv-endpoint "
                    f"{nodes.endpoint} ({first})")
        return (f"node {nodes.rank} of {nodes.count} did not reach node 0 at the rendezvous {nodes.endpoint} within "
                f"{nodes.timeout} s (--rdzv-timeout): is node 0 started there, with --nnodes {nodes.count}? ({first})")
    taken = " (--rdzv-endpoint: choose a free port on node 0)" if "EADDRINUSE" in first else ""
    return f"node {nodes.rank} of {nodes.count} could not join the rendezvous at {nodes.endpoint}: {first}{taken}"


def _failure(e: Exception) -> str:
    failures = getattr(e, "failures", {}) or {}
    for rank, failure in sorted(failures.items()):
        message = getattr(failure, "message", "") or ""
        if isinstance(message, dict):
            message = message.get("message", "") or str(message)
        text = str(message).strip().splitlines()
        return f"process {rank}: {text[-1] if text else 'exit code ' + str(failure.exitcode)}"
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _process(project_data: dict, options: dict, messages, stop, abort) -> None:
    """One training process (started by the elastic launcher, which sets RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR and MASTER_PORT). Ends with exit code 1 after a problem, so that
    the launcher stops the other processes instead of leaving them waiting, and at once
    (exit code 0, saving nothing) when ``abort`` is set. Process 0 sends its events through an Outbox,
    bunched as a worker sends them."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    nodes = Nodes.coerce(options.get("nodes"))
    # another node's first process reports its end only: the job's epochs are node 0's to report
    worker_node = nodes is not None and not nodes.main and local_rank == 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which sets ``stop``
    threading.Thread(target=_exit_when, args=(abort,), daemon=True, name="netcanvas-abort").start()
    outbox = None
    if rank == 0 or worker_node:
        batch_seconds, queue_size = outbox_settings({})
        outbox = Outbox(messages.put, queue_size, batch_seconds=batch_seconds,
                        send_many=lambda items: messages.put(bunch(items)))
    try:
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        project = parse_project(project_data)
        if options.get("project_dir"):
            project.path = stand_in_path(options["project_dir"])
        overrides = dict(options["overrides"])
        if options["backend"] == "nccl":
            overrides["device"] = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
        dist.init_process_group(options["backend"])
        run = prepare_run(project, **overrides)

        def send(event: object) -> None:
            if options.get("batch_events") or not isinstance(event, BatchEvent):
                outbox.event(event)

        def send_end(event: object) -> None:
            if isinstance(event, FinishedEvent):
                event.message = worker_message(nodes, event.message)
                outbox.event(event)

        trainer = DistributedTrainer(run, send if rank == 0 else send_end if worker_node else None,
                                     rank=rank, world=world,
                                     weights_path=options.get("weights_path") if rank == 0 else None,
                                     stop_requested=stop.is_set, run_id=options.get("run_id"))
        trainer.run()
        del trainer  # its DDP wrapper goes before the process group
        dist.barrier()  # no process tears the group down while another still uses it
    except NetCanvasError as e:
        messages.put(("error", str(e)))  # the first process to report is the one shown
        raise SystemExit(1) from None
    except Exception as e:
        messages.put(("error", f"process {rank} failed: {type(e).__name__}: {e}"))
        raise
    finally:
        if outbox is not None:
            outbox.close(FLUSH_SECONDS)
        if dist.is_initialized():
            dist.destroy_process_group()
        sys.stdout.flush()


def _exit_when(abort) -> None:
    abort.wait()
    os._exit(0)  # asked for: not a failure the launcher should log


class DistributedTrainer(Trainer):
    """The engine's Trainer in one of ``world`` processes (the process group must be up):
    steps go through DistributedDataParallel, batches come from this process's share of the
    epoch, and the divergence check, stop requests and epoch metrics cover every process.
    Only process 0 should get a ``weights_path``; ``stop_requested()`` tells whether someone
    asked this process to stop (``stop()`` does too); ``run_id``: the run's id, the same in
    every process (default: a new one)."""

    def __init__(self, run: TrainingRun, callback: Callable[[object], None] | None = None, *,
                 rank: int, world: int, weights_path: str | Path | None = None,
                 stop_requested: Callable[[], bool] | None = None, run_id: str | None = None):
        super().__init__(run, callback, weights_path=weights_path, run_id=run_id)
        self.rank, self.world = rank, world
        self.stop_requested = stop_requested or (lambda: False)
        self._stop_asked = False
        s = run.settings
        # the initialization above is the same everywhere (one seed); dropout should not be
        torch.manual_seed(s["seed"] + rank)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.step_model = DistributedDataParallel(self.train_model, device_ids=ids)
        self.per_process = per_process_batch(s["batch_size"], world)
        self.sampler = DistributedSampler(run.dataset.train, num_replicas=world, rank=rank,
                                          shuffle=True, seed=s["seed"])

    def _train_batches(self, epoch: int, generator: torch.Generator):
        self.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same in every process
        share = torch.tensor(list(self.sampler), dtype=torch.long)
        return batches(self.run_spec.dataset.train, self.per_process,
                       drop_last=self.run_spec.settings["drop_last"], indices=share)

    def _batch_count(self) -> int:
        return batch_count(len(self.sampler), self.per_process, self.run_spec.settings["drop_last"])

    def stop(self) -> None:
        """Ask for a stop: every process stops after the same step (see ``_all_finite``)."""
        self._stop_asked = True

    def _all_finite(self, loss_value: float) -> bool:
        # one collective per step carries both: a loss that is not finite in some process,
        # and a stop asked for in some process (all then stop before the next step)
        asked = self._stop_asked or self.stop_requested()
        flags = torch.tensor([0.0 if math.isfinite(loss_value) else 1.0, float(asked)], device=self.device)
        dist.all_reduce(flags)
        bad, stops = flags.tolist()
        if stops:
            super().stop()
        return bad == 0.0

    def _epoch_totals(self, total_loss: float, total_correct: float, seen: float) -> tuple[float, float, float]:
        totals = torch.tensor([total_loss, total_correct, seen], dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        loss, correct, n = totals.tolist()
        return loss, correct, n
