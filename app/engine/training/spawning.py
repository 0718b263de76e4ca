"""Starting a child process that serves one training run over a pipe, without importing
torch here: the editor starts before torch is loaded (issue 20), and the child imports it.

Every process starts with the "spawn" method: a fork of a process that holds torch's threads
(or Qt's) may deadlock.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable

SPAWN = multiprocessing.get_context("spawn")


def worker_entry(conn, project_data: dict | None, options: dict) -> None:
    """The child's entry point: ``worker.worker_main``, imported in the child (with torch)."""
    from .worker import worker_main

    worker_main(conn, project_data, options)


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
