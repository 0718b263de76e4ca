"""The one place that starts training processes: a child that serves one run over a pipe
(``spawn_child``), and the N local processes of a distributed run (``launch_ranks``, with
torch.distributed's own elastic launcher, what ``torchrun`` runs), on this machine alone or
as one node of a job across several (``multinode.Nodes``: torchrun's static rendezvous).

Every process starts with the "spawn" method: a fork of a process that holds torch's
threads (or Qt's) may deadlock.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from torch.distributed import DistError, PrefixStore
from torch.distributed.elastic.rendezvous import RendezvousHandler, RendezvousParameters, rendezvous_handler_registry
from torch.distributed.elastic.rendezvous.static_tcp_rendezvous import StaticTCPRendezvous, create_rdzv_handler
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from .multinode import Nodes
from .spawning import SPAWN, spawn_child  # noqa: F401 - where callers have found them

# the rendezvous's name, the same on every node (the static rendezvous keys its store by it)
NODES_RUN_ID = "netcanvas"
SIGNALS = "SIGTERM,SIGHUP,SIGQUIT"  # SIGINT (Ctrl-C) is the caller's
NODES_BACKEND = "netcanvas-static"  # torchrun's static rendezvous, see _StaticRendezvous
LEAVE_SECONDS = 10.0  # the longest node 0 keeps the store up for the others to leave (a dead node never does)
LEFT_KEY = "netcanvas/left"


def _not_the_thread_warning(record: logging.LogRecord) -> bool:
    # From a thread (a run inside the CLI's process) the launcher cannot install its signal
    # handlers and warns so; there the caller ends the processes itself (``abort_when`` of
    # ``distributed.train_distributed``), and Ctrl-C is the CLI's
    return not str(record.msg).startswith("Failed to register signal handlers since torchelastic is running "
                                          "on a child thread")


logging.getLogger("torch.distributed.elastic.multiprocessing.api").addFilter(_not_the_thread_warning)


class _StaticRendezvous(StaticTCPRendezvous):
    """torchrun's static rendezvous (the store is a TCPStore in node 0's launcher), except
    that node 0 shuts down only once every node has left the launcher: torch's own ends
    node 0's store as soon as node 0 is through the launcher's exit barrier, and a node still
    waiting there then logs a failed barrier with a stack trace (its job succeeded). Each node
    counts itself out; node 0 waits for the count, at most LEAVE_SECONDS (a node that died
    never counts)."""

    def get_backend(self) -> str:
        return NODES_BACKEND

    def shutdown(self) -> bool:
        if self._store is None:  # the rendezvous itself failed
            return True
        store = PrefixStore(self.run_id, self._store)
        try:
            left = store.add(LEFT_KEY, 1)
            deadline = time.monotonic() + LEAVE_SECONDS
            while self.rank == 0 and left < self.world_size and time.monotonic() < deadline:
                time.sleep(0.05)
                left = store.add(LEFT_KEY, 0)
        except DistError:  # node 0 is gone already: nothing to wait for
            pass
        return True


def _static_rendezvous(params: RendezvousParameters) -> RendezvousHandler:
    torch_own = create_rdzv_handler(params)
    return _StaticRendezvous(torch_own.master_addr, torch_own.master_port, torch_own.rank, torch_own.world_size,
                             torch_own.run_id, int(torch_own.timeout.total_seconds()))


rendezvous_handler_registry.register(NODES_BACKEND, _static_rendezvous)


def launch_ranks(nproc: int, target: Callable, args: tuple, nodes: Nodes | None = None):
    """Run ``target(*args)`` in ``nproc`` local processes (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR and MASTER_PORT set; master on 127.0.0.1, a free port); returns when all
    have ended. With ``nodes``, these are the processes of one node of ``nodes.count``
    (global ranks after those of the nodes before it), which first meet the others at the
    endpoint.
    Raises torch's ChildFailedError when one fails (the others are ended) and its
    SignalException for SIGTERM, SIGHUP or SIGQUIT; SIGINT (Ctrl-C) is left to the caller.
    With ``nodes``, a rendezvous that fails (no peer within ``nodes.timeout`` seconds, the
    port taken) raises torch's DistError (a RuntimeError)."""
    return elastic_launch(launch_config(nproc, nodes), target)(*args)


def launch_config(nproc: int, nodes: Nodes | None = None) -> LaunchConfig:
    """The elastic launcher's settings for ``nproc`` processes here, as one node of ``nodes``
    (torchrun --nnodes N --node-rank K --rdzv-backend static --rdzv-endpoint HOST:PORT, with
    the shutdown of ``_StaticRendezvous``) or alone (a c10d rendezvous on 127.0.0.1, a free
    port)."""
    if nodes is None:
        return LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                            rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", local_addr="127.0.0.1",
                            max_restarts=0, monitor_interval=0.1, start_method="spawn", signals_to_handle=SIGNALS)
    return LaunchConfig(min_nodes=nodes.count, max_nodes=nodes.count, nproc_per_node=nproc, run_id=NODES_RUN_ID,
                        rdzv_backend=NODES_BACKEND, rdzv_endpoint=nodes.endpoint,
                        rdzv_configs={"rank": nodes.rank, "timeout": nodes.timeout},
                        max_restarts=0, monitor_interval=0.1, start_method="spawn", signals_to_handle=SIGNALS)


def queue_and_events():
    """A queue and two events that the processes of ``launch_ranks`` share with this one."""
    return SPAWN.Queue(), SPAWN.Event(), SPAWN.Event()
