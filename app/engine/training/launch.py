"""The one place that starts training processes: a child that serves one run over a pipe
(``spawn_child``), and the N local processes of a distributed run (``launch_ranks``, with
torch.distributed's own elastic launcher, what ``torchrun`` runs).

Every process starts with the "spawn" method: a fork of a process that holds torch's
threads (or Qt's) may deadlock.
"""

from __future__ import annotations

import logging
import multiprocessing
import uuid
from collections.abc import Callable

from torch.distributed.launcher.api import LaunchConfig, elastic_launch

SPAWN = multiprocessing.get_context("spawn")


def _not_the_thread_warning(record: logging.LogRecord) -> bool:
    # From a thread (a run inside the CLI's process) the launcher cannot install its signal
    # handlers and warns so; there the caller ends the processes itself (``abort_when`` of
    # ``distributed.train_distributed``), and Ctrl-C is the CLI's
    return not str(record.msg).startswith("Failed to register signal handlers since torchelastic is running "
                                          "on a child thread")


logging.getLogger("torch.distributed.elastic.multiprocessing.api").addFilter(_not_the_thread_warning)


def spawn_child(target: Callable, args: tuple, *, daemon: bool = True):
    """Start ``target(conn, *args)`` in a new process, ``conn`` its end of a duplex pipe.
    Returns (process, the parent's end). Only the child holds its end afterwards, so that
    its death reads as EOF here. ``daemon``: False for a child that starts processes itself
    (a daemon may not)."""
    conn, child_conn = SPAWN.Pipe(duplex=True)
    process = SPAWN.Process(target=target, args=(child_conn, *args), name="netcanvas-training", daemon=daemon)
    try:
        process.start()
    except BaseException:
        conn.close()
        child_conn.close()
        raise
    child_conn.close()
    return process, conn


def launch_ranks(nproc: int, target: Callable, args: tuple):
    """Run ``target(*args)`` in ``nproc`` local processes (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR and MASTER_PORT set; master on 127.0.0.1, a free port); returns when all
    have ended. Raises torch's ChildFailedError when one fails (the others are ended) and
    its SignalException for SIGTERM, SIGHUP or SIGQUIT; SIGINT (Ctrl-C) is left to the
    caller."""
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", local_addr="127.0.0.1",
                          max_restarts=0, monitor_interval=0.1, start_method="spawn",
                          signals_to_handle="SIGTERM,SIGHUP,SIGQUIT")
    return elastic_launch(config, target)(*args)


def queue_and_events():
    """A queue and two events that the processes of ``launch_ranks`` share with this one."""
    return SPAWN.Queue(), SPAWN.Event(), SPAWN.Event()
