"""The activations view: pick a sample (from the data, or drawn with the mouse), and see
what one node makes of it next to the network's class probabilities.

Arrays in, pictures out (DESIGN rule 6): ``show_activations`` takes
``{node_id: [n_samples, *node_output_shape]}`` (``app.engine.snapshots.activations``) and
draws sample 0; ``sample_changed`` hands the panel the sample to run, ``[1, *input_shape]``.
With ``set_target("mask", ...)`` the output node of a segmentation model is drawn as the
predicted mask (probabilities, 0 black to 1 white) beside the mask it is trained towards.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import (
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...engine.config import MASK_THRESHOLD
from .data_view import to_display, to_qimage
from .filters import DIVERGING, ImageCanvas, to_diverging
from .live_label import LiveLabel
from .sample_widgets import DrawPad, ProbabilityBars, SampleImage, class_probabilities

NARROW = 640  # below this width the sample chooser moves above the views


class ActivationsView(QWidget):
    """Choose a sample (an index into ``set_samples``' data, or a drawing), see one node's
    output for it, and the class probabilities. ``sample_changed(np.ndarray)``:
    ``[1, *input_shape]`` float32, already normalized like the data (int64 for token ids)."""

    sample_changed = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.x: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.class_names: list[str] = []
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.source = "dataset"  # or "drawing"
        self.sample: np.ndarray | None = None
        self.activations: dict[str, np.ndarray] = {}
        self.output_node: str | None = None
        self.probabilities: np.ndarray | None = None
        self._node: str | None = None  # the user's choice, kept across refreshes
        self._shown: str | None = None  # the node shown last (the default's pick included)
        self._kind = "none"
        self._values: np.ndarray | None = None
        self.target = "labels"  # training.target: "mask" draws the output as a mask
        self.output_is_probability = False  # the output node gives probabilities, not logits
        self._build()
        self._narrow: bool | None = None
        # explicit, so that a wide arrangement's minimum cannot stop the panel from getting
        # narrow enough to switch to the narrow one
        self.setMinimumSize(420, 300)
        self._arrange()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.sample_image = SampleImage()
        self.sample_caption = QLabel("No data yet.")
        self.sample_caption.setWordWrap(True)
        self.index_spin = QSpinBox()
        self.index_spin.setObjectName("sample_index")
        self.index_spin.setPrefix("sample ")
        self.index_slider = QSlider(Qt.Orientation.Horizontal)
        for w in (self.index_spin, self.index_slider):
            w.setRange(0, 0)
            w.setEnabled(False)
        self.pad = DrawPad()
        self.pad_hint = QLabel("…or draw one:")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("clear_drawing")

        sample_part = QWidget()
        g = QVBoxLayout(sample_part)
        g.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.sample_image)
        text = QVBoxLayout()
        text.addWidget(self.sample_caption)
        text.addWidget(self.index_spin)
        top.addLayout(text, 1)
        g.addLayout(top)
        g.addWidget(self.index_slider)
        self.draw_part = QWidget()
        self.draw_layout = QBoxLayout(QBoxLayout.Direction.TopToBottom, self.draw_part)
        self.draw_layout.setContentsMargins(0, 0, 0, 0)
        pad_controls = QVBoxLayout()
        pad_controls.addWidget(self.pad_hint)
        pad_controls.addWidget(self.clear_button)
        pad_controls.addStretch(1)
        self.draw_layout.addWidget(self.pad, 0, Qt.AlignmentFlag.AlignLeft)
        self.draw_layout.addLayout(pad_controls)
        self.draw_part.hide()
        self.side = QWidget()
        self.side_layout = QBoxLayout(QBoxLayout.Direction.TopToBottom, self.side)
        self.side_layout.setContentsMargins(0, 0, 0, 0)
        self.side_layout.addWidget(sample_part)
        self.side_layout.addWidget(self.draw_part)
        self.side_layout.addStretch(1)

        self.node_combo = QComboBox()
        self.node_combo.setObjectName("activation_node")
        self.node_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.shared_scale = QCheckBox("one scale for all")
        self.shared_scale.setToolTip("Draw every map on the node's own ±max instead of each on its own")
        self.title = LiveLabel()  # its text changes with every snapshot
        self.canvas = ImageCanvas(message="Activations appear here while a model trains, or once trained "
                                          "weights are loaded.")
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.bars = pg.BarGraphItem(x=[0], height=[0], width=0.8)
        self.plot.addItem(self.bars)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.canvas)
        self.stack.addWidget(self.plot)
        self.probability_bars = ProbabilityBars()
        header = QHBoxLayout()
        header.addWidget(QLabel("Node"))
        header.addWidget(self.node_combo)
        header.addWidget(self.shared_scale)
        header.addStretch(1)
        centre = QVBoxLayout()
        centre.addLayout(header)
        centre.addWidget(self.title)
        centre.addWidget(self.stack, 1)
        view_row = QHBoxLayout()
        view_row.addLayout(centre, 1)
        view_row.addWidget(self.probability_bars)
        self.outer = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.outer.addWidget(self.side)
        self.outer.addLayout(view_row, 1)
        self._apply_palette()

        self.index_spin.valueChanged.connect(self.set_index)
        self.index_slider.valueChanged.connect(self.set_index)
        self.sample_image.clicked.connect(lambda: self.set_index(self.index_spin.value(), force=True))
        self.pad.drawn.connect(self._drawn)
        self.clear_button.clicked.connect(self._clear_drawing)
        self.node_combo.activated.connect(lambda i: self.select_node(self.node_combo.itemData(i)))
        self.shared_scale.toggled.connect(lambda _: self._draw_node())

    def _arrange(self) -> None:
        """Side by side when wide; the sample chooser above the views when narrow."""
        narrow = self.width() < NARROW
        if narrow == self._narrow:
            return
        self._narrow = narrow
        d = QBoxLayout.Direction
        self.outer.setDirection(d.TopToBottom if narrow else d.LeftToRight)
        self.side_layout.setDirection(d.LeftToRight if narrow else d.TopToBottom)
        self.draw_layout.setDirection(d.LeftToRight if narrow else d.TopToBottom)
        if narrow:
            self.side.setMinimumWidth(0)
            self.side.setMaximumWidth(16777215)
        else:
            self.side.setFixedWidth(150)
        self.probability_bars.setFixedWidth(140 if narrow else 170)

    def resizeEvent(self, event) -> None:
        self._arrange()
        super().resizeEvent(event)

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange and hasattr(self, "plot"):
            self._apply_palette()
            if self._kind == "bars":
                self._draw_node()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(pal.color(QPalette.ColorRole.Mid)))
            axis.setTextPen(pg.mkPen(text))

    # -- samples -------------------------------------------------------------------------------
    def set_samples(self, x: np.ndarray, labels: np.ndarray | None, class_names: list[str]) -> None:
        """Samples ``[N, *input_shape]`` (as the model sees them), their labels ``[N]`` and
        the class names. Shows the pad when the input is a 1-channel image; emits
        ``sample_changed`` with the sample now chosen."""
        x = np.asarray(x)
        self.x = x if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)  # token ids stay ids
        self.labels = None if labels is None else np.asarray(labels)
        self.class_names = [str(c) for c in class_names]
        shape = self.x.shape[1:]
        image = len(shape) == 3 and shape[0] == 1
        self.draw_part.setVisible(image)
        if image and (self.pad.h, self.pad.w) != shape[1:]:
            self.pad.set_image_size(*shape[1:])
        n = len(self.x)
        for w in (self.index_spin, self.index_slider):
            w.blockSignals(True)
            w.setRange(0, max(n - 1, 0))
            w.setEnabled(n > 1)
            w.blockSignals(False)
        if n:
            self.set_index(min(self.index_spin.value(), n - 1), force=True)
        else:
            self.sample_caption.setText("The data has no samples.")
            self.sample_image.set_image(None)

    def set_normalization(self, mean: np.ndarray | None, std: np.ndarray | None) -> None:
        """How the data was normalized (arrays of the input shape): drawings get the same."""
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.where(np.asarray(std, dtype=np.float32) == 0, 1.0,
                                                      np.asarray(std, dtype=np.float32))
        if self.source == "drawing":
            self._drawn()

    def set_index(self, index: int, force: bool = False) -> None:
        """Show sample ``index`` of the data and emit it."""
        if self.x is None or not len(self.x):
            return
        index = int(np.clip(index, 0, len(self.x) - 1))
        if not force and self.source == "dataset" and index == self._index_shown():
            return
        for w in (self.index_spin, self.index_slider):
            w.blockSignals(True)
            w.setValue(index)
            w.blockSignals(False)
        self.source = "dataset"
        self._shown_index = index
        sample = self.x[index]
        picture = sample.ndim == 3 and sample.shape[0] in (1, 3) or sample.ndim == 2
        if picture:
            batch = sample[None] if sample.ndim == 3 else sample[None, None]
            self.sample_image.set_image(to_qimage(to_display(batch)[0]))
        self.sample_image.setVisible(picture)
        label = self.true_label()
        values = "" if picture else "<br>x = " + _short(sample)
        self.sample_caption.setText(f"label: <b>{label}</b>{values}" if label is not None else values[4:])
        self._mark_source()
        self._emit(sample[None])

    def _index_shown(self) -> int | None:
        return getattr(self, "_shown_index", None)

    def true_label(self) -> str | None:
        """The chosen data sample's class name (None for a drawing or unlabelled data)."""
        if self.source != "dataset" or self.labels is None or self._index_shown() is None:
            return None
        y = self.labels[self._index_shown()]
        if np.ndim(y) == 0 and float(y).is_integer() and 0 <= int(y) < len(self.class_names):
            return self.class_names[int(y)]
        return _short(np.asarray(y))

    def current_sample(self) -> np.ndarray | None:
        """The sample last emitted, ``[1, *input_shape]``."""
        return self.sample

    def _drawn(self) -> None:
        if self.x is None:
            return
        shape = self.x.shape[1:]
        drawing = self.pad.image_array().reshape(shape).astype(np.float32)
        if self.mean is not None and self.std is not None:
            drawing = (drawing - self.mean) / self.std
        self.source = "drawing"
        self.sample_caption.setText("showing your drawing")
        self._mark_source()
        self._emit(drawing[None])

    def _clear_drawing(self) -> None:
        self.pad.clear()
        if self.source == "drawing":  # a blank pad is no sample: go back to the data's
            self.set_index(self.index_spin.value(), force=True)

    def _mark_source(self) -> None:
        self.probability_bars.true_label = self.true_label()
        self.probability_bars.update()
        self.pad.active = self.source == "drawing"
        self.sample_image.active = self.source == "dataset"
        self.pad.update()
        self.sample_image.update()

    def _emit(self, sample: np.ndarray) -> None:
        kind = np.int64 if np.issubdtype(np.asarray(sample).dtype, np.integer) else np.float32
        self.sample = np.ascontiguousarray(sample, dtype=kind)
        self.sample_changed.emit(self.sample)

    # -- activations ---------------------------------------------------------------------------
    def set_target(self, target: str, output_is_probability: bool = False) -> None:
        """What the model is trained towards (``training.target``): with ``"mask"`` the
        output node is drawn as a mask, the sigmoid of its values unless
        ``output_is_probability`` (the output is a final Sigmoid's)."""
        changed = (target, output_is_probability) != (self.target, self.output_is_probability)
        self.target, self.output_is_probability = target, output_is_probability
        if changed and self.activations:
            self._draw_node()

    def show_activations(self, activations: dict[str, np.ndarray], order: list[str], output_node: str | None,
                         class_names: list[str]) -> None:
        """Every node's output ``[n, *shape]`` (sample 0 is drawn), the nodes in graph
        ``order``, the output node (its values become class probabilities) and the class
        names. Keeps the chosen node."""
        self.activations = {k: np.asarray(v) for k, v in activations.items()}
        self.output_node = output_node
        if class_names:
            self.class_names = [str(c) for c in class_names]
        ids = [n for n in order if n in self.activations]
        ids += [n for n in self.activations if n not in ids]
        if [self.node_combo.itemData(i) for i in range(self.node_combo.count())] != ids:
            self.node_combo.clear()
            for node_id in ids:
                self.node_combo.addItem(node_id, node_id)
        self._choose_node(ids)
        self._draw_node()
        self._draw_probabilities()

    def select_node(self, node_id: str) -> bool:
        """Show ``node_id``'s output; remembered when it has none yet. Returns whether it is
        shown now."""
        self._node = node_id
        ids = [self.node_combo.itemData(i) for i in range(self.node_combo.count())]
        self._choose_node(ids)
        self._draw_node()
        return self.current_node() == node_id

    def current_node(self) -> str | None:
        return self.node_combo.currentData()

    def current_kind(self) -> str:
        """``"maps"`` ([C, H, W]), ``"rows"`` ([C, L]), ``"bars"`` (a vector), ``"mask"``
        (the output of a mask target, with the target beside it) or ``"none"``."""
        return self._kind

    def current_values(self) -> np.ndarray | None:
        """The node's values drawn now (sample 0), shaped as drawn."""
        return self._values

    def clear(self) -> None:
        self.activations = {}
        self.node_combo.clear()
        self._draw_node()
        self._draw_probabilities()

    def _choose_node(self, ids: list[str]) -> None:
        if not ids:
            return
        if self._node in ids:
            pick = self._node
        elif self._shown in ids:
            pick = self._shown
        else:  # the first feature maps after the input, else the first node after it
            maps = [n for n in ids[1:] if self.activations[n].ndim >= 4]
            pick = maps[0] if maps else ids[min(1, len(ids) - 1)]
        self.node_combo.setCurrentIndex(ids.index(pick))
        self._shown = pick

    def _draw_node(self) -> None:
        node = self.current_node()
        if node is None or node not in self.activations or not len(self.activations[node]):
            self._kind, self._values = "none", None
            self.title.setText("")
            self.shared_scale.setEnabled(False)
            self.canvas.set_tiles(None)
            self.stack.setCurrentWidget(self.canvas)
            return
        a = np.asarray(self.activations[node][0], dtype=np.float32)
        shape = "×".join(str(s) for s in a.shape) or "1"
        shared = self.shared_scale.isChecked()
        if self.target == "mask" and node == self.output_node and a.ndim == 3:
            self._draw_mask(node, a, shape)
            return
        if a.ndim >= 2:
            values = a.reshape(-1, *a.shape[-2:]) if a.ndim >= 3 else a
            axes = (1, 2) if values.ndim == 3 else (1,)
            m = np.abs(values).max() if shared else np.abs(values).max(axis=axes, keepdims=True)
            rgb = to_diverging(values, m)
            if values.ndim == 3:
                self._kind = "maps"
                self.canvas.set_tiles(rgb)
                what = f"{len(values)} feature map{'s' if len(values) != 1 else ''}"
            else:
                self._kind = "rows"
                self.canvas.set_tiles(rgb[:, None], square=False, columns=1)
                what = f"{len(values)} rows of {values.shape[1]}"
            scale = (f"one scale ±{float(np.max(m)):.3g}" if shared else "each on its own ±max") + ", white = 0"
            self.stack.setCurrentWidget(self.canvas)
        else:
            values = a.reshape(-1)
            self._kind = "bars"
            self._draw_bars(node, values)
            what = f"{values.size} value{'s' if values.size != 1 else ''}"
            scale = f"from {values.min():.3g} to {values.max():.3g}"
            self.stack.setCurrentWidget(self.plot)
        self._values = values
        self.shared_scale.setEnabled(self._kind != "bars")
        self.title.setText(f"<b>{node}</b> · output {shape} · {what} · {scale}")

    def _draw_mask(self, node: str, a: np.ndarray, shape: str) -> None:
        """The predicted mask (probabilities, black 0 to white 1) and, when the sample is
        known, the target beside it: the sample's pixels above MASK_THRESHOLD."""
        predicted = a if self.output_is_probability else 1.0 / (1.0 + np.exp(-np.clip(a, -60, 60)))
        tiles = [predicted.reshape(-1, *a.shape[-2:])]
        target = self._target_mask(a.shape)
        if target is not None:
            tiles.append(target.reshape(-1, *a.shape[-2:]))
        grey = np.clip(np.concatenate(tiles), 0.0, 1.0)
        self._kind, self._values = "mask", grey
        self.canvas.set_tiles(np.repeat(np.rint(grey * 255).astype(np.uint8)[..., None], 3, axis=-1),
                              columns=len(tiles))
        self.stack.setCurrentWidget(self.canvas)
        self.shared_scale.setEnabled(False)
        how = "probabilities" if self.output_is_probability else "sigmoid of the logits"
        what = f"predicted mask ({how}, black 0 to white 1)"
        if target is not None:
            what = f"left: {what}; right: the target (input above {MASK_THRESHOLD:g})"
        self.title.setText(f"<b>{node}</b> · output {shape} · {what}")

    def _target_mask(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The mask the model learns for the sample shown: its pixels, on the data's scale,
        above MASK_THRESHOLD; None when no sample of that shape is shown."""
        if self.sample is None or tuple(self.sample.shape[1:]) != tuple(shape):
            return None
        raw = self.sample[0].astype(np.float32)
        if self.mean is not None and self.std is not None and self.mean.shape == raw.shape:
            raw = raw * self.std + self.mean
        return (raw > MASK_THRESHOLD).astype(np.float32)

    def _draw_bars(self, node: str, values: np.ndarray) -> None:
        pos, neg = (QBrush(QColor(*DIVERGING[k])) for k in (len(DIVERGING) * 4 // 5, len(DIVERGING) // 5))
        x = np.arange(values.size)
        self.bars.setOpts(x=x, height=values, width=0.8 if values.size < 200 else 1.0,
                          brushes=[pos if v >= 0 else neg for v in values], pens=[None] * values.size)
        axis = self.plot.getAxis("bottom")
        if node == self.output_node and values.size == len(self.class_names) and values.size <= 30:
            axis.setTicks([[(k, name) for k, name in enumerate(self.class_names)]])
        elif values.size <= 12:  # whole units, not 0.5 steps
            axis.setTicks([[(k, str(k)) for k in range(values.size)]])
        else:
            axis.setTicks(None)
        self.plot.getPlotItem().enableAutoRange()

    def _draw_probabilities(self) -> None:
        out = self.activations.get(self.output_node) if self.output_node else None
        sample = None if out is None or not len(out) else np.asarray(out[0])
        if sample is None or sample.ndim > 1 or (sample.ndim == 1 and sample.size > 1000):
            self.probabilities = None
            self.probability_bars.set_probabilities(np.zeros(0), [])
            self.probability_bars.setVisible(sample is None)  # an image output: no classes
            return
        self.probabilities, how = class_probabilities(sample)
        names = self.class_names
        if sample.size == 1 and len(names) != 2:
            names = ["0", "1"]
        note = {"softmax": "softmax of logits", "probabilities": "",
                "sigmoid": "sigmoid of the output", "sigmoid output": ""}[how]
        self.probability_bars.set_probabilities(self.probabilities, names, note, self.true_label())
        self.probability_bars.show()


def _short(values: np.ndarray, limit: int = 6) -> str:
    v = np.asarray(values).ravel()
    text = ", ".join(f"{float(e):.3g}" for e in v[:limit])
    return f"[{text}{', …' if v.size > limit else ''}]"
