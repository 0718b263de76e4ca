"""The plots of a sweep: parallel coordinates of its trials and Optuna's parameter importance.

Both take the cleaned trial dicts of ``sweep_runner`` (``{"trial", "state", "params",
"value", ...}``): plain data in, plot items only draw it (DESIGN.md rule 6).
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import Future

import numpy as np
import optuna
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QLabel, QStackedLayout, QWidget

from ..threads import run_in_thread

COLORMAP = "viridis"
MAX_CATEGORY_LABELS = 8  # categories written on an axis; beyond, only its ends
MIN_TRIALS = 2  # complete trials before importance means anything


def complete_trials(trials: list[dict]) -> list[dict]:
    """The trials that finished with a value, in order."""
    return [t for t in trials if t.get("state") == "complete" and t.get("value") is not None]


def axis_values(values: list, log: bool = False) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """One parameter's values placed on a [0, 1] axis: numbers linearly (or by their log when
    ``log`` and all positive), anything else as evenly spaced categories in sorted order.
    Returns ``(positions, labels)``: a missing value (None) is NaN; labels ``(position,
    text)`` are the extremes of numbers, every category (the first and last of many)."""
    present = [v for v in values if v is not None]
    numeric = bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if numeric:
        use_log = log and all(v > 0 for v in present)
        f = math.log10 if use_log else float
        xs = np.array([f(v) if v is not None else np.nan for v in values], dtype=float)
        lo, hi = np.nanmin(xs), np.nanmax(xs)
        if hi > lo:
            return (xs - lo) / (hi - lo), [(0.0, _fmt(min(present))), (1.0, _fmt(max(present)))]
        return np.where(np.isnan(xs), np.nan, 0.5), [(0.5, _fmt(present[0]))]
    cats = sorted({str(v) for v in present})
    step = 1 / (len(cats) - 1) if len(cats) > 1 else 0
    index = {c: (i * step if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
    pos = np.array([index[str(v)] if v is not None else np.nan for v in values], dtype=float)
    shown = cats if len(cats) <= MAX_CATEGORY_LABELS else [cats[0], cats[-1]]
    return pos, [(index[c], c) for c in shown]


def _fmt(v) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:.3g}"


def _theme(widget: QWidget, plot: pg.PlotWidget) -> tuple[QColor, QColor, bool]:
    """Draw ``plot`` in the palette's colours (like the training curves); returns
    (background, text colour, dark)."""
    pal = widget.palette()
    bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
    plot.setBackground(bg)
    item = plot.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(fg)
        axis.label.setDefaultTextColor(fg)
    item.titleLabel.item.setDefaultTextColor(fg)
    return bg, fg, bg.lightness() < 128


def _message_stack(parent: QWidget, plot: QWidget) -> tuple[QStackedLayout, QLabel]:
    stack = QStackedLayout(parent)
    label = QLabel()
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    stack.addWidget(plot)
    stack.addWidget(label)
    return stack, label


class ParallelCoordinates(QWidget):
    """One polyline per complete trial across the parameter axes and the objective (each
    scaled to its own range, its extremes written at the axis' ends), coloured by the
    objective (bright: better). ``set_trials(trials, metric, direction, log_params)``."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.hideAxis("left")  # each axis has its own scale, written at its ends
        self.stack, self.message = _message_stack(self, self.plot)
        self.axes: list[str] = []
        self.lines: list[pg.PlotCurveItem] = []
        self.set_trials([])

    def set_trials(self, trials: list[dict], metric: str = "value", direction: str = "max",
                   log_params: set[str] | frozenset = frozenset(), names: list[str] | None = None) -> None:
        """Draw the complete ``trials``; axes: ``names`` (default: the parameters in the
        order the trials give them), then ``metric``."""
        done = complete_trials(trials)
        self.plot.clear()
        bg, fg, dark = _theme(self, self.plot)
        self.plot.setTitle(f"Parallel coordinates: colour by {metric} (purple worst, yellow best)",
                           color=fg.name())
        self.lines = []
        if not done:
            self.axes = []
            self.message.setText("Parallel coordinates: no complete trial yet.")
            self.stack.setCurrentWidget(self.message)
            return
        self.stack.setCurrentWidget(self.plot)
        names = [n for n in names or dict.fromkeys(k for t in done for k in t["params"])
                 if any(n in t["params"] for t in done)]  # an axis with no value says nothing
        self.axes = [*names, metric]
        columns = [axis_values([t["params"].get(n) for t in done], n in log_params) for n in names]
        values = [t["value"] for t in done]
        columns.append(axis_values(values))
        positions = np.stack([c[0] for c in columns], axis=1)  # trials x axes
        score = columns[-1][0] if direction == "max" else 1 - columns[-1][0]
        cmap = pg.colormap.get(COLORMAP)
        # the colour map's end that vanishes into the background is left out
        low, high = (0.15, 1.0) if dark else (0.0, 0.85)
        xs = np.arange(len(self.axes), dtype=float)
        order = np.argsort(score)  # the best drawn last, on top
        for rank, i in enumerate(order):
            colour = cmap.map(low + (high - low) * float(score[i]), mode="qcolor")
            width = 3.5 if rank == len(order) - 1 else 2  # the best one
            line = pg.PlotCurveItem(xs, positions[i], pen=pg.mkPen(colour, width=width), connect="finite")
            self.plot.addItem(line)
            self.lines.append(line)
        axis_pen = pg.mkPen(fg, width=1)
        for x, (_, labels) in zip(xs, columns):
            self.plot.addItem(pg.PlotCurveItem([x, x], [0.0, 1.0], pen=axis_pen))
            for y, text in labels:
                # the ends outside the lines, the categories between beside their axis
                anchor = (0.5, 1.0) if y == 1.0 else (0.5, 0.0) if y == 0.0 else (-0.1, 0.5)
                label = pg.TextItem(text, color=fg, anchor=anchor)
                label.setPos(x, y)
                self.plot.addItem(label)
        bottom = self.plot.getAxis("bottom")
        bottom.setTicks([[(float(x), name) for x, name in zip(xs, self.axes)]])
        self.plot.setXRange(-0.4, len(self.axes) - 0.6, padding=0)
        self.plot.setYRange(-0.15, 1.15, padding=0)


def study_importances(storage: str, study: str) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) of the study ``study`` in ``storage`` (a
    database URL), largest first. Raises ValueError with a sentence when the study cannot be
    read or has fewer than ``MIN_TRIALS`` complete trials."""
    with warnings.catch_warnings():
        # Optuna warns about experimental features and its storage's heartbeat; not the user's
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            loaded = optuna.load_study(study_name=study, storage=storage)
            complete = loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        except Exception as e:  # noqa: BLE001 - any storage error (URL, driver, missing study) is a message
            raise ValueError(f"could not read the study {study!r} in {storage}: {e}") from e
        if len(complete) < MIN_TRIALS:
            raise ValueError(f"parameter importance needs at least {MIN_TRIALS} complete trials; "
                             f"the study has {len(complete)}")
        try:
            return dict(optuna.importance.get_param_importances(loaded))
        except Exception as e:  # noqa: BLE001 - e.g. every trial sampled the same values
            raise ValueError(f"could not compute parameter importance: {e}") from e


def _importances_or_reason(storage: str, study: str) -> dict | str:
    try:
        return study_importances(storage, study)
    except ValueError as e:
        return f"Parameter importance: {e}"


class ImportancePlot(QWidget):
    """Parameter importance as horizontal bars, the most important on top.
    ``compute(storage, study)`` reads the study and ranks its parameters in a thread (fANOVA
    takes seconds; the editor must not freeze), then draws them or says why not, and emits
    ``computed()``. ``set_importances(dict)`` draws; ``set_message(str)`` shows a sentence."""

    computed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._request = 0
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.stack, self.message = _message_stack(self, self.plot)
        self.importances: dict[str, float] = {}
        self.bars: pg.BarGraphItem | None = None
        self.set_message("Parameter importance: shown when the sweep ends.")

    def compute(self, storage: str, study: str) -> None:
        self._request += 1
        request = self._request
        self._show_message("Computing parameter importance…")
        # fANOVA runs off the GUI thread, in a worker that holds no Qt object (threads.py says why)
        run_in_thread(lambda: _importances_or_reason(storage, study), self,
                      lambda future: self._check(request, future), name="netcanvas-importance")

    def _check(self, request: int, future: Future) -> None:
        try:
            result = future.result()
        except Exception as e:  # noqa: BLE001 - whatever the storage raised: said, not raised
            result = f"Parameter importance: {type(e).__name__}: {e}"
        self._show_result(request, result)

    def _show_result(self, request: int, result) -> None:
        if request != self._request:
            return  # a newer sweep asked since
        if isinstance(result, str):
            self._show_message(result)
        else:
            self.set_importances(result)
        self.computed.emit()

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of bars (a result still being computed is dropped)."""
        self._request += 1
        self._show_message(text)

    def _show_message(self, text: str) -> None:
        self.importances = {}
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def set_importances(self, importances: dict[str, float]) -> None:
        if not importances:
            self._show_message("Parameter importance: no parameter to rank.")
            return
        self.importances = dict(sorted(importances.items(), key=lambda kv: kv[1], reverse=True))
        self.plot.clear()
        _, fg, _ = _theme(self, self.plot)
        self.plot.setTitle("Parameter importance (fANOVA)", color=fg.name())
        names = list(self.importances)
        ys = np.arange(len(names))[::-1].astype(float)  # the first (largest) on top
        widths = np.array([self.importances[n] for n in names], dtype=float)
        colour = QColor(pg.colormap.get(COLORMAP).map(0.35, mode="qcolor"))
        self.bars = pg.BarGraphItem(x0=0, y=ys, height=0.6, width=widths, brush=colour, pen=None)
        self.plot.addItem(self.bars)
        for y, w in zip(ys, widths):
            label = pg.TextItem(f"{w:.2f}", color=fg, anchor=(0, 0.5))
            label.setPos(float(w), float(y))
            self.plot.addItem(label)
        left = self.plot.getAxis("left")
        left.setTicks([[(float(y), n) for y, n in zip(ys, names)]])
        # pyqtgraph sizes the axis by its numbers, not by tick texts set later: room for the names
        left.setWidth(max(QFontMetrics(self.font()).horizontalAdvance(n) for n in names) + 16)
        self.plot.getAxis("bottom").setTicks(None)
        self.plot.setYRange(-0.6, len(names) - 0.4, padding=0)
        self.plot.setXRange(0, max(1.0, float(widths.max())) * 1.15, padding=0)
        self.stack.setCurrentWidget(self.plot)


__all__ = ["ImportancePlot", "ParallelCoordinates", "axis_values", "complete_trials",
           "study_importances"]
