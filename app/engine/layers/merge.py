"""Layers that merge two or more inputs."""

from __future__ import annotations

from torch import nn

from .. import modules
from ..params import MAX_RANK, Param
from .helpers import batch_dim, fmt, need_rank, same_shapes
from .spec import LayerSpec, ShapeError

def _concat(shapes, p):
    first = shapes[0]
    d = batch_dim(p["dim"], len(first))
    for other in shapes[1:]:
        if len(other) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(first, other)) if i != d
        ):
            raise ShapeError(
                f"Concat along dim {p['dim']} needs inputs equal in every other dimension; "
                f"received {fmt(first)} and {fmt(other)}"
            )
    return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1 :]


def _merge(name, cls, what):
    return LayerSpec(
        name, "Merge",
        f"{what} of two or more inputs of one shape: [S], [S], ... -> [S].",
        (),
        lambda shapes, p: same_shapes(name, shapes),
        lambda shapes, p: cls(),
        min_inputs=2, max_inputs=None,
    )


SPECS = [
    _merge("Add", modules.Add, "Element-wise sum"),
    _merge("Multiply", modules.Multiply, "Element-wise product"),
    LayerSpec(
        "Concat", "Merge",
        "Joins two or more inputs along dim (counted with the batch; 1 = channels/features).",
        (Param("dim", "int", 1, "Dimension to join along, counted with the batch.", -MAX_RANK, MAX_RANK,
               key=True),),
        _concat, lambda shapes, p: modules.Concat(p["dim"]),
        min_inputs=2, max_inputs=None,
    ),
]
