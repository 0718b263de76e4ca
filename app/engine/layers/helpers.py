"""Small shape helpers shared by the layer declarations."""

from __future__ import annotations

from math import prod

from .spec import Shape, ShapeError


def fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def need_rank(layer: str, shape: Shape, ranks: dict[int, str]) -> None:
    """Raise unless ``shape`` has one of the ranks in ``ranks`` ({rank: "[C, H, W]"})."""
    if len(shape) in ranks:
        return
    wanted = " or ".join(ranks.values())
    hint = ""
    if len(shape) == 1 and max(ranks) > 1:
        hint = f" (add a Reshape to {ranks[max(ranks)]} before it)"
    elif len(shape) > max(ranks):
        hint = " (add a Flatten or Reshape before it)"
    raise ShapeError(f"{layer} needs an input of shape {wanted}; received {fmt(shape)}{hint}")


def batch_dim(dim: int, rank: int, param: str = "dim") -> int:
    """Normalize a torch ``dim`` counted with the batch dimension for a sample of ``rank``
    dims; returns the index into the sample shape (0-based, batch excluded)."""
    full = rank + 1
    d = dim + full if dim < 0 else dim
    if d == 0:
        raise ShapeError(f"{param} {dim} is the batch dimension; use 1 to {rank} (or -1)", param)
    if not 0 < d < full:
        raise ShapeError(
            f"{param} {dim} is out of range for an input of rank {rank} "
            f"(plus the batch); use 1 to {rank} or -1 to -{rank}",
            param,
        )
    return d - 1


def same_shapes(layer: str, shapes: list[Shape]) -> Shape:
    first = shapes[0]
    for other in shapes[1:]:
        if other != first:
            raise ShapeError(
                f"{layer} needs inputs of one shape; received {fmt(first)} and {fmt(other)}"
            )
    return first


def numel(shape: Shape) -> int:
    return prod(shape)
