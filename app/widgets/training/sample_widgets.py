"""The small widgets of the activations view: class-probability bars, the pad a digit is
drawn on, and a clickable sample thumbnail."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QImage, QPainter, QPalette, QPen, QRadialGradient
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..colors import mix


def class_probabilities(values: np.ndarray) -> tuple[np.ndarray, str]:
    """The output of one sample as class probabilities, and how they were obtained:
    ``"probabilities"`` (already in [0, 1]: left alone), ``"softmax"`` (of logits), or, for a
    single unit, ``[1 - p, p]`` with ``p`` the unit itself (``"sigmoid output"``) or its
    sigmoid (``"sigmoid"``)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    in_unit = bool(v.size) and v.min() >= 0.0 and v.max() <= 1.0
    if v.size == 1:
        p = float(v[0]) if in_unit else float(1.0 / (1.0 + np.exp(-v[0])))
        return np.array([1.0 - p, p]), "sigmoid output" if in_unit else "sigmoid"
    if in_unit:
        return v, "probabilities"
    e = np.exp(v - v.max())
    return e / e.sum(), "softmax"


class ProbabilityBars(QWidget):
    """Horizontal bars, one per class, labelled with the class names; the top class in the
    palette's highlight colour."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.probabilities = np.zeros(0)
        self.names: list[str] = []
        self.note = ""
        self.true_label: str | None = None
        self.setMinimumWidth(130)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFixedWidth(170)

    def set_probabilities(self, probabilities: np.ndarray, names: list[str], note: str = "",
                          true_label: str | None = None) -> None:
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        self.names = [names[k] if k < len(names) else str(k) for k in range(len(self.probabilities))]
        self.note, self.true_label = note, true_label
        self.update()

    def classes_shown(self, top: float | None = None) -> list[int]:
        """The classes with a row: all of them, or the likeliest when rows would get under
        14 px (below ``top``, the header's bottom)."""
        if top is None:
            extras = sum(1 for e in (self.true_label, self.note) if e)
            top = 4 + self.fontMetrics().height() * (1 + extras) + 6
        fit = max(1, int((self.height() - top - 4) // 14))
        if len(self.probabilities) <= fit:
            return list(range(len(self.probabilities)))
        return [int(k) for k in np.argsort(-self.probabilities, kind="stable")[: max(fit - 1, 1)]]

    def top(self) -> int | None:
        return int(np.argmax(self.probabilities)) if len(self.probabilities) else None

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        dim = pal.color(QPalette.ColorRole.PlaceholderText)
        fm = painter.fontMetrics()
        line = fm.height()
        bold = QFont(painter.font())
        bold.setBold(True)
        if not len(self.probabilities):
            painter.setPen(dim)
            painter.drawText(QRectF(self.rect()).adjusted(6, 6, -6, -6),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Class probabilities appear here once the model has run on the sample.")
            painter.end()
            return
        top = self.top()
        y = 4.0
        painter.setFont(bold)
        painter.setPen(text)
        painter.drawText(QRectF(4, y, self.width() - 8, line), Qt.AlignmentFlag.AlignLeft,
                         fm.elidedText(f"predicted {self.names[top]}  ({self.probabilities[top]:.0%})",
                                       Qt.TextElideMode.ElideRight, self.width() - 8))
        y += line + 2
        painter.setFont(self.font())
        painter.setPen(dim)
        for extra in ([f"true: {self.true_label}"] if self.true_label is not None else []) + [self.note]:
            if extra:
                painter.drawText(QRectF(4, y, self.width() - 8, line), Qt.AlignmentFlag.AlignLeft,
                                 fm.elidedText(extra, Qt.TextElideMode.ElideRight, self.width() - 8))
                y += line
        y += 4
        shown = self.classes_shown(y)
        if len(shown) < len(self.probabilities):
            painter.setPen(dim)
            painter.drawText(QRectF(4, y, self.width() - 8, line), Qt.AlignmentFlag.AlignLeft,
                             f"the {len(shown)} likeliest of {len(self.probabilities)}")
            y += line
        row = min(22.0, (self.height() - y - 4) / len(shown))
        bold_fm = QFontMetrics(bold)  # the top class's name is bold: measure it so
        name_w = min(max(bold_fm.horizontalAdvance(self.names[k]) for k in shown) + 6, self.width() * 0.42)
        pct_w = fm.horizontalAdvance("100%") + 4
        bar_x, bar_w = 4 + name_w, max(self.width() - 8 - name_w - pct_w, 10)
        highlight = pal.color(QPalette.ColorRole.Highlight)
        window = pal.color(QPalette.ColorRole.Window)
        track, other = mix(window, text, 0.12), mix(window, text, 0.4)
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for k in shown:
            name, p = self.names[k], self.probabilities[k]
            r = QRectF(bar_x, y + 2, bar_w, row - 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(track)
            painter.drawRect(r)
            painter.setBrush(highlight if k == top else other)
            painter.drawRect(QRectF(r.x(), r.y(), bar_w * float(np.clip(p, 0, 1)), r.height()))
            painter.setFont(bold if k == top else self.font())
            painter.setPen(text)
            painter.drawText(QRectF(4, y, name_w - 4, row), right,
                             (bold_fm if k == top else fm).elidedText(name, Qt.TextElideMode.ElideRight,
                                                                      int(name_w - 4)))
            painter.drawText(QRectF(bar_x + bar_w + 2, y, pct_w, row), right, f"{p:.0%}")
            y += row
        painter.end()



class DrawPad(QWidget):
    """A black square the user paints white strokes on with a soft round brush.
    ``drawn`` is emitted when a stroke ends; ``image_array()`` is the drawing at the input
    size, ``[h, w]`` floats in [0, 1] (the average of each cell of the finer canvas)."""

    drawn = Signal()

    def __init__(self, parent=None, side: int = 112):
        super().__init__(parent)
        self.setFixedSize(side, side)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.active = False
        self._stroke = False
        self._last: QPointF | None = None
        self.set_image_size(28, 28)

    def set_image_size(self, h: int, w: int) -> None:
        """The input's height and width; clears the drawing."""
        self.h, self.w = h, w
        self.k = max(1, -(-140 // max(h, w)))  # canvas pixels per input pixel
        # a stroke about a tenth of the image wide (MNIST's pen), never under 1.5 input pixels
        self.radius = max(1.5, 0.11 * max(h, w)) * self.k / 2
        self.canvas = QImage(w * self.k, h * self.k, QImage.Format.Format_RGB32)
        self.clear()

    def clear(self) -> None:
        self.canvas.fill(QColor("black"))
        self.update()

    def is_blank(self) -> bool:
        return not self.image_array().any()

    def image_array(self) -> np.ndarray:
        ch, cw = self.canvas.height(), self.canvas.width()
        raw = np.frombuffer(self.canvas.constBits(), np.uint8).reshape(ch, self.canvas.bytesPerLine())
        red = raw[:, : cw * 4].reshape(ch, cw, 4)[..., 2].astype(np.float32)  # BGRA in memory
        return red.reshape(self.h, self.k, self.w, self.k).mean(axis=(1, 3)) / 255.0

    def _to_canvas(self, pos) -> QPointF:
        return QPointF(pos.x() * self.canvas.width() / self.width(), pos.y() * self.canvas.height() / self.height())

    def _dab_line(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self.canvas)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        steps = max(1, int(np.hypot(b.x() - a.x(), b.y() - a.y()) / (self.radius / 4)))
        for i in range(1, steps + 1) if a != b else [0]:
            c = a + (b - a) * (i / steps)
            g = QRadialGradient(c, self.radius)
            g.setColorAt(0.0, QColor(255, 255, 255, 255))
            g.setColorAt(0.5, QColor(255, 255, 255, 230))
            g.setColorAt(1.0, QColor(255, 255, 255, 0))
            painter.setBrush(QBrush(g))
            painter.drawEllipse(c, self.radius, self.radius)
        painter.end()
        self.update()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._stroke = True
            self._last = self._to_canvas(event.position())
            self._dab_line(self._last, self._last)

    def mouseMoveEvent(self, event) -> None:
        if self._stroke:
            p = self._to_canvas(event.position())
            self._dab_line(self._last, p)
            self._last = p

    def mouseReleaseEvent(self, event) -> None:
        if self._stroke and event.button() == Qt.MouseButton.LeftButton:
            self._stroke = False
            self.drawn.emit()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(QRectF(self.rect()), self.canvas)
        pal = self.palette()
        painter.setPen(QPen(pal.color(QPalette.ColorRole.Highlight if self.active else QPalette.ColorRole.Mid),
                            2 if self.active else 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()


class SampleImage(QWidget):
    """One sample drawn crisp in a square; a click asks for it (``clicked``)."""

    clicked = Signal()

    def __init__(self, parent=None, side: int = 64):
        super().__init__(parent)
        self.setFixedSize(side, side)
        self.image: QImage | None = None
        self.active = False

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        self.update()

    def mousePressEvent(self, event) -> None:
        self.clicked.emit()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self.image is not None:
            painter.drawImage(QRectF(self.rect()), self.image)
        pal = self.palette()
        painter.setPen(QPen(pal.color(QPalette.ColorRole.Highlight if self.active else QPalette.ColorRole.Mid),
                            2 if self.active else 1))
        painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()
