"""Fused softmax + cross-entropy (mean over the batch, integer class targets).

Liger-style: one kernel per row computes the log-sum-exp online, the row's loss, and,
while the row is in cache, the gradient ``(softmax - onehot) / N``; backward only scales
that saved gradient by the upstream scalar. Neither the probabilities nor the
log-probabilities are ever stored, and there is no second pass over the logits in
backward. The logits are not overwritten (the trainer still reads them for accuracy).

Not supported (the reference path takes them): class-probability targets, logits with
more than two dimensions, ``ignore_index``, label smoothing, class weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from .policy import decide
from .runtime import check_mode, cpu_allowed, runs_triton


def reference_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The oracle: ``F.cross_entropy(logits, target)`` (mean)."""
    return F.cross_entropy(logits, target)


class CrossEntropy(torch.autograd.Function):
    """Triton forward (with the gradient) of ``reference_cross_entropy``."""

    @staticmethod
    def forward(ctx, logits, target):
        from .triton_kernels import cross_entropy_forward  # Triton is optional (Linux only)

        x = logits.contiguous()
        losses, grad = cross_entropy_forward(x, target.contiguous(), ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return (losses.sum() / max(len(losses), 1)).to(logits.dtype)

    @staticmethod
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return grad * g.to(grad.dtype), None


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` ``[N, C]`` against class indices ``target`` ``[N]``
    (a 0-d tensor in ``logits``' dtype). Triton where it can run and the inputs are of the
    supported kind, else ``F.cross_entropy`` (which also raises for bad targets: the
    kernel does not check that targets lie in ``[0, C)``; one outside gives the loss
    ``logsumexp``, never a memory fault)."""
    if (logits.dim() == 2 and target.dim() == 1 and len(target) == len(logits)
            and not target.is_floating_point() and len(logits) and runs_triton(logits)):
        return CrossEntropy.apply(logits, target)
    return reference_cross_entropy(logits, target)


def cross_entropy_for(mode: str, allow_cpu: bool | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The cross-entropy the objective should use under the ``kernels`` setting: plain
    ``F.cross_entropy`` for "off"; for "on" the fused one on CUDA tensors (and on the CPU
    when ``allow_cpu``/``NETCANVAS_KERNELS_CPU=1``); for "auto" the fused one only at
    shapes the policy table says it wins, which until it is measured on a GPU is none."""
    check_mode(mode)
    if mode == "off":
        return F.cross_entropy

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if mode == "on":
            wanted = logits.is_cuda or cpu_allowed(allow_cpu)
        else:
            wanted = logits.is_cuda and decide("cross_entropy", logits.device, logits.shape[1:],
                                               logits.dtype)[0]
        return cross_entropy(logits, target) if wanted else F.cross_entropy(logits, target)

    return loss
