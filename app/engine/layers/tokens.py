"""Transformer building blocks torch has no class for: ClassToken, PositionalEmbedding,
Scale, LayerScale and StochasticDepth (their modules are ``modules/tokens.py``).

Weights are named as the project format says: ``<id>.token`` ``[1, 1, D]``,
``<id>.table`` ``[1, T, D]``, ``<id>.gamma`` (shaped to broadcast against a sample).
"""

from __future__ import annotations

from math import prod

from ..lazy import modules  # torch loads when a module is built, not here
from ..params import MAX_RANK, Param
from .helpers import need_rank
from .reshaping import axis
from .spec import LayerSpec

CATEGORY = "Transformer"
_SEQUENCE = {2: "[T, D] (tokens, features)"}


def _class_token(shapes, p):
    need_rank("ClassToken", shapes[0], _SEQUENCE)
    t, d = shapes[0]
    return (t + 1, d)


def _positional(shapes, p):
    need_rank("PositionalEmbedding", shapes[0], _SEQUENCE)
    return shapes[0]


def _gamma_shape(shapes, p) -> tuple[int, ...]:
    """LayerScale's weight: the size of ``dim`` followed by a 1 for every later dimension,
    so that it broadcasts (``[C, 1, 1]`` for dim 1 of ``[C, H, W]``, ``[D]`` for dim 2 of ``[T, D]``)."""
    shape = shapes[0]
    d = axis("LayerScale", p["dim"], shape, "dim", "scale along")
    return (shape[d - 1],) + (1,) * (len(shape) - d)


def _layer_scale(shapes, p):
    _gamma_shape(shapes, p)
    return shapes[0]


SPECS = [
    LayerSpec(
        "ClassToken", CATEGORY,
        "Prepends a learned token (ViT's class token, initialized to zeros as torchvision "
        "does): [T, D] -> [T+1, D]; weight `token` [1, 1, D].",
        (),
        _class_token, lambda shapes, p: modules.ClassToken(shapes[0][1]),
        lambda shapes, p: shapes[0][1],
        samples=((((4, 8),), {}), (((1, 3),), {}), (((196, 5),), {})),
    ),
    LayerSpec(
        "PositionalEmbedding", CATEGORY,
        "Adds a learned position table (initialized as timm's ViT: truncated normal, std "
        "0.02): [T, D] -> [T, D]; weight `table` [1, T, D].",
        (),
        _positional, lambda shapes, p: modules.PositionalEmbedding(*shapes[0]),
        lambda shapes, p: prod(shapes[0]),
        samples=((((5, 8),), {}), (((1, 3),), {}), (((17, 2),), {})),
    ),
    LayerSpec(
        "Scale", CATEGORY,
        "Multiplies by a constant factor (no weights). Any shape in, the same shape out.",
        (Param("factor", "float", doc="The constant to multiply by.", key=True),),
        lambda shapes, p: shapes[0], lambda shapes, p: modules.Scale(p["factor"]),
        samples=((((3, 5, 7),), {"factor": 0.5}), (((4,),), {"factor": -2}), (((2, 3),), {"factor": 0.0})),
    ),
    LayerSpec(
        "LayerScale", CATEGORY,
        "Multiplies by a learned factor per position of dim, starting at init_value: the "
        "channels of [C, H, W] with dim 1 (ConvNeXt; weight `gamma` [C, 1, 1]), the features "
        "of [T, D] with dim 2 (CaiT; `gamma` [D]). Same shape out.",
        (
            Param("dim", "int", 1, "Dimension the factors run along, counted with the batch.",
                  -MAX_RANK, MAX_RANK),
            Param("init_value", "float", 1e-6, "Starting value of every factor.", key=True),
        ),
        _layer_scale,
        lambda shapes, p: modules.LayerScale(_gamma_shape(shapes, p), init_value=p["init_value"]),
        lambda shapes, p: _gamma_shape(shapes, p)[0],
        samples=(
            (((6, 5, 7),), {}),
            (((4, 9),), {"dim": 2, "init_value": 1e-5}),
            (((4, 9),), {"dim": -2, "init_value": 0.1}),
            (((2, 3, 4, 5),), {"dim": 3}),
        ),
    ),
    LayerSpec(
        "StochasticDepth", "Regularization",
        "As torchvision.ops.StochasticDepth: while training, drops a residual branch whole "
        "with probability p (per sample with mode \"row\", for the whole batch with \"batch\") "
        "and scales the kept ones by 1/(1-p); identity in evaluation. Put it on the branch, "
        "before the Add. Any shape in, the same shape out.",
        (
            Param("p", "float", doc="Probability of dropping the branch.", minimum=0.0, maximum=1.0, key=True),
            Param("mode", "choice", "row", "\"row\": per sample; \"batch\": the whole batch at once.",
                  choices=("row", "batch")),
        ),
        lambda shapes, p: shapes[0], lambda shapes, p: modules.StochasticDepth(p["p"], p["mode"]),
        samples=(
            (((3, 5, 7),), {"p": 0.2}),
            (((4, 9),), {"p": 0.5, "mode": "batch"}),
            (((6,),), {"p": 1.0}),
        ),
    ),
]
