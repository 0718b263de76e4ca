"""What training minimizes: which output, which loss, which targets, which accuracy.

``make_objective`` checks before any training that the model's output, the loss and the
data fit together, and says how to fix it when they do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

from ..config import MASK_THRESHOLD
from ..errors import TrainingError
from ..graph import Graph
from ..inference import Analysis
from ..kernels.loss import cross_entropy_for
from ..layers.helpers import fmt

# losses that expect raw scores: a final Softmax/Sigmoid is skipped for the loss (and kept
# for predictions), exactly as softmax_cross_entropy_with_logits does in the course material
_LOGIT_LOSSES = {"CrossEntropyLoss": ("Softmax",), "BCEWithLogitsLoss": ("Sigmoid",),
                 "NLLLoss": ()}


@dataclass
class Objective:
    """``loss_node``: the node whose output the loss reads; ``loss(output, x, y)`` and
    ``correct(output, y, x=None)`` (number of right predictions, or None; for target "mask"
    the sum over samples of each one's share of right pixels, and it needs ``x``) as torch
    computations; ``predict(output)``: the predicted classes, or None."""

    loss_node: str
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    predict: Callable[[torch.Tensor], torch.Tensor] | None
    notes: list[str] = field(default_factory=list)


def make_objective(graph: Graph, analysis: Analysis, settings: dict, num_classes: int,
                   input_shape: tuple[int, ...], mean: torch.Tensor | None = None,
                   std: torch.Tensor | None = None) -> Objective:
    """``mean`` / ``std``: the data's normalization (of the input's shape), which target
    "mask" undoes to find the pixels above MASK_THRESHOLD. Raises ``TrainingError`` when the
    output, the loss and the data do not fit."""
    loss_name, target = settings["loss"], settings.get("target", "labels")
    out_id = analysis.output
    out_shape = analysis.shapes[out_id]
    sink = graph.nodes[out_id]
    notes: list[str] = []
    loss_node = out_id
    if sink.type in _LOGIT_LOSSES.get(loss_name, ()) and analysis.incoming.get(out_id):
        loss_node = analysis.incoming[out_id][0].source
        notes.append(f"{loss_name} is computed on the input of the final {sink.type} "
                     f"{out_id!r} (the logits), as {loss_name} expects raw scores")

    if loss_name == "BCELoss" and sink.type not in ("Sigmoid", "Softmax"):
        raise TrainingError(f"BCELoss needs outputs between 0 and 1, but the output {out_id!r} is a "
                            f"{sink.type}; end the graph with Sigmoid or use BCEWithLogitsLoss")
    if len(analysis.inputs) != 1:
        raise TrainingError(f"the model has {len(analysis.inputs)} Inputs, but a dataset feeds "
                            "one; training needs a model with a single Input")
    if target == "input":
        if out_shape != tuple(input_shape):
            raise TrainingError(f"with target 'input' the output {out_id!r} must have the input's "
                                f"shape {fmt(input_shape)}; it has {fmt(out_shape)}")
        if loss_name not in ("MSELoss", "BCELoss", "BCEWithLogitsLoss"):
            raise TrainingError(f"{loss_name} compares with class labels; a reconstruction "
                                "(target 'input') needs MSELoss, BCELoss or BCEWithLogitsLoss")
        fn = {"MSELoss": F.mse_loss, "BCELoss": _bce, "BCEWithLogitsLoss": F.binary_cross_entropy_with_logits}[loss_name]
        return Objective(loss_node, lambda out, x, y: fn(out, x), None, None, notes)
    if target == "mask":
        return _mask(loss_name, loss_node, out_id, out_shape, tuple(input_shape), mean, std, notes)

    if len(out_shape) != 1:
        flatten = " (add a Flatten before the first Linear layer)" if len(out_shape) >= 2 else ""
        raise TrainingError(f"the output {out_id!r} has shape {fmt(out_shape)}, but {loss_name} "
                            f"needs one score per class, a shape like [{num_classes}]{flatten}")
    units = out_shape[0]
    if units == 1:
        return _binary(loss_name, loss_node, out_id, num_classes, notes)
    if units < num_classes:
        raise TrainingError(f"the data has {num_classes} classes, but the output {out_id!r} has "
                            f"{units} units; set out_features of the last Linear to {num_classes}")
    if loss_name == "NLLLoss" and sink.type != "LogSoftmax":
        notes.append("NLLLoss expects log-probabilities; end the graph with LogSoftmax")
    correct = lambda out, y, x=None: (out.argmax(1) == y).sum()  # noqa: E731
    predict = lambda out: out.argmax(1)  # noqa: E731
    if loss_name == "CrossEntropyLoss":
        ce = _cross_entropy(settings.get("kernels", "off"))
        loss = lambda out, x, y: ce(out, y)  # noqa: E731
    elif loss_name == "NLLLoss":
        loss = lambda out, x, y: F.nll_loss(out, y)  # noqa: E731
    elif loss_name == "MSELoss":
        loss = lambda out, x, y: F.mse_loss(out, F.one_hot(y, units).to(out.dtype))  # noqa: E731
    elif loss_name == "BCEWithLogitsLoss":
        loss = lambda out, x, y: F.binary_cross_entropy_with_logits(out, F.one_hot(y, units).to(out.dtype))  # noqa: E731
    else:
        loss = lambda out, x, y: _bce(out, F.one_hot(y, units).to(out.dtype))  # noqa: E731
    return Objective(loss_node, loss, correct, predict, notes)


def _binary(loss_name, loss_node, out_id, num_classes, notes) -> Objective:
    if num_classes > 2:
        raise TrainingError(f"the data has {num_classes} classes, but the output {out_id!r} has "
                            f"1 unit; set out_features of the last Linear to {num_classes}")
    if loss_name in ("CrossEntropyLoss", "NLLLoss"):
        raise TrainingError(f"{loss_name} needs at least 2 output units; with one output unit "
                            "use BCEWithLogitsLoss (or BCELoss after a Sigmoid)")
    logits = loss_name == "BCEWithLogitsLoss"
    threshold = 0.0 if logits else 0.5

    def target(out, y):
        return y.to(out.dtype).reshape(out.shape)

    fn = {"MSELoss": F.mse_loss, "BCELoss": _bce, "BCEWithLogitsLoss": F.binary_cross_entropy_with_logits}[loss_name]
    return Objective(
        loss_node,
        lambda out, x, y: fn(out, target(out, y)),
        lambda out, y, x=None: ((out.reshape(-1) > threshold).long() == y).sum(),
        lambda out: (out.reshape(-1) > threshold).long(),
        notes,
    )


def _mask(loss_name, loss_node, out_id, out_shape, input_shape, mean, std, notes) -> Objective:
    """Target "mask": every output value is the logit (BCEWithLogitsLoss) or probability
    (BCELoss) that the input's pixel at its place is above MASK_THRESHOLD; accuracy is the
    share of pixels right, averaged over the samples."""
    if out_shape != input_shape:
        raise TrainingError(f"with target 'mask' the output {out_id!r} must have the input's shape "
                            f"{fmt(input_shape)} (one score per pixel of the mask); it has {fmt(out_shape)}")
    if loss_name not in ("BCEWithLogitsLoss", "BCELoss"):
        raise TrainingError(f"{loss_name} does not fit a mask (target 'mask'): use BCEWithLogitsLoss "
                            "(or BCELoss after a final Sigmoid)")
    # the samples are normalized: the threshold moves with them, pixel by pixel
    threshold = torch.full(input_shape, MASK_THRESHOLD)
    if mean is not None and std is not None:
        threshold = (threshold - mean.reshape(input_shape)) / std.reshape(input_shape)
    cached: dict[torch.device, torch.Tensor] = {}

    def mask(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if x.device not in cached:
            cached[x.device] = threshold.to(x.device)
        return (x > cached[x.device]).to(like.dtype)

    fn = F.binary_cross_entropy_with_logits if loss_name == "BCEWithLogitsLoss" else _bce
    cut = 0.0 if loss_name == "BCEWithLogitsLoss" else 0.5

    def correct(out: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        if x is None:
            raise ValueError("target 'mask' counts right pixels against the input: pass x")
        right = ((out > cut) == (mask(x, out) > 0.5)).to(out.dtype)
        return right.reshape(len(out), -1).mean(1).sum()

    notes.append(f"target 'mask': the output is compared with the input's pixels above {MASK_THRESHOLD}; "
                 "accuracy is the share of pixels right")
    return Objective(loss_node, lambda out, x, y: fn(out, mask(x, out)), correct, None, notes)


def _cross_entropy(kernels: str):
    """F.cross_entropy, or under kernels "on"/"auto" the fused Triton softmax + cross-entropy
    where it applies (a CUDA tensor, and for "auto" a measured win)."""
    if kernels == "off":
        return F.cross_entropy
    return cross_entropy_for(kernels)


def _bce(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(out, target)
