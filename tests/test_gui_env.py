"""What the editor asks of Qt before it starts."""

import os

from app.gui import prepare_qt


def test_paint_helper_threads_are_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv("QT_NO_GUI_THREADPOOL", raising=False)
    monkeypatch.delenv("NETCANVAS_PAINT_THREADS", raising=False)
    prepare_qt()
    assert os.environ["QT_NO_GUI_THREADPOOL"] == "1"

    monkeypatch.delenv("QT_NO_GUI_THREADPOOL")
    monkeypatch.setenv("NETCANVAS_PAINT_THREADS", "1")
    prepare_qt()
    assert "QT_NO_GUI_THREADPOOL" not in os.environ

    monkeypatch.delenv("NETCANVAS_PAINT_THREADS")
    monkeypatch.setenv("QT_NO_GUI_THREADPOOL", "yes")  # the user's own setting stays
    prepare_qt()
    assert os.environ["QT_NO_GUI_THREADPOOL"] == "yes"
