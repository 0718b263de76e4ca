"""A node's ports on the canvas: the places the mouse grabs to connect (the node draws them),
and the labels beside them of a node with several (its ``Pill``s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter, QPainterPath
from PySide6.QtWidgets import QGraphicsItem

if TYPE_CHECKING:  # (items.py imports this module)
    from .items import NodeItem

PORT_R = 6.0


class PortItem(QGraphicsItem):
    """An input slot (top edge, or left edge, in slot order) or an output port (bottom edge,
    or right edge, in port order) of a node."""

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
        # the tooltip is written when shown: an edit that changes the shapes on 100 merges'
        # slots must not write 200 tooltips
        self.setToolTip(self.tooltip())
        self.set_hovered(True)

    def hoverLeaveEvent(self, event) -> None:
        self.set_hovered(False)

    def set_hovered(self, on: bool) -> None:
        if on != self.hovered:
            self.hovered = on
            self.node_item.update()

    def tooltip(self) -> str:
        """Its name and the shape on it, for a port of a side with several (else none)."""
        node = self.node_item
        return node.port_tooltip(self.output, self.index) if node.labels_side(self.output) else ""


class Pill:
    """A port's label beside it, outside the box: its lines and where they go (node
    coordinates)."""

    def __init__(self, rect: QRectF, lines: list[tuple[str, bool]]):
        self.rect, self.lines = rect, lines  # lines: (text, dim)
