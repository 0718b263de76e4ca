"""Every Triton kernel of NetCanvas, and the small functions that launch them.

Imported only when a kernel is about to run (``runtime.runs_triton`` said yes), so the
engine imports without Triton. All arithmetic is float32 whatever the storage type
(fp32, fp16, bf16); results are rounded once, on the final store.

Activation codes (``ACT``): 0 identity, 1 relu, 2 leaky_relu, 3 gelu (erf), 4 sigmoid,
5 tanh. ``SAVED_IS_Y`` says whether backward receives the activation's output ``y`` (enough
for every activation but gelu and leaky_relu with a negative slope) or its input ``z``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .runtime import interpreting


@triton.jit
def _activate(z, ACT: tl.constexpr, slope):
    if ACT == 1:
        y = tl.maximum(z, 0.0)
    elif ACT == 2:
        y = tl.where(z > 0.0, z, z * slope)
    elif ACT == 3:
        y = 0.5 * z * (1.0 + tl.erf(z * 0.7071067811865476))
    elif ACT == 4:
        y = 1.0 / (1.0 + tl.exp(-z))
    elif ACT == 5:
        e = tl.exp(-2.0 * tl.abs(z))  # never overflows: tanh|z| = (1 - e) / (1 + e)
        t = (1.0 - e) / (1.0 + e)
        y = tl.where(z < 0.0, -t, t)
    else:
        y = z
    return y


@triton.jit
def _activation_grad(s, ACT: tl.constexpr, slope, SAVED_IS_Y: tl.constexpr):
    """d act / d z, from the saved output (``SAVED_IS_Y``) or the saved input ``s``.
    At z == 0 it matches torch: relu' = 0, leaky_relu' = slope."""
    if ACT == 1:
        d = tl.where(s > 0.0, 1.0, 0.0)
    elif ACT == 2:
        d = tl.where(s > 0.0, 1.0, slope)
    elif ACT == 3:
        cdf = 0.5 * (1.0 + tl.erf(s * 0.7071067811865476))
        d = cdf + s * 0.3989422804014327 * tl.exp(-0.5 * s * s)
    elif ACT == 4:
        if SAVED_IS_Y:
            d = s * (1.0 - s)
        else:
            sg = 1.0 / (1.0 + tl.exp(-s))
            d = sg * (1.0 - sg)
    elif ACT == 5:
        if SAVED_IS_Y:
            d = 1.0 - s * s
        else:
            e = tl.exp(-2.0 * tl.abs(s))
            t = (1.0 - e) / (1.0 + e)
            d = 1.0 - t * t
    else:
        d = s * 0.0 + 1.0
    return d


@triton.jit
def _epilogue_fwd(x_ptr, scale_ptr, shift_ptr, res_ptr, y_ptr, z_ptr, n, C, L, slope,
                  HAS_SCALE: tl.constexpr, HAS_SHIFT: tl.constexpr, HAS_RES: tl.constexpr,
                  ACT: tl.constexpr, STORE_Z: tl.constexpr, BLOCK: tl.constexpr):
    """y = act(x * scale[c] + shift[c] + res) over a contiguous [N, C, L] tensor, flat:
    element i belongs to channel (i // L) % C. Optionally stores z (the pre-activation)."""
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    z = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    c = (offs // L) % C  # unused (and compiled away) without scale and shift
    if HAS_SCALE:
        z = z * tl.load(scale_ptr + c, mask=mask, other=1.0).to(tl.float32)
    if HAS_SHIFT:
        z = z + tl.load(shift_ptr + c, mask=mask, other=0.0).to(tl.float32)
    if HAS_RES:
        z = z + tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    y = _activate(z, ACT, slope)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
    if STORE_Z:
        tl.store(z_ptr + offs, z.to(z_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _epilogue_bwd(g_ptr, s_ptr, scale_ptr, dz_ptr, dx_ptr, n, C, L, slope,
                  ACT: tl.constexpr, SAVED_IS_Y: tl.constexpr, STORE_DX: tl.constexpr,
                  BLOCK: tl.constexpr):
    """dz = g * act'(.), and dx = dz * scale[c] when ``STORE_DX``."""
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if ACT == 0:
        dz = g
    else:
        s = tl.load(s_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        dz = g * _activation_grad(s, ACT, slope, SAVED_IS_Y)
    tl.store(dz_ptr + offs, dz.to(dz_ptr.dtype.element_ty), mask=mask)
    if STORE_DX:
        c = (offs // L) % C
        dx = dz * tl.load(scale_ptr + c, mask=mask, other=0.0).to(tl.float32)
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _cross_entropy_fwd(logits_ptr, target_ptr, loss_ptr, grad_ptr, N, C, inv_n,
                       WRITE_GRAD: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """``BLOCK_R`` rows of contiguous [N, C] logits (several rows a program, since models
    here have few classes): loss = logsumexp(x) - x[target], and, with ``WRITE_GRAD``,
    d(mean loss)/dx = (softmax(x) - onehot(target)) / N, written while the rows are still
    in cache. The probabilities are never stored."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < N
    # rows past the end read the last row again (never an all -inf row: no inf - inf)
    base = logits_ptr + tl.minimum(rows, N - 1)[:, None] * C
    target = tl.load(target_ptr + rows, mask=row_ok, other=0).to(tl.int64)
    m = tl.full([BLOCK_R], float("-inf"), tl.float32)
    d = tl.zeros([BLOCK_R], tl.float32)
    for start in range(0, C, BLOCK_C):  # online logsumexp (Milakov & Gimelshein)
        cols = start + tl.arange(0, BLOCK_C)
        x = tl.load(base + cols[None, :], mask=cols[None, :] < C, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, 1))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new[:, None]), 1)
        m = m_new
    lse = m + tl.log(d)
    valid = row_ok & (target >= 0) & (target < C)
    x_t = tl.load(logits_ptr + rows * C + target, mask=valid, other=0.0).to(tl.float32)
    tl.store(loss_ptr + rows, lse - x_t, mask=row_ok)
    if WRITE_GRAD:
        gbase = grad_ptr + rows[:, None] * C
        for start in range(0, C, BLOCK_C):
            cols = start + tl.arange(0, BLOCK_C)
            mask = row_ok[:, None] & (cols[None, :] < C)
            x = tl.load(base + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            g = tl.exp(x - lse[:, None]) - tl.where(cols[None, :] == target[:, None], 1.0, 0.0)
            tl.store(gbase + cols[None, :], (g * inv_n).to(grad_ptr.dtype.element_ty), mask=mask)


# -- launchers -----------------------------------------------------------------------------

def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _elementwise_block(n: int) -> int:
    # a GPU wants ~1k elements a program; the interpreter pays per program, so few and big
    if interpreting():
        return min(_next_pow2(n), 1 << 16)
    return 1024


def epilogue_forward(x, scale, shift, residual, act: int, slope: float, C: int, L: int,
                     store_z: bool):
    """Launch the forward epilogue on contiguous tensors; returns (y, z or None)."""
    n = x.numel()
    y = torch.empty_like(x)
    z = torch.empty_like(x) if store_z else None
    if n == 0:
        return y, z
    block = _elementwise_block(n)
    _epilogue_fwd[(triton.cdiv(n, block),)](
        x, scale if scale is not None else x, shift if shift is not None else x,
        residual if residual is not None else x, y, z if z is not None else y,
        n, C, L, float(slope),
        HAS_SCALE=scale is not None, HAS_SHIFT=shift is not None, HAS_RES=residual is not None,
        ACT=act, STORE_Z=store_z, BLOCK=block, num_warps=4)
    return y, z


def epilogue_backward(g, saved, scale, act: int, slope: float, saved_is_y: bool, C: int, L: int,
                      want_dx: bool):
    """Launch the backward epilogue; returns (dz, dx) with dx = dz * scale[c] (None unless
    ``want_dx``)."""
    n = g.numel()
    dz = torch.empty_like(g)
    dx = torch.empty_like(g) if want_dx else None
    if n == 0:
        return dz, dx
    block = _elementwise_block(n)
    _epilogue_bwd[(triton.cdiv(n, block),)](
        g, saved if saved is not None else g, scale if scale is not None else g, dz,
        dx if dx is not None else dz, n, C, L, float(slope),
        ACT=act, SAVED_IS_Y=saved_is_y, STORE_DX=want_dx, BLOCK=block, num_warps=4)
    return dz, dx


def cross_entropy_forward(logits, target, want_grad: bool):
    """Per-row losses (float32 ``[N]``) and, with ``want_grad``, the gradient of the mean
    loss with respect to ``logits`` (its dtype). ``logits`` contiguous ``[N, C]``."""
    n, c = logits.shape
    losses = torch.empty(n, device=logits.device, dtype=torch.float32)
    grad = torch.empty_like(logits) if want_grad else None
    if n == 0:
        return losses, grad
    # the interpreter pays per program: few, big ones; a GPU wants a row in a few passes of
    # <= 4096 columns, and a few rows a program when there are few classes (64 rows of 10)
    if interpreting():
        block_c = min(_next_pow2(c), 1 << 16)
        block_r = max(1, min(_next_pow2(n), (1 << 16) // block_c))
    else:
        block_c = min(_next_pow2(c), 4096)
        block_r = max(1, min(_next_pow2(n), 1024 // block_c))
    _cross_entropy_fwd[(triton.cdiv(n, block_r),)](
        logits, target, losses, grad if grad is not None else logits, n, c, 1.0 / n,
        WRITE_GRAD=want_grad, BLOCK_R=block_r, BLOCK_C=block_c, num_warps=4 if block_r * block_c <= 2048 else 8)
    return losses, grad
