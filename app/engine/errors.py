"""Error values and the one exception type the engine raises for bad input."""

from __future__ import annotations

from dataclasses import dataclass


class NetCanvasError(Exception):
    """A problem with something the user gave us: a file, a graph, a dataset, a setting.

    ``where`` names the place (a field path such as ``graph.nodes[2].params.kernel_size``,
    a file and line, a node id); ``str(error)`` is a complete sentence for the user.
    """

    def __init__(self, message: str, where: str | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ProjectError(NetCanvasError):
    """A project file that cannot be read, parsed or accepted."""


class GraphError(NetCanvasError):
    """A graph that cannot be compiled because validation found errors."""

    def __init__(self, issues: list["Issue"]):
        self.issues = issues
        lines = [str(i) for i in issues if i.severity == "error"]
        super().__init__("the graph has errors:\n  " + "\n  ".join(lines))


class DatasetError(NetCanvasError):
    """Data that is missing, corrupt or does not fit the model."""


class DeviceError(NetCanvasError):
    """A device that was asked for but is not present."""


class TrainingError(NetCanvasError):
    """A training run that cannot start or had to stop (NaN loss, bad settings)."""


class WeightsError(NetCanvasError):
    """A weights file that cannot be read or does not fit the graph."""


@dataclass(frozen=True)
class Issue:
    """A problem tied to a place in the graph: the node (or None for the whole graph),
    the parameter (or None), and a message saying what was received and what was expected.
    ``severity`` is ``"error"`` (blocks compiling) or ``"warning"`` (a hint). An issue
    inside a block node has the ids of the nodes within, from the outside in, in ``path``:
    ``Issue("layer1_0", "kernel_size", ..., path=("conv1",))`` reads
    ``layer1_0/conv1.kernel_size: ...``."""

    node: str | None
    param: str | None
    message: str
    severity: str = "error"
    path: tuple[str, ...] = ()

    def inside(self, node_id: str) -> "Issue":
        """This issue of a block's graph as an issue of the block node ``node_id``."""
        path = (self.node, *self.path) if self.node is not None else ()
        return Issue(node_id, self.param, self.message, self.severity, path)

    def __str__(self) -> str:
        where = "/".join((self.node or "graph", *self.path))
        if self.param:
            where += f".{self.param}"
        return f"{where}: {self.message}"


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (libraries' messages run on for pages), or
    its type's name when it has none."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
