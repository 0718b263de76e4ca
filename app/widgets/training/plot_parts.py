"""The small pieces of the curves view: value formatting and the readout's row texts, round
steps for the axes' ranges, an elided one-line label, axes with opaque grid lines and a step
axis that abbreviates long counts, a plot that times its own paints, and a curve's
description."""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..colors import mix


def _fmt(v: float, percent: bool = False) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.1%}" if percent else f"{v:.4g}"


class _ElidedLabel(QWidget):
    """One line of text, elided to the width it gets (the whole text is the tooltip). Not a
    QLabel: a QLabel's new text asks every layout up to the main window to be redone (and
    the main window's dock animator makes a dozen objects for it), several times a second
    while a run streams; this repaints itself and nothing else."""

    def __init__(self):
        super().__init__()
        self._text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 4)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width() - 4)
        painter.drawText(self.rect().adjusted(2, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()


class _GridAxis(pg.AxisItem):
    """An axis whose grid lines are drawn opaque, in the colour a translucent line would
    show over ``background``. Translucent lines make Qt's raster engine hand work to its
    thread pool on every paint: dozens of thread wake-ups per plot, each taking a CPU from
    the training process on a small machine. Put the axis under the view box
    (``setZValue``), as opaque lines would otherwise cut through the curves."""

    background = QColor("white")

    def generateDrawSpecs(self, p):
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return None
        axis_spec, tick_specs, text_specs = specs
        opaque = []
        for pen, p1, p2 in tick_specs:
            colour = pen.color()
            if colour.alpha() < 255:
                pen = QPen(pen)
                pen.setColor(mix(self.background, colour, colour.alphaF()))
            opaque.append((pen, p1, p2))
        return axis_spec, opaque, text_specs


class _CountAxis(_GridAxis):
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


def step_text(run, i: int) -> str:
    """Row ``i`` of a run's minibatch table, as the readout line says it."""
    b = run.batches
    parts = [f"step {int(b['step'][i]):,}",
             f"epoch {b['epoch'][i]} (batch {b['batch'][i]}/{b['batches'][i]})",
             f"loss {_fmt(b['loss'][i])}", f"smoothed {_fmt(b['smoothed_loss'][i])}"]
    if run.has_accuracy:
        parts.append(f"accuracy {_fmt(b['accuracy'][i], True)} (smoothed {_fmt(b['smoothed_accuracy'][i], True)})")
    parts.append(f"lr {b['lr'][i]:.3g}")
    return " · ".join(parts)


def epoch_text(run, i: int) -> str:
    """Row ``i`` of a run's epoch table, as the readout line says it."""
    e = run.epochs
    parts = [f"epoch {e['epoch'][i]} (step {int(e['step'][i]):,})", f"train loss {_fmt(e['train_loss'][i])}",
             f"validation loss {_fmt(e['val_loss'][i])}"]
    if run.has_accuracy:
        parts += [f"train accuracy {_fmt(e['train_accuracy'][i], True)}",
                  f"validation accuracy {_fmt(e['val_accuracy'][i], True)}"]
    return " · ".join(parts)


def _round_step(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= ``x`` (> 0)."""
    k = 10.0 ** math.floor(math.log10(x))
    return next(m * k for m in (1, 2, 5, 10) if m * k >= x)


def hover_readout(current, previous, x: float, epochs: bool) -> tuple[float, str] | None:
    """The nearest step (``epochs``: epoch) to ``x`` of the ``current`` run, of the
    ``previous`` one where the current has none: its x and the readout's text (with the
    previous run's smoothed loss at the same step). None when neither run has any."""
    runs = [(r, label) for r, label in ((current, ""), (previous, "previous run: ")) if r]
    table = "epochs" if epochs else "batches"
    run, label = next(((r, lab) for r, lab in runs if len(getattr(r, table))), (None, ""))
    if run is None:
        return None
    xs = getattr(run, table)["epoch" if epochs else "step"].astype(np.float64)
    i = int(np.clip(np.searchsorted(xs, x), 1, len(xs) - 1)) if len(xs) > 1 else 0
    if len(xs) > 1 and abs(xs[i - 1] - x) <= abs(xs[i] - x):
        i -= 1
    text = label + (epoch_text(run, i) if epochs else step_text(run, i))
    if not epochs and run is current and previous is not None and len(previous.batches):
        j = int(np.searchsorted(previous.batches["step"], xs[i]))
        if j < len(previous.batches) and previous.batches["step"][j] == xs[i]:
            text += f" · previous run: smoothed loss {_fmt(previous.batches['smoothed_loss'][j])}"
    return float(xs[i]), text
