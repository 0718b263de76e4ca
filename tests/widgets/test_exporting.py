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


def test_files_the_dialog_did_not_ask_about_are_not_replaced_without_asking(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    assert window.open_file(example_path("xor"), example=True, ask=False)
    exported = []
    monkeypatch.setattr(window.exporter, "export_onnx", exported.append)
    monkeypatch.setattr(window.exporter, "export_python", exported.append)
    asked = []
    answer = QMessageBox.StandardButton.Cancel
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or answer)
    (tmp_path / "model.onnx").write_bytes(b"old")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "model"), ""))
    window.exporter.ask_onnx()  # ".onnx" added after the dialog: asked, refused
    assert exported == [] and "model.onnx" in asked[-1]
    answer = QMessageBox.StandardButton.Yes
    window.exporter.ask_onnx()
    assert exported == [str(tmp_path / "model.onnx")]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "new"), ""))
    window.exporter.ask_onnx()  # nothing there: not asked
    assert exported[-1] == str(tmp_path / "new.onnx") and len(asked) == 2

    target = tmp_path / "code"
    target.mkdir()
    (target / "train.py").write_text("mine")  # a folder with files: the export goes into code/<name>
    stem = window.exporter._stem()
    (target / stem).mkdir()
    (target / stem / "model.py").write_text("an earlier export")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    answer = QMessageBox.StandardButton.Cancel
    window.exporter.ask_python()
    assert exported[-1] == str(tmp_path / "new.onnx") and "model.py" in asked[-1]
    answer = QMessageBox.StandardButton.Yes
    window.exporter.ask_python()
    assert exported[-1] == str(target / stem)


def test_pytorch_code_goes_to_a_folder_that_does_not_exist_yet(qtbot, window, tmp_path, monkeypatch):
    """The folder picker accepted only existing folders ("Directory not found"): the export
    asks for a folder by name and creates it, parents included."""
    from PySide6.QtWidgets import QFileDialog

    assert window.open_file(example_path("xor"), example=True, ask=False)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes)
    target = tmp_path / "exports" / "xor_code"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(target))  # the picker it had
    window.actions_by_name["export_python"].trigger()
    box = finish(qtbot, window)
    assert box.windowTitle() == "Export finished", window.exporter.last_message
    assert (target / "model.py").is_file() and (target / "README.md").is_file() and asked == []
    (tmp_path / "a_file").write_text("x")  # a file is not a folder: said, nothing written
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "a_file"), ""))
    window.exporter.ask_python()
    assert not window.exporter.busy and "is a file" in window.exporter.last_message
