"""File > Export from the editor: runs off the GUI thread, reports the check's figure, and
says why when it fails."""

from __future__ import annotations

import onnx
from PySide6.QtWidgets import QMessageBox

from app.engine.examples import example_path


def finish(qtbot, window) -> QMessageBox:
    qtbot.waitUntil(lambda: not window.exporter.busy, timeout=120_000)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1
    boxes[0].close()
    return boxes[0]


def test_export_onnx_from_the_menu_checks_the_file(qtbot, window, tmp_path):
    assert window.open_file(example_path("lenet5"), example=True, ask=False)
    assert window.actions_by_name["export_onnx"].shortcut().toString() == "Ctrl+E"
    out = tmp_path / "lenet.onnx"
    window.exporter.export_onnx(str(out))
    assert window.exporter.busy and "Exporting" in window.statusBar().currentMessage()
    window.editor.set_params("fc1", {"out_features": 100})  # editing goes on meanwhile
    box = finish(qtbot, window)
    assert box.windowTitle() == "Export finished"
    assert "onnxruntime matches torch" in window.exporter.last_message
    model = onnx.load(str(out))
    assert any(n.name.startswith("fc1/") for n in model.graph.node)
    sizes = [_size(i) for i in model.graph.initializer]
    assert 120 * 256 in sizes and 100 * 256 not in sizes  # the project as it was when asked


def test_a_failing_export_says_why(qtbot, window, tmp_path):
    assert window.open_file(example_path("xor"), example=True, ask=False)
    window.exporter.export_onnx(str(tmp_path / "missing-folder" / "x.onnx"))
    box = finish(qtbot, window)
    assert box.windowTitle() == "Export failed"
    assert "missing-folder" in window.exporter.last_message


def _size(tensor) -> int:
    n = 1
    for d in tensor.dims:
        n *= d
    return n
