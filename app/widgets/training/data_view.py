"""The dataset preview: a grid of samples with labels (or a scatter plot of 2-d points),
shapes, class counts and split sizes, or the reason the data does not fit."""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from ...engine.datasets import Dataset, describe, load_dataset
from ...engine.errors import NetCanvasError
from ..threads import run_in_thread

CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"]


class DatasetLoader(QObject):
    """Loads a dataset on a worker thread; ``loaded(Dataset)`` or ``failed(str)`` arrive in
    the GUI thread. A newer request makes older results be dropped."""

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._generation = 0

    def load(self, settings: dict, base_dir, input_shape, input_id: str) -> None:
        self._generation += 1
        generation = self._generation

        def work():  # holds no Qt object: see threads.py
            try:
                return load_dataset(settings, base_dir, input_shape, input_id), ""
            except NetCanvasError as e:
                return None, str(e)
            except Exception as e:  # a reader's own failure must reach the user as text
                return None, f"{type(e).__name__}: {e}"

        run_in_thread(work, self, lambda future: self._deliver(generation, *future.result()),
                      name="dataset-loader")

    def cancel(self) -> None:
        """Drop the result of any load still running."""
        self._generation += 1

    def _deliver(self, generation: int, data, error: str) -> None:
        if generation != self._generation:
            return
        if data is None:
            self.failed.emit(error)
        else:
            self.loaded.emit(data)


def to_display(x: np.ndarray) -> np.ndarray:
    """Samples ``[N, C, H, W]`` as ``[N, H, W]`` or ``[N, H, W, 3]`` floats in [0, 1]."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 3:
        x = np.transpose(x, (0, 2, 3, 1))
    elif x.ndim == 4:
        x = x.mean(axis=1)
    lo = x.reshape(len(x), -1).min(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    hi = x.reshape(len(x), -1).max(axis=1).reshape((-1,) + (1,) * (x.ndim - 1))
    return (x - lo) / np.maximum(hi - lo, 1e-8)


def to_qimage(img: np.ndarray) -> QImage:
    """A [H, W] or [H, W, 3] array in [0, 1] as a QImage (a copy)."""
    data = np.ascontiguousarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    if data.ndim == 2:
        h, w = data.shape
        return QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    h, w, _ = data.shape
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class SampleGrid(QWidget):
    """Small images with a caption under each (labels, or "true → predicted")."""

    def __init__(self, parent=None, tile: int = 56):
        super().__init__(parent)
        self.tile = tile
        self.images: list[QImage] = []
        self.captions: list[str] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_samples(self, x: np.ndarray, captions: list[str]) -> None:
        shown = to_display(x) if len(x) else []
        self.images = [to_qimage(img) for img in shown]
        self.captions = list(captions)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        cell_w, cell_h = self.tile + 10, self.tile + 22
        columns = max(1, self.width() // cell_w)
        for i, (img, caption) in enumerate(zip(self.images, self.captions)):
            r, c = divmod(i, columns)
            x, y = c * cell_w + 5, r * cell_h + 5
            if y > self.height():
                break
            painter.drawImage(QRectF(x, y, self.tile, self.tile), img)
            painter.setPen(pal.color(pal.ColorRole.WindowText))
            painter.drawText(QRectF(x - 4, y + self.tile + 1, self.tile + 8, 18),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, caption)
        painter.end()


class DataPreview(QWidget):
    """What the data is: samples, shapes, classes, splits; or why it cannot be used."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.info = QLabel("No data loaded yet.")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid = SampleGrid()
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.plot)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.stack, 1)
        self.dataset: Dataset | None = None

    def show_dataset(self, data: Dataset) -> None:
        self.dataset = data
        d = describe(data)
        sizes = d["split_sizes"]
        counts = d["class_counts"]["train"]
        classes = ", ".join(f"{name}: {n}" for name, n in zip(d["class_names"], counts))
        notes = "".join(f"<br><i>{n}</i>" for n in d["notes"])
        self.info.setText(
            f"<b>{d['name']}</b> — {d['description']}<br>"
            f"samples of shape {d['sample_shape']}, {d['num_classes']} classes; "
            f"train {sizes['train']:,} · validation {sizes['val']:,} · test {sizes['test']:,}"
            f"<br>training samples per class: {classes}{notes}")
        x, y = data.train.x.numpy(), data.train.y.numpy()
        if x.ndim == 2 and x.shape[1] == 2:
            self._scatter(x, y, d["class_names"])
        elif x.ndim in (3, 4):
            self.grid.set_samples(x[:48], [d["class_names"][i] for i in y[:48]])
            self.stack.setCurrentWidget(self.grid)
        else:
            self.grid.set_samples(np.zeros((0, 1, 1, 1)), [])
            self.stack.setCurrentWidget(self.grid)

    def _scatter(self, x, y, names) -> None:
        self.plot.clear()
        self.plot.addLegend()
        for k, name in enumerate(names):
            pts = x[y == k]
            self.plot.plot(pts[:, 0], pts[:, 1], pen=None, symbol="o", symbolSize=6,
                           symbolBrush=QColor(CLASS_COLOURS[k % len(CLASS_COLOURS)]), symbolPen=None,
                           name=str(name))
        self.stack.setCurrentWidget(self.plot)

    def show_error(self, message: str) -> None:
        self.dataset = None
        self.info.setText(f"<span style='color:#d03030'><b>The data cannot be used:</b> "
                          f"{escape(message, quote=False)}</span>")
        self.grid.set_samples(np.zeros((0, 1, 1, 1)), [])
        self.stack.setCurrentWidget(self.grid)
