"""Shape arithmetic that involves the batch size, as converters write it.

torch and tf2onnx build Reshape targets and zero initial states from ``Shape(x)`` followed
by Gather, Slice, Unsqueeze, Concat, Cast, Mul ... Those are evaluated here on lists whose
entries are ints or ``Sym`` (multiples of the batch size N), so ``Reshape(y, Concat(
Gather(Shape(x), 0), [-1]))`` resolves to ``[N, -1]``. Zero states of such shapes
(ConstantOfShape, Expand) are ``Filled`` values the recurrent converters accept.
"""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from .onnx_values import (
    Const,
    Filled,
    NotExact,
    Sym,
    SymVec,
    Tensor,
    Unsupported,
    ddiv,
    dmul,
    dprod,
    is_sym,
    resolve_target,
    squeeze_shape,
    unsqueeze_shape,
)


def as_items(value) -> tuple[list, bool]:
    """An integer vector as (python list, is scalar)."""
    if isinstance(value, SymVec):
        return list(value.items), value.scalar
    if isinstance(value, Const):
        a = value.array
        if a.dtype.kind not in "iub":
            if a.dtype.kind == "f" and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            else:
                raise Unsupported("a shape computed from non-integer values")
        if a.ndim > 1:
            raise Unsupported("shape arithmetic on a tensor of rank > 1")
        return [int(x) for x in a.reshape(-1)], a.ndim == 0
    raise Unsupported("a shape value that is neither constant nor derived from the batch size")


def vec(items: list, scalar: bool = False):
    """A SymVec, or a Const when no entry involves the batch size."""
    if any(is_sym(x) for x in items):
        return SymVec(list(items), scalar)
    a = np.array(items, dtype=np.int64)
    return Const(a.reshape(()) if scalar else a)


def shape_of(ctx, node, value) -> list:
    if isinstance(value, Tensor):
        return value.shape
    if isinstance(value, Filled):
        return list(value.shape)
    if isinstance(value, Const):
        return list(value.array.shape)
    if isinstance(value, SymVec):
        return [] if value.scalar else [len(value.items)]
    raise Unsupported("the shape of a value NetCanvas does not track")


def _shape(ctx, node, ins):
    shape = shape_of(ctx, node, ins[0])
    start, end = ctx.attr(node, "start", 0), ctx.attr(node, "end", None)
    return [vec(shape[slice(start, end)])]


def _size(ctx, node, ins):
    return [vec([dprod(shape_of(ctx, node, ins[0]))], scalar=True)]


def _gather(ctx, node, ins):
    items, scalar = as_items(ins[0])
    if scalar or ctx.attr(node, "axis", 0) != 0:
        raise Unsupported("gathers from a shape along an axis other than 0")
    idx = ins[1].array if isinstance(ins[1], Const) else None
    if idx is None:
        raise Unsupported("gathers with indices that are not constant")
    if idx.dtype.kind not in "iu" or any(not -len(items) <= int(i) < len(items) for i in idx.reshape(-1)):
        raise Unsupported(f"gathers entries {idx.reshape(-1).tolist()[:8]} of a shape of {len(items)} entries")
    picked = [items[int(i)] for i in idx.reshape(-1)]
    return [vec(picked, scalar=idx.ndim == 0)]


def _slice(ctx, node, ins):
    if isinstance(ins[0], Filled):
        return [_slice_filled(ctx, node, ins)]
    items, scalar = as_items(ins[0])
    if ctx.opset < 10:
        starts, ends = ctx.attr(node, "starts"), ctx.attr(node, "ends")
        axes, steps = ctx.attr(node, "axes", [0]), [1]
    else:
        starts, ends = as_items(ins[1])[0], as_items(ins[2])[0]
        axes = as_items(ins[3])[0] if len(ins) > 3 and ins[3] is not None else [0]
        steps = as_items(ins[4])[0] if len(ins) > 4 and ins[4] is not None else [1]
    if scalar or list(axes) not in ([0], [-1]) or any(is_sym(v) for v in (*starts, *ends, *steps)) \
            or not (len(starts) == len(ends) == len(steps) == 1) or steps[0] == 0:
        raise Unsupported("slices a shape in a way NetCanvas does not follow")
    return [vec(items[slice(int(starts[0]), int(ends[0]), int(steps[0]))])]


def _slice_filled(ctx, node, ins):
    f = ins[0]
    starts, ends = as_items(ins[1])[0], as_items(ins[2])[0]
    axes = as_items(ins[3])[0] if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
    steps = as_items(ins[4])[0] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    shape = list(f.shape)
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise Unsupported("slices with starts, ends, axes and steps that do not pair up (or a step of 0)")
    for s, e, a, st in zip(starts, ends, axes, steps):
        if not -len(shape) <= a < len(shape):
            raise Unsupported(f"slices axis {a} of a rank-{len(shape)} tensor")
        a = a + len(shape) if a < 0 else a
        if is_sym(shape[a]):
            if (s, st) != (0, 1) or e < 2 ** 31 - 1:
                raise Unsupported("slices a zero state along its batch axis")
            continue
        shape[a] = len(range(*slice(s, e, st).indices(shape[a])))
    return Filled(f.value, shape)


def _concat(ctx, node, ins):
    if any(isinstance(v, Filled) for v in ins):
        raise Unsupported("concatenates zero states")
    out: list = []
    for v in ins:
        items, scalar = as_items(v)
        if scalar:
            raise Unsupported("concatenates scalars")
        out.extend(items)
    return [vec(out)]


def _axes(ctx, node, ins):
    if ctx.opset >= 13 and len(ins) > 1 and ins[1] is not None:
        return as_items(ins[1])[0]
    return ctx.attr(node, "axes", None)


def _unsqueeze(ctx, node, ins):
    axes = _axes(ctx, node, ins)
    if isinstance(ins[0], Filled):
        return [Filled(ins[0].value, unsqueeze_shape(ins[0].shape, axes))]
    items, scalar = as_items(ins[0])
    if not scalar or list(axes) not in ([0], [-1]):
        raise Unsupported("unsqueezes a shape vector")
    return [vec(items)]


def _squeeze(ctx, node, ins):
    axes = _axes(ctx, node, ins)
    if isinstance(ins[0], Filled):
        return [Filled(ins[0].value, squeeze_shape(ins[0].shape, axes))]
    items, scalar = as_items(ins[0])
    if scalar or len(items) != 1:
        raise Unsupported("squeezes a shape vector")
    return [vec(items, scalar=True)]


def _identity(ctx, node, ins):
    return [ins[0]]


def _cast(ctx, node, ins):
    if isinstance(ins[0], Filled):
        return [ins[0]]
    items, scalar = as_items(ins[0])
    return [vec(items, scalar)]


def _arith(op):
    def apply(a, b):
        if op == "Mul":
            return dmul(a, b)
        if op == "Div":
            return ddiv(a, b)
        if is_sym(a) or is_sym(b):
            if not (is_sym(a) and is_sym(b) and a.power == b.power):
                raise NotExact("adds a number to a multiple of the batch size")
            coef = a.coef + b.coef if op == "Add" else a.coef - b.coef
            return Sym(coef, a.power) if coef else 0
        return a + b if op == "Add" else a - b

    def run(ctx, node, ins):
        (a, sa), (b, sb) = as_items(ins[0]), as_items(ins[1])
        if len(a) != len(b):
            if len(a) == 1:
                a = a * len(b)
            elif len(b) == 1:
                b = b * len(a)
            else:
                raise Unsupported("shape arithmetic on vectors of different lengths")
        return [vec([apply(x, y) for x, y in zip(a, b)], scalar=sa and sb)]

    return run


def _reshape(ctx, node, ins):
    if isinstance(ins[0], Filled):
        target, _ = as_items(ins[1])
        return [Filled(ins[0].value, resolve_target(ins[0].shape, target,
                                                    bool(ctx.attr(node, "allowzero", 0)), None))]
    items, _ = as_items(ins[0])
    target, _ = as_items(ins[1])
    if len(target) > 1:
        raise Unsupported("reshapes a shape vector")
    return [vec(items, scalar=len(target) == 0)]


def _reduce_prod(ctx, node, ins):
    items, _ = as_items(ins[0])
    keep = ctx.attr(node, "keepdims", 1)
    return [vec([dprod(items)], scalar=not keep)]


def _constant_of_shape(ctx, node, ins):
    shape, _ = as_items(ins[0])
    if any(not is_sym(d) and d < 0 for d in shape):
        raise Unsupported(f"fills a tensor of shape {shape}, which has a negative size")
    value = ctx.attr(node, "value", None)
    fill = _tensor(value).reshape(-1) if value is not None else np.zeros(1)
    if fill.size != 1 or fill.dtype.kind not in "biuf":
        raise Unsupported(f"fills with a value of {fill.size} entries; ONNX takes one number")
    return [Filled(float(fill[0]), shape)]


def _tensor(value):
    return numpy_helper.to_array(value)


def _expand(ctx, node, ins):
    src, shape = ins[0], as_items(ins[1])[0]
    if isinstance(src, Const):
        if src.array.size != 1:
            raise Unsupported("expands a constant tensor to a shape that depends on the batch size")
        fill = float(src.array.reshape(-1)[0])
        rank = max(len(shape), src.array.ndim)
        return [Filled(fill, [1] * (rank - len(shape)) + list(shape))]
    if isinstance(src, Filled):
        rank = max(len(shape), len(src.shape))
        a = [1] * (rank - len(src.shape)) + list(src.shape)
        b = [1] * (rank - len(shape)) + list(shape)
        return [Filled(src.value, [y if x == 1 else x for x, y in zip(a, b)])]
    raise Unsupported("expands a value NetCanvas does not track")


def _transpose(ctx, node, ins):
    if not isinstance(ins[0], Filled):
        raise Unsupported("transposes a shape vector")
    shape = ins[0].shape
    perm = ctx.attr(node, "perm", list(range(len(shape)))[::-1])
    if sorted(perm) != list(range(len(shape))):
        raise Unsupported(f"its perm {list(perm)} is not a permutation of {len(shape)} axes")
    return [Filled(ins[0].value, [shape[p] for p in perm])]


SYMBOLIC = {
    "Shape": _shape, "Size": _size, "Gather": _gather, "Slice": _slice, "Concat": _concat,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Identity": _identity, "Cast": _cast,
    "Mul": _arith("Mul"), "Div": _arith("Div"), "Add": _arith("Add"), "Sub": _arith("Sub"),
    "Reshape": _reshape, "ReduceProd": _reduce_prod, "ConstantOfShape": _constant_of_shape,
    "Expand": _expand, "Transpose": _transpose,
}
