"""The editor's warm training worker (NETCANVAS_WARM_WORKER, turned off for the other
widget tests): started a moment after the editor is up, told the open project's data, handed
the run that F5 starts, started again after it, and ended with the window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.engine.examples import example_path
from app.widgets.training import panel as panel_module
from app.widgets.training.session import WARM_WORKER_VARIABLE, warm_worker_wanted
from tests.helpers import gone, main_window

TIMEOUT = 90_000  # the worker imports torch and warms up before it is ready


@pytest.fixture
def warm_window(qtbot, tmp_path, monkeypatch):
    """A main window (as conftest's ``window``) made with the warm worker turned on."""
    monkeypatch.setenv(WARM_WORKER_VARIABLE, "1")
    monkeypatch.setattr(panel_module, "WARM_DELAY_MS", 100)
    return main_window(qtbot, tmp_path)


def test_the_variable_turns_it_off(monkeypatch):
    for value, wanted in (("0", False), ("off", False), (" False ", False), ("1", True), ("", True)):
        monkeypatch.setenv(WARM_WORKER_VARIABLE, value)
        assert warm_worker_wanted() is wanted
    monkeypatch.delenv(WARM_WORKER_VARIABLE)
    assert warm_worker_wanted()


def test_f5_hands_the_run_to_the_warm_worker_that_loaded_the_data_and_closing_ends_it(qtbot, warm_window):
    window = warm_window
    panel = window.training
    assert panel.session.warm_pid is None  # not during the start-up: after the first paint
    assert window.open_file(example_path("xor"), example=True, ask=False)
    supervisor = panel.session.supervisor
    panel.ask_before_replacing = False  # the stopped runs' weights: kept, no question
    qtbot.waitUntil(lambda: panel.session.warm_pid is not None, timeout=10_000)
    assert supervisor.wait_warm(TIMEOUT / 1000)
    assert supervisor.warm_info["prepared"]["name"] == "xor" and supervisor.warm_info["prepared"]["loaded"]
    warm = panel.session.warm_pid

    with qtbot.waitSignal(panel.session.ready, timeout=TIMEOUT) as ready:
        qtbot.keyClick(window, Qt.Key.Key_F5)
    info = ready.args[0]
    assert info["pid"] == warm and info["warm"] and info["dataset_cached"]
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT):
        panel.stop()
    qtbot.waitUntil(lambda: gone(warm), timeout=10_000)

    # the next one is made after the run; the project's dataset changes: it loads the new data
    qtbot.waitUntil(lambda: panel.session.warm_pid not in (None, warm), timeout=10_000)
    following = panel.session.warm_pid
    panel._edit("dataset", "noise", 0.25)
    qtbot.waitUntil(lambda: supervisor.wait_warm(0.05) and supervisor.warm_info["prepared"]["loads"] == 2,
                    timeout=TIMEOUT)
    with qtbot.waitSignal(panel.session.ready, timeout=TIMEOUT) as ready:
        window.actions_by_name["train"].trigger()
    assert ready.args[0]["pid"] == following and ready.args[0]["dataset_cached"]
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT):
        panel.stop()
    qtbot.waitUntil(lambda: panel.session.warm_pid not in (None, following), timeout=10_000)

    last = panel.session.warm_pid
    window.doc.history.set_clean()
    window.close()
    assert panel.session.warm_pid is None
    qtbot.waitUntil(lambda: gone(last), timeout=10_000)
