"""Batch-first recurrent layers as the catalogue uses them."""

from __future__ import annotations

import torch
from torch import nn


def _sequence_output(base: type[nn.RNNBase]) -> type[nn.RNNBase]:
    """A batch-first recurrent layer that returns the full output sequence and the last
    layer's final hidden state (both directions' side by side)."""

    class SequenceOutput(base):  # type: ignore[misc, valid-type]
        __doc__ = (f"``[N, T, F] -> ([N, T, hidden * directions], [N, hidden * directions])`` "
                   f"({base.__name__}, batch first).")

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
            out, state = super().forward(x)
            h = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
            # h_n: [layers * directions, N, hidden], the last layer's directions last
            last = torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]
            return out, last

    SequenceOutput.__name__ = SequenceOutput.__qualname__ = base.__name__
    return SequenceOutput


RNN = _sequence_output(nn.RNN)
LSTM = _sequence_output(nn.LSTM)
GRU = _sequence_output(nn.GRU)
