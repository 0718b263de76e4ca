"""Shape helpers, "same"-padded convolutions and the Embedding that casts its indices.

Each keeps torch's own parameter names so a state_dict reads ``<node id>.<torch name>``.
"""

from __future__ import annotations

import torch
from torch import nn


class Reshape(nn.Module):
    """``[N, *in] -> [N, *shape]`` (one entry of ``shape`` may be -1)."""

    def __init__(self, shape: list[int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={list(self.shape)}"


class Split(nn.Module):
    """``[N, ..., sum(sizes), ...] -> ([N, ..., sizes[0], ...], ...)``: one part per size."""

    def __init__(self, sizes: list[int], dim: int = 1):
        super().__init__()
        self.sizes = list(sizes)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.dim))

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dim={self.dim}"


class LastStep(nn.Module):
    """``[N, T, F] -> [N, F]``: the last time step of a sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]


def _same_padding(base: type[nn.Module]) -> type[nn.Module]:
    """A convolution with "same" padding done by an explicit ``F.pad``: torch pads an
    even window one extra on the right and bottom; this does the same, without its warning."""

    class SamePadding(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.padding = (0,) * len(self.kernel_size)
            self._reversed_padding_repeated_twice = [0, 0] * len(self.kernel_size)
            pads = []
            for k, d in reversed(list(zip(self.kernel_size, self.dilation))):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            self.same_pads = tuple(pads)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(torch.nn.functional.pad(x, self.same_pads))

        def extra_repr(self) -> str:
            return super().extra_repr() + ', padding="same"'

    SamePadding.__name__ = SamePadding.__qualname__ = base.__name__
    return SamePadding


SameConv1d = _same_padding(nn.Conv1d)
SameConv2d = _same_padding(nn.Conv2d)
SameConv3d = _same_padding(nn.Conv3d)


class Embedding(nn.Embedding):
    """``[N, *S] -> [N, *S, embedding_dim]``; float inputs holding indices are cast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.long())
