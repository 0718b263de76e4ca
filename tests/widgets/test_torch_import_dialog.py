"""File > Import > PyTorch Model…: the dialog says that a .py file's code runs, imports in a
worker thread (the window keeps answering), writes the project and its weights and opens
it; what cannot be loaded or imported is explained with every failure."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer

from app.engine.importers.torch_import import RUNS_CODE
from app.engine.session.weights import load_model
from app.widgets import torch_import_dialog as tid
from app.widgets.torch_import_dialog import TorchImportDialog, open_torch_import, parse_shape, parse_target
from tests.engine import torch_models as tm

MODELS = tm.__file__


def test_the_fields_are_checked_with_messages_that_name_them():
    assert parse_target("torchvision.models", "resnet50") == "torchvision.models:resnet50"
    assert parse_target("torchvision.models:resnet50", "") == "torchvision.models:resnet50"
    assert parse_target("/x/my_nets.py", "ResNet") == "/x/my_nets.py:ResNet"
    assert parse_shape("3, 32,32") == [3, 32, 32] == parse_shape("[3x32x32]")
    with pytest.raises(ValueError, match="Input shape"):
        parse_shape("3,-2")
    with pytest.raises(ValueError, match="class or function"):
        parse_target("my_nets.py", "")
    with pytest.raises(ValueError, match="Keyword arguments: not valid JSON"):
        tid.parse_kwargs("{layers: 2}")
    with pytest.raises(ValueError, match="JSON object"):
        tid.parse_kwargs("[2]")


def test_the_dialog_says_that_a_py_file_runs_and_imports_off_the_gui_thread(qtbot, window, tmp_path, monkeypatch):
    threads = []
    real = tid.import_torch

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(tid, "import_torch", recording)
    dialog = open_torch_import(window)
    qtbot.waitExposed(dialog)
    assert RUNS_CODE in dialog.warning.text() and "runs that file's code" in RUNS_CODE
    dialog.module_edit.setText(MODELS)
    dialog.callable_edit.setText("ResNet")
    dialog.shape_edit.setText("3,16,16")
    dialog.kwargs_edit.setText('{"block": "bottleneck", "layers": [2, 3, 2]}')
    out = tmp_path / "resnet.netcanvas.json"
    dialog.out_edit.setText(str(out))
    dialog.import_button.click()
    assert dialog.busy and not dialog.import_button.isEnabled() and dialog.progress.isVisible()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=120_000)
    assert threads and threads[0] is not threading.main_thread()
    assert out.exists() and out.with_name("resnet.safetensors").exists()
    assert "largest difference from the module" in dialog.last_summary
    # the project is open, blocks and all, with the module's weights
    graph = window.doc.graph
    assert graph.nodes["layer2_1"].type == "Bottleneck_2" and graph.nodes["layer2_1"].repeat == 2
    assert str(window.doc.project.path) == str(out)
    weights = window.doc.weights.saved_file()
    assert weights == out.with_name("resnet.safetensors")
    state = load_model(graph, window.doc.analysis, weights).state_dict()
    assert state["conv1.weight"].shape == tm.ResNet("bottleneck", (2, 3, 2)).conv1.weight.shape


def test_an_empty_path_imports_into_a_scratch_file(qtbot, window):
    dialog = TorchImportDialog(window, lambda path: window.open_file(path, ask=False))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.module_edit.setText(f"{MODELS}:lenet")
    dialog.shape_edit.setText("1 16 16")
    dialog.start_import()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=60_000)
    path = window.doc.project.path
    assert path is not None and "imports" in str(path) and str(path).endswith(".netcanvas.json")
    assert window.doc.graph.nodes["m0"].type == "Conv2d"
    assert not dialog.isVisible()


def test_a_module_with_unmappable_ops_lists_every_failure_in_a_message_box(qtbot, window, tmp_path):
    dialog = TorchImportDialog(window, lambda path: window.open_file(path, ask=False))
    qtbot.addWidget(dialog)
    dialog.show()
    before = set(window.doc.graph.nodes)
    dialog.module_edit.setText(MODELS)
    dialog.callable_edit.setText("SwinTransformer")
    dialog.shape_edit.setText("3,32,32")
    dialog.out_edit.setText(str(tmp_path / "swin.netcanvas.json"))
    dialog.start_import()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=120_000)
    box = dialog._box
    assert box is not None and box.isVisible() and box.windowTitle() == "Cannot import the PyTorch model"
    assert "torch.roll at torch_models.py:" in box.text() and "torch.roll" in box.detailedText()
    assert len(box.detailedText().splitlines()) >= 2  # every failure, one a line
    assert "Traceback" not in dialog.last_error
    assert not (tmp_path / "swin.netcanvas.json").exists() and set(window.doc.graph.nodes) == before
    assert dialog.isVisible() and dialog.import_button.isEnabled()  # to correct and try again
    box.close()


def test_load_errors_and_bad_fields_are_shown_not_raised(qtbot, window, tmp_path):
    dialog = TorchImportDialog(window, lambda path: window.open_file(path, ask=False))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.module_edit.setText(str(tmp_path / "missing.py"))
    dialog.callable_edit.setText("Net")
    dialog.shape_edit.setText("3,8,8")
    dialog.start_import()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30_000)
    assert "no such file" in dialog.last_error and "missing.py" in dialog.last_error
    dialog._box.close()
    dialog.module_edit.setText(MODELS)
    dialog.callable_edit.setText("lenet")
    dialog.kwargs_edit.setText('{"classes": "ten"}')  # calling lenet(classes="ten") fails
    dialog.shape_edit.setText("1,16,16")
    dialog.start_import()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30_000)
    assert "calling lenet" in dialog.last_error
    dialog._box.close()
    dialog.shape_edit.setText("three")
    dialog.start_import()
    assert not dialog.busy and dialog.last_error.startswith("Input shape:")
    dialog._box.close()


def test_a_torch_module_is_not_run_on_the_gui_thread_even_when_slow(qtbot, window, monkeypatch):
    """While the import runs, the GUI thread keeps handling events."""
    release = threading.Event()
    real = tid.import_torch

    def slow(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(tid, "import_torch", slow)
    dialog = TorchImportDialog(window, lambda path: window.open_file(path, ask=False))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.module_edit.setText(f"{MODELS}:lenet")
    dialog.shape_edit.setText("1,16,16")
    dialog.start_import()
    ticks = []
    QTimer.singleShot(0, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: bool(ticks), timeout=5_000)  # the event loop runs while the import waits
    assert dialog.busy
    dialog.start_import()  # a second click while busy starts nothing
    release.set()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=60_000)
    assert window.doc.graph.nodes["m0"].type == "Conv2d"


def test_the_file_menu_offers_the_pytorch_import(window, monkeypatch):
    import app.widgets.torch_import_dialog as dialog
    opened = []
    monkeypatch.setattr(dialog, "open_torch_import", opened.append)
    action = window.actions_by_name["import_torch"]
    menus = [a.text() for a in window.menuBar().actions()]
    assert "&File" in menus and action.text() == "&PyTorch Model…"
    action.trigger()
    assert opened == [window]
