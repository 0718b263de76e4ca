"""Widgets under test: a real main window, isolated from the user's settings and files."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QStandardPaths

from tests.helpers import main_window


@pytest.fixture(scope="session", autouse=True)
def garbage_on_the_gui_thread(qapp):
    """As in the editor (app/gui.py): Python's garbage is collected on the GUI thread only,
    never in a worker thread that happens to allocate (a window of an earlier test destroyed
    there deadlocked a CI run; app/widgets/threads.py)."""
    from app.widgets.threads import GuiGarbageCollector

    collector = GuiGarbageCollector()
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Application data (recovery files) and settings go to a fresh folder per test, never
    to the user's real ones (QStandardPaths reads the XDG variables on every call)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    # no torch-importing warm training worker per window (training/test_warm_worker.py turns it on)
    monkeypatch.setenv("NETCANVAS_WARM_WORKER", "0")
    assert str(tmp_path) in QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    yield


@pytest.fixture
def window(qtbot, tmp_path):
    return main_window(qtbot, tmp_path)


@pytest.fixture
def lenet(window):
    from app.engine.examples import example_path

    assert window.open_file(example_path("lenet5"), example=True, ask=False)
    return window
