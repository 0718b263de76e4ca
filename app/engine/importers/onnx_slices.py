"""ONNX's Slice and Split mapped to the catalogue's Split (one output port per part), with
the conventions of ``onnx_ops``: a slice of all of an axis is the data itself; a slice of
part of one axis is a port of a Split at the bounds of every constant slice of the same
tensor and axis, so ``q, k, v = qkv.chunk(3)`` comes back as one Split whatever exporter
wrote it (torch's TorchScript one computes the bounds one after another: the Splits made
on the way are merged at the end, ``merge_slice_splits``).
"""

from __future__ import annotations

from ..graph import Edge
from . import onnx_symbolic as sym
from .onnx_values import PENDING_REASONS, Const, Pending, Tensor, Unsupported, axis_in, const, is_sym, show_shape


def _slice(ctx, node, ins):
    x = ins[0]
    if not isinstance(x, Tensor):
        if isinstance(x, Pending):
            raise Unsupported(PENDING_REASONS.get(x.kind), blame=x.origin)
        return sym._slice(ctx, node, ins)
    shape = x.shape
    if ctx.opset < 10:
        starts, ends = ctx.attr(node, "starts"), ctx.attr(node, "ends")
        axes, steps = ctx.attr(node, "axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = sym.as_items(ins[1])[0], sym.as_items(ins[2])[0]
        axes = sym.as_items(ins[3])[0] if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = sym.as_items(ins[4])[0] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise Unsupported("its starts, ends, axes and steps do not pair up")
    partial = []
    for start, end, a, step in zip(starts, ends, axes, steps):
        a = axis_in(a, len(shape))
        if not _covers(start, end, step, shape[a]):
            partial.append((a, start, end, step))
    if not partial:
        return [x]
    (a, start, end, step), = partial if len(partial) == 1 else [(None, 0, 0, 0)]
    if a is None or a == 0 or step != 1 or is_sym(shape[a]) or is_sym(start) or is_sym(end):
        raise Unsupported(f"takes part of the data along axis {partial[0][0]} (of {show_shape(shape)}); "
                          "NetCanvas maps a slice of one axis other than the batch, step 1")
    return [_slice_as_split(ctx, node, x, a, _span(start, end, shape[a]))]


def merge_slice_splits(ctx) -> None:
    """The Splits made for slices of one tensor and axis whose bounds were computed one
    after another (torch's TorchScript exporter: ``chunk`` as Slices of Shape arithmetic)
    become one, where each port in use is one part of the union of their bounds."""
    groups: dict = {}
    for node_id, source, axis, edges in ctx.slice_splits:
        groups.setdefault((source, axis), []).append((node_id, edges))
    graph = ctx.graph
    for members in groups.values():
        if len(members) < 2:
            continue
        union = sorted({b for _, edges in members for b in edges})
        keep = members[0][0]
        rewired, ok = {}, True
        for node_id, edges in members:
            for e in graph.outgoing(node_id):
                i, j = union.index(edges[e.source_port]), union.index(edges[e.source_port + 1])
                ok = ok and j == i + 1
                rewired[e] = Edge(keep, e.target, e.target_port, i)
        if not ok:
            continue
        gone = {node_id for node_id, _ in members[1:]}
        graph.edges = [rewired.get(e, e) for e in graph.edges if e.target not in gone]
        for node_id in gone:
            del graph.nodes[node_id]
        graph.nodes[keep].params = {**graph.nodes[keep].params, "sizes": [b - a for a, b in zip(union, union[1:])]}


def _span(start: int, end: int, dim: int) -> tuple[int, int]:
    """``start:end`` (step 1) on an axis of size ``dim`` as a [begin, stop) in range."""
    begin = min(max(start + dim if start < 0 else start, 0), dim)
    stop = min(max(end + dim if end < 0 else end, 0), dim)
    return begin, stop


def _slice_as_split(ctx, node, x: Tensor, axis: int, span: tuple[int, int]) -> Tensor:
    """The part ``span`` of ``x`` along ``axis``: ports of one Split at the bounds of every
    constant slice of the same tensor and axis (``q, k, v = qkv.chunk(3)`` is one Split),
    concatenated where the part spans several."""
    begin, stop = span
    if begin >= stop:
        raise Unsupported("takes nothing of the data (an empty slice)")
    t = ctx.materialize(x, ctx.current_label)
    dim = int(ctx.true_shape(t.node)[axis])
    key = (node.input[0], axis)
    if key in ctx.splits and not {begin, stop} <= set(ctx.splits[key][0]):
        key = (node.input[0], axis, begin, stop)  # bounds computed after the first slice: its own Split
    if key not in ctx.splits:
        bounds = {0, dim, begin, stop}
        for other in ctx.slices_of(node.input[0]) if len(key) == 2 else []:
            bounds |= set(_constant_span(ctx, other, axis, len(x.shape), dim) or ())
        edges = sorted(bounds)
        ports = ctx.add_ports(ctx.current_label, "Split", {"sizes": [b - a for a, b in zip(edges, edges[1:])],
                                                           "dim": axis}, [t.node], suffix="_split")
        ctx.splits[key] = (edges, ports)
        ctx.slice_splits.append((ports[0].node, t.node, axis, edges))
    edges, ports = ctx.splits[key]
    parts = ports[edges.index(begin):edges.index(stop)]
    if len(parts) == 1:
        return parts[0]
    return ctx.add(ctx.current_label, "Concat", {"dim": axis}, [p.node for p in parts])


def _constant_span(ctx, node, axis: int, rank: int, dim: int) -> tuple[int, int] | None:
    """The [begin, stop) another Slice of the same tensor takes along ``axis`` (of ``rank``
    axes), where it slices that axis alone and its arguments are constants known now; None
    otherwise."""
    if ctx.opset < 10:
        starts, ends = ctx.attr(node, "starts") or [], ctx.attr(node, "ends") or []
        axes, steps = ctx.attr(node, "axes", list(range(len(starts)))), [1] * len(starts)
    else:
        args = [ctx.values.get(n) if n else None for n in (list(node.input[1:5]) + [""] * 4)[:4]]
        if not all(isinstance(v, Const) for v in args[:2]) or any(
                v is not None and not isinstance(v, Const) for v in args[2:]):
            return None
        starts, ends = (v.array.reshape(-1).tolist() for v in args[:2])
        axes = args[2].array.reshape(-1).tolist() if args[2] is not None else list(range(len(starts)))
        steps = args[3].array.reshape(-1).tolist() if args[3] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps) == 1:
        return None
    if not all(isinstance(v, int) for v in (starts[0], ends[0], axes[0], steps[0])):
        return None
    if axes[0] % rank != axis or steps[0] != 1:
        return None
    return _span(starts[0], ends[0], dim)


def _covers(start, end, step, dim) -> bool:
    """Whether slicing ``start:end:step`` along an axis of size ``dim`` keeps all of it."""
    if step != 1:
        return False
    if is_sym(dim) or is_sym(start) or is_sym(end):
        return start == 0 and (end == dim or (not is_sym(end) and end >= 2 ** 31 - 1))
    begin = start + dim if start < 0 else start
    stop = end + dim if end < 0 else end
    return begin <= 0 and stop >= dim


def _split(ctx, node, ins):
    x = ins[0]
    if not isinstance(x, Tensor):
        if isinstance(x, Pending):
            raise Unsupported(PENDING_REASONS.get(x.kind), blame=x.origin)
        raise Unsupported("splits a value NetCanvas does not track")
    t = ctx.materialize(x, ctx.current_label)
    shape = ctx.true_shape(t.node)
    axis = axis_in(ctx.attr(node, "axis", 0), len(shape))
    if axis == 0:
        raise Unsupported("splits along the batch axis")
    n = len(node.output)
    if len(ins) > 1 and ins[1] is not None:
        sizes = [int(v) for v in const(ins[1], "split sizes").reshape(-1)]
    elif ctx.attr(node, "split") is not None:
        sizes = [int(v) for v in ctx.attr(node, "split")]
    else:
        parts = ctx.attr(node, "num_outputs", n)
        d = int(shape[axis])
        step = -(-d // parts)
        sizes = [min(step, d - k * step) for k in range(parts)]
    if len(sizes) != n or any(v <= 0 for v in sizes):
        raise Unsupported(f"splits into sizes {sizes} for {n} outputs")
    if n == 1:
        return [t]
    return ctx.add_ports(ctx.current_label, "Split", {"sizes": sizes, "dim": axis}, [t.node])


SLICES = {"Slice": _slice, "Split": _split}
