"""Batch-first recurrent layers as the catalogue uses them."""

from __future__ import annotations

import torch
from torch import nn


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
