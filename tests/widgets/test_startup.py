"""The editor paints its first window without torch (issue 20: importing torch takes seconds);
torch comes once the window is up, for the device list, off the GUI thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import json, sys, time
from PySide6.QtWidgets import QApplication
from app.engine.examples import example_path
from app.widgets.main_window import MainWindow
from app.widgets.threads import GuiGarbageCollector

app = QApplication([])
collector = GuiGarbageCollector(app)
window = MainWindow()
window.open_file(example_path("lenet5"), example=True, ask=False)
window.show()
painted = window.grab()  # the first paint
before = "torch" in sys.modules
deadline = time.monotonic() + 60
while window.training.devices.devices is None and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
print(json.dumps({"torch_before_paint": before, "painted": not painted.isNull(),
                  "devices": [window.training.device_combo.itemData(i)
                              for i in range(window.training.device_combo.count())]}))
window.doc.history.set_clean()
window.close()
"""


def test_the_first_paint_needs_no_torch_and_the_devices_come_after(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["painted"] and not report["torch_before_paint"]
    assert report["devices"][:2] == ["auto", "cpu"]
