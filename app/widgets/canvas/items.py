"""Graphics items of the canvas: a node with its ports, and an edge with its shape label.

Items draw what the model and the latest analysis say; they never hold the truth.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem, QStyle

from ...engine.graph import Edge, Node
from ...engine.layers import get_spec
from ...engine.layers.helpers import fmt
from .theme import Theme

NODE_W, NODE_H, PORT_R = 196.0, 66.0, 6.0


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


class PortItem(QGraphicsItem):
    """An input slot (top edge) or the output (bottom edge) of a node."""

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
        for i, port in enumerate(self.inputs):
            port.setPos(NODE_W * (i + 1) / (n + 1), 0)

    def update_slots(self, highest_connected: int) -> None:
        wanted = self._slots_wanted(highest_connected + 1)
        if wanted != len(self.inputs):
            self.set_input_count(wanted)

    def input_pos(self, port: int) -> QPointF:
        if port < len(self.inputs):
            return self.inputs[port].scenePos()
        return self.mapToScene(QPointF(NODE_W / 2, 0))

    def output_pos(self) -> QPointF:
        return self.output_port.scenePos()

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
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < 0.35:  # far out: a box is all one can read
            return
        title = QFont(painter.font())
        title.setBold(True)
        title.setPointSizeF(9.5)
        painter.setFont(title)
        painter.setPen(t.text)
        metrics = QFontMetricsF(title)
        painter.drawText(QPointF(15, 18), self.node.type)
        id_font = QFont(title)
        id_font.setBold(False)
        painter.setFont(id_font)
        painter.setPen(t.dim_text)
        x = 15 + metrics.horizontalAdvance(self.node.type) + 8
        painter.drawText(QRectF(x, 5, NODE_W - x - 6, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetricsF(id_font).elidedText(self.node_id, Qt.TextElideMode.ElideRight, NODE_W - x - 6))
        small = QFont(title)
        small.setBold(False)
        small.setPointSizeF(8.5)
        painter.setFont(small)
        sm = QFontMetricsF(small)
        painter.setPen(t.text)
        painter.drawText(QPointF(15, 37), sm.elidedText(self.summary, Qt.TextElideMode.ElideRight, NODE_W - 22))
        painter.setPen(t.error if self.severity == "error" else t.dim_text)
        bottom = self.problem if self.severity == "error" else self.shape_text
        painter.drawText(QPointF(15, 56), sm.elidedText(bottom, Qt.TextElideMode.ElideRight, NODE_W - 22))


class EdgeItem(QGraphicsPathItem):
    """A connection, drawn as a curve from the source's output down to the target's input,
    with the tensor shape it carries written at its middle."""

    def __init__(self, edge: Edge, theme: Theme):
        super().__init__()
        self.edge, self.theme = edge, theme
        self.setZValue(0)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setPen(QPen(theme.edge, 1.8))
        self.label = QGraphicsSimpleTextItem(self)
        font = QFont()
        font.setPointSizeF(8)
        self.label.setFont(font)
        self.label.setBrush(QBrush(theme.dim_text))
        self.label.setZValue(3)
        self._label_text = ""

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.setPen(QPen(theme.edge, 1.8))
        self.label.setBrush(QBrush(theme.dim_text))

    def set_label(self, text: str) -> None:
        if text != self._label_text:
            self._label_text = text
            self.label.setText(text)
            self._place_label()

    def route(self, start: QPointF, end: QPointF) -> None:
        self.setPath(edge_path(start, end))
        self._place_label()

    def _place_label(self) -> None:
        path = self.path()
        if path.isEmpty():
            return
        mid = path.pointAtPercent(0.5)
        r = self.label.boundingRect()
        self.label.setPos(mid.x() + 6, mid.y() - r.height() / 2)

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


def edge_path(start: QPointF, end: QPointF) -> QPainterPath:
    """A vertical S-curve; an edge that skips past nodes straight below bows to the side so
    it does not run under them (the skip connections of a residual net)."""
    path = QPainterPath(start)
    dy = end.y() - start.y()
    dx = end.x() - start.x()
    bend = max(40.0, abs(dy) * 0.4)
    if dy > NODE_H * 2.5 and abs(dx) < NODE_W * 0.6:
        side = -1 if dx <= 0 else 1
        reach = min(60 + dy * 0.08, 200) * side
        path.cubicTo(QPointF(start.x() + reach * 1.6, start.y() + bend * 0.5),
                     QPointF(end.x() + reach * 1.6, end.y() - bend * 0.5), end)
        # starting and ending off-axis keeps the curve clear of the column of nodes
        return path
    if dy < 20:  # an edge going up (the target sits above): loop around
        bend = max(80.0, abs(dy) * 0.5)
    path.cubicTo(QPointF(start.x(), start.y() + bend), QPointF(end.x(), end.y() - bend), end)
    return path


def temp_pen(theme: Theme) -> QPen:
    pen = QPen(theme.selection, 2, Qt.PenStyle.DashLine)
    return pen


def highlight(color: QColor, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c
