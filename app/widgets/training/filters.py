"""The filters view: one layer's kernels as a grid of small images on one symmetric colour
scale (blue < 0 < red, white = 0), with a colour bar.

The arrays come from ``app.engine.snapshots.conv_filters`` (``[out, in, kh, kw]``); this
module only draws them (DESIGN rule 6). ``ImageCanvas`` and the colour helpers are shared with
the activations view.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .live_label import LiveLabel

# ColorBrewer RdBu reversed, with pure white in the middle so that 0 reads as "nothing"
_STOPS = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#ffffff",
          "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"]
LUT_SIZE = 255  # odd, so that index 127 is exactly 0


def diverging_lut(n: int = LUT_SIZE) -> np.ndarray:
    """``[n, 3]`` uint8 colours from dark blue (-1) through white (0) to dark red (+1)."""
    stops = np.array([QColor(c).getRgb()[:3] for c in _STOPS], dtype=np.float64)
    at = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, at, stops[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


DIVERGING = diverging_lut()


def to_diverging(values: np.ndarray, m: float | np.ndarray) -> np.ndarray:
    """``values`` on the symmetric scale ``-m..+m`` as RGB uint8 ``[..., 3]`` (``m`` may
    broadcast, one per tile); where ``m`` is 0 everything is white."""
    m = np.asarray(m, dtype=np.float32)
    scaled = np.divide(values, m, out=np.zeros(np.broadcast(values, m).shape, np.float32), where=m > 0)
    half = (LUT_SIZE - 1) // 2
    index = np.rint((np.clip(np.nan_to_num(scaled), -1, 1) + 1) * half).astype(np.intp)
    return DIVERGING[index]


def symmetric_grey(values: np.ndarray, m: float) -> np.ndarray:
    """RGB values ``[..., 3]`` on ``-m..+m`` as uint8, 0 at mid-grey."""
    if m <= 0:
        return np.full(values.shape, 128, np.uint8)
    return np.rint((np.clip(values / m, -1, 1) + 1) * 127.5).astype(np.uint8)


def grid_layout(n: int, h: int, w: int, width: int, height: int, gap: int = 1) -> tuple[int, int, float]:
    """The ``(rows, columns, scale)`` that shows ``n`` tiles of ``h x w`` pixels, ``gap``
    pixels apart, as large as they fit in ``width x height``."""
    best = (1, n, 0.0)
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if rows * cols - n >= cols:  # an empty last row: same as fewer rows
            continue
        s = min((width - gap * (cols - 1)) / (cols * w), (height - gap * (rows - 1)) / (rows * h))
        if s > best[2] + 1e-9:
            best = (rows, cols, s)
    return best


def to_argb32(rgb: np.ndarray) -> np.ndarray:
    """RGB ``[..., 3]`` uint8 (opaque) or RGBA ``[..., 4]`` (each pixel opaque or fully
    transparent) as uint32 0xAARRGGBB ``[...]``: QImage's ARGB32_Premultiplied on any byte
    order."""
    c = rgb.astype(np.uint32)
    a = c[..., 3] if rgb.shape[-1] == 4 else np.uint32(255)
    return np.ascontiguousarray((a << 24) | (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2])


def compose(tiles: np.ndarray, cols: int, sx: int, sy: int, gap: int, gap_rgb) -> np.ndarray:
    """Tiles ``[n, h, w, 3]`` uint8 RGB, each upscaled ``sx x sy`` (nearest neighbour), in a
    grid of ``cols`` columns ``gap`` pixels apart: ``[H, W]`` uint32 ARGB32 (``to_argb32``),
    transparent where the last row has no tile. The tiles are packed before they are
    upscaled, so the big array is touched once, as whole pixels."""
    n, h, w, _ = tiles.shape
    rows = math.ceil(n / cols)
    packed = to_argb32(tiles)
    th, tw = h * sy, w * sx
    cells = np.zeros((rows * cols, th + gap, tw + gap), np.uint32)
    cells[:n] = to_argb32(np.asarray(gap_rgb, np.uint8))
    cells[:n, :th, :tw] = np.broadcast_to(packed[:, :, None, :, None], (n, h, sy, w, sx)).reshape(n, th, tw)
    out = cells.reshape(rows, cols, th + gap, tw + gap).transpose(0, 2, 1, 3)
    out = out.reshape(rows * (th + gap), cols * (tw + gap))
    return np.ascontiguousarray(out[: rows * (th + gap) - gap, : cols * (tw + gap) - gap])


def gap_colour(palette: QPalette) -> QColor:
    """A line colour that separates tiles, white ones included, in light and dark themes."""
    window = palette.color(QPalette.ColorRole.Window)
    if window.lightness() < 128:
        return window.darker(160)
    text = palette.color(QPalette.ColorRole.WindowText)
    mix = lambda a, b: round(a * 0.45 + b * 0.55)  # noqa: E731
    return QColor(mix(window.red(), text.red()), mix(window.green(), text.green()), mix(window.blue(), text.blue()))


def float_mosaic(values: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """Tiles ``[n, h, w]`` or ``[n, h, w, 3]`` as one float array in a grid of ``cols``
    columns, ``gap`` NaN pixels between them."""
    v = np.asarray(values, dtype=np.float32)
    n, h, w = v.shape[:3]
    extra = v.shape[3:]
    rows = math.ceil(n / cols)
    cells = np.full((rows * cols, h + gap, w + gap) + extra, np.nan, np.float32)
    cells[:n, :h, :w] = v
    out = cells.reshape((rows, cols, h + gap, w + gap) + extra).swapaxes(1, 2)
    out = out.reshape((rows * (h + gap), cols * (w + gap)) + extra)
    return out[: rows * (h + gap) - gap, : cols * (w + gap) - gap]


class ImageCanvas(QWidget):
    """Draws tiles ``[n, h, w, 3]`` (uint8 RGB) as one mosaic image, upscaled by whole pixels
    so small kernels stay crisp, 1 screen pixel apart, centred; or a message when empty.
    ``square=False`` lets rows and columns scale apart (for ``[C, L]`` rows)."""

    def __init__(self, parent=None, message: str = ""):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(60, 60)
        self.tiles: np.ndarray | None = None
        self.square = True
        self.columns = 1
        self.message = message
        self.gap = 1
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self._for_size: tuple[QSize, int] | None = None
        self.legend: QWidget | None = None
        self._fixed_columns: int | None = None

    def set_legend(self, legend: QWidget) -> None:
        """A child drawn right beside the mosaic (the colour bar), its height the mosaic's."""
        self.legend = legend
        legend.setParent(self)
        self._place_legend()

    def _reserved(self) -> int:
        return self.legend.width() + 6 if self.legend is not None and not self.legend.isHidden() else 0

    def image_rect(self) -> QRectF | None:
        """Where the mosaic is drawn (shrunk when even 1 pixel per value does not fit)."""
        image = self.image()
        if image is None:
            return None
        w, h = image.width(), image.height()
        room_w = self.width() - 4 - self._reserved()
        k = min(1.0, room_w / w, (self.height() - 4) / h)
        tw, th = w * k, h * k
        if k == 1:  # on whole pixels: a plain copy
            return QRectF((room_w + 4 - w) // 2, (self.height() - h) // 2, w, h)
        return QRectF((room_w + 4 - tw) / 2, (self.height() - th) / 2, tw, th)

    def _place_legend(self) -> None:
        if self.legend is None:
            return
        r = self.image_rect()
        if r is None:
            return
        h = max(r.height(), min(160.0, self.height() - 4.0))
        self.legend.setGeometry(int(r.right() + 6), int(r.center().y() - h / 2), self.legend.width(), int(h))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_legend()

    def set_tiles(self, tiles: np.ndarray | None, square: bool = True, columns: int | None = None) -> None:
        self.tiles = None if tiles is None or len(tiles) == 0 else tiles
        self.square = square
        self._fixed_columns = columns
        self._image = None
        self._layout()
        self._place_legend()
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.set_tiles(None)

    def _layout(self) -> tuple[int, int, int, float]:
        """Columns and integer scales for the current size (scale < 1: drawn shrunk)."""
        if self.tiles is None:
            return 1, 1, 1, 1.0
        n, h, w, _ = self.tiles.shape
        width, height = max(self.width() - 4 - self._reserved(), 8), max(self.height() - 4, 8)
        if self._fixed_columns:
            cols = self._fixed_columns
            rows = math.ceil(n / cols)
            s = min((width - (cols - 1)) / (cols * w), (height - (rows - 1)) / (rows * h))
        else:
            rows, cols, s = grid_layout(n, h, w, width, height, self.gap)
        self.columns = cols
        if self.square:
            k = max(1, int(s))
            return cols, k, k, s
        sx = max(1, int((width - (cols - 1)) / (cols * w)))
        sy = max(1, int((height - (rows - 1)) / (rows * h)))
        return cols, sx, min(sy, max(sx, 24)), min(sx, sy)

    def image(self) -> QImage | None:
        """The mosaic as drawn at the current size (None when empty)."""
        if self.tiles is None:
            return None
        if self._image is None or self._for_size != (self.size(), self._reserved()):
            cols, sx, sy, _ = self._layout()
            gap = gap_colour(self.palette()).getRgb()[:3]
            self._buffer = compose(self.tiles, cols, sx, sy, self.gap, gap)
            hh, ww = self._buffer.shape
            # the window's own pixel format: painting is a copy, with no per-paint conversion
            # (which Qt spreads over its thread pool, waking threads that training needs)
            self._image = QImage(self._buffer.data, ww, hh, 4 * ww, QImage.Format.Format_ARGB32_Premultiplied)
            self._for_size = (self.size(), self._reserved())
        return self._image

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange:
            self._image = None
        super().changeEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        image = self.image()
        if image is None:
            if self.message:
                painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(QRectF(self.rect()).adjusted(12, 12, -12, -12),
                                 Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            painter.end()
            return
        rect = self.image_rect()
        if rect.width() < image.width():  # too many tiles: shrunk, smoothly
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(rect, image)
        painter.end()


class ColourBar(QWidget):
    """A vertical colour bar for ``-m..+m``: the diverging map, or grey for RGB kernels."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.m = 0.0
        self.grey = False
        self.setFixedWidth(70)

    def set_scale(self, m: float, grey: bool = False) -> None:
        self.m, self.grey = m, grey
        self.setFixedWidth(34 + self.fontMetrics().horizontalAdvance(f"−{m:.2g}"))
        self.update()
        if self.parent() is not None:
            self.parent()._place_legend()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        fm = painter.fontMetrics()
        top = fm.height() // 2 + 1
        bottom = self.height() - top
        height = max(bottom - top, 10)
        ramp = np.linspace(1, -1, height, dtype=np.float32)[:, None]
        colours = symmetric_grey(np.repeat(ramp[..., None], 3, 2), 1.0) if self.grey else to_diverging(ramp, 1.0)
        colours = np.ascontiguousarray(colours)
        image = QImage(colours.data, 1, height, 3, QImage.Format.Format_RGB888)
        painter.drawImage(QRectF(6, top, 14, height), image)
        painter.setPen(pal.color(QPalette.ColorRole.Mid))
        painter.drawRect(QRectF(5.5, top - 0.5, 15, height + 1))
        painter.setPen(pal.color(QPalette.ColorRole.WindowText))
        for y, text in ((top, f"+{self.m:.2g}"), (top + height / 2, "0"), (bottom, f"−{self.m:.2g}")):
            painter.drawLine(21, int(y), 24, int(y))
            painter.drawText(QRectF(29, y - fm.height() / 2, self.width() - 29, fm.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()


class FiltersView(QWidget):
    """A layer chooser, an input-channel chooser ("average", "RGB" for 3 channels, or one
    channel) and the chosen layer's kernels, one tile per output channel."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.filters: dict[str, np.ndarray] = {}
        self._layer: str | None = None  # the user's choice, kept across refreshes
        self._channels: dict[str, object] = {}  # per layer: "average", "rgb" or an index
        self._tiles: np.ndarray | None = None
        self._m = 0.0
        self.layer_combo = QComboBox()
        self.layer_combo.setObjectName("filter_layer")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.channel_combo = QComboBox()
        self.channel_combo.setObjectName("filter_channel")
        self.channel_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.title = LiveLabel()  # its text changes with every snapshot
        self.canvas = ImageCanvas(message="No filters yet. Train (or load trained weights of) a model with "
                                          "convolution layers, or a Linear layer right after an image "
                                          "input, to see what it has learned.")
        self.colour_bar = ColourBar()
        top = QHBoxLayout()
        top.addWidget(QLabel("Layer"))
        top.addWidget(self.layer_combo)
        top.addSpacing(8)
        top.addWidget(QLabel("Input channel"))
        top.addWidget(self.channel_combo)
        top.addStretch(1)
        self.canvas.set_legend(self.colour_bar)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        self.layer_combo.activated.connect(lambda i: self.select_layer(self.layer_combo.itemData(i)))
        self.channel_combo.activated.connect(lambda i: self.set_channel(self.channel_combo.itemData(i)))
        self.clear()

    # -- public API ----------------------------------------------------------------------------
    def show_filters(self, filters: dict[str, np.ndarray], order: list[str] | None = None) -> None:
        """Show new kernels ``{node_id: [out, in, kh, kw]}``; layers listed in ``order`` (the
        graph's order; other ids after), keeping the chosen layer and channel."""
        self.filters = {k: np.asarray(v, dtype=np.float32) for k, v in filters.items()
                        if np.ndim(v) == 4 and np.size(v) > 0}
        ids = [n for n in (order or []) if n in self.filters]
        ids += [n for n in self.filters if n not in ids]
        if [self.layer_combo.itemData(i) for i in range(self.layer_combo.count())] != ids:
            self.layer_combo.clear()
            for node_id in ids:
                self.layer_combo.addItem(node_id, node_id)
        self._refresh()

    def select_layer(self, node_id: str) -> bool:
        """Show ``node_id``'s kernels; remembered when it has none yet. Returns whether it
        is shown now."""
        self._layer = node_id
        self._refresh()
        return self.current_layer() == node_id

    def set_channel(self, choice) -> None:
        """``"average"``, ``"rgb"`` (3 input channels only) or an input channel index."""
        layer = self.current_layer()
        if layer is not None:
            self._channels[layer] = choice
            self._refresh()

    def clear(self) -> None:
        self.filters = {}
        self.layer_combo.clear()
        self._refresh()

    def current_layer(self) -> str | None:
        return self.layer_combo.currentData()

    def current_channel(self):
        return self.channel_combo.currentData()

    def scale(self) -> float:
        """``m`` of the colour scale ``-m..+m`` now shown."""
        return self._m

    def current_tiles(self) -> np.ndarray | None:
        """The values drawn: ``[out, kh, kw]``, or ``[out, kh, kw, 3]`` for RGB."""
        return self._tiles

    def current_image(self) -> np.ndarray | None:
        """The shown mosaic in the weights' units, NaN in the 1-pixel gaps, laid out as on
        screen (``canvas.columns`` columns)."""
        return None if self._tiles is None else float_mosaic(self._tiles, self.canvas.columns)

    # -- drawing -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        combo = self.layer_combo
        index = combo.findData(self._layer) if self._layer is not None else -1
        if index < 0 and combo.currentIndex() < 0 and combo.count():
            index = 0
        if index >= 0:
            combo.setCurrentIndex(index)
        layer = self.current_layer()
        if layer is None:
            self._tiles, self._m = None, 0.0
            self.channel_combo.clear()
            self.channel_combo.setEnabled(False)
            self.title.setText("")
            self.colour_bar.hide()
            self.canvas.set_tiles(None)
            return
        w = self.filters[layer]
        out, c, kh, kw = w.shape
        choice = self._channel_items(layer, c)
        if choice == "rgb":
            values = np.transpose(w, (0, 2, 3, 1))
            m = float(np.abs(w).max())
            rgb = symmetric_grey(values, m)
            what = "RGB, grey = 0"
        elif choice == "average":
            values = w.mean(axis=1)
            m = float(np.abs(values).max())
            rgb = to_diverging(values, m)
            what = f"average of {c} input channels, white = 0"
        else:
            values = w[:, choice]
            m = float(np.abs(w).max())
            rgb = to_diverging(values, m)
            what = (f"input channel {choice} of {c}, " if c > 1 else "") + "white = 0"
        self._tiles, self._m = values, m
        self.title.setText(f"<b>{layer}</b> · {out}×{c}×{kh}×{kw} "
                           f"({out} kernel{'s' if out != 1 else ''}) · {what} · scale ±{m:.3g}")
        self.colour_bar.set_scale(m, grey=choice == "rgb")
        self.colour_bar.show()
        self.canvas.set_tiles(rgb)

    def _channel_items(self, layer: str, c: int):
        """Fill the channel chooser for ``c`` input channels; the valid choice for ``layer``."""
        items = ([("RGB", "rgb")] if c == 3 else []) + ([("average", "average")] if c > 1 else [])
        items += [(f"channel {k}", k) for k in range(c)]
        datas = [d for _, d in items]
        choice = self._channels.get(layer, datas[0])
        if choice not in datas:
            choice = datas[0]
        combo = self.channel_combo
        if [combo.itemData(i) for i in range(combo.count())] != datas:
            combo.clear()
            for text, data in items:
                combo.addItem(text, data)
        combo.setCurrentIndex(datas.index(choice))
        combo.setEnabled(c > 1)
        return choice
