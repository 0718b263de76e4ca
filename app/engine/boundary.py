"""Decision boundaries of a model with two input features (xor, moons, spirals, any
2-feature CSV), as TensorFlow Playground draws them: the predicted class over the input
plane, the data on top, and for small MLPs one map per hidden unit.

Coordinates are the data's own units (before the dataset's normalization): the grid is
normalized as the training data was before it goes through the model. One batched forward
of the whole grid (64 x 64 = 4096 points) computes everything. No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .datasets.base import Dataset, Split
from .inference import Analysis
from .lazy import LazyModule, nn, no_grad

MARGIN = 0.10  # the plane shows the data's extent plus this share of it on each side
MAX_POINTS = 600  # data points of each split sent along (a fixed subsample)
MAX_UNIT_NODES = 6  # per-unit maps only for MLPs with at most this many hidden nodes ...
MAX_UNITS = 16  # ... and only of the hidden nodes with at most this many units

torch = LazyModule("torch")  # the editor's panel imports this at its start: torch loads at first use


@dataclass
class Frame:
    """What stays the same from one snapshot to the next: the plane's ranges and the points."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    points: dict[str, np.ndarray]


def applies(analysis: Analysis) -> bool:
    """Whether the model has a single Input of two features and a vector output."""
    if len(analysis.inputs) != 1 or tuple(analysis.shapes.get(analysis.inputs[0]) or ()) != (2,):
        return False
    out = analysis.shapes.get(analysis.output)
    return out is not None and len(out) == 1


def frame(dataset: Dataset, seed: int = 0) -> Frame:
    """The ranges (the extent of every split, plus MARGIN) and at most MAX_POINTS points of
    the training and the test split (drawn once with ``seed``), in the data's units."""
    splits = [s for s in (dataset.train, dataset.val, dataset.test) if len(s)]
    every = np.concatenate([_raw(dataset, s.x) for s in splits]) if splits else np.zeros((0, 2), np.float32)
    ranges = []
    for k in range(2):
        lo, hi = (float(every[:, k].min()), float(every[:, k].max())) if len(every) else (0.0, 0.0)
        if hi <= lo:  # one value (or no data): a plane of width 2 around it
            lo, hi = lo - 1.0 / (1 + 2 * MARGIN), hi + 1.0 / (1 + 2 * MARGIN)
        span = hi - lo
        ranges.append((lo - MARGIN * span, hi + MARGIN * span))
    points = {}
    for name, split in (("train", dataset.train), ("test", dataset.test)):
        chosen = _subsample(split, seed)
        points[name] = _raw(dataset, split.x[chosen]).astype(np.float32)
        points[name + "_y"] = split.y[chosen].numpy().astype(np.int64).reshape(-1)
    return Frame(ranges[0], ranges[1], points)


@no_grad
def boundary_maps(model: nn.Module, analysis: Analysis, dataset: Dataset, resolution: int = 64,
                  class_names: list[str] | None = None, *, loss: str | None = None,
                  fixed: Frame | None = None) -> dict | None:
    """The boundary of ``model`` (its output being ``analysis.output``'s) over the plane of
    ``dataset``'s two features: {"x_range", "y_range", "resolution", "classes", "probs"
    [R, R, K] float32 (K = 1 for a single output: P(class 1)), "predicted" [R, R] int16,
    "units" {node id: [n_units, R, R] float32}, "points" {"train" [N, 2], "train_y" [N],
    "test" [M, 2], "test_y" [M]}}; row r is y = y0 + (r + 0.5) (y1 - y0) / R, column c
    likewise x. None when the model does not have a single two-feature Input and a vector
    output. ``class_names``: default the dataset's; ``loss`` says how a single raw output
    reads as a probability (BCEWithLogitsLoss, the default: sigmoid; MSELoss: clipped to
    [0, 1]); ``fixed``: ``frame(dataset)`` computed once. The model's mode is restored
    after. Raises ``ValueError`` for a resolution below 1."""
    if resolution < 1:
        raise ValueError(f"the boundary's resolution must be at least 1; received {resolution}")
    if not applies(analysis):
        return None
    fixed = fixed or frame(dataset)
    r = int(resolution)
    (x0, x1), (y0, y1) = fixed.x_range, fixed.y_range
    xs = x0 + (np.arange(r) + 0.5) * (x1 - x0) / r
    ys = y0 + (np.arange(r) + 0.5) * (y1 - y0) / r
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    plane = np.stack([gx.reshape(-1), gy.reshape(-1)], 1).astype(np.float32)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    grid = torch.from_numpy(plane)
    if dataset.mean is not None and dataset.std is not None:
        grid = (grid - dataset.mean.reshape(1, 2)) / dataset.std.reshape(1, 2)

    captured: dict[str, torch.Tensor] = {}
    handles = [getattr(model, n).register_forward_hook(_keep(captured, n)) for n in _unit_nodes(model, analysis)]
    was_training = model.training
    model.eval()
    try:
        out = model(grid.to(device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    out = (out[0] if isinstance(out, tuple) else out).float().reshape(r * r, -1)
    probs = _probabilities(out, getattr(model, analysis.output, None), loss)
    k = probs.shape[1]
    predicted = (probs[:, 0] > 0.5).long() if k == 1 else probs.argmax(1)
    units = {n: v.reshape(r, r, -1).permute(2, 0, 1).cpu().numpy().astype(np.float32)
             for n, v in captured.items()}
    names = list(class_names if class_names is not None else dataset.class_names) or None
    return {"x_range": (float(x0), float(x1)), "y_range": (float(y0), float(y1)), "resolution": r,
            "classes": names, "probs": probs.reshape(r, r, k).cpu().numpy().astype(np.float32),
            "predicted": predicted.reshape(r, r).cpu().numpy().astype(np.int16),
            "units": units, "points": {k_: v.copy() for k_, v in fixed.points.items()}}


def _probabilities(out: torch.Tensor, last: nn.Module | None, loss: str | None) -> torch.Tensor:
    """The output ``[P, K]`` as probabilities: a final (``last``) Softmax/Sigmoid's as they
    are, LogSoftmax's exponentiated, raw scores through softmax (K > 1) or, for one output, a
    sigmoid (a logit; MSELoss: the value clipped to [0, 1])."""
    if isinstance(last, (nn.Softmax, nn.Sigmoid, nn.Hardsigmoid)):
        return out
    if isinstance(last, nn.LogSoftmax):
        return out.exp()
    if out.shape[1] > 1:
        return torch.softmax(out, 1)
    return out.clamp(0, 1) if loss == "MSELoss" else torch.sigmoid(out)


def _unit_nodes(model: nn.Module, analysis: Analysis) -> list[str]:
    """The hidden Linear and activation nodes (by their modules: ``nn.Linear``, torch's
    activation modules) with at most MAX_UNITS units, when the model is an MLP (every node's
    output a vector) with at most MAX_UNIT_NODES hidden nodes; else none."""
    nodes = [n for n in analysis.order if n not in analysis.inputs]
    hidden = [n for n in nodes if n != analysis.output]
    if len(hidden) > MAX_UNIT_NODES or any(len(analysis.shapes.get(n) or ()) != 1 for n in nodes):
        return []
    return [n for n in hidden if _unit_module(getattr(model, n, None)) and analysis.shapes[n][0] <= MAX_UNITS]


def _unit_module(module: nn.Module | None) -> bool:
    """A Linear or an activation (one copy: a repeated node is an nn.Sequential)."""
    return isinstance(module, nn.Linear) or type(module).__module__ == nn.ReLU.__module__


def _raw(dataset: Dataset, x: torch.Tensor) -> np.ndarray:
    """Samples ``[N, 2]`` in the data's own units (the normalization undone)."""
    x = x.float().reshape(len(x), 2)
    if dataset.mean is not None and dataset.std is not None:
        x = x * dataset.std.reshape(1, 2) + dataset.mean.reshape(1, 2)
    return x.numpy()


def _subsample(split: Split, seed: int) -> torch.Tensor:
    n = len(split)
    if n <= MAX_POINTS:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:MAX_POINTS].sort().values


def _keep(store: dict[str, torch.Tensor], node_id: str):
    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            store[node_id] = output.detach().float()
    return hook
