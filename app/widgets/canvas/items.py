"""Graphics items of the canvas: a node with its ports, and an edge with its shape label.

Items draw what the model and the latest analysis say; they never hold the truth.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem, QStyle

from ...engine.graph import Edge, Node
from ...engine.layers import get_spec
from ...engine.layers.helpers import fmt
from .routing import NODE_H, NODE_W, edge_route, label_spot
from .theme import Theme

PORT_R = 6.0
# text sizes in scene units (pixels at zoom 1): what a node says must stay readable when the
# view is zoomed out to fit a graph, so levels of detail follow the text's size on screen
TITLE_PX, TEXT_PX, LABEL_PX = 13, 12, 12
READABLE_PX = 9.0  # the smallest text on screen that reads without effort
DETAIL_PX = 5.0  # below this on screen a line of text is a smear: draw the type name alone
TYPE_MIN_PX = 6.0  # ... and below this even a large type name is not worth drawing
SMALLEST_TEXT_PX = min(TEXT_PX, LABEL_PX)


def node_font(pixels: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(1, round(pixels)))
    font.setBold(bold)
    return font


def key_summary(node: Node, params: dict) -> str:
    """A short line of the node's key parameters: ``6 ch · 5×5`` for a Conv2d."""
    spec = get_spec(node.type)
    if spec is None:
        return ""
    parts = []
    for p in spec.params:
        if not p.key or p.name not in params:
            continue
        v = params[p.name]
        if p.kind in ("int_or_pair",) and v is not None:
            v = "×".join(map(str, v)) if isinstance(v, list) else f"{v}×{v}" if p.name == "kernel_size" else v
        elif isinstance(v, list):
            v = fmt(v)
        label = {"out_channels": "{} ch", "out_features": "{} units", "hidden_size": "{} hidden",
                 "p": "p = {}", "num_embeddings": "{} words", "embedding_dim": "dim {}",
                 "negative_slope": "slope {}", "alpha": "α {}", "dim": "dim {}", "scale_factor": "×{}",
                 "output_size": "out {}"}.get(p.name, "{}")
        parts.append(label.format(v))
    return " · ".join(parts)


@lru_cache(maxsize=4096)
def _title_width(text: str, pixels: int) -> float:
    return QFontMetricsF(node_font(pixels, bold=True)).horizontalAdvance(text)


class PortItem(QGraphicsItem):
    """An input slot (top edge, or left edge left to right) or the output (bottom edge, or
    right edge) of a node."""

    def __init__(self, node_item: "NodeItem", output: bool, index: int = 0):
        super().__init__(node_item)
        self.node_item, self.output, self.index = node_item, output, index
        self.hovered = False
        self.setAcceptHoverEvents(True)
        self.setZValue(2)
        # the node draws its ports (inside its cached paint); a port item is only the place
        # the mouse hits, so thousands of ports cost no Python paint calls
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)

    def boundingRect(self) -> QRectF:
        r = PORT_R + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(self.boundingRect())
        return path

    def paint(self, painter: QPainter, option, widget=None) -> None:
        pass  # drawn by NodeItem.paint

    def hoverEnterEvent(self, event) -> None:
        self.set_hovered(True)

    def hoverLeaveEvent(self, event) -> None:
        self.set_hovered(False)

    def set_hovered(self, on: bool) -> None:
        if on != self.hovered:
            self.hovered = on
            self.node_item.update()


class NodeItem(QGraphicsItem):
    """A layer: type and id, key parameters, output shape and parameter count; red with
    the message as tooltip when the analysis found an error."""

    def __init__(self, node: Node, theme: Theme):
        super().__init__()
        self.node, self.theme = node, theme
        self.node_id = node.id
        spec = get_spec(node.type)
        self.category = spec.category if spec else "?"
        self.summary, self.shape_text, self.problem, self.severity = "", "", "", ""
        self.inputs: list[PortItem] = []
        self.direction = "TB"  # "LR": inputs on the left side, the output on the right
        self.output_port = PortItem(self, True)
        self.output_port.setPos(NODE_W / 2, NODE_H)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.set_input_count(self._slots_wanted(0))

    def _slots_wanted(self, connected: int) -> int:
        spec = get_spec(self.node.type)
        if spec is None:
            return max(1, connected)
        if spec.max_inputs is None:  # variadic: the connected slots plus one free
            return max(spec.min_inputs, connected + 1)
        return spec.max_inputs

    def set_input_count(self, n: int) -> None:
        self.update()
        while len(self.inputs) < n:
            self.inputs.append(PortItem(self, False, len(self.inputs)))
        while len(self.inputs) > n:
            port = self.inputs.pop()
            port.setParentItem(None)
            if port.scene():
                port.scene().removeItem(port)
        self._place_ports()

    def set_direction(self, direction: str) -> None:
        """Ports on the top and bottom sides ("TB") or on the left and right ("LR")."""
        if direction != self.direction:
            self.direction = direction
            self._place_ports()
            self.update()

    def _place_ports(self) -> None:
        n = len(self.inputs)
        lr = self.direction == "LR"
        for i, port in enumerate(self.inputs):
            port.setPos(0, NODE_H * (i + 1) / (n + 1)) if lr else port.setPos(NODE_W * (i + 1) / (n + 1), 0)
        self.output_port.setPos(NODE_W, NODE_H / 2) if lr else self.output_port.setPos(NODE_W / 2, NODE_H)

    def update_slots(self, highest_connected: int) -> None:
        wanted = self._slots_wanted(highest_connected + 1)
        if wanted != len(self.inputs):
            self.set_input_count(wanted)

    def input_pos(self, port: int) -> QPointF:
        if port < len(self.inputs):
            return self.inputs[port].scenePos()
        return self.mapToScene(QPointF(0, NODE_H / 2) if self.direction == "LR" else QPointF(NODE_W / 2, 0))

    def output_pos(self) -> QPointF:
        return self.output_port.scenePos()

    def box(self) -> QRectF:
        """The node's box in the scene, ports aside: what its edges keep out of."""
        return self.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H))

    def set_info(self, summary: str, shape_text: str, problem: str, severity: str) -> None:
        if (summary, shape_text, problem, severity) == (self.summary, self.shape_text, self.problem, self.severity):
            return
        self.summary, self.shape_text, self.problem, self.severity = summary, shape_text, problem, severity
        if self.isUnderMouse():
            self.setToolTip(self.tooltip())
        self.update()

    def tooltip(self) -> str:
        tip = f"<b>{self.node.type}</b> {self.node_id}<br>{escape(self.shape_text, quote=False)}"
        if self.problem:
            tip += f"<br><span style='color:{self.theme.error.name()}'>{escape(self.problem, quote=False)}</span>"
        return tip

    def hoverEnterEvent(self, event) -> None:
        # built when shown: an edit that changes 1,000 nodes must not build 1,000 tooltips
        self.setToolTip(self.tooltip())
        super().hoverEnterEvent(event)

    def boundingRect(self) -> QRectF:
        r = PORT_R + 3
        return QRectF(-r, -r, NODE_W + 2 * r, NODE_H + 2 * r)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        t = self.theme
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(0, 0, NODE_W, NODE_H)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        border = t.error if self.severity == "error" else t.warning if self.severity == "warning" else t.node_border
        pen = QPen(t.selection if selected else border, 2.5 if (selected or self.severity) else 1.2)
        painter.setPen(pen)
        painter.setBrush(t.node)
        painter.drawRoundedRect(rect, 7, 7)
        strip = QPainterPath()
        strip.addRoundedRect(QRectF(0, 0, 7, NODE_H), 3, 3)
        painter.fillPath(strip, t.category(self.category))
        for port in (*self.inputs, self.output_port):
            r = PORT_R + (2 if port.hovered else 0)
            painter.setPen(QPen(t.node, 2))
            painter.setBrush(t.selection if port.hovered else t.port)
            painter.drawEllipse(port.pos(), r, r)
        scale = option.levelOfDetailFromTransform(painter.worldTransform())
        detail = self.detail(scale)
        if detail == "text":
            self._paint_text(painter)
        elif detail == "type":  # far out: the type name alone, as large as the box allows
            font = node_font(self._type_only_pixels(scale), bold=True)
            painter.setFont(font)
            painter.setPen(self.theme.error if self.severity == "error" else self.theme.text)
            text = QFontMetricsF(font).elidedText(self.node.type, Qt.TextElideMode.ElideRight, NODE_W - 22)
            painter.drawText(QRectF(12, 0, NODE_W - 16, NODE_H), Qt.AlignmentFlag.AlignCenter, text)

    def detail(self, scale: float) -> str:
        """What the node shows at ``scale`` screen pixels per scene unit, decided by the size
        its text would have on screen: "text" (every line), "type" (the type name alone,
        drawn larger) or "box"."""
        if TEXT_PX * scale >= DETAIL_PX:
            return "text"
        return "type" if self._type_only_pixels(scale) * scale >= TYPE_MIN_PX else "box"

    def _type_only_pixels(self, scale: float) -> float:
        """The type name's size (scene units) when drawn alone: readable on screen if the
        box allows, and never wider than the box."""
        scale = max(scale, 1e-6)
        pixels = min(READABLE_PX / scale, NODE_H * 0.55)
        width = _title_width(self.node.type, round(pixels))
        if width > NODE_W - 22:  # a long name: smaller, down to the least that reads (then elided)
            pixels = max(pixels * (NODE_W - 22) / width, min(pixels, TYPE_MIN_PX / scale))
        return pixels

    def _paint_text(self, painter: QPainter) -> None:
        t = self.theme
        title = node_font(TITLE_PX, bold=True)
        painter.setFont(title)
        painter.setPen(t.text)
        metrics = QFontMetricsF(title)
        type_text = metrics.elidedText(self.node.type, Qt.TextElideMode.ElideRight, NODE_W - 22)
        painter.drawText(QPointF(15, 19), type_text)
        id_font = node_font(TITLE_PX)
        painter.setFont(id_font)
        painter.setPen(t.dim_text)
        x = 15 + metrics.horizontalAdvance(type_text) + 8
        if x < NODE_W - 20:
            room = NODE_W - x - 6
            painter.drawText(QRectF(x, 5, room, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             QFontMetricsF(id_font).elidedText(self.node_id, Qt.TextElideMode.ElideRight, room))
        small = node_font(TEXT_PX)
        painter.setFont(small)
        sm = QFontMetricsF(small)
        painter.setPen(t.text)
        painter.drawText(QPointF(15, 38), sm.elidedText(self.summary, Qt.TextElideMode.ElideRight, NODE_W - 22))
        painter.setPen(t.error if self.severity == "error" else t.dim_text)
        bottom = self.problem if self.severity == "error" else self.shape_text
        painter.drawText(QPointF(15, 57), sm.elidedText(bottom, Qt.TextElideMode.ElideRight, NODE_W - 22))


class EdgeItem(QGraphicsPathItem):
    """A connection from the source's output to the target's input (down, or to the right in
    a left-to-right layout; around both nodes when the target is not ahead: see routing.py),
    with the tensor shape it carries written at its middle, off both nodes."""

    def __init__(self, edge: Edge, theme: Theme):
        super().__init__()
        self.edge, self.theme = edge, theme
        self.setZValue(0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setPen(QPen(theme.edge, 1.8))
        self.direction = "TB"
        self.label = QGraphicsSimpleTextItem(self)
        self.label.setFont(node_font(LABEL_PX))
        self.label.setBrush(QBrush(theme.dim_text))
        self.label.setZValue(3)
        self._label_text = ""
        self._boxes: list[QRectF] = []  # the boxes of its two nodes, which the label keeps off
        self._curve = None  # the four points of its path when that is one curve

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.setPen(QPen(theme.edge, 1.8))
        self.label.setBrush(QBrush(theme.dim_text))

    def set_label(self, text: str) -> None:
        if text != self._label_text:
            self._label_text = text
            self.label.setText(text)
            self._place_label()

    def route(self, start: QPointF, end: QPointF, direction: str = "TB",
              source: QRectF | None = None, target: QRectF | None = None) -> None:
        """Run from ``start`` to ``end`` around the ``source`` and ``target`` boxes."""
        self.direction = direction
        self._boxes = [box for box in (source, target) if box is not None]
        path, self._curve = edge_route(start, end, direction, source, target)
        self.setPath(path)
        if self._label_text:  # (an edge just built has none yet: set_label places it)
            self._place_label()

    def _place_label(self) -> None:
        path = self.path()
        if path.isEmpty():
            return
        self.label.setPos(label_spot(path, self.label.boundingRect().size(), self._boxes, self.direction, self._curve))

    def paint(self, painter: QPainter, option, widget=None) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        self.setPen(QPen(self.theme.selection if selected else self.theme.edge, 3 if selected else 1.8))
        option.state &= ~QStyle.StateFlag.State_Selected  # no dashed box around a curve
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        super().paint(painter, option, widget)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        return stroker.createStroke(self.path())


def temp_pen(theme: Theme) -> QPen:
    pen = QPen(theme.selection, 2, Qt.PenStyle.DashLine)
    return pen


def highlight(color: QColor, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c
