"""The editor paints its first window without what that paint does not need (issue 20):
no torch (importing it takes seconds), no optuna, no Sweep dialog, no Runs view. torch
comes once the window is up, for the device list, off the GUI thread; the rest when opened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QWidget

ROOT = Path(__file__).resolve().parents[2]
# modules the first paint must not wait for (torch: tests the GUI thread's imports, below)
DEFERRED = ("optuna", "app.widgets.runs.sweep_dialog", "app.widgets.runs.sweep_plots",
            "app.widgets.runs.view", "app.widgets.runs.compare")

CODE = """
import json, sys, threading, time

importers = []  # the threads that looked for torch first, in order


class WhoImportsTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            importers.append(threading.current_thread().name)
        return None


sys.meta_path.insert(0, WhoImportsTorch())
from PySide6.QtWidgets import QApplication
from app.engine.examples import example_path
from app.widgets.main_window import MainWindow
from app.widgets.threads import GuiGarbageCollector

DEFERRED = %r
app = QApplication([])
collector = GuiGarbageCollector(app)
window = MainWindow()
window.open_file(example_path("lenet5"), example=True, ask=False)
loaded = {}
window.first_paint.painted.connect(lambda: loaded.update({m: m in sys.modules for m in DEFERRED},
                                                        torch_importers=list(importers)))
window.show()
deadline = time.monotonic() + 60
while not window.first_paint.done and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
while window.training.devices.devices is None and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
print(json.dumps({"loaded_at_first_paint": loaded, "painted_at": window.first_paint.at,
                  "runs_built": window._runs is not None,
                  "devices": [window.training.device_combo.itemData(i)
                              for i in range(window.training.device_combo.count())]}))
window.doc.history.set_clean()
window.close()
""" % (DEFERRED,)


def test_the_first_paint_needs_no_torch_nor_optuna_and_the_devices_come_after(tmp_path):
    mark = tmp_path / "painted.txt"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), NETCANVAS_FIRST_PAINT=str(mark))
    started = time.time()
    done = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = report["loaded_at_first_paint"]
    # no thread imports torch before the first paint: the training panel's data load and the
    # device list wait for it
    assert loaded.pop("torch_importers") == []
    assert loaded == {module: False for module in DEFERRED}
    assert not report["runs_built"]  # the Runs tab is behind the Issues tab on a first run
    assert report["devices"][:2] == ["auto", "cpu"]
    # the time of the first paint, for bench/cli.py
    assert started < float(mark.read_text()) == report["painted_at"] < time.time()


def test_the_runs_view_is_built_when_its_tab_first_shows(qtbot, lenet):
    dock = lenet._docks["runs"]
    qtbot.waitUntil(lambda: lenet.first_paint.done)
    assert lenet._runs is None and dock.widget() is lenet._runs_holder  # (its tab is behind Issues)
    dock.raise_()
    qtbot.waitUntil(lambda: lenet._runs is not None)
    assert dock.widget() is lenet.runs and lenet.runs.isVisible()
    assert lenet.runs.minimumWidth() == 240
    # it follows the project as it would have from the start: the store beside the weights
    lenet.training.runs_changed.emit()
    assert lenet.runs.store_path == lenet.doc.weights.store_path()


def test_the_runs_view_asked_for_before_it_shows_is_built_then(qtbot, lenet):
    lenet.training.training_active.emit(True)  # a run locks editing before the view exists
    view = lenet.runs
    assert lenet._docks["runs"].widget() is view and view.locked
    lenet.training.training_active.emit(False)
    assert not view.locked


def test_the_sweep_dialog_opens_after_the_start(qtbot, lenet):
    lenet.open_sweep()
    dialog = lenet._sweep
    assert dialog is not None and dialog.isVisible()
    assert type(dialog).__module__ == "app.widgets.runs.sweep_dialog"
    assert isinstance(dialog.parallel, QWidget) and isinstance(dialog.importance, QWidget)
    lenet.open_sweep()  # a second time: the same dialog, in front
    assert lenet._sweep is dialog
    dialog.reject()
