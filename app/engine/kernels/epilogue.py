"""The fused epilogue: ``y = act(x * scale[c] + shift[c] + residual)``.

It follows what cuBLAS/cuDNN leave behind: the bias and activation after a matmul (``C``
= out_features, ``L`` = 1), a conv bias or a BatchNorm folded to a per-channel scale and
shift after a convolution (``C`` = channels, ``L`` = H*W), a residual add. One read of
``x`` (and ``residual``), one write of ``y``, instead of one round trip per eager op.

Backward reads the upstream gradient and one saved tensor, the output ``y`` where the
activation's derivative follows from it (identity, relu, leaky_relu with slope >= 0,
sigmoid, tanh) or the pre-activation ``z`` (gelu, leaky_relu with a negative slope), and
writes ``dz = g * act'`` (and ``dx = dz * scale``). The per-channel sums for ``dscale`` and
``dshift`` are left to torch reductions.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .runtime import runs_triton

ACTIVATIONS = {"identity": 0, "relu": 1, "leaky_relu": 2, "gelu": 3, "sigmoid": 4, "tanh": 5}


def activate(z: torch.Tensor, act: str, slope: float = 0.01) -> torch.Tensor:
    """The reference activation, in plain torch (the oracle of the Triton one)."""
    if act == "relu":
        return F.relu(z)
    if act == "leaky_relu":
        return F.leaky_relu(z, slope)
    if act == "gelu":
        return F.gelu(z)
    if act == "sigmoid":
        return torch.sigmoid(z)
    if act == "tanh":
        return torch.tanh(z)
    if act == "identity":
        return z
    raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}")


def saves_output(act: str, slope: float) -> bool:
    """Whether backward can take the activation's derivative from its output alone."""
    return act not in ("gelu", "leaky_relu") or (act == "leaky_relu" and slope >= 0)


def channel_view(x: torch.Tensor) -> tuple[int, int]:
    """(C, L) of a ``[N, C, *spatial]`` tensor: channels and values per channel and sample."""
    if x.dim() < 2:
        return 1, 1
    return x.shape[1], math.prod(x.shape[2:])


def _broadcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(1, -1, *([1] * (x.dim() - 2)))


def reference_affine_act(x, scale=None, shift=None, residual=None, act="identity", slope=0.01):
    """``act(x * scale[c] + shift[c] + residual)`` in plain torch; channels on dim 1, or
    the last dim of a 2-d ``x``. Computed in float32, returned in ``x``'s dtype."""
    z = x.float()
    if scale is not None:
        z = z * _broadcast(scale.float(), x)
    if shift is not None:
        z = z + _broadcast(shift.float(), x)
    if residual is not None:
        z = z + residual.float()
    return activate(z, act, slope).to(x.dtype)


class AffineAct(torch.autograd.Function):
    """Triton forward and backward of ``reference_affine_act`` (same arguments)."""

    @staticmethod
    def forward(ctx, x, scale, shift, residual, act: str, slope: float):
        x = x.contiguous()
        c, l = channel_view(x) if (scale is not None or shift is not None) else (1, 1)
        scale_c = scale.contiguous() if scale is not None else None
        shift_c = shift.contiguous() if shift is not None else None
        res = residual.contiguous() if residual is not None else None
        from .triton_kernels import epilogue_forward  # Triton is optional (Linux only)

        from_y = saves_output(act, slope)
        y, z = epilogue_forward(x, scale_c, shift_c, res, ACTIVATIONS[act], slope, c, l,
                                store_z=not from_y and act != "identity")
        need_x = scale is not None and ctx.needs_input_grad[1]
        saved = None if act == "identity" else (y if from_y else z)
        ctx.save_for_backward(saved, scale_c, x if need_x else None)
        ctx.meta = (act, slope, from_y, c, l, shift.dtype if shift is not None else None)
        return y

    @staticmethod
    def backward(ctx, g):
        saved, scale, x = ctx.saved_tensors
        act, slope, from_y, c, l, shift_dtype = ctx.meta
        from .triton_kernels import epilogue_backward  # Triton is optional (Linux only)

        need_dx, need_dscale, need_dshift, need_dres = ctx.needs_input_grad[:4]
        want_dx = need_dx and scale is not None
        dz, dx = epilogue_backward(g.contiguous(), saved, scale,
                                   ACTIVATIONS[act], slope, from_y, c, l, want_dx)
        if need_dx and scale is None:
            dx = dz
        dims = [d for d in range(dz.dim()) if d != 1] if dz.dim() >= 2 else [0]
        dscale = dshift = None
        if need_dscale:
            dscale = (dz.float() * x.float()).sum(dims).to(scale.dtype)
        if need_dshift and shift_dtype is not None:
            dshift = dz.sum(dims, dtype=torch.float32).to(shift_dtype)
        return dx, dscale, dshift, dz if need_dres else None, None, None


def affine_act(x, scale=None, shift=None, residual=None, act="identity", slope=0.01):
    """``act(x * scale[c] + shift[c] + residual)``: the Triton kernels where they can run
    (CUDA, or the CPU interpreter), else ``reference_affine_act``. ``x`` ``[N, C, ...]``
    (or ``[N, C]``), ``scale``/``shift`` ``[C]``, ``residual`` like ``x``; returns ``x``'s
    shape and dtype. Raises ``ValueError`` for an unknown activation."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}")
    if residual is not None and residual.shape != x.shape:
        return reference_affine_act(x, scale, shift, residual, act, slope)  # broadcasting add
    if runs_triton(x):
        dtype = x.dtype
        if residual is not None and residual.dtype != dtype:
            residual = residual.to(dtype)
        return AffineAct.apply(x, scale, shift, residual, act, float(slope))
    return reference_affine_act(x, scale, shift, residual, act, slope)
