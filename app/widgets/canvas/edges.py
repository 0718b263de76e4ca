"""An edge of the canvas: a connection with the tensor shape it carries written beside it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsSimpleTextItem, QStyle

from ...engine.graph import Edge
from .items import LABEL_PX, node_font
from .routing import edge_route, label_spot
from .theme import Theme


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
        # where a label of each size goes on the current route: an edit and its undo swap a
        # shape's text for "?" and back on hundreds of edges at once
        self._spots: dict[tuple[float, float], QPointF] = {}

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
              source: QRectF | None = None, target: QRectF | None = None, avoid: list[QRectF] = ()) -> None:
        """Run from ``start`` to ``end`` around the ``source`` and ``target`` boxes; the label
        keeps off them and off the rectangles in ``avoid`` (their ports' labels)."""
        self.direction = direction
        self._boxes = [box for box in (source, target) if box is not None] + list(avoid)
        path, self._curve = edge_route(start, end, direction, source, target)
        self.setPath(path)
        self._spots.clear()
        if self._label_text:  # (an edge just built has none yet: set_label places it)
            self._place_label()

    def _place_label(self) -> None:
        path = self.path()
        if path.isEmpty():
            return
        size = self.label.boundingRect().size()
        key = (size.width(), size.height())
        spot = self._spots.get(key)
        if spot is None:
            spot = self._spots[key] = label_spot(path, size, self._boxes, self.direction, self._curve)
        self.label.setPos(spot)

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
