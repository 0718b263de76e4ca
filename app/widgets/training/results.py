"""The end of a run: test accuracy and loss in large type with the finish message, the
confusion matrix (true classes on rows, predicted on columns), accuracy per class as bars,
and the misclassified test samples, each captioned "true → predicted". A model without
accuracy (an autoencoder) shows its test loss only."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..colors import mix
from ..param_fields import error_colours
from .data_view import to_display, to_qimage

NARROW = 640  # below this width the parts stack vertically and the view scrolls
READABLE = 4.5  # WCAG's minimum contrast for text (AA)


def relative_luminance(c: QColor) -> float:
    """WCAG 2's relative luminance of an sRGB colour: 0 (black) to 1 (white)."""
    def linear(v: int) -> float:
        v /= 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * linear(c.red()) + 0.7152 * linear(c.green()) + 0.0722 * linear(c.blue())


def contrast(a: QColor, b: QColor) -> float:
    """WCAG 2's contrast ratio of two colours, 1 to 21."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(c: QColor, dim: bool = False) -> QColor:
    """Black or white, whichever contrasts more with ``c`` (at least 4.58:1 whatever ``c``);
    ``dim``: the greyest shade of it that still reads (contrast >= READABLE)."""
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    ink = black if contrast(black, c) >= contrast(white, c) else white
    if dim:
        for t in (0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05):
            grey = mix(ink, c, t)
            if contrast(grey, c) >= READABLE:
                return grey
    return ink


def _section(title: str, body: QWidget) -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(2, 2, 2, 2)
    layout.setSpacing(3)
    label = QLabel(title)
    label.setWordWrap(True)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    layout.addWidget(label)
    layout.addWidget(body, 1)
    return box, label


class _ColumnHeader(QHeaderView):
    """Column labels written upwards when they are too long to sit across their column."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.labels: list[str] = []
        self.rotated = False

    def set_labels(self, labels: list[str], rotated: bool) -> None:
        self.labels, self.rotated = list(labels), rotated
        self.updateGeometry()
        self.viewport().update()

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        if self.rotated:
            widest = max((self.fontMetrics().horizontalAdvance(t) for t in self.labels), default=0)
            hint.setHeight(widest + 14)
        return hint

    def paintSection(self, painter: QPainter, rect: QRect, index: int) -> None:
        super().paintSection(painter, rect, index)  # the section itself; its text is empty
        if not 0 <= index < len(self.labels):
            return
        painter.save()
        painter.setPen(self.palette().color(QPalette.ColorRole.ButtonText))
        if self.rotated:
            painter.translate(rect.left(), rect.bottom())
            painter.rotate(-90)
            painter.drawText(QRect(6, 0, rect.height() - 10, rect.width()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.labels[index])
        else:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.labels[index])
        painter.restore()


class ResultsView(QWidget):
    """``show_result(FinishedEvent, test_images, class_names)`` / ``clear()``."""

    MAX_SAMPLES = 32
    TILE = 48
    BARS_MARGIN = 40  # the bar plot's height besides its rows: the percent axis and the margins

    def __init__(self, parent=None):
        super().__init__(parent)
        self.headline = QLabel()
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.headline.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.confusion = QTableWidget()
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.confusion.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.confusion.setMinimumSize(200, 160)
        self.column_header = _ColumnHeader(self.confusion)
        self.confusion.setHorizontalHeader(self.column_header)

        self.bars = pg.PlotWidget()
        self.bars.setMenuEnabled(False)
        self.bars.setMouseEnabled(x=False, y=False)
        self.bars.hideButtons()
        self.bars.setMinimumHeight(140)
        self.bars.getViewBox().invertY(True)
        self.bar_item = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[])
        self.bars.addItem(self.bar_item)
        self._bar_labels: list[pg.TextItem] = []

        self.misclassified = QListWidget()
        self.misclassified.setViewMode(QListView.ViewMode.IconMode)
        self.misclassified.setMovement(QListView.Movement.Static)
        self.misclassified.setResizeMode(QListView.ResizeMode.Adjust)
        self.misclassified.setWordWrap(True)
        self.misclassified.setIconSize(QSize(self.TILE, self.TILE))
        self.misclassified.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.misclassified_table = QTableWidget(0, 3)
        self.misclassified_table.setHorizontalHeaderLabels(["test sample", "true", "predicted"])
        self.misclassified_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.misclassified_table.verticalHeader().hide()
        self.misclassified_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.samples = QStackedWidget()
        self.samples.addWidget(self.misclassified)
        self.samples.addWidget(self.misclassified_table)
        self.samples.setMinimumHeight(120)

        confusion_box, self.confusion_title = _section("Confusion matrix (rows: true class, columns: predicted)",
                                                       self.confusion)
        bars_box, _ = _section("Accuracy per class", self.bars)
        samples_box, self.samples_title = _section("Misclassified test samples", self.samples)
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(bars_box)
        self.right.addWidget(samples_box)
        self.right.setChildrenCollapsible(False)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(confusion_box)
        self.split.addWidget(self.right)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(0, 5)
        self.split.setStretchFactor(1, 4)
        self.details = QScrollArea()
        self.details.setWidgetResizable(True)
        self.details.setFrameShape(QScrollArea.Shape.NoFrame)
        self.details.setWidget(self.split)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addWidget(self.headline)
        layout.addWidget(self.message)
        layout.addWidget(self.details, 100)
        layout.addStretch(1)  # keeps the text at the top when there are no details to show
        for label in (self.headline, self.message):
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._narrow: bool | None = None
        self._event = None
        self._shown = None
        self._apply_theme()
        self.clear()

    # -- public ------------------------------------------------------------------------------
    def clear(self) -> None:
        self._event = self._shown = None
        self.headline.setText("<span style='font-size:15pt; font-weight:600'>No results yet</span>")
        self.message.setText("Train the model: when the run ends, its test accuracy, confusion matrix "
                             "and mistakes appear here.")
        self.message.setStyleSheet("")
        self.confusion.clear()
        self.confusion.setRowCount(0)
        self.confusion.setColumnCount(0)
        self._set_bars([], [])
        self.misclassified.clear()
        self.misclassified_table.setRowCount(0)
        self.details.hide()

    def show_result(self, event, test_images: np.ndarray | None, class_names: list[str]) -> None:
        """The test metrics of a finished run. ``test_images``: the test split's inputs
        (``[N, C, H, W]`` images, or ``[N, F]`` features), indexed by the misclassified
        entries; None when there is no test data here."""
        self._event = event
        self._shown = (event, test_images, class_names)
        self._show_headline(event)
        classification = event.test_accuracy is not None and event.confusion is not None
        self.details.setVisible(classification)
        if not classification:
            return
        matrix = np.asarray(event.confusion, dtype=np.int64)
        k = len(matrix)
        names = [str(n) for n in class_names[:k]] + [str(i) for i in range(len(class_names), k)]
        self._show_confusion(matrix, names)
        per_class = event.per_class_accuracy or [None] * k
        self._set_bars(per_class, names)
        wrong = int(matrix.sum() - np.trace(matrix))
        self._show_samples(event.misclassified[:self.MAX_SAMPLES], wrong, test_images, names)

    # -- parts ---------------------------------------------------------------------------------
    def _show_headline(self, event) -> None:
        pal = self.palette()
        muted = mix(pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Window), 0.35).name()
        big = "font-size:24pt; font-weight:600"
        mid = f"font-size:12pt; color:{muted}"
        if event.test_accuracy is not None:
            loss = "" if event.test_loss is None else (
                f"&nbsp;&nbsp;&nbsp;<span style='{mid}'>test loss</span> "
                f"<span style='font-size:15pt'>{event.test_loss:.4g}</span>")
            text = (f"<span style='{big}'>{event.test_accuracy:.2%}</span>&nbsp;"
                    f"<span style='{mid}'>test accuracy</span>{loss}")
        elif event.test_loss is not None:
            text = f"<span style='{big}'>{event.test_loss:.4g}</span>&nbsp;<span style='{mid}'>test loss</span>"
        else:
            text = "<span style='font-size:15pt; font-weight:600'>No test result</span>"
        self.headline.setText(text)
        message = event.message[:1].upper() + event.message[1:] if event.message else ""
        facts = [] if "epoch" in message else [f"{event.epochs_run} epoch{'s' if event.epochs_run != 1 else ''}"]
        facts.append(f"{event.steps:,} steps")
        if event.seconds:
            facts.append(f"{event.seconds:.1f} s")
        note = ""
        if event.test_accuracy is None and event.test_loss is not None:
            note = " This model's objective has no accuracy (it reconstructs or regresses): the test loss measures it."
        self.message.setText(f"{message} ({', '.join(facts)}).{note}")
        self.message.setStyleSheet("" if event.ok else f"color: {error_colours(pal)[0]}")

    def _show_confusion(self, matrix: np.ndarray, names: list[str]) -> None:
        t, k = self.confusion, len(matrix)
        t.clear()
        t.setRowCount(k)
        t.setColumnCount(k)
        t.setHorizontalHeaderLabels([""] * k)  # drawn by the column header, upright or upwards
        t.setVerticalHeaderLabels(names)
        fm = t.fontMetrics()
        cell = fm.horizontalAdvance("0" * len(str(int(matrix.max(initial=0))))) + 12
        widest = max((fm.horizontalAdvance(n) for n in names), default=0)
        self.column_header.set_labels(names, rotated=widest + 8 > max(cell, 30))
        for i, name in enumerate(names):
            t.horizontalHeaderItem(i).setToolTip(f"predicted {name}")
            t.verticalHeaderItem(i).setToolTip(f"true {name}")
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        right, wrong = QColor(40, 110, 200), QColor(215, 65, 45)
        rows = matrix.sum(axis=1)
        for i in range(k):
            for j in range(k):
                n = int(matrix[i, j])
                share = n / rows[i] if rows[i] else 0.0
                item = QTableWidgetItem(str(n))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                # errors saturate early (a 40 % confusion is full red); never past the colour itself
                tint = min(1.0, math.sqrt(share) * (0.95 if i == j else 1.6))
                colour = mix(base, right if i == j else wrong, tint)
                item.setBackground(QBrush(colour))
                item.setForeground(QBrush(readable_on(colour, dim=not n)))
                item.setToolTip(f"true {names[i]}, predicted {names[j]}: {n} sample{'s' if n != 1 else ''}"
                                f" ({share:.1%} of the true {names[i]})")
                t.setItem(i, j, item)
        fit = k <= 16  # small matrices fill the pane; large ones scroll
        mode = QHeaderView.ResizeMode.Stretch if fit else QHeaderView.ResizeMode.Fixed
        t.horizontalHeader().setMinimumSectionSize(cell)
        t.verticalHeader().setMinimumSectionSize(fm.height() + 4)
        t.horizontalHeader().setSectionResizeMode(mode)
        t.verticalHeader().setSectionResizeMode(mode)
        if not fit:
            t.horizontalHeader().setDefaultSectionSize(cell)
            t.verticalHeader().setDefaultSectionSize(fm.height() + 8)
        # wide enough for every count where it fits the pane: elided counts read as nothing
        t.setMinimumWidth(min(widest + 24 + k * cell + 4, 520))

    def _set_bars(self, per_class: list, names: list[str]) -> None:
        for label in self._bar_labels:
            self.bars.removeItem(label)
        self._bar_labels = []
        k = len(per_class)
        widths = [0.0 if a is None else float(a) for a in per_class]
        self.bar_item.setOpts(x0=np.zeros(k), y=np.arange(k, dtype=float), height=0.7, width=widths)
        pal = self.palette()
        fg = pal.color(QPalette.ColorRole.Text)
        for i, a in enumerate(per_class):
            label = pg.TextItem("no samples" if a is None else f"{a:.1%}", color=fg, anchor=(0, 0.5))
            label.setPos(widths[i] + 0.01, i)
            self.bars.addItem(label)
            self._bar_labels.append(label)
        left = self.bars.getAxis("left")
        left.setTicks([[(i, name) for i, name in enumerate(names)]])
        self.bars.getAxis("bottom").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1.0)]])
        self.bars.setXRange(0, 1.18, padding=0)
        self.bars.setYRange(-0.6, max(k, 1) - 0.4, padding=0)
        # a line of text per class, so that neither the names nor the figures overlap (26
        # classes make the view scroll rather than print them over one another)
        row = self.fontMetrics().height() + 1
        self.bars.setMinimumHeight(max(140, k * row + self.BARS_MARGIN))

    def _show_samples(self, wrong: list, total: int, images: np.ndarray | None, names: list[str]) -> None:
        self.misclassified.clear()
        self.misclassified_table.setRowCount(0)
        shown = len(wrong)
        self.samples_title.setText(f"Misclassified test samples ({shown} of {total:,})" if total > shown
                                   else f"Misclassified test samples ({total:,})")
        is_images = images is not None and (images.ndim == 3 or (images.ndim == 4 and images.shape[1] in (1, 3)))
        if is_images and all(0 <= int(i) < len(images) for i, _, _ in wrong):
            self._fill_grid(wrong, images, names)
            self.samples.setCurrentWidget(self.misclassified)
        else:
            self._fill_table(wrong, names)
            self.samples.setCurrentWidget(self.misclassified_table)

    def _fill_grid(self, wrong: list, images: np.ndarray, names: list[str]) -> None:
        captions = [f"{names[t]} → {names[p]}" for _, t, p in wrong]
        fm = self.misclassified.fontMetrics()
        widest = max((fm.horizontalAdvance(c) for c in captions), default=0)
        cell_w = min(max(self.TILE + 16, widest + 12), 132)
        lines = 1 if widest + 12 <= cell_w else 2
        self.misclassified.setGridSize(QSize(cell_w, self.TILE + 10 + lines * fm.height()))
        shown = to_display(images[[int(i) for i, _, _ in wrong]]) if wrong else []
        mode = Qt.TransformationMode
        for (index, t, p), img, caption in zip(wrong, shown, captions):
            qimg = to_qimage(img)
            fast = max(qimg.width(), qimg.height()) < self.TILE  # small images: keep their pixels sharp
            pix = QPixmap.fromImage(qimg.scaled(self.TILE, self.TILE, Qt.AspectRatioMode.KeepAspectRatio,
                                                mode.FastTransformation if fast else mode.SmoothTransformation))
            item = QListWidgetItem(QIcon(pix), caption)
            item.setToolTip(f"test sample {index}: true {names[t]}, predicted {names[p]}")
            item.setData(Qt.ItemDataRole.UserRole, int(index))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.misclassified.addItem(item)

    def _fill_table(self, wrong: list, names: list[str]) -> None:
        t = self.misclassified_table
        t.setRowCount(len(wrong))
        for r, (index, true, predicted) in enumerate(wrong):
            for c, value in enumerate((str(index), names[true], names[predicted])):
                item = QTableWidgetItem(value)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                t.setItem(r, c, item)

    # -- look -------------------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        self.bars.setBackground(bg)
        for name in ("left", "bottom"):
            axis = self.bars.getAxis(name)
            axis.setPen(pg.mkPen(mix(fg, bg, 0.45)))
            axis.setTextPen(fg)
        dark = bg.lightness() < 128
        self.bar_item.setOpts(brush=QColor("#5aaae6" if dark else "#2f7bc4"), pen=pg.mkPen(None))
        for label in self._bar_labels:
            label.setColor(fg)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and hasattr(self, "bar_item"):
            self._apply_theme()
            if self._shown is not None:
                self.show_result(*self._shown)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        narrow = self.width() < NARROW
        if narrow != self._narrow:
            self._narrow = narrow
            self.split.setOrientation(Qt.Orientation.Vertical if narrow else Qt.Orientation.Horizontal)
            self.split.setMinimumHeight(820 if narrow else 0)
            along = self.height() if narrow else self.width()
            self.split.setSizes([int(along * 0.55), int(along * 0.45)])
            self.right.setSizes([45, 55])
