"""Colour arithmetic shared by the views that derive their tints from the palette."""

from __future__ import annotations

from PySide6.QtGui import QColor


def mix(a: QColor, b: QColor, t: float, alpha: int = 255) -> QColor:
    """``a`` moved a fraction ``t`` of the way towards ``b`` (``alpha`` for the result)."""
    return QColor(round(a.red() + (b.red() - a.red()) * t), round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t), alpha)
