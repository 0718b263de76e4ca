"""What the training panel hands the canvas of each snapshot it shows (``CanvasInsight``),
the panel's Health and Boundary tabs (``InsightTabs``), and the same figures measured in the
editor for the weights held (after a run, or loaded): layer health over a probe batch and the
decision boundary of a two-feature input.

The engine measures (``app.engine.health``, ``app.engine.boundary``), the views draw (DESIGN
rule 6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtWidgets import QTabWidget, QWidget

from ...engine import boundary, health, snapshots
from ...engine.datasets import Dataset
from ...engine.errors import NetCanvasError
from ...engine.lazy import LazyModule
from .boundary_view import UNAVAILABLE, BoundaryView
from .health_view import HealthView

torch = LazyModule("torch")  # the panel is built at the editor's start: torch loads at first use
BOUNDARY_RESOLUTION = 64  # the grid the weights held are drawn on (the trainer picks its own)
# the probe of the weights held runs on the GUI thread (the run's own probe, up to 256 samples,
# takes seconds for the ResNet example on a CPU): its first samples only. Fewer samples can only
# call more units dead (zero for every one of them), so a few dozen is the least that says much
LOCAL_PROBE_SAMPLES = 32


@dataclass
class CanvasInsight:
    """One snapshot as the canvas draws it: ``activations`` per node, the chosen sample's
    output (``[C, H, W]``, ``[F]``, ``[T, F]``...); the ``output_node`` whose values are the
    class probabilities (None: none known) with its ``class_names``; ``health`` per node
    (``SnapshotEvent.health``'s dicts, None when not measured) and the training ``step``."""

    activations: dict[str, np.ndarray]
    output_node: str | None
    class_names: list[str]
    health: dict[str, dict] | None
    step: int


def make_insight(activations: dict[str, np.ndarray], output_node: str | None, class_names: list[str],
                 health_stats: dict[str, dict] | None, step: int, sample_index: int = 0) -> CanvasInsight:
    """A ``CanvasInsight`` of snapshot activations ``{node: [n, *shape]}``: row
    ``sample_index`` of each (nodes without that row are left out)."""
    chosen = {node: np.asarray(a[sample_index]) for node, a in activations.items()
              if np.ndim(a) >= 1 and len(a) > sample_index}
    return CanvasInsight(chosen, output_node, list(class_names), health_stats, step)


class InsightTabs:
    """The panel's Health and Boundary tabs, added to ``tabs``: what a snapshot or the weights
    held show there, whether the Boundary tab applies, and the ``CanvasInsight`` of a snapshot."""

    def __init__(self, tabs: QTabWidget, fallback: QWidget):
        self.tabs, self.fallback = tabs, fallback  # fallback: shown when the Boundary tab goes
        self.health, self.boundary = HealthView(), BoundaryView()
        tabs.addTab(self.health, "Health")
        tabs.addTab(self.boundary, "Boundary")

    def follow(self, analysis) -> None:
        """Enable the Boundary tab for a single two-feature Input only (its tooltip says why not)."""
        ok, index = boundary.applies(analysis), self.tabs.indexOf(self.boundary)
        if not ok and self.tabs.currentIndex() == index:
            self.tabs.setCurrentWidget(self.fallback)
        self.boundary.set_available(ok)
        self.tabs.setTabEnabled(index, ok)
        self.tabs.setTabToolTip(index, "" if ok else UNAVAILABLE)

    def clear(self, analysis) -> None:
        """Another project: nothing of the last one's shown; the Boundary tab follows ``analysis``."""
        self.health.clear()
        self.boundary.clear()
        self.follow(analysis)

    def record(self, event, graph, analysis) -> None:
        """A snapshot's health, recorded whether its tab is on screen or not (the history is
        the sparklines); its boundary is drawn by ``boundary.show_boundary`` when shown."""
        self.health.show_health(event.health, analysis.order, node_types(graph), event.health_step)

    def show_local(self, stats: dict | None, maps: dict | None, graph, analysis) -> None:
        """Show the health and boundary ``measure_local`` found for the weights held."""
        self.health.show_health(stats, analysis.order, node_types(graph))
        self.boundary.show_boundary(maps)

    def insight(self, activations: dict[str, np.ndarray], analysis, dataset: Dataset | None,
                step: int, graph=None, target: str = "labels") -> CanvasInsight:
        """The canvas's view of a snapshot's ``activations`` with the health shown now; the
        output is shown as class probabilities only where it holds them (``class_output``)."""
        names = list(dataset.class_names) if dataset is not None else []
        output = class_output(analysis, names, target)
        acts = activations
        if output is not None and output in activations:
            kind = graph.nodes[output].type if graph is not None and output in graph.nodes else None
            acts = {**activations, output: as_probabilities(np.asarray(activations[output]), kind)}
        return make_insight(acts, output, names, self.health.current(), step)


def class_output(analysis, class_names: list[str], target: str) -> str | None:
    """The output node when its values score the classes: a run on labels whose output is a
    vector of one score per class (or one for two classes); None otherwise (a regression, an
    autoencoder, a size that does not match), whose output is then drawn as plain values."""
    out = analysis.output
    shape = analysis.shapes.get(out) if out else None
    if target != "labels" or shape is None or len(shape) != 1 or not class_names:
        return None
    return out if shape[0] == len(class_names) or (shape[0] == 1 and len(class_names) == 2) else None


def as_probabilities(scores: np.ndarray, node_type: str | None) -> np.ndarray:
    """Class scores ``[n, K]`` as probabilities, by what the output layer is: Softmax and
    Sigmoid give them already, LogSoftmax their logarithms; any other layer gives logits
    (a softmax over K > 1, a sigmoid of a single one)."""
    x = scores.astype(np.float64)
    if node_type in ("Softmax", "Sigmoid"):
        return scores
    if node_type == "LogSoftmax":
        return np.exp(x).astype(np.float32)
    if x.shape[-1] == 1:
        return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def node_types(graph) -> dict[str, str]:
    """Each node's layer type, by node id (the health table's tooltips name it)."""
    return {node_id: node.type for node_id, node in graph.nodes.items()}


def local_activations(model, analysis, sample: np.ndarray | None) -> dict[str, np.ndarray]:
    """Every node's output for ``sample`` ``[1, *input_shape]`` (``snapshots.activations``);
    {} without a sample, or with one that does not fit the graph's input."""
    a = analysis
    if sample is None or not a.inputs or tuple(sample.shape[1:]) != tuple(a.shapes.get(a.inputs[0]) or ()):
        return {}
    return snapshots.activations(model, a, torch.from_numpy(sample))


def measure_local(model, graph, analysis, dataset: Dataset | None, training: dict) -> tuple[dict | None, dict | None]:
    """The health and the boundary of the weights held (``local_health``, ``local_boundary``)
    for a project with the ``training`` settings: forward passes with hooks, run off the GUI
    thread (on it, the end of a run froze the editor for 0.2-0.3 s)."""
    return (local_health(model, graph, analysis, dataset, int(training.get("batch_size") or 64)),
            local_boundary(model, analysis, dataset, training.get("loss")))


def local_health(model, graph, analysis, dataset: Dataset | None, batch_size: int) -> dict[str, dict] | None:
    """Health of the weights held over the first LOCAL_PROBE_SAMPLES of the probe batch a run
    with minibatches of ``batch_size`` measures (``health.probe_batch``): the forward figures
    only (no step was taken: gradient norms and update ratios are None). None when there is
    no data to probe with, or it does not fit the model."""
    if dataset is None or not len(dataset.train):
        return None
    x = health.probe_batch(dataset.train, batch_size)[:LOCAL_PROBE_SAMPLES]
    try:
        return health.HealthProbe(model, graph, analysis).measure(model, x)
    except (NetCanvasError, RuntimeError, ValueError):  # data of another shape than the graph's input
        return None


def local_boundary(model, analysis, dataset: Dataset | None, loss: str | None) -> dict | None:
    """The decision boundary of the weights held (``boundary.boundary_maps``; ``loss``: the
    training loss, which says how a single raw output reads as a probability); None for
    inputs that are not two features, or without data."""
    if dataset is None or not boundary.applies(analysis):
        return None
    try:
        return boundary.boundary_maps(model, analysis, dataset, resolution=BOUNDARY_RESOLUTION,
                                      class_names=dataset.class_names, loss=loss)
    except (NetCanvasError, RuntimeError, ValueError):
        return None
