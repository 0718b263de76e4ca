"""One node of a training job across several machines: the ``train`` options that say which
(``--nnodes``, ``--node-rank``, ``--rdzv-endpoint``, ``--rdzv-timeout``), their checks, and
``Nodes``, what the run options carry to ``distributed.train_distributed``.

    netcanvas train lenet5 --nnodes 2 --node-rank 0 --rdzv-endpoint 10.0.0.1:29500   # machine A
    netcanvas train lenet5 --nnodes 2 --node-rank 1 --rdzv-endpoint 10.0.0.1:29500   # machine B

The rendezvous is torchrun's static one (a fixed number of nodes): node 0 listens at the
endpoint (its own address, a free port), the others connect there, and global ranks go
node by node (node 0 holds global rank 0, which reports the epochs and writes the weights).
No torch here: the CLI builds its parser without importing it.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..cli_types import integer_in

DEFAULT_RDZV_TIMEOUT = 900  # seconds a node waits for the others (torchrun's default)
PROBE_SECONDS = 0.5  # how often a node asks whether node 0 listens yet
MAX_NODES = 4096
MAX_TIMEOUT = 7 * 24 * 3600
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")  # a host name or IPv4 address


@dataclass(frozen=True)
class Nodes:
    """Which node of how many this process runs, and where they meet. ``rank``: 0 to
    ``count - 1``; ``timeout``: seconds to wait at the rendezvous for the other nodes."""

    count: int
    rank: int
    host: str
    port: int
    timeout: int = DEFAULT_RDZV_TIMEOUT

    @property
    def endpoint(self) -> str:
        """``HOST:PORT`` as torch parses it (an IPv6 address in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def main(self) -> bool:
        """True on node 0, which holds global rank 0 (the one that reports and saves)."""
        return self.rank == 0

    def as_option(self) -> dict:
        """Plain data for the run options (they may travel through a pipe)."""
        return asdict(self)

    @classmethod
    def coerce(cls, value: "Nodes | dict | None") -> "Nodes | None":
        """``value`` as Nodes (from ``as_option``'s dict too); None stays None. Raises
        ValueError for a dict that is not one."""
        if value is None or isinstance(value, Nodes):
            return value
        try:
            return cls(**value)
        except TypeError as e:
            raise ValueError(f"not a description of the nodes: {value!r}") from e

    def describe(self) -> str:
        """``node 1 of 2 (rendezvous at 10.0.0.1:29500)``."""
        return f"node {self.rank} of {self.count} (rendezvous at {self.endpoint})"


def parse_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` too) as (host, port). Raises ValueError saying what
    is expected."""
    text = text.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})", text) or re.fullmatch(r"([^:\[\]]+):(\d{1,5})", text)
    if match is None:
        raise ValueError(f"expected HOST:PORT (such as 10.0.0.1:29500); received {text!r}")
    host, port = match.group(1), int(match.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(f"expected a port from 1 to 65535; received {text!r}")
    if text.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"expected HOST:PORT with an IPv6 address in brackets; received {text!r}") from None
    elif not _HOST.match(host):
        raise ValueError(f"expected HOST:PORT, HOST a host name or an IP address; received {text!r}")
    return host, port


def _endpoint(text: str) -> tuple[str, int]:
    try:
        return parse_endpoint(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(train_parser: argparse.ArgumentParser) -> None:
    """Add --nnodes, --node-rank, --rdzv-endpoint and --rdzv-timeout to ``train``'s parser."""
    group = train_parser.add_argument_group(
        "across machines", "run one node of a job across N machines (torchrun's static rendezvous); "
                           "start the same command on every machine, each with its --node-rank")
    group.add_argument("--nnodes", type=integer_in(1, MAX_NODES), default=1, metavar="N",
                       help="the number of machines (nodes) in the job (default 1)")
    group.add_argument("--node-rank", type=integer_in(0, MAX_NODES - 1), default=0, metavar="K",
                       help="this machine's node, 0 to N-1; node 0 reports the epochs and writes the weights")
    group.add_argument("--rdzv-endpoint", type=_endpoint, metavar="HOST:PORT",
                       help="where the nodes meet: node 0's address and a free port there (needed with --nnodes 2 "
                            "or more)")
    group.add_argument("--rdzv-timeout", type=integer_in(1, MAX_TIMEOUT), default=None, metavar="SECONDS",
                       help=f"how long a node waits for the others (default {DEFAULT_RDZV_TIMEOUT})")


def validate(args: argparse.Namespace) -> str | None:
    """What is wrong with the options ``add_arguments`` added, given together (argparse's
    ``error`` style: "argument --node-rank: ..."), or None when they fit."""
    count = args.nnodes
    if args.node_rank >= count:
        return (f"argument --node-rank: expected an integer from 0 to {count - 1} (--nnodes {count}); "
                f"received {args.node_rank}")
    if count > 1 and args.rdzv_endpoint is None:
        return (f"argument --rdzv-endpoint: --nnodes {count} needs the address where the nodes meet, "
                "HOST:PORT (node 0's address and a free port there)")
    if count == 1 and args.rdzv_endpoint is not None:
        return "argument --rdzv-endpoint: is for a job across several machines; give --nnodes N (2 or more) too"
    if count == 1 and args.rdzv_timeout is not None:
        return "argument --rdzv-timeout: is for a job across several machines; give --nnodes N (2 or more) too"
    return None


def nodes_from_args(args: argparse.Namespace) -> Nodes | None:
    """The Nodes that validated ``args`` describe; None for a job on this machine alone."""
    if args.nnodes <= 1:
        return None
    host, port = args.rdzv_endpoint
    timeout = DEFAULT_RDZV_TIMEOUT if args.rdzv_timeout is None else args.rdzv_timeout
    return Nodes(args.nnodes, args.node_rank, host, port, timeout)


def worker_message(nodes: Nodes, what: str) -> str:
    """What a node other than node 0 says at the end, ``what`` being how the job ended
    ("training completed after 2 epochs")."""
    return (f"worker {nodes.describe()}: {what}; node 0 (global rank 0) reported the epochs and wrote "
            "the weights")


def wait_for_node0(nodes: Nodes, give_up: Callable[[], bool] = lambda: False) -> bool:
    """On a node other than node 0: wait until node 0 listens at the endpoint (a TCP
    connection opens there), for at most ``nodes.timeout`` seconds. Returns True once it
    does, False as soon as ``give_up()`` is true; raises TimeoutError naming the endpoint.
    Why: torch's own client, which would wait too, logs every failed try with a native
    stack trace on stderr, and cannot be interrupted."""
    deadline = time.monotonic() + nodes.timeout
    while not give_up():
        try:
            with socket.create_connection((nodes.host, nodes.port), timeout=PROBE_SECONDS):
                return True
        except OSError as e:  # refused (not listening yet), unreachable, a name not known yet
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out: {e.strerror or e}") from None
            time.sleep(min(PROBE_SECONDS, left))
    return False
