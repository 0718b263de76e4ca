"""Normalization layers."""

from __future__ import annotations

from torch import nn

from .. import modules
from ..params import MAX_RANK, Param
from .helpers import batch_dim, fmt, need_rank, same_shapes
from .spec import LayerSpec, ShapeError

_eps = Param("eps", "float", 1e-5, "Added to the variance for stability.", 1e-12, 1.0)
_momentum = Param("momentum", "float", 0.1, "Weight of each batch in the running statistics.", 0.0, 1.0)



def _batchnorm(ndim, ranks):
    def infer(shapes, p):
        need_rank(f"BatchNorm{ndim}d", shapes[0], ranks)
        return shapes[0]

    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[ndim]
    shape = "[C] or [C, L]" if ndim == 1 else "[C, H, W]"
    return LayerSpec(
        f"BatchNorm{ndim}d", "Normalization",
        f"Normalizes each channel over the batch: {shape}, same shape out.",
        (_eps, _momentum),
        infer,
        lambda shapes, p: cls(shapes[0][0], eps=p["eps"], momentum=p["momentum"]),
        lambda shapes, p: 2 * shapes[0][0],
    )


def _layernorm_infer(shapes, p):
    return shapes[0]


SPECS = [
    _batchnorm(1, {1: "[C]", 2: "[C, L]"}),
    _batchnorm(2, {3: "[C, H, W]"}),
    LayerSpec(
        "LayerNorm", "Normalization",
        "Normalizes each sample over its last dimension: [..., F], same shape out.",
        (_eps,), _layernorm_infer,
        lambda shapes, p: nn.LayerNorm(shapes[0][-1], eps=p["eps"]),
        lambda shapes, p: 2 * shapes[0][-1],
    ),
]
