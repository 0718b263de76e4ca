"""Runs side by side: their curves overlaid (minibatch loss and per-epoch validation
accuracy, a colour per run, with a legend), their settings in columns with the rows that
differ highlighted, and their confusion matrices."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..colors import mix
from ..training.results import readable_on

# one colour per run, in the order the runs were selected (distinct on light and dark backgrounds)
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#7f7f7f", "#bcbd22")
SMOOTHING = 0.9  # the minibatch loss is drawn smoothed (as the training curves do), the raw loss faint
MISSING = "—"
NO_MATRIX = "no confusion matrix (no test set, or no classes)"
LEGEND_MIN = (420, 230)  # the smallest plot (width, height) that shows its legend


def run_colour(i: int, dark: bool = False) -> QColor:
    """The colour of the ``i``-th run shown (lighter on a dark background)."""
    c = QColor(RUN_COLOURS[i % len(RUN_COLOURS)])
    return c.lighter(135) if dark else c


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """An exponential moving average of ``values`` (NaN skipped: the average carries on)."""
    out = np.empty(len(values), dtype=float)
    s = math.nan
    for i, v in enumerate(values):
        if not math.isnan(v):
            s = v if math.isnan(s) else weight * s + (1 - weight) * v
        out[i] = s
    return out


def _floats(values) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def flat_settings(record) -> dict[str, str]:
    """A run's settings as rows to compare, in a stable order: the training settings it ran
    with, the dataset and its split, every node (its type and parameters) and block, the
    device and the sweep's sampled values. Values are shown as text."""
    rows: dict[str, str] = {}
    project = record.project or {}
    training = record.settings or project.get("training") or {}
    for k in sorted(training):
        rows[f"training.{k}"] = _show(training[k])
    for k in sorted(project.get("dataset") or {}):
        rows[f"dataset.{k}"] = _show(project["dataset"][k])
    sizes = (record.dataset or {}).get("split_sizes")
    if isinstance(sizes, dict):
        rows["dataset split (train/val/test)"] = " / ".join(str(sizes.get(s, "?")) for s in ("train", "val", "test"))
    graph = project.get("graph") or {}
    for node in graph.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        nid = node.get("id", "?")
        rows[f"{nid}"] = _show(node.get("type"))
        for k in sorted(node.get("params") or {}):
            rows[f"{nid}.{k}"] = _show(node["params"][k])
        if node.get("repeat", 1) != 1:
            rows[f"{nid} repeat"] = _show(node["repeat"])
        if node.get("trainable", True) is False:
            rows[f"{nid} trainable"] = "false"
    edges = graph.get("edges") or []
    rows["graph connections"] = f"{len(edges)} edges"
    for name, block in sorted((project.get("blocks") or {}).items()):
        if isinstance(block, dict):
            rows[f"block {name}"] = f"{len((block.get('graph') or {}).get('nodes') or [])} layers"
            for k in sorted(block.get("params") or {}):
                rows[f"block {name}.{k}"] = _show(block["params"][k])
    rows["device"] = record.device or ""
    for k in sorted(record.params or {}):
        rows[f"sweep param {k}"] = _show(record.params[k])
    return rows


class _WholeAxis(pg.AxisItem):
    """An axis of whole numbers (epochs): no tick at 1.5."""

    def tickValues(self, minVal, maxVal, size):
        levels = [(spacing, values) for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not levels:
            levels = [(1.0, [float(i) for i in range(math.ceil(minVal), math.floor(maxVal) + 1)])]
        return levels


class CurvesCompare(QWidget):
    """Two plots: minibatch loss against the step and validation accuracy against the epoch,
    one colour per run, each with a legend in the corner its curves usually leave empty."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = pg.PlotWidget()
        self.accuracy_plot = pg.PlotWidget(axisItems={"bottom": _WholeAxis("bottom")})
        self.legends: dict[pg.PlotWidget, pg.LegendItem] = {}
        self.titles: dict[pg.PlotWidget, str] = {}
        # loss falls (its top right is empty), accuracy rises (its bottom right is)
        for plot, title, x, corner in ((self.loss_plot, "Minibatch loss (smoothed)", "step", (-8, 8)),
                                       (self.accuracy_plot, "Validation accuracy", "epoch", (-8, -30))):
            p = plot.getPlotItem()
            self.titles[plot] = title
            p.setLabel("bottom", x)
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setClipToView(True)
            p.setDownsampling(auto=True, mode="peak")
            self.legends[plot] = p.addLegend(offset=corner, labelTextSize="8pt")
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.loss_plot, 1)
        row.addWidget(self.accuracy_plot, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addLayout(row, 1)
        self.curves: dict[str, list[pg.PlotDataItem]] = {}  # run id -> its items
        self._apply_theme()

    def _apply_theme(self) -> None:
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        for plot, legend in self.legends.items():
            plot.setBackground(bg)
            p = plot.getPlotItem()
            p.setTitle(self.titles[plot], color=fg.name(), size="10pt")
            for name in ("left", "bottom"):
                axis = p.getAxis(name)
                axis.setPen(pg.mkPen(mix(fg, bg, 0.45)))
                axis.setTextPen(fg)
            legend.setBrush(pg.mkBrush(mix(bg, fg, 0.04, 215)))
            legend.setPen(pg.mkPen(mix(fg, bg, 0.7)))
            legend.setLabelTextColor(fg)

    def show_runs(self, runs: list[tuple[Any, dict, dict, QColor]]) -> None:
        """Draw ``runs``: (record, batches, epochs, colour) each, ``batches`` and ``epochs``
        as ``RunStore.batches`` / ``RunStore.epochs`` give them."""
        for plot in (self.loss_plot, self.accuracy_plot):
            plot.getPlotItem().clear()  # (the legends empty with it)
        self.curves.clear()
        bg = self.palette().color(QPalette.ColorRole.Base)
        no_accuracy = []
        for record, batches, epochs, colour in runs:
            label = legend_label(record)
            items = []
            steps, loss = _floats(batches.get("step", [])), _floats(batches.get("loss", []))
            if len(steps):
                faint = mix(bg, colour, 0.28)
                raw = self.loss_plot.plot(steps, loss, pen=pg.mkPen(faint, width=1), connect="finite")
                self.legends[self.loss_plot].removeItem(raw)  # the faint raw loss needs no entry
                items.append(raw)
                items.append(self.loss_plot.plot(steps, smooth(loss), pen=pg.mkPen(colour, width=2.2), name=label))
            ep, acc = _floats(epochs.get("epoch", [])), _floats(epochs.get("val_accuracy", []))
            if len(ep) and not np.all(np.isnan(acc)):
                items.append(self.accuracy_plot.plot(ep, acc, pen=pg.mkPen(colour, width=2), name=label,
                                                     symbol="o", symbolSize=6, symbolBrush=colour,
                                                     symbolPen=pg.mkPen(bg), connect="finite"))
            elif len(ep):
                no_accuracy.append(record.id)
            self.curves[record.id] = items
        if not runs:
            self.message.setText("Select runs in the table to compare their curves (Ctrl+click adds one).")
        elif not any(self.curves.values()):
            self.message.setText("The selected runs logged no metrics.")
        elif no_accuracy:
            self.message.setText(f"No validation accuracy for {', '.join(no_accuracy)} (its objective has none).")
        else:
            self.message.setText("")
        self.message.setVisible(bool(self.message.text()))
        self._fit_legends()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_legends()

    def _fit_legends(self) -> None:
        """A legend only where it leaves the curves room: in a small plot it would cover them
        (the table then says which colour is which run, beside each id)."""
        for plot, legend in self.legends.items():
            legend.setVisible(plot.height() >= LEGEND_MIN[1] and plot.width() >= LEGEND_MIN[0])

    def legend_entries(self, plot: pg.PlotWidget) -> list[str]:
        return [label.text for _sample, label in self.legends[plot].items]


def legend_label(record) -> str:
    """A run as its legend and column headers name it: its id, with the sweep trial."""
    return record.id if record.trial is None else f"{record.id} (trial {record.trial})"


class SettingsCompare(QWidget):
    """The runs' settings in columns (one a run); the rows whose values differ are
    highlighted and listed first. "Only differences" hides the others."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.only_differences = QCheckBox("Only differences")
        self.only_differences.toggled.connect(self._filter)
        self.summary = QLabel()
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.only_differences)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.keys: list[str] = []
        self.differing: set[str] = set()

    def highlight(self) -> QColor:
        base = self.palette().color(QPalette.ColorRole.Base)
        return mix(base, QColor(245, 190, 40), 0.45)

    def show_runs(self, records: list, colours: list[QColor]) -> None:
        flats = [flat_settings(r) for r in records]
        keys = list(dict.fromkeys(k for f in flats for k in f))
        self.differing = {k for k in keys if len({f.get(k, MISSING) for f in flats}) > 1} if len(flats) > 1 else set()
        self.keys = [k for k in keys if k in self.differing] + [k for k in keys if k not in self.differing]
        t = self.table
        t.clear()
        t.setRowCount(len(self.keys))
        t.setColumnCount(len(records))
        t.setVerticalHeaderLabels(self.keys)
        for j, (r, colour) in enumerate(zip(records, colours)):
            head = QTableWidgetItem(legend_label(r))
            head.setForeground(QBrush(colour))
            bold = QFont(t.font())
            bold.setBold(True)
            head.setFont(bold)
            t.setHorizontalHeaderItem(j, head)
        hl = self.highlight()
        ink = readable_on(hl)
        for i, k in enumerate(self.keys):
            differs = k in self.differing
            for j, f in enumerate(flats):
                item = QTableWidgetItem(f.get(k, MISSING))
                item.setToolTip(f"{k}: {item.text()}")
                if differs:
                    item.setBackground(QBrush(hl))
                    item.setForeground(QBrush(ink))
                    font = QFont(t.font())
                    font.setBold(True)
                    item.setFont(font)
                t.setItem(i, j, item)
        t.resizeColumnsToContents()
        for j in range(t.columnCount()):  # long values (a list of classes) must not take the whole width
            t.setColumnWidth(j, max(120, min(t.columnWidth(j), 320)))
        n = len(self.differing)
        self.summary.setText("" if len(records) < 2 else
                             ("The runs have the same settings." if not n else
                              f"{n} setting{'s' if n != 1 else ''} differ (highlighted, listed first)."))
        self._filter()

    def is_highlighted(self, key: str) -> bool:
        """Whether the row of ``key`` is drawn highlighted (every cell of it)."""
        i = self.keys.index(key)
        hl = self.highlight()
        return all(self.table.item(i, j).background().color() == hl for j in range(self.table.columnCount()))

    def _filter(self) -> None:
        only = self.only_differences.isChecked()
        for i, k in enumerate(self.keys):
            self.table.setRowHidden(i, only and k not in self.differing)


class ConfusionMatrix(QWidget):
    """One run's confusion matrix (rows: true class, columns: predicted), painted: the
    diagonal in blue, errors in red, deeper the larger their share of the true class."""

    def __init__(self, title: str, colour: QColor, matrix, names: list[str], parent=None):
        super().__init__(parent)
        self.title, self.colour = title, colour
        self.matrix = np.asarray(matrix, dtype=np.int64) if matrix is not None else None
        k = 0 if self.matrix is None else len(self.matrix)
        self.names = list(names) if len(names) == k else [str(i) for i in range(k)]
        self.setToolTip(title)

    def cell(self) -> int:
        k = 0 if self.matrix is None else len(self.matrix)
        widest = self.fontMetrics().horizontalAdvance(str(int(self.matrix.max(initial=0)))) if k else 0
        return max(18, min(40, widest + 8, 320 // max(k, 1)))

    def sizeHint(self) -> QSize:
        k = 0 if self.matrix is None else len(self.matrix)
        fm = self.fontMetrics()
        label = max((fm.horizontalAdvance(n) for n in self.names), default=0) + 6
        bold = QFont(self.font())
        bold.setBold(True)
        title = QFontMetrics(bold).horizontalAdvance(self.title)
        empty = fm.horizontalAdvance(NO_MATRIX) if not k else 0
        return QSize(max(label + k * self.cell() + 8, title + 12, empty + 8),
                     fm.height() * 2 + k * self.cell() + 12)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        pal = self.palette()
        base, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        fm = self.fontMetrics()
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(self.colour)
        p.drawText(QRectF(0, 0, self.width(), fm.height() + 2), Qt.AlignmentFlag.AlignLeft, self.title)
        p.setFont(self.font())
        if self.matrix is None or not len(self.matrix):
            p.setPen(fg)
            p.drawText(QRectF(0, fm.height() + 4, self.width(), fm.height() * 2), Qt.AlignmentFlag.AlignLeft,
                       NO_MATRIX)
            return
        k, c = len(self.matrix), self.cell()
        label = max(fm.horizontalAdvance(n) for n in self.names) + 6
        top = fm.height() * 2 + 6
        p.setPen(fg)
        p.drawText(QRectF(label, fm.height() + 4, k * c, fm.height()), Qt.AlignmentFlag.AlignLeft, "predicted →")
        rows = self.matrix.sum(axis=1)
        right, wrong = QColor(40, 110, 200), QColor(215, 65, 45)
        for i in range(k):
            p.setPen(fg)
            p.drawText(QRectF(0, top + i * c, label - 4, c),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.names[i])
            for j in range(k):
                n = int(self.matrix[i, j])
                share = n / rows[i] if rows[i] else 0.0
                tint = min(1.0, math.sqrt(share) * (0.95 if i == j else 1.6))
                colour = mix(base, right if i == j else wrong, tint)
                rect = QRectF(label + j * c, top + i * c, c - 1, c - 1)
                p.fillRect(rect, colour)
                if c >= 18:
                    p.setPen(readable_on(colour, dim=not n))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(n))
        p.end()


class ConfusionCompare(QScrollArea):
    """The selected runs' confusion matrices side by side (scrolling when they do not fit)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.matrices: list[ConfusionMatrix] = []
        self._inner = QWidget()
        self._row = QHBoxLayout(self._inner)
        self._row.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setWidget(self._inner)

    def show_runs(self, records: list, colours: list[QColor]) -> None:
        for m in self.matrices:
            self._row.removeWidget(m)
            m.hide()  # at once: deleteLater waits for the event loop, and a grab would paint both
            m.deleteLater()
        self.matrices = []
        for r, colour in zip(records, colours):
            names = (r.dataset or {}).get("class_names") or []
            acc = "" if r.test_accuracy is None else f" — test {r.test_accuracy:.1%}"
            m = ConfusionMatrix(legend_label(r) + acc, colour, r.confusion, names)
            self._row.addWidget(m)
            self.matrices.append(m)


class RunsCompare(QTabWidget):
    """Tabs: Curves, Settings, Confusion matrices. ``show_runs(runs)`` with ``runs`` as
    (record, batches, epochs) in the order chosen; run i gets ``run_colour(i)``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.curves = CurvesCompare()
        self.settings = SettingsCompare()
        self.confusion = ConfusionCompare()
        self.addTab(self.curves, "Curves")
        self.addTab(self.settings, "Settings")
        self.addTab(self.confusion, "Confusion matrices")
        self.colours: dict[str, QColor] = {}

    def show_runs(self, runs: list[tuple[Any, dict, dict]]) -> None:
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        colours = [run_colour(i, dark) for i in range(len(runs))]
        self.colours = {r.id: c for (r, _b, _e), c in zip(runs, colours)}
        self.curves.show_runs([(r, b, e, c) for (r, b, e), c in zip(runs, colours)])
        records = [r for r, _b, _e in runs]
        self.settings.show_runs(records, colours)
        self.confusion.show_runs(records, colours)
