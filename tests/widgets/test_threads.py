"""Work finished on a thread after its widget was closed and deleted is dropped quietly."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject, Signal

from app.widgets.threads import emit_if_alive
from app.widgets.training.data_view import DatasetLoader


class Owner(QObject):
    ping = Signal(int)


def test_emit_reaches_a_live_owner_and_skips_a_deleted_one(qtbot):
    owner = Owner()
    got = []
    owner.ping.connect(got.append)
    assert emit_if_alive(owner, owner.ping, 1) and got == [1]
    signal = owner.ping
    shiboken6.delete(owner)
    assert not emit_if_alive(owner, signal, 2) and got == [1]


def test_a_dataset_that_finishes_loading_after_its_panel_closed(qtbot):
    loader = DatasetLoader()
    started = threading.Event()
    release = threading.Event()
    import app.widgets.training.data_view as data_view

    original = data_view.load_dataset

    def slow_load(*args):
        started.set()
        release.wait(10)
        return original(*args)

    data_view.load_dataset = slow_load
    try:
        loader.load({"name": "xor"}, None, (2,), "input")
        assert started.wait(10)
        shiboken6.delete(loader)  # the window closed while the data loaded
        release.set()
        for thread in threading.enumerate():
            if thread.name == "dataset-loader":
                thread.join(30)
    finally:
        data_view.load_dataset = original
