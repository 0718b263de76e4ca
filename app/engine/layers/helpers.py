"""Small shape helpers shared by the layer declarations."""

from __future__ import annotations

from math import prod

from ..params import INT64_MAX, INT_LIMIT, MAX_RANK, digits
from .spec import Shape, ShapeError


def fmt(shape: Shape) -> str:
    return "[" + ", ".join(big_number(d) for d in shape) + "]"


def big_number(n: int) -> str:
    """``n`` as digits, or as ``~1.2e+75`` / ``~10^5000`` when it is too long to read (and
    before Python's limit on printing integers could be reached)."""
    if abs(n) < 10**15:
        return str(n)
    if n.bit_length() < 1000:
        return f"~{float(n):.3g}"
    return f"~10^{digits(n) - 1}"


def limits_problem(shape: Shape) -> str | None:
    """Why torch could not hold a sample of ``shape`` (no batch), or None: at most
    ``MAX_RANK`` dimensions, each at most ``INT_LIMIT``, at most 2^63 - 1 values."""
    if len(shape) > MAX_RANK:
        return (f"its output {fmt(shape)} has {len(shape)} dimensions; NetCanvas supports at most "
                f"{MAX_RANK} (without the batch)")
    if any(d > INT_LIMIT for d in shape):
        return (f"its output {fmt(shape)} has a dimension larger than {INT_LIMIT}, the most "
                "NetCanvas supports")
    total = numel(shape)
    if total > INT64_MAX:
        return (f"its output {fmt(shape)} holds {big_number(total)} values per sample; a torch "
                f"tensor holds at most 2^63 - 1 ({INT64_MAX})")
    return None


def count_problem(count: int) -> str | None:
    """Why torch could not hold ``count`` trainable parameters of one layer, or None."""
    if count > INT64_MAX:
        return (f"it would have {big_number(count)} trainable parameters; a torch tensor holds "
                f"at most 2^63 - 1 ({INT64_MAX}) values")
    return None


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
