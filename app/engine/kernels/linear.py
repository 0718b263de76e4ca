"""Fused Linear + bias + activation: ``y = act(x @ W^T + b)``.

The matmul stays with torch (cuBLAS); the bias and the activation run in the Triton
epilogue (one pass over the ``[N, out]`` result instead of one per op), and backward
computes ``dz = g * act'`` in Triton before the two matmuls of the gradients. Saved for
backward: ``x``, ``W`` and one ``[N, out]`` tensor (the output, or for gelu the
pre-activation), as eager saves.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .epilogue import ACTIVATIONS, activate, saves_output
from .runtime import runs_triton


def reference_linear_act(x, weight, bias=None, act="identity", slope=0.01):
    """The oracle: ``act(F.linear(x, weight, bias))``."""
    return activate(F.linear(x, weight, bias), act, slope)


class LinearAct(torch.autograd.Function):
    """Triton epilogue forward and backward of ``reference_linear_act`` (same arguments)."""

    @staticmethod
    def forward(ctx, x, weight, bias, act: str, slope: float):
        from .triton_kernels import epilogue_forward  # Triton is optional (Linux only)

        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        w = weight.contiguous()
        h = torch.mm(x2, w.t())
        from_y = saves_output(act, slope)
        b = bias.contiguous() if bias is not None else None
        y, z = epilogue_forward(h, None, b, None, ACTIVATIONS[act], slope, h.shape[1], 1,
                                store_z=not from_y and act != "identity")
        del h
        saved = None if act == "identity" else (y if from_y else z)
        ctx.save_for_backward(x2, w, saved)
        ctx.meta = (act, slope, from_y, x.shape, bias.dtype if bias is not None else None)
        return y.view(*lead, w.shape[0])

    @staticmethod
    def backward(ctx, g):
        from .triton_kernels import epilogue_backward  # Triton is optional (Linux only)

        x2, w, saved = ctx.saved_tensors
        act, slope, from_y, x_shape, bias_dtype = ctx.meta
        g2 = g.reshape(-1, w.shape[0]).contiguous()
        dz, _ = epilogue_backward(g2, saved, None, ACTIVATIONS[act], slope, from_y, w.shape[0], 1, False)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.mm(dz, w).view(x_shape)
        if ctx.needs_input_grad[1]:
            dw = torch.mm(dz.t(), x2)
        if ctx.needs_input_grad[2] and bias_dtype is not None:
            db = dz.sum(0, dtype=torch.float32).to(bias_dtype)
        return dx, dw, db, None, None


def linear_act(x, weight, bias=None, act="identity", slope=0.01):
    """``act(x @ weight^T + bias)`` for ``x`` ``[..., in]``, ``weight`` ``[out, in]``,
    ``bias`` ``[out]``; returns ``[..., out]`` in ``x``'s dtype. Triton where it can run,
    else the reference (also under autocast). Raises ``ValueError`` for an unknown activation."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}")
    if (runs_triton(x) and x.dtype == weight.dtype and x.shape[-1] == weight.shape[1]
            and not torch.is_autocast_enabled(x.device.type)):  # autocast: its own casting rules
        return LinearAct.apply(x, weight, bias, act, float(slope))
    return reference_linear_act(x, weight, bias, act, slope)
