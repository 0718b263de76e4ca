"""What the canvas draws over its nodes while a network trains or after it is profiled.

- A live glyph per node (``Glyph``): the node's output for the sample the Activations view
  shows, reduced to a picture by its shape: an image ``[C, H, W]`` (or more dimensions) as the
  mean over channels, a vector ``[F]`` as a strip of at most ``MAX_BARS`` bars, a sequence
  ``[T, F]`` as a heat map, and the output node's vector as class probabilities with the top
  class named. The picture is computed on the first paint after a snapshot and kept
  (``Glyph.image``), so repaints in between cost a ``drawImage``. A node draws its glyph
  in a child item (``GlyphItem``): a new snapshot repaints the glyphs, and the nodes' text
  stays in their cached pictures.
- Health flags (``health_flags``, ``health_tooltip``, ``paint_badge``): a warning triangle
  on the node, the flags' titles and explanations in its tooltip.
- A profile (``profile_marks``): each node's share of the time, memory or FLOPs, a tint
  (``heat_fill``) and a figure (``3.1 ms · 24 %``); fused groups as one ``GroupRegion``
  behind their nodes, the group's figure on its first node.

The insight object is duck-typed (``Insight``): anything with the contract's attributes.
Nothing here runs while the overlays are off: the nodes hold ``None`` and skip them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Mapping, Protocol, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem

from .routing import NODE_H, NODE_W
from .theme import Theme

MAX_BARS = 32  # a vector's strip: more values than this are pooled (means of equal runs)
MAX_SIDE = 96  # an image or heat map is pooled to at most this many pixels a side (the glyph is ~60)
# the glyph's place in a node at full detail: a column at the right, under the title line,
# beside the key-parameter and shape lines (which the node then elides to the column's left)
GLYPH_RECT = QRectF(NODE_W - 70, 24, 60, 34)  # (10 from the right side: clear of an output port there)
GLYPH_TEXT_PX = 10  # the output glyph's "cat 87 %" (the column is too narrow for 12 px)
BADGE_W = 18.0  # the warning triangle among the title's marks
METRICS = ("time", "memory", "flops")
HEAT_LIGHT, HEAT_DARK = QColor(235, 110, 20), QColor(255, 140, 50)  # the profile tint at share 1
HEAT_MOST = 0.65  # how much of the heat colour the largest share mixes into the node's fill
REGION_PAD = 8.0  # a fused group's region around its nodes (layouts leave ~24 between layers)


class Insight(Protocol):
    """What ``CanvasScene.set_insight`` reads (the training panel's ``CanvasInsight``)."""

    activations: Mapping[str, np.ndarray]  # per node: the chosen sample's output
    output_node: str | None
    class_names: Sequence[str]
    health: Mapping[str, Mapping] | None
    step: int


def mix(a: QColor, b: QColor, share: float) -> QColor:
    """``a`` with ``share`` (0..1) of ``b`` mixed in."""
    return QColor(round(a.red() + (b.red() - a.red()) * share), round(a.green() + (b.green() - a.green()) * share),
                  round(a.blue() + (b.blue() - a.blue()) * share))


def _font(pixels: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(1, round(pixels)))
    font.setBold(bold)
    return font


# -- live glyphs -------------------------------------------------------------------------------
@dataclass(eq=False)
class Glyph:
    """A node's output drawn small. ``kind``: "image" (mean over channels), "bars" (a vector),
    "heat" (a sequence ``[T, F]``: time across, features down) or "probs" (the output's class
    probabilities). Built by ``make_glyph``; the reduction and the picture are made on first
    use and kept."""

    kind: str
    data: np.ndarray
    class_names: Sequence[str] = ()
    _values: np.ndarray | None = field(default=None, repr=False)
    _label: str = ""
    _image: QImage | None = field(default=None, repr=False)
    _image_key: tuple | None = field(default=None, repr=False)

    def values(self) -> np.ndarray:
        """The reduced data: images and heat maps 2-D in 0..1 (per node: min to max), bars
        1-D in -1..1 (per node: of the largest magnitude), probabilities 1-D summing to 1."""
        if self._values is None:
            # any float64 values at all: sums that overflow end as 0, never as a warning
            with np.errstate(all="ignore"):
                values, self._label = _reduce(self.kind, self.data, self.class_names)
            self._values = _finite(values)
        return self._values

    def label(self) -> str:
        """The output's top class and its probability (``cat 87 %``); "" for other kinds."""
        self.values()
        return self._label

    def image(self, low: QColor, high: QColor) -> QImage:
        """The picture of an image or heat map, ``low`` at 0 to ``high`` at 1 (cached per colours)."""
        key = (low.rgb(), high.rgb())
        if self._image is None or self._image_key != key:
            self._image, self._image_key = _to_image(self.values(), low, high), key
        return self._image


def glyph_kind(shape: tuple[int, ...], output: bool) -> str | None:
    """How an output of ``shape`` (one sample's, no batch) is drawn: "probs" for the output
    node's vector, "bars" for another vector, "heat" for ``[T, F]``, "image" for three or more
    dimensions; None for a scalar or an empty array."""
    if not shape or math.prod(shape) == 0:
        return None
    if len(shape) == 1:
        return "probs" if output else "bars"
    return "heat" if len(shape) == 2 else "image"


def make_glyph(array, output: bool = False, class_names: Sequence[str] = ()) -> Glyph | None:
    """The glyph of one node's output ``array`` (numpy, one sample); None when it has nothing
    to draw (not a real-valued array, a scalar, empty). Cheap: the reduction waits for the
    first paint."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        return None
    kind = glyph_kind(tuple(array.shape), output)
    if kind is None:
        return None
    return Glyph(kind, array, tuple(class_names or ()))


def _finite(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _pool_2d(m: np.ndarray, most: int = MAX_SIDE) -> np.ndarray:
    """``m`` shrunk by whole factors (means of blocks) until no side exceeds ``most``."""
    fy, fx = -(-m.shape[0] // most), -(-m.shape[1] // most)
    if fy == 1 and fx == 1:
        return m
    h, w = m.shape[0] // fy * fy, m.shape[1] // fx * fx
    return m[:h, :w].reshape(h // fy, fy, w // fx, fx).mean(axis=(1, 3))


def _unit(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return np.full_like(m, 0.5) if hi - lo <= 1e-12 * max(1.0, abs(hi)) else (m - lo) / (hi - lo)


def probabilities(v: np.ndarray) -> np.ndarray:
    """An output vector as class probabilities: itself when it already is a distribution, a
    softmax of it otherwise; a single value is P(class 1) (a sigmoid unless already in 0..1),
    returned as ``[1 - p, p]``."""
    v = _finite(v).ravel()
    if v.size == 1:
        p = float(v[0]) if 0.0 <= v[0] <= 1.0 else 1.0 / (1.0 + math.exp(-float(np.clip(v[0], -60, 60))))
        return np.array([1.0 - p, p])
    if v.min() >= 0.0 and abs(v.sum() - 1.0) < 1e-3:
        return v
    e = np.exp(v - v.max())
    return e / e.sum()


def _reduce(kind: str, data: np.ndarray, class_names: Sequence[str]) -> tuple[np.ndarray, str]:
    a = _finite(data)
    if kind == "probs":
        p = probabilities(a)
        top = int(p.argmax())
        name = str(class_names[top]) if top < len(class_names) else str(top)
        if len(p) > MAX_BARS:  # many classes: the largest ones, in class order
            p = p[np.sort(np.argsort(-p, kind="stable")[:MAX_BARS])]
        return p, f"{name} · {p.max() * 100:.0f} %"
    if kind == "bars":
        if a.size > MAX_BARS:
            a = run_means(a.ravel(), MAX_BARS)
        peak = float(np.abs(a).max())
        return (a / peak if peak > 0 else a), ""
    if kind == "heat":
        return _unit(_pool_2d(a.T)), ""  # features down, time across
    m = a.mean(axis=0)
    while m.ndim > 2:  # a volume [D, H, W]: the mean over depth too
        m = m.mean(axis=0)
    return _unit(_pool_2d(m)), ""


def run_means(v: np.ndarray, n: int) -> np.ndarray:
    """The means of ``v`` split into ``n`` consecutive runs as ``np.array_split`` splits it
    (the first ``len(v) % n`` runs one longer), in one pass."""
    size, extra = divmod(len(v), n)
    lengths = np.full(n, size)
    lengths[:extra] += 1
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return np.add.reduceat(v, starts) / lengths


def _to_image(m: np.ndarray, low: QColor, high: QColor) -> QImage:
    ramp = np.linspace(0.0, 1.0, 256)[:, None]
    lo = np.array([low.red(), low.green(), low.blue()], dtype=np.float64)
    hi = np.array([high.red(), high.green(), high.blue()], dtype=np.float64)
    rgb = np.rint(lo + (hi - lo) * ramp).astype(np.uint32)
    lut = (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)
    pixels = np.ascontiguousarray(lut[np.clip(np.rint(m * 255), 0, 255).astype(np.intp)])
    h, w = pixels.shape
    # copy(): the QImage owns its pixels (the numpy buffer goes away)
    return QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_RGB32).copy()


def glyph_footprint(glyph: Glyph, rect: QRectF) -> QRectF:
    """Where ``glyph`` is drawn in ``rect``: an image as large as fits with its aspect ratio,
    at the right; anything else fills ``rect``."""
    if glyph.kind != "image":
        return QRectF(rect)
    h, w = glyph.values().shape
    k = min(rect.width() / w, rect.height() / h)
    return QRectF(rect.right() - w * k, rect.top() + (rect.height() - h * k) / 2, w * k, h * k)


def paint_glyph(painter: QPainter, glyph: Glyph, rect: QRectF, theme: Theme, colour: QColor,
                show_label: bool = True) -> None:
    """Draw ``glyph`` inside ``rect`` (node coordinates): images keep their aspect ratio,
    right-aligned; bars and heat maps fill it. ``colour``: the node's category colour."""
    painter.save()
    frame = mix(theme.node, theme.node_border, 0.5)
    if glyph.kind in ("image", "heat"):
        low = mix(theme.node, QColor(0, 0, 0) if theme.dark else QColor(255, 255, 255), 0.6)
        high = theme.text if glyph.kind == "image" else colour
        image = glyph.image(low, high)
        target = QRectF(rect)
        if glyph.kind == "image":
            target = glyph_footprint(glyph, rect)
        # enlarged: sharp pixels (a 7x7 map stays a 7x7 map); reduced: smoothed
        smooth = target.width() < image.width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.drawImage(target, image)
        painter.setPen(QPen(frame, 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(target)
    else:
        _paint_bars(painter, glyph, rect, theme, colour, frame, show_label)
    painter.restore()


def _paint_bars(painter: QPainter, glyph: Glyph, rect: QRectF, theme: Theme, colour: QColor, frame: QColor,
                show_label: bool) -> None:
    values = glyph.values()
    probs = glyph.kind == "probs"
    area = QRectF(rect)
    if probs and show_label:
        area.setBottom(rect.bottom() - GLYPH_TEXT_PX - 2)
    painter.setPen(QPen(frame, 1))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(area)
    n = len(values)
    step = area.width() / n
    gap = 1.0 if step >= 3 else 0.0
    signed = not probs and float(values.min()) < 0
    base = area.center().y() if signed else area.bottom()
    reach = area.height() / 2 if signed else area.height()
    top = int(values.argmax())
    heights = (values * reach).tolist()
    width = max(step - gap, 0.6)
    bars = [QRectF(area.left() + i * step + gap / 2, base - max(h, 0.0), width, abs(h)) for i, h in enumerate(heights)]
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    if probs:  # the top class in the node's colour, the others dimmed
        painter.drawRects(bars[top:top + 1])
        painter.setBrush(mix(theme.node, theme.dim_text, 0.55))
        bars = bars[:top] + bars[top + 1:]
    painter.drawRects(bars)  # one call: a drawRect per bar cost more than the rest of the node
    if probs and show_label:
        font = _font(GLYPH_TEXT_PX, bold=True)
        painter.setFont(font)
        painter.setPen(theme.text)
        text = QFontMetricsF(font).elidedText(glyph.label(), Qt.TextElideMode.ElideMiddle, rect.width())
        painter.drawText(QRectF(rect.left(), area.bottom() + 1, rect.width(), GLYPH_TEXT_PX + 2),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)


class GlyphItem(QGraphicsItem):
    """A node's live glyph, a child item of the node (``NodeItem.glyph`` says what to draw):
    drawn apart from the node's cached picture, so a snapshot repaints only the glyphs. It
    takes no mouse or hover: those go to the node under it."""

    def __init__(self, node_item: QGraphicsItem):
        super().__init__(node_item)
        self.node_item = node_item
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setZValue(1)  # above the ports' (empty) items too
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)  # repaints between snapshots: a blit

    def boundingRect(self) -> QRectF:
        return QRectF(_GLYPH_ITEM_RECT)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        node = self.node_item
        glyph = node.glyph
        if glyph is None:
            return
        colour = node.theme.category(node.category)
        scale = option.levelOfDetailFromTransform(painter.worldTransform())
        detail = node.detail(scale)
        if detail == "text":
            paint_glyph(painter, glyph, GLYPH_RECT, node.theme, colour)
            return
        # beside the type name drawn alone, or most of a bare box; a warning over it
        paint_glyph(painter, glyph, glyph_rect_far(detail == "type"), node.theme, colour, show_label=False)
        node.paint_far_badge(painter, scale)


# -- health ------------------------------------------------------------------------------------
def health_flags(health, node_id: str) -> list[tuple[str, str]]:
    """The (title, explanation) of each flag ``health`` (the snapshot's dict, or None) has for
    ``node_id``; entries that are not the contract's shape are left out."""
    if not isinstance(health, Mapping):
        return []
    stats = health.get(node_id)
    flags = stats.get("flags") if isinstance(stats, Mapping) else None
    if not isinstance(flags, (list, tuple)):
        return []
    return [(str(f.get("title") or f.get("code") or "Warning"), str(f.get("explain") or ""))
            for f in flags if isinstance(f, Mapping)]


def health_tooltip(flags: list[tuple[str, str]], colour: QColor) -> str:
    """The tooltip's section for ``flags``: each title in bold, its explanation after it."""
    rows = "".join(f"<br><b style='color:{colour.name()}'>⚠ {escape(title, quote=False)}</b>"
                   + (f"<br>{escape(explain, quote=False)}" if explain else "") for title, explain in flags)
    return "<br>" + rows if rows else ""


def paint_badge(painter: QPainter, rect: QRectF, theme: Theme) -> None:
    """A warning triangle with an exclamation mark filling ``rect``."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    w, h = rect.width(), rect.height()
    triangle = QPolygonF([QPointF(rect.left() + w / 2, rect.top()), QPointF(rect.right(), rect.bottom()),
                          QPointF(rect.left(), rect.bottom())])
    painter.setPen(QPen(theme.node, max(1.0, w / 12), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                        Qt.PenJoinStyle.RoundJoin))
    painter.setBrush(theme.warning)
    painter.drawPolygon(triangle)
    painter.setPen(QPen(QColor(255, 255, 255) if not theme.dark else QColor(30, 30, 30), max(1.0, w / 9),
                        Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    x = rect.left() + w / 2
    painter.drawLine(QPointF(x, rect.top() + h * 0.38), QPointF(x, rect.top() + h * 0.68))
    painter.drawPoint(QPointF(x, rect.top() + h * 0.84))
    painter.restore()


# -- profile -----------------------------------------------------------------------------------
@dataclass
class Heat:
    """One node's (or fused group's) place in a profile: ``share`` 0..1 of the largest row's
    value (the tint), ``fraction`` of all rows' total, ``figure`` to draw (``3.1 ms · 24 %``),
    ``short`` (``24 %``: zoomed out), ``detail`` for the tooltip."""

    share: float
    fraction: float
    figure: str
    short: str
    detail: str


@dataclass
class GroupHeat:
    """A fused group: its node ids and its row's ``Heat``."""

    ids: list[str]
    heat: Heat


def _number(row: Mapping, key: str) -> float:
    v = row.get(key, 0)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0


def metric_value(row: Mapping, metric: str) -> float:
    """A profile row's value for ``metric``: "time" forward + backward ms, "memory" output
    bytes, "flops" FLOPs."""
    if metric == "time":
        return _number(row, "forward_ms") + _number(row, "backward_ms")
    return _number(row, "output_bytes" if metric == "memory" else "flops")


def _scaled(v: float, units: Sequence[tuple[float, str]]) -> str:
    for size, unit in units:
        if abs(v) >= size:
            x = v / size
            return f"{x:.3g} {unit}" if x < 100 else f"{x:.0f} {unit}"
    return f"{v:.0f} {units[-1][1]}"


def metric_text(v: float, metric: str) -> str:
    """``3.1 ms``, ``1.2 MB``, ``340 MFLOP``."""
    if metric == "time":
        return f"{v:.2g} ms" if v < 1 else f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"
    if metric == "memory":
        return _scaled(v, [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")])
    return _scaled(v, [(1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP"), (1, "FLOP")])


def _percent(fraction: float) -> str:
    p = fraction * 100
    return f"{p:.0f} %" if p >= 1 or p == 0 else "<1 %"


def profile_marks(profile, metric: str) -> tuple[dict[str, Heat], list[GroupHeat]]:
    """Per node id its ``Heat`` in ``profile`` (the ``netcanvas profile --json`` dict) by
    ``metric``, and the fused groups (rows with ``"group": [ids]`` of more than one id; a
    group's nodes get its heat too, its first node the figure). Raises ``ValueError`` naming what is wrong: an unknown
    metric, a profile without a list of ``nodes``."""
    if metric not in METRICS:
        raise ValueError(f"profile metric {metric!r}: expected one of {', '.join(METRICS)}")
    rows = profile.get("nodes") if isinstance(profile, Mapping) else None
    if not isinstance(rows, (list, tuple)):
        raise ValueError("profile: expected the 'profile --json' object, with a list of 'nodes'; "
                         f"received {type(profile).__name__}")
    rows = [r for r in rows if isinstance(r, Mapping)]
    values = [metric_value(r, metric) for r in rows]
    top, total = max(values, default=0.0), sum(values)
    marks: dict[str, Heat] = {}
    groups: list[GroupHeat] = []
    for row, v in zip(rows, values):
        fraction = v / total if total > 0 else 0.0
        heat = Heat(v / top if top > 0 else 0.0, fraction, f"{metric_text(v, metric)} · {_percent(fraction)}",
                    _percent(fraction), _detail(row, metric, fraction))
        group = row.get("group")
        ids = [str(i) for i in group] if isinstance(group, (list, tuple)) else []
        if len(ids) > 1:
            groups.append(GroupHeat(ids, heat))
            for i in ids:  # the figure once, on the first node (the region has no room of its own)
                first = i == ids[0]
                marks[i] = Heat(heat.share, heat.fraction, f"{heat.figure} ({len(ids)} fused)" if first else "",
                                heat.short if first else "", heat.detail)
        elif "id" in row:
            marks[str(ids[0] if ids else row["id"])] = heat
    return marks, groups


def _detail(row: Mapping, metric: str, fraction: float) -> str:
    parts = [f"forward {metric_text(_number(row, 'forward_ms'), 'time')}, "
             f"backward {metric_text(_number(row, 'backward_ms'), 'time')}",
             f"output {metric_text(_number(row, 'output_bytes'), 'memory')}",
             metric_text(_number(row, "flops"), "flops")]
    group = row.get("group")
    fused = f"fused with {', '.join(map(str, group))}: " if isinstance(group, (list, tuple)) and len(group) > 1 else ""
    name = {"time": "the time", "memory": "the memory", "flops": "the FLOPs"}[metric]
    return f"Profile: {fused}{_percent(fraction)} of {name} · " + " · ".join(parts)


def heat_colour(theme: Theme) -> QColor:
    return HEAT_DARK if theme.dark else HEAT_LIGHT


def heat_fill(base: QColor, theme: Theme, share: float) -> QColor:
    """``base`` tinted by a profile share (0..1): the larger the share, the stronger."""
    return mix(base, heat_colour(theme), HEAT_MOST * min(1.0, max(0.0, share)))


class GroupRegion(QGraphicsItem):
    """A fused group of nodes: one rounded region behind them, tinted by its share (the
    figure is on the first node: layouts leave no room around a node for text)."""

    def __init__(self, ids: list[str], heat: Heat, theme: Theme):
        super().__init__()
        self.ids, self.heat, self.theme = ids, heat, theme
        self.setZValue(-1)  # behind the edges (0) and the nodes (1)
        self._rect = QRectF()

    def follow(self, boxes: list[QRectF]) -> None:
        """Cover ``boxes`` (the member nodes' boxes in the scene); hidden without any."""
        self.setVisible(bool(boxes))
        rect = QRectF()
        for box in boxes:
            rect = rect.united(box)
        rect = rect.adjusted(-REGION_PAD, -REGION_PAD, REGION_PAD, REGION_PAD)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect

    def boundingRect(self) -> QRectF:
        return QRectF(self._rect).adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        t = self.theme
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath()
        path.addRoundedRect(self._rect, 12, 12)
        # lighter than its nodes, which keep their own tint on it
        fill = heat_fill(t.background, t, 0.1 + 0.3 * self.heat.share)
        painter.setPen(QPen(heat_colour(t), 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(fill)
        painter.drawPath(path)


def glyph_rect_far(zoomed_out_type: bool) -> QRectF:
    """The glyph's place when the node shows less than its text: beside the type name (the
    glyph's column, the box's full height) or, drawn as a bare box, most of the box."""
    if zoomed_out_type:
        return QRectF(GLYPH_RECT.left(), 6, GLYPH_RECT.width(), NODE_H - 12)
    return QRectF(12, 6, NODE_W - 18, NODE_H - 12)


# where a GlyphItem may draw, whatever the detail: the glyph and, far out, the badge over it
_GLYPH_ITEM_RECT = QRectF(0, 0, NODE_W, NODE_H).adjusted(-1, -1, 1, 1)
