"""Help > About and Getting started, and the one handler for errors that escape."""

from __future__ import annotations

import threading

import torch
from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QGuiApplication, QTextDocument
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton

from app import __version__
from app.widgets.errors import ErrorHandler, log_path
from app.widgets.help import AboutDialog, GettingStartedDialog, about_text


def test_about_names_the_versions_and_devices(qtbot, window):
    dialog = AboutDialog(window)
    qtbot.addWidget(dialog)
    text = dialog.label.text()
    assert f"NetCanvas {__version__}" in text and torch.__version__ in text
    assert "onnxruntime" in text and "cpu:" in text
    copy = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Copy")
    copy.click()
    assert QGuiApplication.clipboard().text() == about_text()
    assert "torch: " + torch.__version__ in about_text()


def test_getting_started_opens_with_its_pictures(qtbot, window):
    action = window.actions_by_name["getting_started"]
    assert action.shortcut().toString() == "F1"
    action.trigger()
    dialog = window._help
    assert isinstance(dialog, GettingStartedDialog) and dialog.isVisible()
    text = dialog.browser.toPlainText()
    assert "Build a network" in text and "Train it" in text and "Take it out" in text
    for name in ("lenet5.png", "training_curves.png", "training_filters.png", "training_activations.png"):
        image = dialog.browser.loadResource(QTextDocument.ResourceType.ImageResource, QUrl(name))
        assert image is not None and not image.isNull(), name
    dialog.close()


def test_an_error_in_a_slot_is_logged_shown_and_the_editor_goes_on(qtbot, window):
    handler = ErrorHandler(window)
    handler.install()
    try:
        def broken():
            raise ValueError("something broke in a slot")

        QTimer.singleShot(0, broken)
        qtbot.waitUntil(lambda: len(handler.dialogs) == 1, timeout=5000)
        dialog = handler.dialogs[0]
        details = dialog.findChild(QPlainTextEdit).toPlainText()
        assert "ValueError: something broke in a slot" in details and "broken" in details
        assert handler.last_log == log_path() and "something broke" in log_path().read_text()
        assert any(str(log_path()) in label.text() for label in dialog.findChildren(QLabel))
        dialog.copy_button.click()
        assert QGuiApplication.clipboard().text() == details
        dialog.close()
        qtbot.waitUntil(lambda: not handler.dialogs, timeout=5000)

        thread = threading.Thread(target=lambda: 1 / 0)  # other threads too
        thread.start()
        thread.join()
        qtbot.waitUntil(lambda: len(handler.dialogs) == 1, timeout=5000)
        assert "ZeroDivisionError" in handler.dialogs[0].details
        handler.dialogs[0].close()
    finally:
        handler.uninstall()
    window.editor.add_layer("ReLU")  # still editing
    assert any(n.type == "ReLU" for n in window.doc.graph.nodes.values())


def test_getting_started_pictures_grow_with_the_window_and_open_at_full_size(qtbot, window):
    """The pictures are screenshots of the whole window: drawn at 760 px (about half their
    size) their text could not be read. They take the dialog's width up to their own, and a
    click on one shows it at its own size."""
    from PySide6.QtCore import QPoint, Qt

    dialog = GettingStartedDialog(window)
    qtbot.addWidget(dialog)
    dialog.resize(1300, 900)
    dialog.show()
    qtbot.waitExposed(dialog)
    room = dialog.browser.viewport().width()
    widths = dialog.image_widths()
    assert set(widths) == {"lenet5.png", "training_curves.png", "training_filters.png", "training_activations.png"}
    assert all(room - 40 <= w <= room for w in widths.values()), (room, widths)
    dialog.resize(700, 600)
    qtbot.waitUntil(lambda: max(dialog.image_widths().values()) <= dialog.browser.viewport().width())
    browser = dialog.browser
    cursor = next(c for c, fmt in dialog._images() if fmt.name() == "lenet5.png")
    cursor.setPosition(cursor.selectionEnd())  # just after the picture: its line is the picture's
    browser.setTextCursor(cursor)
    browser.ensureCursorVisible()
    line = browser.cursorRect(cursor)
    spot = QPoint(line.x() - 30, line.center().y())
    assert browser.anchorAt(spot) == "lenet5.png"
    qtbot.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton, pos=spot)
    viewer = dialog.viewer
    assert viewer is not None and viewer.isVisible() and viewer.windowTitle() == "lenet5.png"
    assert viewer.label.pixmap().width() == 1400  # its own size
    assert "Getting started" in browser.toPlainText()  # the walk-through stays where it was
    viewer.close()

