"""Regularization beyond Dropout (which core.py declares): the channel-wise Dropout1d-3d
and AlphaDropout. All are the identity in evaluation; same shape out."""

from __future__ import annotations


from ..lazy import nn, torch_class  # torch loads when a module is built, not here
from ..params import Param
from .helpers import need_rank
from .spec import LayerSpec

_p = Param("p", "float", 0.5, "Probability of zeroing a value (a whole channel for DropoutNd).", 0.0, 1.0, key=True)

# the sample shape torch expects of each (its input with the batch is [N, C, *spatial])
_RANKS = {1: {2: "[C, L]"}, 2: {3: "[C, H, W]"}, 3: {4: "[C, D, H, W]"}}
_SAMPLES = {
    1: ((((4, 9),), {}), (((3, 1),), {"p": 0.2}), (((1, 5),), {"p": 1.0})),
    2: ((((3, 5, 7),), {}), (((6, 2, 1),), {"p": 0.1}), (((1, 3, 3),), {"p": 0.0})),
    3: ((((2, 3, 4, 5),), {}), (((4, 1, 2, 3),), {"p": 0.25})),
}


def _dropout_nd(ndim: int) -> LayerSpec:
    name, ranks = f"Dropout{ndim}d", _RANKS[ndim]
    cls = torch_class(name)
    shape = next(iter(ranks.values()))

    def infer(shapes, p):
        need_rank(name, shapes[0], ranks)
        return shapes[0]

    return LayerSpec(
        name, "Regularization",
        f"Zeroes whole channels with probability p while training (scaling the rest by "
        f"1/(1-p)); identity in evaluation: {shape}, same shape out.",
        (_p,), infer, lambda shapes, p: cls(p["p"]),
        samples=_SAMPLES[ndim],
    )


SPECS = [
    _dropout_nd(1),
    _dropout_nd(2),
    _dropout_nd(3),
    LayerSpec(
        "AlphaDropout", "Regularization",
        "Dropout that keeps a SELU network's mean and variance while training; identity in "
        "evaluation. Any shape in, the same shape out.",
        (Param("p", "float", 0.5, "Probability of dropping a value.", 0.0, 1.0, key=True),),
        lambda shapes, p: shapes[0], lambda shapes, p: nn.AlphaDropout(p["p"]),
        samples=((((7,),), {}), (((3, 5, 6),), {"p": 0.2}), (((4, 9),), {"p": 1.0})),
    ),
]
