"""Run a project with its weights on a batch of samples (``netcanvas predict``).

Weights saved by the trainer carry the training split's normalization (``input_mean``,
``input_std`` in the safetensors metadata); raw inputs are normalized the same way before
they reach the model, unless ``normalize=False`` (the inputs are already normalized).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .compiler import compile_graph
from .devices import resolve_device
from .errors import DatasetError, GraphError, WeightsError
from .inference import analyze
from .project import Project
from .weights import apply_weights, bounded_json, read_metadata, read_weights

__all__ = ["normalization", "predict", "read_metadata"]


def normalization(metadata: dict[str, str], input_shape: tuple[int, ...],
                  source: str = "weights") -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) shaped like one sample of ``input_shape``, from weights metadata; None
    when the weights carry none. Raises ``WeightsError`` when they do not fit the input."""
    if "input_mean" not in metadata or "input_std" not in metadata:
        return None
    try:
        mean = np.asarray(bounded_json(metadata["input_mean"]), dtype=np.float64).reshape(-1)
        std = np.asarray(bounded_json(metadata["input_std"]), dtype=np.float64).reshape(-1)
    except (ValueError, TypeError, OverflowError):
        raise WeightsError("its input_mean / input_std metadata is not a list of numbers", source) from None
    largest = float(np.finfo(np.float32).max)
    if not (np.all(np.abs(mean) <= largest) and np.all(np.abs(std) <= largest)):  # NaN fails too
        raise WeightsError(f"its input_mean / input_std metadata holds values that are not finite float32 "
                           f"numbers (beyond ±{largest:.4g})", source)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    size = int(np.prod(input_shape))
    if mean.size != size or std.size != size:
        raise WeightsError(f"its normalization holds {mean.size} values per sample, but the "
                           f"model's input {list(input_shape)} has {size}", source)
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std == 0):
        raise WeightsError("its input_std metadata holds zeros or non-finite values", source)
    return mean.reshape(input_shape), std.reshape(input_shape)


def predict(project: Project, weights_path: str | Path | None, x: np.ndarray | Sequence[np.ndarray],
            *, normalize: bool = True, batch_size: int = 1024, device: str = "cpu") -> np.ndarray:
    """The model's outputs for the batch ``x`` (first axis: samples), as float32.

    ``weights_path`` defaults to the project's own weights file. A project with several
    Inputs takes a sequence of arrays, in the order of its Input nodes. Raises
    ``GraphError`` (the graph has errors), ``WeightsError`` (missing or not fitting) or
    ``DatasetError`` (an input of the wrong shape or type)."""
    a = analyze(project.graph)
    if not a.ok:
        raise GraphError(a.errors)
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(arrays) != len(a.inputs):
        raise DatasetError(f"the model has {len(a.inputs)} inputs ({', '.join(a.inputs)}); "
                           f"received {len(arrays)} arrays")
    batches = [_check_input(np.asarray(arr), node_id, a.shapes[node_id])
               for arr, node_id in zip(arrays, a.inputs)]
    if len({len(b) for b in batches}) > 1:
        raise DatasetError("the input arrays hold different numbers of samples: "
                           + ", ".join(str(len(b)) for b in batches))
    path = Path(weights_path) if weights_path is not None else project.weights_path
    if path is None or (weights_path is None and not path.exists()):
        where = f" ({path} does not exist)" if path is not None else ""
        raise WeightsError(f"the project has no trained weights{where}; train it first or give "
                           "the weights file")
    model = compile_graph(project.graph, a).eval()
    apply_weights(model, read_weights(path), str(path))
    if normalize and len(batches) == 1:
        stats = normalization(read_metadata(path), a.shapes[a.inputs[0]], str(path))
        if stats is not None:
            batches[0] = (batches[0] - stats[0]) / stats[1]
    target = resolve_device(device)
    model.to(target)
    outputs = []
    total = len(batches[0])
    with torch.no_grad():
        for start in range(0, total, max(1, batch_size)):
            chunk = [torch.from_numpy(np.ascontiguousarray(b[start:start + batch_size])).to(target)
                     for b in batches]
            outputs.append(model(*chunk).float().cpu().numpy())
    if not outputs:
        return np.zeros((0, *a.shapes[a.output]), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)


def _check_input(arr: np.ndarray, node_id: str, shape: tuple[int, ...]) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise DatasetError(f"input {node_id!r} needs numbers; received an array of {arr.dtype}")
    got = tuple(arr.shape)
    if got[1:] != tuple(shape):
        hint = ""
        size = int(np.prod(shape))
        if got == tuple(shape):
            hint = f" (one sample without the batch axis: reshape it to {[1, *shape]})"
        elif len(got) >= 1 and got[0] and int(np.prod(got[1:])) == size:
            hint = f" (the same number of values: reshape it to {[got[0], *shape]})"
        raise DatasetError(f"input {node_id!r} takes samples of shape {list(shape)}, so an array "
                           f"of shape [batch, {', '.join(map(str, shape))}]; received "
                           f"{list(got)}{hint}")
    return arr.astype(np.float32, copy=False)
