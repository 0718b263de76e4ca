"""The small torch modules that stand for catalogue layers torch has no module for.

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


class LastStep(nn.Module):
    """``[N, T, F] -> [N, F]``: the last time step of a sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]


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


class Embedding(nn.Embedding):
    """``[N, *S] -> [N, *S, embedding_dim]``; float inputs holding indices are cast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.long())


def _sequence_output(base: type[nn.RNNBase]) -> type[nn.RNNBase]:
    """A batch-first recurrent layer that returns only the full output sequence."""

    class SequenceOutput(base):  # type: ignore[misc, valid-type]
        __doc__ = f"``[N, T, F] -> [N, T, hidden * directions]`` ({base.__name__}, batch first)."

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return super().forward(x)[0]

    SequenceOutput.__name__ = SequenceOutput.__qualname__ = base.__name__
    return SequenceOutput


RNN = _sequence_output(nn.RNN)
LSTM = _sequence_output(nn.LSTM)
GRU = _sequence_output(nn.GRU)
