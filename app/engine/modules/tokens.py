"""Sequence and token layers torch has no module for (ClassToken, PositionalEmbedding,
Scale, LayerScale, StochasticDepth), and the tensor-method layers beside them (Permute,
Transpose, Select, Mean).

Dimensions count with the batch as dimension 0, as torch counts them. Weights keep the
names the project format gives them: ``token``, ``table``, ``gamma``.
"""

from __future__ import annotations

import torch
from torch import nn


class Permute(nn.Module):
    """``x.permute(*dims)``; ``dims`` starts with 0 (the batch stays first)."""

    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={list(self.dims)}"


class Transpose(nn.Module):
    """``x.transpose(dim0, dim1)``."""

    def __init__(self, dim0: int, dim1: int):
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)

    def extra_repr(self) -> str:
        return f"dim0={self.dim0}, dim1={self.dim1}"


class Select(nn.Module):
    """``x.select(dim, index)``: removes ``dim`` (``[N, 197, 768] -> [N, 768]`` with dim 1, index 0)."""

    def __init__(self, dim: int, index: int):
        super().__init__()
        self.dim, self.index = dim, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, index={self.index}"


class Mean(nn.Module):
    """``x.mean(dims, keepdim)``: the average over ``dims``."""

    def __init__(self, dims: int | list[int], keepdim: bool = False):
        super().__init__()
        self.dims = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"dims={list(self.dims)}, keepdim={self.keepdim}"


class ClassToken(nn.Module):
    """``[N, T, D] -> [N, T+1, D]``: prepends a learned token (``token``, ``[1, 1, D]``),
    initialized to zeros as torchvision's ViT does."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.token = nn.Parameter(torch.zeros(1, 1, embedding_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)

    def extra_repr(self) -> str:
        return f"{self.embedding_dim}"


class PositionalEmbedding(nn.Module):
    """``[N, T, D] -> [N, T, D]``: adds a learned table (``table``, ``[1, T, D]``),
    initialized as timm's ViT does (``trunc_normal_``, std 0.02)."""

    def __init__(self, num_positions: int, embedding_dim: int):
        super().__init__()
        self.num_positions, self.embedding_dim = num_positions, embedding_dim
        self.table = nn.Parameter(torch.empty(1, num_positions, embedding_dim))
        nn.init.trunc_normal_(self.table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table

    def extra_repr(self) -> str:
        return f"num_positions={self.num_positions}, embedding_dim={self.embedding_dim}"


class Scale(nn.Module):
    """``x * factor``, a constant."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class LayerScale(nn.Module):
    """``x * gamma``: a learned factor per position of one dimension (``gamma`` of ``shape``,
    which broadcasts against a sample: ``[C, 1, 1]`` for the channels of ``[C, H, W]``,
    ``[D]`` for the features of ``[T, D]``), starting at ``init_value`` (ConvNeXt, CaiT)."""

    def __init__(self, shape: int | list[int], init_value: float = 1e-6):
        super().__init__()
        self.shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full(self.shape, float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma

    def extra_repr(self) -> str:
        return f"shape={list(self.shape)}, init_value={self.init_value}"


class StochasticDepth(nn.Module):
    """As ``torchvision.ops.StochasticDepth``: while training, zeroes the whole input of a
    sample (mode "row") or of the batch (mode "batch") with probability ``p`` and scales the
    rest by ``1 / (1 - p)``; the identity in evaluation. Sits on a residual branch, before the Add."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"
