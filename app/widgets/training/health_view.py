"""The health view: one row per node (graph order), per column its latest figure and a
sparkline of the last ``HISTORY`` snapshots; a warning icon on the nodes the engine flags
(vanishing or exploding gradients, dead units, saturation, updates too small or too large),
the flag's explanation in the tooltip, the cell that tripped it tinted.

The figures come from ``SnapshotEvent.health`` (``app.engine.health``); this module only
keeps their history and draws them (DESIGN rule 6). Sparklines are painted by a delegate as
one path per cell: a plot widget per cell would cost a scene each.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..colors import mix
from .live_label import LiveLabel

HISTORY = 200  # snapshots kept per figure: the sparkline's span
SPARK_ROLE = Qt.ItemDataRole.UserRole + 1  # a cell's history, as the sparkline draws it
FLAGGED_ROLE = Qt.ItemDataRole.UserRole + 2  # whether a flag points at the cell


@dataclass(frozen=True)
class Column:
    key: str  # the health dict's key
    title: str
    kind: str  # "value", "percent" (0..1, drawn on 0..100 %) or "log" (drawn on a log scale)
    explain: str


COLUMNS = (
    Column("mean", "mean", "value", "Mean of the node's output over the probe batch."),
    Column("std", "std", "value", "Standard deviation of the node's output over the probe batch: "
           "near 0, the layer passes on (almost) nothing."),
    Column("dead", "dead", "percent", "ReLU nodes: the share of units that are 0 for every sample of the "
           "probe batch. Dead units pass no gradient and stop learning."),
    Column("saturated", "saturated", "percent", "Sigmoid / tanh nodes: the share of outputs within 2 % "
           "of their limits, where the gradient all but vanishes."),
    Column("grad_norm", "grad norm", "log", "L2 norm of the gradients of the node's own weights at the "
           "last step (log scale). Tiny: the layer hardly learns; huge: training may diverge."),
    Column("update_ratio", "update ratio", "log", "How far the last step moved the node's weights, "
           "relative to their size (log scale); around 1e-3 is usually healthy."),
)
FIRST_METRIC = 1  # column 0 is the node
# what only a training step measures (a probe of the weights held has none of it)
STEP_KEYS = ("grad_norm", "weight_norm", "update_ratio")
STEP_CODES = ("vanishing_gradient", "exploding_gradient", "update_too_small", "update_too_large")
# which column each flag code points at (its cell is tinted)
FLAG_COLUMN = {"vanishing_gradient": "grad_norm", "exploding_gradient": "grad_norm", "dead_units": "dead",
               "saturated": "saturated", "update_too_small": "update_ratio", "update_too_large": "update_ratio"}
HEADLINE = ("Per node: its output's mean and std, dead ReLU units and saturated sigmoid/tanh outputs, "
            "its weights' gradient norm and the last update's size relative to them; sparklines: the last "
            f"{HISTORY} snapshots.")
PLACEHOLDER = "Layer health appears here while a model trains, or once trained weights and their data are loaded."


def format_value(value: float | None, kind: str) -> str:
    """A figure as its cell says it ("–" for none)."""
    if value is None or not math.isfinite(value):
        return "–"
    if kind == "percent":
        return f"{value * 100:.0f} %"
    return f"{value:.2g}" if kind == "log" else f"{value:.3g}"


def warning_colour(palette: QPalette) -> QColor:
    """The tint of a flagged cell: amber over the palette's base, readable in both themes."""
    return mix(palette.color(QPalette.ColorRole.Base), QColor("#f0a020"), 0.35)


class HealthModel(QAbstractTableModel):
    """The rows (nodes), their latest figures and flags, and each figure's history."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.nodes: list[str] = []
        self.types: dict[str, str] = {}
        self.latest: dict[str, dict] = {}
        self.histories: dict[str, dict[str, deque]] = {}
        self.step: int | None = None
        self.warning_icon = QIcon()
        self.warning_brush = QBrush()

    # -- filling -------------------------------------------------------------------------------
    def add(self, stats: dict[str, dict], order: list[str], types: dict[str, str], step: int | None) -> None:
        """Record one measurement ``{node: {...}}`` taken at ``step`` (the same step again:
        the trainer resent it, nothing is added). A figure that is None adds nothing to its
        history. A forward-only probe (the weights held: no step, so no gradient figures)
        keeps the last gradient figures and the flags drawn from them."""
        repeat = step is not None and step == self.step
        nodes = [n for n in order if n in stats] + [n for n in stats if n not in order]
        latest = {}
        for node in nodes:
            figures = latest[node] = dict(stats[node])
            before = self.latest.get(node)
            if before and figures.get("grad_norm") is None and figures.get("update_ratio") is None:
                figures.update({k: before.get(k) for k in STEP_KEYS if figures.get(k) is None})
                figures["flags"] = [*(figures.get("flags") or []),
                                    *(f for f in before.get("flags") or () if f.get("code") in STEP_CODES)]
            history = self.histories.setdefault(node, {c.key: deque(maxlen=HISTORY) for c in COLUMNS})
            for c in COLUMNS:
                value = stats[node].get(c.key)
                if not repeat and value is not None and math.isfinite(value):
                    history[c.key].append(float(value))
        self.latest, self.types, self.step = latest, dict(types), step
        if nodes != self.nodes:
            self.beginResetModel()
            self.nodes = nodes
            self.histories = {n: self.histories[n] for n in nodes}
            self.endResetModel()
        elif nodes:
            self.dataChanged.emit(self.index(0, 0), self.index(len(nodes) - 1, len(COLUMNS)))

    def clear(self) -> None:
        self.beginResetModel()
        self.nodes, self.latest, self.histories, self.step = [], {}, {}, None
        self.endResetModel()

    def flags_of(self, node: str) -> list[dict]:
        return list(self.latest.get(node, {}).get("flags") or [])

    def history(self, node: str, key: str) -> np.ndarray:
        """The figures recorded for ``node``'s ``key``, oldest first (at most ``HISTORY``)."""
        return np.array(self.histories.get(node, {}).get(key, ()), dtype=np.float64)

    # -- the model -------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.nodes)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else FIRST_METRIC + len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "node" if section < FIRST_METRIC else COLUMNS[section - FIRST_METRIC].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return ("The node (graph order); ⚠: a flag, hover it for why" if section < FIRST_METRIC
                    else COLUMNS[section - FIRST_METRIC].explain)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node = self.nodes[index.row()]
        flags = self.flags_of(node)
        if index.column() < FIRST_METRIC:
            if role == Qt.ItemDataRole.DisplayRole:
                return node
            if role == Qt.ItemDataRole.DecorationRole and flags:
                return self.warning_icon
            if role == Qt.ItemDataRole.ToolTipRole:
                return self._node_tip(node, flags)
            return None
        column = COLUMNS[index.column() - FIRST_METRIC]
        history = self.histories[node][column.key]
        flagged = [f for f in flags if FLAG_COLUMN.get(f.get("code")) == column.key]
        if role == Qt.ItemDataRole.DisplayRole:
            return format_value(history[-1] if history else None, column.kind)
        if role == SPARK_ROLE:
            return _spark_values(np.array(history, dtype=np.float64), column.kind)
        if role == FLAGGED_ROLE:
            return bool(flagged)
        if role == Qt.ItemDataRole.BackgroundRole and flagged:
            return self.warning_brush
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._cell_tip(node, column, history, flagged)
        return None

    def _node_tip(self, node: str, flags: list[dict]) -> str:
        kind = self.types.get(node)
        lines = [f"<b>{escape(node)}</b>" + (f" ({escape(kind)})" if kind else "")]
        lines += [_flag_html(f) for f in flags]
        if not flags:
            lines.append("No flags: nothing here looks like trouble.")
        return "<p>" + "</p><p>".join(lines) + "</p>"

    def _cell_tip(self, node: str, column: Column, history, flagged: list[dict]) -> str:
        stats = self.latest.get(node, {})
        now = format_value(history[-1] if history else None, column.kind)
        lines = [f"<b>{escape(node)}: {escape(column.title)} {now}</b>", escape(column.explain)]
        if column.key == "grad_norm" and stats.get("weight_norm") is not None:
            lines.append(f"Weight norm: {format_value(stats['weight_norm'], 'log')}.")
        if history:
            lines.append(f"Over the last {len(history)} snapshots: {format_value(min(history), column.kind)} "
                         f"to {format_value(max(history), column.kind)}.")
        lines += [_flag_html(f) for f in flagged]
        return "<p>" + "</p><p>".join(lines) + "</p>"


def _spark_values(values: np.ndarray, kind: str) -> np.ndarray:
    """A history as its sparkline draws it: "log" figures as log10, a 0 among them (a gradient
    that vanished entirely) a decade under the smallest figure above 0, not at -inf."""
    if kind != "log" or not len(values):
        return values
    positive = values > 0
    logs = np.log10(np.where(positive, values, 1.0))
    floor = logs[positive].min() - 1.0 if positive.any() else 0.0
    return np.where(positive, logs, floor)


def _flag_html(flag: dict) -> str:
    return f"⚠ <b>{escape(str(flag.get('title', '')))}</b>: {escape(str(flag.get('explain', '')))}"


class SparklineDelegate(QStyledItemDelegate):
    """A metric cell: its figure at the left, the sparkline of its history filling the rest."""

    def __init__(self, text_width: int, parent=None):
        super().__init__(parent)
        self.text_width = text_width

    def sizeHint(self, option, index) -> QSize:
        return QSize(self.text_width + 56, option.fontMetrics.height() + 10)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        text, opt.text = opt.text, ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)  # background, selection
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        pal = opt.palette
        text_colour = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        r = opt.rect.adjusted(4, 2, -4, -2)
        painter.save()
        painter.setPen(text_colour)
        painter.drawText(QRect(r.left(), r.top(), self.text_width, r.height()),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        spark = QRect(r.left() + self.text_width + 6, r.top() + 2, r.width() - self.text_width - 6, r.height() - 4)
        values = index.data(SPARK_ROLE)
        if values is not None and spark.width() > 8:
            line = text_colour if selected else mix(pal.color(QPalette.ColorRole.Text),
                                                    pal.color(QPalette.ColorRole.Highlight), 0.6)
            percent = COLUMNS[index.column() - FIRST_METRIC].kind == "percent"
            _draw_sparkline(painter, spark, np.asarray(values, np.float64), line, (0.0, 1.0) if percent else None)
        painter.restore()


def sparkline_points(values: np.ndarray, rect: QRect,
                     span: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The polyline ``(xs, ys)`` of ``values`` (non-finite ones left out) across ``rect``,
    oldest at the left; the y range is ``span`` or the values' own (a flat history: a line at
    mid-height). Empty arrays for fewer than two values."""
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return np.zeros(0), np.zeros(0)
    lo, hi = span if span is not None else (float(values.min()), float(values.max()))
    t = (values - lo) / (hi - lo) if hi - lo > 1e-12 * max(1.0, abs(hi)) else np.full(len(values), 0.5)
    xs = rect.left() + np.linspace(0.0, 1.0, len(values)) * (rect.width() - 1)
    ys = rect.bottom() - np.clip(t, 0.0, 1.0) * (rect.height() - 1)
    return xs, ys


def _draw_sparkline(painter: QPainter, rect: QRect, values: np.ndarray, colour: QColor,
                    span: tuple[float, float] | None) -> None:
    xs, ys = sparkline_points(values, rect, span)
    if not len(xs):
        return
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(colour, 1.0))  # 1 pixel: Qt's fast path (a wider pen is stroked as a polygon)
    painter.drawPath(pg.arrayToQPath(xs, ys))  # built from the arrays in one go, not a QPointF per value
    painter.setBrush(colour)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(QPointF(xs[-1], ys[-1]), 1.8, 1.8)  # the latest figure


class HealthView(QWidget):
    """The Health tab: a headline saying what the columns mean, then the table (a
    placeholder until the first figures come)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = HealthModel(self)
        self.headline = QLabel(HEADLINE)
        self.headline.setWordWrap(True)
        self.status = LiveLabel()  # its text changes with every snapshot
        self.table = QTableView()
        self.table.setObjectName("health_table")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no focus frame on a cell nobody chose
        fm = self.fontMetrics()
        self.delegate = SparklineDelegate(fm.horizontalAdvance("-8.88e-88"), self.table)
        for column in range(FIRST_METRIC, FIRST_METRIC + len(COLUMNS)):
            self.table.setItemDelegateForColumn(column, self.delegate)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(self.delegate.text_width + 40)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # the sparklines take the room there is
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(0, fm.horizontalAdvance("conv_block_12") + 40)
        self.table.verticalHeader().setDefaultSectionSize(fm.height() + 12)
        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(self.status)
        layout.addWidget(self.stack, 1)
        self._apply_palette()

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange and hasattr(self, "model"):
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        self.model.warning_brush = QBrush(warning_colour(self.palette()))
        self.model.warning_icon = _flag_icon(self.style(), self.fontMetrics().height())
        self.table.viewport().update()

    def show_health(self, stats: dict[str, dict] | None, order: list[str], types: dict[str, str] | None = None,
                    step: int | None = None) -> None:
        """Record and show one measurement ``{node: {...}}`` (``SnapshotEvent.health``), the
        rows in graph ``order``, ``types`` naming each node's layer type, ``step`` the training
        step it was measured at (``SnapshotEvent.health_step``: the same step again adds no
        point; None: the weights held). None: nothing measured, nothing changes."""
        if stats is None or (step is not None and step == self.model.step):  # nothing new: the last one again
            return
        width = self.table.columnWidth(0)
        self.model.add(stats, order, types or {}, step)
        self.table.setColumnWidth(0, width)  # a reset (new rows) must not undo the user's width
        for i, c in enumerate(COLUMNS):  # a figure no node has (saturation in a ReLU net) takes no room
            self.table.setColumnHidden(FIRST_METRIC + i, not any(self.model.histories[n][c.key]
                                                                 for n in self.model.nodes))
        self.stack.setCurrentWidget(self.table if self.model.nodes else self.placeholder)
        flagged = [n for n in self.model.nodes if self.model.flags_of(n)]
        when = f"Step {step:,}" if step is not None else "The weights held"
        says = (f"{len(flagged)} node{'s' if len(flagged) != 1 else ''} flagged ⚠ ({', '.join(flagged[:4])}"
                f"{'…' if len(flagged) > 4 else ''}): hover for why and what to try." if flagged
                else "Nothing flagged.")
        self.status.setText(f"{when}: {says}")

    def clear(self) -> None:
        self.model.clear()
        self.status.setText("")
        self.stack.setCurrentWidget(self.placeholder)

    def rows(self) -> list[str]:
        return list(self.model.nodes)

    def current(self) -> dict[str, dict] | None:
        """The figures and flags shown now per node (what the canvas badges), None before any."""
        return self.model.latest or None


def _flag_icon(style: QStyle, size: int) -> QIcon:
    """The standard warning icon at the row's text size."""
    pixmap: QPixmap = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size, size)
    return QIcon(pixmap)
