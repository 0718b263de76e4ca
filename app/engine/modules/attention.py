"""Attention and transformer layers, batch first, with a ``causal`` mask built in.

Each keeps torch's submodule and parameter names (``self_attn.in_proj_weight``,
``linear1.weight``, ``norm1.weight``), so a state_dict loads into ``torch.nn``'s own class.
The transformer layers spell out torch's post-norm / pre-norm forward instead of inheriting
it: torch's inference fast path (nested tensors, fused kernels) does not export to ONNX, and
every constructor argument is kept as a plain attribute so ``export --python`` can write the
call that rebuilds the layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(rows: int, columns: int, device: torch.device) -> torch.Tensor:
    """True where query position i may not look: key positions after i."""
    return torch.ones(rows, columns, dtype=torch.bool, device=device).triu(1)


class MultiheadAttention(nn.MultiheadAttention):
    """``[N, T, E]`` (self-attention), or query ``[N, T, E]``, key ``[N, S, kdim]``, value
    ``[N, S, vdim]`` -> (output ``[N, T, E]``, weights averaged over heads ``[N, T, S]``).

    Returns the tuple always; with ``need_weights`` false its second item is None, and torch
    may then take its faster path."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, causal: bool = False, need_weights: bool = True):
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, add_bias_kv=add_bias_kv,
                         add_zero_attn=add_zero_attn, kdim=kdim, vdim=vdim, batch_first=True)
        self.bias = bias
        self.add_bias_kv = add_bias_kv
        self.causal = causal
        self.need_weights = need_weights

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,  # type: ignore[override]
                value: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if key is None or value is None:
            key = value = query
        mask = causal_mask(query.shape[1], key.shape[1], query.device) if self.causal else None
        return super().forward(query, key, value, need_weights=self.need_weights, attn_mask=mask)


def _activation(name: str):
    return F.gelu if name == "gelu" else F.relu


class TransformerEncoderLayer(nn.Module):
    """torch's ``nn.TransformerEncoderLayer`` (batch first): ``[N, T, d_model]`` -> same."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 bias: bool = True, causal: bool = False):
        super().__init__()
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.dropout, self.activation, self.layer_norm_eps = dropout, activation, layer_norm_eps
        self.norm_first, self.bias, self.causal = norm_first, bias, causal
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(src.shape[1], src.shape[1], src.device) if self.causal else None
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), mask)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, mask))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.self_attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        return F.dropout(x, self.dropout, self.training)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(_activation(self.activation)(self.linear1(x)), self.dropout, self.training)
        return F.dropout(self.linear2(x), self.dropout, self.training)


class TransformerDecoderLayer(nn.Module):
    """torch's ``nn.TransformerDecoderLayer`` (batch first): target ``[N, T, d_model]`` and
    memory ``[N, S, d_model]`` -> ``[N, T, d_model]``; ``causal`` masks the self-attention."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 bias: bool = True, causal: bool = True):
        super().__init__()
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.dropout, self.activation, self.layer_norm_eps = dropout, activation, layer_norm_eps
        self.norm_first, self.bias, self.causal = norm_first, bias, causal
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                    batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(tgt.shape[1], tgt.shape[1], tgt.device) if self.causal else None
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), mask)
            x = x + self._mha_block(self.norm2(x), memory)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, mask))
            x = self.norm2(x + self._mha_block(x, memory))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.self_attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        return F.dropout(x, self.dropout, self.training)

    def _mha_block(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.multihead_attn(x, memory, memory, need_weights=False)[0]
        return F.dropout(x, self.dropout, self.training)

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(_activation(self.activation)(self.linear1(x)), self.dropout, self.training)
        return F.dropout(self.linear2(x), self.dropout, self.training)
