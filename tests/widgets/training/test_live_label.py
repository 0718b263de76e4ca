"""Text that changes while a run streams repaints itself without relaying out the window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.widgets.training.live_label import LiveLabel
from app.widgets.training.plot_parts import _ElidedLabel
from tests.helpers import shown


class LayoutRequests(QObject):
    def __init__(self, widget: QWidget):
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def window_with(qtbot, label: QWidget) -> tuple[QWidget, LayoutRequests]:
    window = QWidget()
    layout = QVBoxLayout(window)
    layout.addWidget(label)
    layout.addWidget(QLabel("below"), 1)
    shown(qtbot, window, 320, 200)
    qtbot.wait(10)
    return window, LayoutRequests(window)


@pytest.mark.parametrize("make", [LiveLabel, _ElidedLabel], ids=["live", "elided"])
def test_a_new_text_of_the_same_height_relays_out_nothing(qtbot, make):
    label = make()
    label.setText("<b>conv1</b> · scale ±0.512")
    window, requests = window_with(qtbot, label)
    for k in range(5):
        label.setText(f"<b>conv1</b> · scale ±0.{600 + k}")
        qtbot.wait(5)
    assert requests.count == 0
    assert label.text() == "<b>conv1</b> · scale ±0.604"


def test_a_plain_qlabel_there_would_relay_out_the_window(qtbot):
    """What the two above avoid (and a check that the counting sees it)."""
    label = QLabel("<b>conv1</b> · scale ±0.512")
    label.setWordWrap(True)
    window, requests = window_with(qtbot, label)
    label.setText("<b>conv1</b> · scale ±0.600")
    qtbot.wait(5)
    assert requests.count >= 1


def test_a_text_that_needs_more_lines_grows_the_live_label(qtbot):
    label = LiveLabel()
    label.setText("short")
    window, requests = window_with(qtbot, label)
    one_line = label.height()
    label.setText(" ".join(["a rather long title that wraps"] * 8))
    qtbot.wait(10)
    assert label.height() > 2 * one_line and label.label.height() == label.height()
    assert requests.count >= 1  # the layout made room for it
    label.setText("short again")
    qtbot.wait(10)
    assert label.height() == one_line
