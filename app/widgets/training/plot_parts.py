"""The small pieces of the curves view: value formatting, an elided one-line label, a step
axis that abbreviates long counts, a plot that times its own paints, and a curve's
description."""

from __future__ import annotations

import math
import time

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy


def _fmt(v: float, percent: bool = False) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.1%}" if percent else f"{v:.4g}"


class _ElidedLabel(QLabel):
    """One line of text, elided to the width it gets (the whole text is the tooltip)."""

    def __init__(self):
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 4)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width() - 4)
        painter.drawText(self.rect().adjusted(2, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()


class _CountAxis(pg.AxisItem):
    """Step numbers as 250k / 1.5M once they get long."""

    def tickStrings(self, values, scale, spacing):
        if max((abs(v) for v in values), default=0) < 10_000:
            return super().tickStrings(values, scale, spacing)
        return [f"{v / 1e6:.4g}M" if abs(v) >= 1e6 else f"{v / 1e3:.4g}k" for v in values]


class _TimedPlot(pg.PlotWidget):
    """A plot widget that reports how long each paint took (to pace the redraws)."""

    def __init__(self, painted, **kw):
        super().__init__(**kw)
        self._report = painted

    def paintEvent(self, event) -> None:
        start = time.perf_counter()
        super().paintEvent(event)
        self._report(time.perf_counter() - start)


class _Curve:
    """A plot item drawing one column of the current or previous run."""

    def __init__(self, item: pg.PlotDataItem, run: str, table: str, x: str, y: str, peak=False):
        self.item, self.run, self.table, self.x, self.y, self.peak = item, run, table, x, y, peak
