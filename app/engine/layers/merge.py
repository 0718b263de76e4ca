"""Layers that merge two or more inputs.

Add, Multiply, Subtract and Divide broadcast as the format's Rules say: the shapes (without
the batch) aligned from the right, the shorter padded with 1s just after the batch. The
built module gets the padding of each input; inputs of one rank get none, so a file of
version 1 compiles exactly as before.
"""

from __future__ import annotations

from ..lazy import modules  # torch loads when a module is built, not here
from ..params import MAX_RANK, Param
from .helpers import batch_dim, fmt
from .spec import LayerSpec, ShapeError


def broadcast(layer: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The shape that ``shapes`` broadcast to (aligned from the right, sizes equal or 1),
    or a ``ShapeError`` naming the two shapes that disagree."""
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    source = [shapes[0]] * rank  # which input gave each size (for the message)
    for shape in shapes:
        for i, d in enumerate((1,) * (rank - len(shape)) + tuple(shape)):
            if d == out[i] or d == 1:
                continue
            if out[i] != 1:
                axis = i - rank  # from the right, as the alignment counts
                raise ShapeError(
                    f"{layer} needs inputs that broadcast (aligned from the right, each size equal "
                    f"or 1); received {fmt(source[i])} and {fmt(shape)}, which differ in dimension "
                    f"{axis} ({out[i]} and {d})")
            out[i], source[i] = d, shape
    return tuple(out)


def pads(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """How many 1s go after the batch of each input; () when none needs any."""
    rank = max(len(s) for s in shapes)
    result = tuple(rank - len(s) for s in shapes)
    return result if any(result) else ()


def _elementwise(name: str, what: str, sample_shapes, two: bool = False) -> LayerSpec:
    arity = "two inputs" if two else "two or more inputs"
    return LayerSpec(
        name, "Merge",
        f"{what} of {arity} that broadcast after the batch: [64, 8, 8], [64, 1, 1] -> "
        "[64, 8, 8]; [4, 8], [8] -> [4, 8] (the shorter shape is padded with 1s on the left).",
        (),
        lambda shapes, p: broadcast(name, shapes),
        lambda shapes, p: getattr(modules, name)(pads(shapes)),
        min_inputs=2, max_inputs=2 if two else None,
        samples=tuple((shapes, {}) for shapes in sample_shapes),
    )


def _matmul(shapes, p):
    a, b = shapes
    if not a or not b:
        raise ShapeError(f"MatMul needs inputs of at least 1 dimension; received {fmt(a)} and {fmt(b)}")
    k_a = a[-1]
    k_b = b[0] if len(b) == 1 else b[-2]
    if k_a != k_b:
        which = "its only dimension" if len(b) == 1 else "its second-to-last dimension"
        raise ShapeError(
            f"MatMul needs the last dimension of input 0 to equal {which} of input 1 "
            f"(as torch.matmul); received {fmt(a)} and {fmt(b)} ({k_a} and {k_b})")
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        return b[:-2] + b[-1:]
    if len(b) == 1:
        return a[:-1]
    try:
        stack = broadcast("MatMul", [a[:-2], b[:-2]]) if len(a) > 2 or len(b) > 2 else ()
    except ShapeError:
        raise ShapeError(
            f"MatMul needs the dimensions before the last two of its inputs to broadcast (aligned "
            f"from the right, each size equal or 1); received {fmt(a)} and {fmt(b)}") from None
    return stack + (a[-2], b[-1])


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


SPECS = [
    _elementwise("Add", "Element-wise sum",
                 [((3, 5, 7), (3, 5, 7)), ((6, 4, 5), (6, 1, 1), (5,)), ((4, 8), (8,))]),
    _elementwise("Multiply", "Element-wise product",
                 [((6, 4, 5), (6, 1, 1)), ((4, 9),) * 3, ((2, 3, 4), (3, 1))]),
    _elementwise("Subtract", "Element-wise difference (input 0 - input 1)",
                 [((3, 4, 5), (4, 1)), ((7,), (7,)), ((1, 5), (3, 1))], two=True),
    _elementwise("Divide", "Element-wise quotient (input 0 / input 1)",
                 [((4, 6, 6), (4, 1, 1)), ((5,), (3, 5))], two=True),
    LayerSpec(
        "MatMul", "Merge",
        "torch.matmul of each sample's pair: [T, K], [K, M] -> [T, M]; [H, T, K], [H, K, M] -> "
        "[H, T, M] (the samples' leading dimensions broadcast against each other, never against "
        "the batch); a 1-D input is a row (input 0) or a column (input 1), as in torch.",
        (),
        _matmul, lambda shapes, p: modules.MatMul((len(shapes[0]), len(shapes[1]))),
        min_inputs=2, max_inputs=2,
        samples=((((3, 4), (4, 5)), {}), (((2, 3, 4), (4, 6)), {}), (((4,), (2, 4, 3)), {}),
                 (((2, 1, 3, 4), (5, 4, 2)), {})),
    ),
    LayerSpec(
        "Concat", "Merge",
        "Joins two or more inputs along dim (counted with the batch; 1 = channels/features): "
        "[C1, H, W], [C2, H, W] -> [C1 + C2, H, W].",
        (Param("dim", "int", 1, "Dimension to join along, counted with the batch.", -MAX_RANK, MAX_RANK,
               key=True),),
        _concat, lambda shapes, p: modules.Concat(p["dim"]),
        min_inputs=2, max_inputs=None,
        samples=((((3, 4, 4), (5, 4, 4)), {}), (((2, 3), (2, 4), (2, 1)), {"dim": -1}),
                 (((2, 3, 5), (2, 3, 5)), {"dim": 2})),
    ),
]
