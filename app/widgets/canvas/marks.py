"""Marks drawn on a node: the block glyph, the frozen snowflake, and colour blending."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

BLOCK_GLYPH_W = 17.0  # the block glyph before a block node's name, with its gap


def block_glyph(painter: QPainter, top_left: QPointF, colour: QColor) -> None:
    """A box holding three layers: the mark before a block node's name."""
    painter.save()
    painter.setPen(QPen(colour, 1.4))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    x, y = top_left.x(), top_left.y()
    painter.drawRoundedRect(QRectF(x, y, 13, 13), 2.5, 2.5)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    for k in range(3):
        painter.drawRoundedRect(QRectF(x + 3, y + 2.6 + 3 * k, 7, 1.9), 0.8, 0.8)
    painter.restore()


def blend(a: QColor, b: QColor, share: float) -> QColor:
    """``a`` with ``share`` of ``b`` mixed in."""
    return QColor(round(a.red() + (b.red() - a.red()) * share), round(a.green() + (b.green() - a.green()) * share),
                  round(a.blue() + (b.blue() - a.blue()) * share))


def snowflake(painter: QPainter, centre: QPointF, r: float, colour: QColor) -> None:
    """A six-armed snowflake of radius ``r`` (drawn, so it needs no font with the glyph)."""
    painter.save()
    painter.setPen(QPen(colour, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.translate(centre)
    for k in range(6):
        painter.save()
        painter.rotate(60 * k)
        painter.drawLine(QPointF(0, 0), QPointF(0, -r))
        painter.drawLine(QPointF(0, -r * 0.55), QPointF(r * 0.3, -r * 0.8))
        painter.drawLine(QPointF(0, -r * 0.55), QPointF(-r * 0.3, -r * 0.8))
        painter.restore()
    painter.restore()
