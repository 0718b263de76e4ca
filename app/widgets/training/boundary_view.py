"""The boundary view (two-feature inputs: xor, moons, spirals, a 2-column CSV): the model's
prediction over the input plane as a heat map, the data points on top (train as circles,
test as crosses, coloured by class), and for small MLPs one small map per hidden unit, as
TensorFlow Playground draws them.

The maps come from ``SnapshotEvent.boundary`` (``app.engine.boundary.boundary_maps``); this
module only colours and draws them (DESIGN rule 6). Grid row r is y = y0 + (r + 0.5) * dy:
row 0 is at the bottom of the plane.
"""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from ..colors import mix
from .filters import to_argb32, to_diverging
from .live_label import LiveLabel

# class 0 orange and class 1 blue as in TensorFlow Playground, then a categorical set
CLASS_COLOURS = ("#f59322", "#0877bd", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")
# the heat map's strongest tint: full class colour would hide the points of that class
MAX_TINT = 0.6
MIN_TINT = 0.12  # a multi-class map's tint where the model is least sure (1 / K everywhere)
UNAVAILABLE = "Decision boundaries need a two-feature input (xor, moons, spirals)."
WAITING = "The decision boundary appears here while a model trains, or once trained weights are loaded."


def class_colour(k: int) -> QColor:
    return QColor(CLASS_COLOURS[k % len(CLASS_COLOURS)])


def _rgb(colour: QColor) -> np.ndarray:
    return np.array(colour.getRgb()[:3], np.float32)


def boundary_rgb(probs: np.ndarray, background: QColor) -> np.ndarray:
    """The heat map ``[R, R, 3]`` uint8 of ``probs`` ``[R, R, K]``. K = 1 (one sigmoid
    output, P(class 1)): diverging from class 0's colour through ``background`` (P = 0.5) to
    class 1's. K > 1: the class colours blended by probability, over ``background`` by how
    sure the model is (paler towards 1 / K everywhere)."""
    p = np.nan_to_num(np.asarray(probs, np.float32))
    base = _rgb(background)
    if p.shape[-1] == 1:
        t = np.clip(p[..., 0] * 2 - 1, -1, 1)[..., None]  # -1: class 0, +1: class 1
        towards = np.where(t < 0, _rgb(class_colour(0)), _rgb(class_colour(1)))
        out = base + (towards - base) * np.abs(t) * MAX_TINT
    else:
        k = p.shape[-1]
        colours = np.stack([_rgb(class_colour(i)) for i in range(k)])
        p = p / np.clip(p.sum(-1, keepdims=True), 1e-6, None)
        blend = p @ colours
        sure = np.clip((p.max(-1, keepdims=True) - 1 / k) / (1 - 1 / k), 0, 1)
        out = base + (blend - base) * (MIN_TINT + (MAX_TINT - MIN_TINT) * sure)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class _SmoothImage(pg.ImageItem):
    """The heat map, its cells interpolated as the view scales it up (a grid of 64 x 64
    cells drawn as blocks makes a staircase of the boundary)."""

    def paint(self, painter, *args) -> None:
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        super().paint(painter, *args)


class UnitMaps(QWidget):
    """One small map per hidden unit ``{node: [n_units, R, R]}``, a row per node with its
    name, each node's maps on its own symmetric scale (blue < 0 < red), row 0 at the bottom."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.units: dict[str, np.ndarray] = {}
        self._images: list[tuple[str, list[QImage], float]] = []
        self._tiles: list[tuple[QRect, str]] = []  # where each map was drawn, and its tooltip
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)

    def set_units(self, units: dict[str, np.ndarray]) -> None:
        self.units = {k: np.asarray(v, np.float32) for k, v in units.items() if np.ndim(v) == 3 and len(v)}
        self._images = []
        for node, maps in self.units.items():
            m = float(np.nanmax(np.abs(maps))) if maps.size else 0.0
            rgb = to_diverging(maps[:, ::-1, :], m)  # row 0 is the bottom of the plane
            images = []
            for tile in rgb:
                argb = to_argb32(tile)
                image = QImage(argb.data, argb.shape[1], argb.shape[0], QImage.Format.Format_ARGB32_Premultiplied)
                images.append(image.copy())  # own the pixels: argb goes away
            self._images.append((node, images, m))
        self.setVisible(bool(self._images))
        self.update()

    def tile_count(self) -> int:
        return sum(len(images) for _, images, _ in self._images)

    def sizeHint(self) -> QSize:
        return QSize(320, 200)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 60)

    def _tile_size(self) -> int:
        rows = len(self._images)
        widest = max((len(images) for _, images, _ in self._images), default=1)
        label = self.fontMetrics().height() + 2
        size = min((self.width() - 2 * (widest - 1)) / widest, (self.height() - rows * (label + 6)) / max(rows, 1))
        return int(max(12, min(size, 72)))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        size, y, line = self._tile_size(), 0, self.fontMetrics().height() + 2
        self._tiles = []
        for node, images, m in self._images:
            painter.setPen(pal.color(QPalette.ColorRole.WindowText))
            painter.drawText(QRect(0, y, self.width(), line), int(Qt.AlignmentFlag.AlignLeft),
                             f"{node} (±{m:.2g})")
            y += line
            for i, image in enumerate(images):
                r = QRect(i * (size + 2), y, size, size)
                painter.drawImage(QRectF(r), image)
                self._tiles.append((r, f"{node}, unit {i}: its output over the input plane "
                                       f"(blue < 0 < red, ±{m:.2g})"))
            y += size + 6
        painter.end()

    def event(self, e) -> bool:
        if e.type() == e.Type.ToolTip:
            tip = next((t for r, t in self._tiles if r.contains(e.pos())), "")
            self.setToolTip(tip)
        return super().event(e)


class BoundaryView(QWidget):
    """The Boundary tab: the heat map with the points, a caption saying what the colours are,
    the per-unit maps beside it; a placeholder where the input is not two features."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.data: dict | None = None
        self._step: int | None = None
        self._points_key: tuple | None = None
        self.rgb: np.ndarray | None = None
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("boundary_plot")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(False, False)
        self.plot.setAspectLocked(True)
        self.plot.setMinimumSize(160, 160)
        self.image = _SmoothImage(axisOrder="row-major")
        self.train_points = pg.ScatterPlotItem(symbol="o", size=7, pxMode=True)
        self.test_points = pg.ScatterPlotItem(symbol="x", size=10, pxMode=True)
        for item in (self.image, self.train_points, self.test_points):
            self.plot.addItem(item)
        self.title = LiveLabel()  # its text changes with every snapshot
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.units = UnitMaps()
        self.units.hide()
        self.units_title = QLabel("Hidden units")
        self.units_title.hide()
        right = QVBoxLayout()
        right.addWidget(self.units_title)
        right.addWidget(self.units, 1)
        row = self._row = QHBoxLayout()
        row.addWidget(self.plot, 1)
        row.addLayout(right, 1)
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.title)
        column.addLayout(row, 1)
        column.addWidget(self.caption)
        self.placeholder = QLabel(WAITING)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.stack)
        self.available = True
        self._apply_palette()

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange and hasattr(self, "plot"):
            self._apply_palette()
            if self.data is not None:
                self._points_key = None  # the outlines follow the theme
                self.show_boundary(self.data, self._step)
        super().changeEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_plot()

    def _fit_plot(self) -> None:
        """The plot as wide as the plane at its height (the aspect is locked: any wider is
        empty margin); with unit maps, the rest is theirs."""
        units = self.data is not None and self.units.tile_count() > 0
        self._row.setStretch(1, 1 if units else 0)
        if not units:
            self.plot.setMaximumWidth(16777215)
            return
        (x0, x1), (y0, y1) = self.data["x_range"], self.data["y_range"]
        aspect = (x1 - x0) / (y1 - y0) if y1 > y0 else 1.0
        axis = self.plot.getAxis("left").width() + 16
        self.plot.setMaximumWidth(max(160, int((self.plot.height() - 30) * aspect) + axis))

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
            axis.setTextPen(pg.mkPen(pal.color(QPalette.ColorRole.Text)))

    def set_available(self, available: bool) -> None:
        """Whether the project's input has two features; when not, the placeholder says why."""
        self.available = available
        if not available:
            self.clear()
        self.placeholder.setText(WAITING if available else UNAVAILABLE)

    def clear(self) -> None:
        self.data, self.rgb, self._points_key, self._step = None, None, None, None
        self.image.clear()
        self.train_points.clear()
        self.test_points.clear()
        self.units.set_units({})
        self.units_title.hide()
        self.stack.setCurrentWidget(self.placeholder)

    def show_boundary(self, data: dict | None, step: int | None = None) -> None:
        """Draw ``SnapshotEvent.boundary`` (see INSIGHT_API: x_range, y_range, probs
        ``[R, R, K]``, points, units); ``step``: the training step (None: the weights held).
        None draws nothing new."""
        if data is None or not self.available:
            return
        self.data, self._step = data, step
        (x0, x1), (y0, y1) = data["x_range"], data["y_range"]
        probs = np.asarray(data["probs"], np.float32)
        self.rgb = boundary_rgb(probs, self.palette().color(QPalette.ColorRole.Base))
        self.image.setImage(self.rgb, autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self._show_points(data.get("points") or {})
        self.plot.getViewBox().setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        names = [str(c) for c in (data.get("classes") or [])]
        k = probs.shape[-1]
        if len(names) < max(k, 2):
            names = [str(i) for i in range(max(k, 2))]
        self.caption.setText(_caption(names, k == 1, self.palette()))
        when = f"step {step:,}" if step is not None else "the weights held"
        self.title.setText(f"Prediction over the input plane, {when}")
        units = data.get("units") or {}
        self.units.set_units(units)
        self.units_title.setVisible(bool(units))
        self._fit_plot()
        self.units_title.setToolTip("Each hidden unit's output over the same plane: the network builds its "
                                    "boundary from these pieces.")
        self.stack.setCurrentWidget(self.stack.widget(1))

    def _show_points(self, points: dict) -> None:
        """The scatter, rebuilt only when the points change (the engine sends the same ones)."""
        arrays = [np.asarray(points.get(k, np.zeros((0, 2) if k in ("train", "test") else 0)))
                  for k in ("train", "train_y", "test", "test_y")]
        key = tuple((a.shape, a.tobytes()) for a in arrays)
        if key == self._points_key:
            return
        self._points_key = key
        outline = pg.mkPen(QColor("white"), width=1)  # marks points on both classes' tints, in both themes
        for item, xy, y in ((self.train_points, arrays[0], arrays[1]), (self.test_points, arrays[2], arrays[3])):
            xy = xy.reshape(-1, 2) if xy.size else np.zeros((0, 2))
            labels = y.astype(np.int64).reshape(-1) if y.size else np.zeros(len(xy), np.int64)
            brushes = [pg.mkBrush(class_colour(int(c))) for c in labels[: len(xy)]]
            item.setData(x=xy[:, 0], y=xy[:, 1], brush=brushes, pen=outline)

    def point_counts(self) -> tuple[int, int]:
        """(train, test) points drawn."""
        return len(self.train_points.data), len(self.test_points.data)


def _caption(names: list[str], one_output: bool, palette: QPalette) -> str:
    """The legend: what the background's colours mean, and the points' marks."""
    sw = lambda k: f"<span style='color:{class_colour(k).name()}'>■</span>"  # noqa: E731
    mid = mix(palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text), 0.5).name()
    if one_output:
        a, b = escape(names[0]), escape(names[1])
        back = (f"Background: the probability of {b}, from {sw(0)} 0 (predicts {a}) through "
                f"<span style='color:{mid}'>■</span> 0.5 to {sw(1)} 1 (predicts {b})")
    else:
        back = ("Background: the classes' colours mixed by their probabilities, paler where the model is "
                "unsure: " + ", ".join(f"{sw(k)} {escape(n)}" for k, n in enumerate(names[:len(CLASS_COLOURS)])))
    return f"{back}. ● train, ✕ test, coloured by their true class."
