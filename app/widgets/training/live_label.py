"""A wrapped rich-text line that changes while a run streams (a view's title with its scale)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class LiveLabel(QWidget):
    """A word-wrapped QLabel, held so that a new text repaints it and no more. A QLabel that
    sits in a layout asks every layout up to the main window to be redone on each new text
    (and the main window's dock animator makes a dozen objects each time): several times a
    second while a run streams, on the GUI thread that shares the CPU with training. Here
    the label is placed by hand, so its requests stop at this widget, and this widget's
    own height changes (and the layouts around it are redone) only when the text needs more
    or fewer lines."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._fit()

    def text(self) -> str:
        return self.label.text()

    def setText(self, text: str) -> None:
        if text != self.label.text():
            self.label.setText(text)
            self._fit()

    def sizeHint(self) -> QSize:
        return QSize(min(self.label.sizeHint().width(), 400), self.minimumHeight())

    def minimumSizeHint(self) -> QSize:
        return QSize(0, self.minimumHeight())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        width = self.width()
        height = self.label.heightForWidth(width) if width > 0 else -1
        if height < 0 or not self.label.text():  # not laid out yet, or empty: one line
            height = self.label.fontMetrics().height()
        self.label.setGeometry(0, 0, width, height)
        if height != self.minimumHeight() or height != self.maximumHeight():
            self.setFixedHeight(height)
