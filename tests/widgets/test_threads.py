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
    heard = []
    try:
        loader.loaded.connect(heard.append)
        loader.failed.connect(heard.append)
        loader.load({"name": "xor"}, None, (2,), "input")
        assert started.wait(10)
        shiboken6.delete(loader)  # the window closed while the data loaded
        release.set()
        for thread in threading.enumerate():
            if thread.name == "dataset-loader":
                thread.join(30)
        qtbot.wait(300)  # (the poll that would have delivered it: gone with its owner)
        assert heard == []
    finally:
        data_view.load_dataset = original


def test_garbage_is_collected_on_the_gui_thread_not_in_a_worker_that_allocates(qtbot, garbage_on_the_gui_thread):
    """A closed widget left in a reference cycle was destroyed by the garbage collector in
    whichever thread allocated next: an export's worker thread, where it deadlocked with the
    GUI thread deleting a menu. Now only the GUI thread collects."""
    from PySide6.QtCore import Qt

    destroyed_in = []

    class Cyclic(QObject):
        def __init__(self):
            super().__init__()
            self.me = self  # a reference cycle: only the cyclic collector frees it

    obj = Cyclic()
    obj.destroyed.connect(lambda: destroyed_in.append(threading.current_thread().name),
                          Qt.ConnectionType.DirectConnection)
    del obj

    def allocate():
        junk = []
        for _ in range(200_000):  # far past gen0's threshold: collections would run here
            cycle = []
            cycle.append(cycle)
            junk.append(cycle)

    worker = threading.Thread(target=allocate, name="allocating-worker")
    worker.start()
    worker.join(60)
    assert destroyed_in == []  # not in the worker
    qtbot.waitUntil(lambda: bool(destroyed_in), timeout=10_000)
    assert destroyed_in == [threading.main_thread().name]


def test_work_in_a_thread_reports_on_the_gui_thread_and_not_after_its_owner_is_gone(qtbot):
    from app.widgets.threads import run_in_thread

    owner = Owner()
    seen = []
    future = run_in_thread(lambda: 6 * 7, owner, lambda f: seen.append((f.result(), threading.current_thread().name)))
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    assert seen == [(42, threading.main_thread().name)] and future.result() == 42

    release = threading.Event()
    late = Owner()
    run_in_thread(lambda: release.wait(10), late, seen.append)
    shiboken6.delete(late)  # its timer goes with it: the result is dropped
    release.set()
    qtbot.wait(300)
    assert len(seen) == 1

    failing = run_in_thread(lambda: 1 / 0, owner, seen.append)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=10_000)
    assert seen[1] is failing and isinstance(failing.exception(), ZeroDivisionError)


def test_a_full_collection_freezes_what_survives_and_a_thaw_frees_its_cycles(garbage_on_the_gui_thread, monkeypatch):
    """With torch loaded a full collection looked at a million long-lived objects (65-130 ms of
    the GUI thread, several times a run): what survives one is frozen, so the next ones skip
    it; cycles among frozen objects are freed after a thaw (a closed window or project)."""
    import gc
    import weakref

    from app.widgets import threads

    collector = garbage_on_the_gui_thread
    monkeypatch.setattr(collector, "threshold", (0, 0, 0))  # every check collects every generation
    monkeypatch.setattr(threads.gc, "get_count", lambda: (1, 1, 1))

    class Cyclic:
        pass

    def check() -> None:  # one that makes a full collection
        full = gc.get_stats()[2]["collections"]
        collector.check()
        assert gc.get_stats()[2]["collections"] == full + 1

    kept = Cyclic()
    kept.me = kept
    alive = weakref.ref(kept)
    check()
    assert gc.get_freeze_count() > 0 and alive() is not None
    del kept  # garbage now, but frozen: full collections no longer look at it
    check()
    assert alive() is not None
    threads.thaw_garbage()
    assert gc.get_freeze_count() == 0
    check()
    assert alive() is None
    monkeypatch.setattr(threads, "THAW_SECONDS", 0.0)  # ten minutes on: a full collection thaws first
    again = Cyclic()
    again.me = again
    alive = weakref.ref(again)
    check()
    del again
    check()
    assert alive() is None


def test_a_window_settles_what_it_built_after_its_first_paint_and_thaws_it_on_close(qtbot, tmp_path):
    """A new window's objects, young when a run began, made the collections of the young
    generations take 90-130 ms during the run: they are frozen once the window is painted
    (and when a run starts), and thawed when it closes."""
    import gc

    from tests.helpers import main_window

    gc.unfreeze()
    window = main_window(qtbot, tmp_path)
    qtbot.waitUntil(lambda: window.first_paint.done)
    assert gc.get_freeze_count() > 0
    window.close()
    assert gc.get_freeze_count() == 0
