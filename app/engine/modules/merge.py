"""Merges of two or more inputs: Add, Multiply, Concat."""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """Element-wise sum of two or more inputs of one shape."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out


class Multiply(nn.Module):
    """Element-wise product of two or more inputs of one shape."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out = out * x
        return out


class Concat(nn.Module):
    """Concatenation along ``dim`` (counted with the batch dimension)."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
