"""The fused modules the compiler swaps in, and the pass-through left at absorbed nodes.

A fused module sits at the first node of the chain it replaces (the Linear, the Conv2d, or
the Add) and owns that node's own parameters under their own names (``weight``,
``bias``: the very same ``Parameter`` objects), so ``state_dict`` keys do not change. Each
other node of the chain keeps a ``FusedInto`` that passes its input through and still
holds that node's parameters and buffers (a BatchNorm's ``weight``, ``running_mean`` ...)
under their own names. Every node id therefore still names a module, and weights files
load into the fused model and the unfused one alike.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .epilogue import activate, affine_act
from .linear import linear_act


class FusedInto(nn.Module):
    """Stands at a node whose work the fused module at ``into`` does: returns its input.
    Holds the original module's parameters and buffers (same tensors, same names)."""

    def __init__(self, original: nn.Module, into: str):
        super().__init__()
        self.into = into
        self.original_type = type(original).__name__
        for name, p in original.named_parameters(recurse=False):
            self.register_parameter(name, p)
        for name, b in original.named_buffers(recurse=False):
            self.register_buffer(name, b, persistent=name not in original._non_persistent_buffers_set)
        for name in ("eps", "momentum", "num_features"):  # BatchNorm hyper-parameters
            if hasattr(original, name):
                setattr(self, name, getattr(original, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        return f"{self.original_type} fused into {self.into!r}"


class FusedLinearAct(nn.Module):
    """Linear + activation: ``[..., in_features] -> [..., out_features]``."""

    def __init__(self, linear: nn.Linear, act: str, slope: float = 0.01):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_parameter("weight", linear.weight)
        self.register_parameter("bias", linear.bias)
        self.act, self.slope = act, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_act(x, self.weight, self.bias, self.act, self.slope)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, act={self.act}"


class FusedConv2dAct(nn.Module):
    """Conv2d (by cuDNN, without its bias) + per-channel affine (the conv bias, or a
    BatchNorm2d folded to scale and shift) + optional residual + activation:
    ``[N, C, H, W] (, residual [N, out, H', W']) -> [N, out, H', W']``.

    BatchNorm in training mode: torch computes the batch mean and variance (float32,
    differentiable), folds them with gamma and beta into ``scale = gamma / sqrt(var + eps)``
    and ``shift = beta - mean * scale``, and updates the running statistics exactly as
    BatchNorm2d does; the kernel applies scale, shift, residual and activation in one pass,
    and autograd carries the gradients of scale and shift back through the statistics, so
    the gradient is BatchNorm's own. In eval mode the running statistics are folded."""

    def __init__(self, conv: nn.Conv2d, bn: FusedInto | None, act: str = "identity", slope: float = 0.01,
                 residual: bool = False):
        super().__init__()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.register_parameter("weight", conv.weight)
        self.register_parameter("bias", conv.bias)
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.groups, self.padding_mode = conv.groups, conv.padding_mode
        self.mode_padding = conv._reversed_padding_repeated_twice
        self.same_pads = getattr(conv, "same_pads", None)
        self._bn = (bn,) if bn is not None else ()  # a reference, not a submodule: no second state_dict key
        self.act, self.slope, self.residual = act, slope, residual

    @property
    def bn(self) -> FusedInto | None:
        return self._bn[0] if self._bn else None

    def conv(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution alone, without its bias."""
        if self.same_pads:
            x = F.pad(x, self.same_pads)
        if self.padding_mode != "zeros":
            x = F.pad(x, self.mode_padding, mode=self.padding_mode)
            return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)

    def affine(self, t: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(scale, shift) per channel for the conv output ``t``; updates BatchNorm's running
        statistics in training mode."""
        bn, b = self.bn, self.bias
        if bn is None:
            return None, b
        if not self.training:
            scale = bn.weight * torch.rsqrt(bn.running_var.float() + bn.eps)
            mean = bn.running_mean.float() if b is None else bn.running_mean.float() - b
            return scale, bn.bias - mean * scale
        var, mean = torch.var_mean(t.float(), dim=(0, 2, 3), correction=0)
        if b is not None:
            mean = mean + b  # the statistics of conv + bias, as the unfused BatchNorm sees them
        scale = bn.weight * torch.rsqrt(var + bn.eps)
        shift = bn.bias - (mean if b is None else mean - b) * scale  # conv + bias - mean: bias cancels
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            n = t.numel() // t.shape[1]
            bn.running_mean.mul_(1 - m).add_(mean.detach().to(bn.running_mean.dtype), alpha=m)
            bn.running_var.mul_(1 - m).add_((var.detach() * (n / (n - 1))).to(bn.running_var.dtype), alpha=m)
        return scale, shift

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        t = self.conv(x)
        if self.bn is not None and self.training and t.numel() <= t.shape[1]:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {t.shape}")
        scale, shift = self.affine(t)
        return affine_act(t, scale, shift, residual, self.act, self.slope)

    def extra_repr(self) -> str:
        parts = [f"{self.in_channels}, {self.out_channels}", f"stride={self.stride}"]
        if self.bn is not None:
            parts.append("batchnorm")
        if self.residual:
            parts.append("residual")
        return ", ".join(parts + [f"act={self.act}"])


class FusedAddAct(nn.Module):
    """Add of two inputs + activation: ``[S], [S] -> [S]``."""

    def __init__(self, act: str, slope: float = 0.01):
        super().__init__()
        self.act, self.slope = act, slope

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.dtype != b.dtype:  # broadcasting or promoting: torch's rules
            return activate(a + b, self.act, self.slope)
        return affine_act(a, None, None, b, self.act, self.slope)

    def extra_repr(self) -> str:
        return f"act={self.act}"
