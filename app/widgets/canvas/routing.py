"""Where an edge runs: from its source's output port to its target's input port, never
through either node's box.

A target ahead of the source (below it top to bottom, right of it left to right) with room
between them gets an S-curve; one beside or behind the source gets a path that leaves the
port straight out, runs past the boxes in a lane, and comes into the port from outside.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath, QTransform

NODE_W, NODE_H = 196.0, 66.0  # a node's box
STUB = 28.0  # an edge going around leaves its port (and reaches the other) this far straight out
LANE = 26.0  # ... and passes the boxes this far from them
CORNER = 14.0  # the radius of its rounded corners (at most STUB and LANE: corners stay clear)
S_CURVE_GAP = 30.0  # a gap this deep between the boxes along the flow takes an S-curve
OUTER = 20.0  # a path this far off the line between its ends bows or goes around: the label goes outside
_DIAGONAL = QTransform(0, 1, 1, 0, 0, 0)  # swaps x and y: left to right seen as top to bottom
Curve = list[tuple[float, float]]  # the four points (x, y) of a cubic curve


def edge_path(start: QPointF, end: QPointF, direction: str = "TB",
              source: QRectF | None = None, target: QRectF | None = None) -> QPainterPath:
    """The path from ``start`` (the output port on ``source``'s bottom side, or right side
    left to right) to ``end`` (an input port on ``target``'s top, or left, side). Without
    boxes (a connection being dragged) a node of the usual size is assumed at each end."""
    return edge_route(start, end, direction, source, target)[0]


def edge_route(start: QPointF, end: QPointF, direction: str = "TB", source: QRectF | None = None,
               target: QRectF | None = None) -> tuple[QPainterPath, Curve | None]:
    """``edge_path``, and the four points of its curve when it is one (for ``label_spot``)."""
    lr = direction == "LR"
    source = source if source is not None else _box_above(start, lr)
    target = target if target is not None else _box_below(end, lr)
    # decided in the frame of a top-to-bottom layout: left to right is its mirror image
    s, t = (_DIAGONAL.mapRect(source), _DIAGONAL.mapRect(target)) if lr else (source, target)
    gap = t.top() - s.bottom()
    if gap >= S_CURVE_GAP or (gap > 0 and not (t.left() >= s.right() or t.right() <= s.left())):
        # the curve stays between the two boxes along the flow: it cannot cross them
        curve = _s_curve_lr(start, end) if lr else _s_curve_tb(start, end)
        (x1, y1), (x2, y2) = curve[1], curve[2]
        path = QPainterPath(start)
        path.cubicTo(QPointF(x1, y1), QPointF(x2, y2), end)
        return path, curve
    if lr:
        return _DIAGONAL.map(_around(_DIAGONAL.map(start), _DIAGONAL.map(end), s, t)), None
    return _around(start, end, s, t), None


def _box_above(port: QPointF, lr: bool) -> QRectF:
    """The box of a node whose output port is at ``port``."""
    if lr:
        return QRectF(port.x() - NODE_W, port.y() - NODE_H / 2, NODE_W, NODE_H)
    return QRectF(port.x() - NODE_W / 2, port.y() - NODE_H, NODE_W, NODE_H)


def _box_below(port: QPointF, lr: bool) -> QRectF:
    """The box of a node with one input, at ``port``."""
    if lr:
        return QRectF(port.x(), port.y() - NODE_H / 2, NODE_W, NODE_H)
    return QRectF(port.x() - NODE_W / 2, port.y(), NODE_W, NODE_H)


def _s_curve_tb(start: QPointF, end: QPointF) -> Curve:
    """A vertical S-curve; an edge that skips past nodes straight below bows to the side so
    it does not run under them (the skip connections of a residual net)."""
    x0, y0, x3, y3 = start.x(), start.y(), end.x(), end.y()
    dy, dx = y3 - y0, x3 - x0
    bend = max(40.0, abs(dy) * 0.4)
    if dy > NODE_H * 2.5 and abs(dx) < NODE_W * 0.6:
        # starting and ending off-axis keeps the curve clear of the column of nodes
        reach = min(60 + dy * 0.08, 200) * (-1 if dx <= 0 else 1)
        return [(x0, y0), (x0 + reach * 1.6, y0 + bend * 0.5), (x3 + reach * 1.6, y3 - bend * 0.5), (x3, y3)]
    bend = min(bend, dy)  # no deeper than the gap: the curve never overshoots into a box
    return [(x0, y0), (x0, y0 + bend), (x3, y3 - bend), (x3, y3)]


def _s_curve_lr(start: QPointF, end: QPointF) -> Curve:
    """A horizontal S-curve; one that skips past nodes straight ahead bows up or down."""
    x0, y0, x3, y3 = start.x(), start.y(), end.x(), end.y()
    dx, dy = x3 - x0, y3 - y0
    bend = max(40.0, abs(dx) * 0.4)
    if dx > NODE_W * 2.2 and abs(dy) < NODE_H * 0.6:
        reach = min(50 + dx * 0.06, 160) * (-1 if dy <= 0 else 1)
        return [(x0, y0), (x0 + bend * 0.5, y0 + reach * 1.6), (x3 - bend * 0.5, y3 + reach * 1.6), (x3, y3)]
    bend = min(bend, dx)
    return [(x0, y0), (x0 + bend, y0), (x3 - bend, y3), (x3, y3)]


def _around(start: QPointF, end: QPointF, s: QRectF, t: QRectF) -> QPainterPath:
    """Top to bottom, for a target beside or above the source: down out of the source, along
    a lane past the boxes, and down into the target. The lane runs between the two boxes
    when they are side by side (near the target: left to right, that is the gap above the
    target's band of a wrapped layout), else beside both, to the right.

    Each stretch keeps clear of both boxes: the stubs run outside them along the flow, the
    lane outside them across it, and a corner cuts at most CORNER <= STUB, LANE inside."""
    out, into = s.bottom() + STUB, t.top() - STUB
    if t.left() >= s.right():
        lane = t.left() - min(LANE, (t.left() - s.right()) / 2)
    elif t.right() <= s.left():
        lane = t.right() + min(LANE, (s.left() - t.right()) / 2)
    else:
        lane = max(s.right(), t.right()) + LANE
    points = [start, QPointF(start.x(), out), QPointF(lane, out), QPointF(lane, into), QPointF(end.x(), into), end]
    path = QPainterPath(start)
    for a, b, c in zip(points, points[1:], points[2:]):
        _rounded_corner(path, a, b, c, CORNER)
    path.lineTo(end)
    return path


def _rounded_corner(path: QPainterPath, a: QPointF, b: QPointF, c: QPointF, r: float) -> None:
    """A line from the path's end towards corner ``b`` (coming from ``a``, leaving to ``c``),
    the corner rounded with radius ``r``."""
    def toward(p: QPointF, q: QPointF, d: float) -> QPointF:
        length = max(math.hypot(q.x() - p.x(), q.y() - p.y()), 1e-9)  # (no OverflowError far out)
        d = min(d, length / 2)
        return QPointF(p.x() + (q.x() - p.x()) * d / length, p.y() + (q.y() - p.y()) * d / length)

    path.lineTo(toward(b, a, r))
    path.quadTo(b, toward(b, c, r))


def label_spot(path: QPainterPath, size, boxes: list[QRectF], direction: str = "TB",
               curve: Curve | None = None) -> QPointF:
    """Where an edge's label of ``size`` goes: beside the middle of a stretch that runs along
    the flow (down, or to the right left to right: what a stretch steeper than 30 degrees,
    or 60, counts as), above a stretch that runs across it; on the outer side of a path that
    bows or goes around. If that covers one of ``boxes`` (the edge's nodes): the other side,
    then points further along the path; if every place does, the one that covers least.
    ``curve``: the path's four points when it is one curve (from ``edge_route``)."""
    w, h = size.width(), size.height()
    if curve is not None:
        (x0, y0), (x3, y3) = curve[0], curve[3]
    else:
        first, last = path.elementAt(0), path.elementAt(path.elementCount() - 1)
        x0, y0, x3, y3 = first.x, first.y, last.x, last.y
    across = 0.5 if direction == "LR" else 0.866  # |cos| of a stretch that counts as horizontal
    # the boxes grown a little, as (left, top, right, bottom): the label does not touch them either
    sides = [(b.left() - 3, b.top() - 3, b.right() + 3, b.bottom() + 3) for b in boxes]
    best, least = None, None
    for percent in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
        x, y, cos = _along(path, percent, curve)
        if cos >= across:  # the text above it, or below
            spots = [(x - w / 2, y - h - 2), (x - w / 2, y + 2)]
            outside = y - (y0 + (y3 - y0) * percent) > OUTER
        else:  # to its right, or left
            spots = [(x + 6, y - h / 2), (x - 6 - w, y - h / 2)]
            outside = (x0 + (x3 - x0) * percent) - x > OUTER
        for sx, sy in reversed(spots) if outside else spots:
            covered = 0.0
            for left, top, right, bottom in sides:
                if sx < right and sx + w > left and sy < bottom and sy + h > top:
                    covered += (min(sx + w, right) - max(sx, left)) * (min(sy + h, bottom) - max(sy, top))
            if not covered:
                return QPointF(sx, sy)
            if least is None or covered < least:
                best, least = QPointF(sx, sy), covered
    return best


def _along(path: QPainterPath, percent: float, curve) -> tuple[float, float, float]:
    """The point ``percent`` of the way along ``path`` and |cos| of its direction there (1:
    horizontal). A ``curve`` is evaluated at that parameter (the same middle for an S-curve,
    near enough elsewhere), which costs far less than measuring the path's length."""
    if curve is None:
        p = path.pointAtPercent(percent)
        return p.x(), p.y(), abs(math.cos(math.radians(path.angleAtPercent(percent))))
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = curve
    t, u = percent, 1 - percent
    x = u * u * u * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t * t * t * x3
    y = u * u * u * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t * t * t * y3
    dx = u * u * (x1 - x0) + 2 * u * t * (x2 - x1) + t * t * (x3 - x2)
    dy = u * u * (y1 - y0) + 2 * u * t * (y2 - y1) + t * t * (y3 - y2)
    length = math.hypot(dx, dy)
    return x, y, abs(dx) / length if length else 1.0
