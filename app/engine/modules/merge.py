"""Merges of two or more inputs: Add, Multiply, Subtract, Divide (broadcasting), MatMul, Concat.

Broadcasting works on the dimensions after the batch: an input with fewer dimensions gets
size-1 dimensions inserted just after the batch (``pads[k]`` of them for input k), so that
torch aligns its features, not its batch, with the other inputs' trailing dimensions. Inputs
of one rank need no padding (``pads`` empty) and run exactly as a plain ``a + b``.
"""

from __future__ import annotations

import torch
from torch import nn


def _padded(xs: tuple[torch.Tensor, ...], pads: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Each input with ``pads[k]`` size-1 dimensions inserted after its batch dimension."""
    if not pads:
        return xs
    out = []
    for x, pad in zip(xs, pads):
        for _ in range(pad):  # at most 8 (the most dimensions a sample has)
            x = x.unsqueeze(1)
        out.append(x)
    return tuple(out)


class Add(nn.Module):
    """Element-wise sum of two or more inputs that broadcast after the batch dimension."""

    def __init__(self, pads: tuple[int, ...] = ()):
        super().__init__()
        self.pads = tuple(pads)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        xs = _padded(xs, self.pads)
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out

    def extra_repr(self) -> str:
        return f"pads={self.pads}" if self.pads else ""


class Multiply(nn.Module):
    """Element-wise product of two or more inputs that broadcast after the batch dimension."""

    def __init__(self, pads: tuple[int, ...] = ()):
        super().__init__()
        self.pads = tuple(pads)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        xs = _padded(xs, self.pads)
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out = out * x
        return out

    def extra_repr(self) -> str:
        return f"pads={self.pads}" if self.pads else ""


class Subtract(nn.Module):
    """``a - b`` of two inputs that broadcast after the batch dimension."""

    def __init__(self, pads: tuple[int, ...] = ()):
        super().__init__()
        self.pads = tuple(pads)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = _padded((a, b), self.pads)
        return a - b

    def extra_repr(self) -> str:
        return f"pads={self.pads}" if self.pads else ""


class Divide(nn.Module):
    """``a / b`` of two inputs that broadcast after the batch dimension."""

    def __init__(self, pads: tuple[int, ...] = ()):
        super().__init__()
        self.pads = tuple(pads)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = _padded((a, b), self.pads)
        return a / b

    def extra_repr(self) -> str:
        return f"pads={self.pads}" if self.pads else ""


class MatMul(nn.Module):
    """``torch.matmul`` of each sample's pair: samples of ``ranks`` dimensions (without the
    batch). A 1-D sample is made a row (first input) or a column (second) and that dimension
    removed again after, as torch does for 1-D operands; the samples' own batch dimensions
    broadcast against each other, never against the batch."""

    def __init__(self, ranks: tuple[int, int] = (2, 2)):
        super().__init__()
        self.ranks = tuple(ranks)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        rank_a, rank_b = self.ranks
        if rank_a == 1:
            a = a.unsqueeze(1)  # [N, K] -> [N, 1, K]
        if rank_b == 1:
            b = b.unsqueeze(2)  # [N, K] -> [N, K, 1]
        rank_a, rank_b = max(rank_a, 2), max(rank_b, 2)
        a, b = _padded((a, b), (max(0, rank_b - rank_a), max(0, rank_a - rank_b)))
        out = torch.matmul(a, b)
        if self.ranks[1] == 1:
            out = out.squeeze(-1)
        if self.ranks[0] == 1:
            out = out.squeeze(-1 if self.ranks[1] == 1 else -2)
        return out

    def extra_repr(self) -> str:
        return f"ranks={self.ranks}"


class Concat(nn.Module):
    """Concatenation along ``dim`` (counted with the batch dimension)."""

    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
