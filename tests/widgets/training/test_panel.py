"""The training panel in the main window: real runs in a child process, live views,
control, failures, and the editing lock."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QComboBox, QLineEdit, QMessageBox

from app.engine.compiler import compile_graph
from app.engine.examples import example_path
from app.engine.training.events import SnapshotEvent
from app.widgets.training.session import TrainingSession

TIMEOUT = 90_000  # the child process imports torch before it trains


def open_example(window, name):
    assert window.open_file(example_path(name), example=True, ask=False)
    return window.training


def test_xor_trains_from_the_panel_with_live_curves_and_a_lock(qtbot, window):
    panel = open_example(window, "xor")
    epochs = panel.training_form.fields["epochs"].editor
    epochs.lineEdit().selectAll()
    qtbot.keyClicks(epochs, "12")
    assert window.doc.project.training["epochs"] == 12
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT) as finished:
        window.actions_by_name["train"].trigger()
        assert window.scene.read_only and not window.palette.isEnabled()
        assert not window.actions_by_name["delete"].isEnabled()
        assert not window.history.isEnabled() and not window.examples_menu.isEnabled()
        assert not window.open_file(example_path("mlp"), example=True, ask=False)  # refused, said why
        window._error_box.close()
    event = finished.args[0]
    assert event.reason == "completed" and event.test_accuracy is not None
    qtbot.waitUntil(lambda: not window.scene.read_only, timeout=5000)
    assert window.palette.isEnabled() and window.actions_by_name["delete"].isEnabled()
    assert window.history.isEnabled() and window.doc.project.name.lower().startswith("xor")
    panel.curves.flush()
    assert panel.curves.step_count() > 0 and panel.curves.epoch_count() == 12
    assert "Test accuracy" in panel.status.text()
    assert panel.progress.value() == panel.progress.maximum() and panel.progress.format() == "done"
    assert panel.tabs.currentWidget() is panel.results


def test_digits_run_updates_filters_and_activations_then_stops_mid_epoch(qtbot, window):
    panel = open_example(window, "linear")
    epochs = panel.training_form.fields["epochs"].editor
    epochs.lineEdit().selectAll()
    qtbot.keyClicks(epochs, "500")  # long enough for several snapshots (it is stopped below)
    assert window.doc.project.training["epochs"] == 500
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=30_000)
    panel.start()
    assert panel.tabs.currentWidget() is panel.curves  # a run shows its curves first
    with qtbot.waitSignal(panel.session.snapshot, timeout=TIMEOUT):
        panel.tabs.setCurrentWidget(panel.filters)  # snapshots come while a view shows them
    first = panel.filters.current_image().copy()
    with qtbot.waitSignal(panel.session.snapshot, timeout=TIMEOUT):
        pass
    assert not np.array_equal(first, panel.filters.current_image(), equal_nan=True)  # the templates change
    assert panel.activations.current_node() is None  # not on screen: not drawn
    panel.tabs.setCurrentWidget(panel.activations)  # drawn at once from the last snapshot
    assert panel.activations.current_node() is not None
    with qtbot.waitSignal(panel.session.state_changed, timeout=10_000,
                          check_params_cb=lambda s: s == "paused"):
        panel.pause_button.click()
    count = panel.curves.step_count()
    qtbot.wait(500)
    panel.curves.flush()
    assert panel.curves.step_count() == count
    with qtbot.waitSignal(panel.session.state_changed, timeout=10_000,
                          check_params_cb=lambda s: s == "running"):
        panel.pause_button.click()
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT) as finished:
        panel.stop_button.click()
    assert finished.args[0].reason == "stopped"
    assert finished.args[0].test_accuracy is not None
    assert panel.progress.format() == "stopped"  # not "done": the run did not complete


def test_nan_loss_is_reported_and_the_editor_stays_alive(qtbot, window):
    panel = open_example(window, "mlp")
    lr = panel.training_form.fields["lr"].editor
    assert isinstance(lr, QLineEdit)
    lr.selectAll()
    qtbot.keyClicks(lr, "1e9")
    assert window.doc.project.training["lr"] == 1e9
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT) as finished:
        panel.start()
    assert finished.args[0].reason == "diverged"
    assert "learning rate" in panel.status.text()
    qtbot.waitUntil(lambda: not window.scene.read_only, timeout=5000)
    assert len(window.doc.graph.nodes) == 7 and window.doc.analysis.ok
    window.editor.set_params("fc1", {"out_features": 64})
    assert window.doc.analysis.total_params < 104_690


def test_a_dataset_that_does_not_fit_is_shown_before_training(qtbot, window):
    panel = open_example(window, "lenet5")
    combo = panel.data_form.fields["name"].editor
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(combo.findText("digits"))
    combo.activated.emit(combo.currentIndex())
    assert window.doc.project.dataset["name"] == "digits"
    qtbot.waitUntil(lambda: "cannot be used" in panel.preview.info.text(), timeout=30_000)
    assert "digits28" in panel.preview.info.text()
    window.doc.history.undo()
    assert window.doc.project.dataset["name"] == "digits28"
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=30_000)
    assert "1,293" in panel.preview.info.text() or "train" in panel.preview.info.text()


def test_a_graph_with_errors_is_not_trained(qtbot, window):
    panel = open_example(window, "lenet5")
    window.editor.set_params("conv1", {"out_channels": 6, "kernel_size": 40})
    panel.start()
    assert not panel.session.running and "Fix the graph" in panel.status.text()


def test_the_gpus_choice_follows_the_machine_and_reaches_the_run(qtbot, window, monkeypatch):
    panel = open_example(window, "xor")
    qtbot.waitUntil(lambda: panel.devices.devices is not None, timeout=30_000)  # listed in a thread
    box = panel.gpus_box
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert box.isEnabled() == (gpus > 1) and box.maximum() == max(1, gpus)
    assert "GPU" in box.toolTip()
    started = {}
    monkeypatch.setattr(panel.session, "start", lambda project, **options: started.update(options))
    monkeypatch.setattr(box, "isEnabled", lambda: True)  # as on a machine with two GPUs
    box.setRange(1, 2)
    box.setValue(2)
    panel.start()
    assert started["nproc"] == 2
    panel.training_active.emit(False)


def test_the_devices_come_after_the_first_paint_and_a_device_named_before_them_stays_chosen(qtbot, window):
    panel = open_example(window, "xor")
    devices = panel.devices
    if devices.devices is None:  # (the list may have come already: the window was built a while ago)
        devices.set_device("cpu")
        assert panel.device_combo.currentData() == "cpu" and "not on this machine" not in panel.device_combo.currentText()
    qtbot.waitUntil(lambda: devices.devices is not None, timeout=30_000)
    assert [panel.device_combo.itemData(i) for i in range(panel.device_combo.count())][:2] == ["auto", "cpu"]
    devices.set_device("cuda:7")
    assert panel.device_combo.currentData() == "cuda:7" and "not on this machine" in panel.device_combo.currentText()
    assert "Fused GPU kernels" in panel.kernels_note.text() and "looking" not in panel.kernels_note.text()


def test_closing_while_training_asks_then_stops_saves_and_closes(qtbot, window, monkeypatch):
    panel = open_example(window, "xor")
    window.doc.history.set_clean()
    epochs = panel.training_form.fields["epochs"].editor
    epochs.lineEdit().selectAll()
    qtbot.keyClicks(epochs, "5000")
    window.doc.history.set_clean()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(panel.session.batch, timeout=TIMEOUT):
        panel.start()
    assert not window.close() and window.isVisible()  # not yet: the run stops first
    assert asked == ["Training is running"]
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT) as finished:
        pass
    assert finished.args[0].reason == "stopped" and finished.args[0].weights_path
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)


def test_snapshots_are_pulled_only_while_filters_or_activations_are_on_screen(qtbot, window, monkeypatch):
    panel = open_example(window, "lenet5")
    window._docks["training"].show()
    window._docks["training"].raise_()
    asked = []
    monkeypatch.setattr(TrainingSession, "running", property(lambda session: True))
    monkeypatch.setattr(panel.session, "request_snapshot", lambda samples=None: asked.append(samples))
    panel.tabs.setCurrentWidget(panel.curves)
    assert not panel.watching()
    panel._pull_snapshot()
    assert asked == [] and panel._snapshot_timer.isActive()  # nobody looks: it looks again later
    panel.tabs.setCurrentWidget(panel.filters)  # a switch pulls at once
    assert panel.watching() and len(asked) == 1
    panel._snapshot_pending = False  # (the snapshot came)
    panel.tabs.setCurrentWidget(panel.activations)
    assert len(asked) == 2
    window._docks["training"].hide()
    assert not panel.watching()
    panel._snapshot_timer.stop()
    monkeypatch.undo()  # not running after all: closing the window must not ask to stop it


def test_a_tab_switch_after_the_run_keeps_the_final_weights_shown(qtbot, window):
    panel = open_example(window, "lenet5")
    window._docks["training"].show()
    window._docks["training"].raise_()
    panel.tabs.setCurrentWidget(panel.curves)
    stale = {"conv1": np.zeros((6, 1, 5, 5), np.float32), "conv2": np.zeros((16, 6, 5, 5), np.float32)}
    panel._snapshot(SnapshotEvent(3, stale, {}))  # the run's last snapshot, drawn nowhere yet
    torch.manual_seed(0)
    panel.local_model = compile_graph(window.doc.graph, window.doc.analysis)  # the weights it ended with
    panel._show_local_model()
    final = panel.filters.current_tiles().copy()
    assert np.abs(final).max() > 0
    panel.tabs.setCurrentWidget(panel.filters)
    assert np.array_equal(panel.filters.current_tiles(), final)  # not the zeros of the old snapshot


def test_stop_works_from_the_moment_train_is_pressed(qtbot, window, monkeypatch):
    """While the process starts (seconds of imports and data), Stop is enabled and ends it
    at once: the panel is idle again, says so, shows no error, and locks nothing."""
    panel = open_example(window, "xor")
    for name in ("critical", "warning", "question", "information"):
        monkeypatch.setattr(QMessageBox, name, lambda *a, **k: pytest.fail(f"a message box: {a[1:3]}"))
    failures = []
    panel.session.failed.connect(failures.append)
    panel.start()
    assert panel.session.state == "starting" and panel.stop_button.isEnabled()
    assert "Waiting for the first minibatch" in panel.curves.hover_text()
    pid = panel.session.pid
    with qtbot.waitSignal(panel.session.finished, timeout=1000):
        panel.stop_button.click()
    assert not panel.session.running and panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert "stopped before the first minibatch" in panel.status.text().lower()
    assert panel.progress.format() == "stopped" and failures == []
    assert "Waiting" not in panel.curves.hover_text()
    assert not window.scene.read_only and window.actions_by_name["train"].isEnabled()
    assert getattr(window, "_error_box", None) is None or not window._error_box.isVisible()

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    qtbot.waitUntil(gone, timeout=10_000)  # ended and reaped: no zombie


def test_cancelling_the_save_question_of_a_close_during_training_leaves_the_window_as_it_was(
        qtbot, window, monkeypatch):
    panel = open_example(window, "xor")
    epochs = panel.training_form.fields["epochs"].editor
    epochs.lineEdit().selectAll()
    qtbot.keyClicks(epochs, "5000")  # an unsaved change: closing asks to save it
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(window, "maybe_save", lambda: asked.append("Unsaved changes") or False)  # Cancel
    with qtbot.waitSignal(panel.session.batch, timeout=TIMEOUT):
        panel.start()
    assert not window.close()
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT):
        pass
    qtbot.waitUntil(lambda: asked == ["Training is running", "Unsaved changes"], timeout=10_000)
    assert window.isVisible() and panel.ask_before_replacing
    # a later run ends without closing the window or asking to save again
    with qtbot.waitSignal(panel.session.batch, timeout=TIMEOUT):
        panel.start()
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT):
        panel.stop()
    qtbot.wait(200)
    assert window.isVisible() and asked.count("Unsaved changes") == 1
    window.doc.history.set_clean()


def test_the_data_waits_for_the_first_paint_and_a_window_never_painted_loads_it_all_the_same(qtbot, tmp_path,
                                                                                           monkeypatch):
    from PySide6.QtCore import QSettings

    from app.widgets import first_paint
    from app.widgets.main_window import MainWindow

    monkeypatch.setattr(first_paint, "HELD_MS", 300)
    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))  # never shown
    qtbot.addWidget(w, before_close_func=lambda widget: widget.doc.history.set_clean())
    assert w.open_file(example_path("lenet5"), example=True, ask=False)
    assert not w.first_paint.done and w.training.dataset is None
    assert "Loading" in w.training.preview.info.text()
    qtbot.waitUntil(lambda: w.training.dataset is not None, timeout=30_000)
    assert not w.first_paint.done


def test_a_window_deleted_right_after_a_run_began_or_ended_raises_nothing_later(qtbot, tmp_path):
    """The panel says the runs changed on the next turn of the event loop; a window closed and
    deleted before that turn (as a benchmark or a quick close does) must take the call with it:
    a signal of a deleted object raised "Signal source has been deleted" there."""
    from PySide6.QtCore import QCoreApplication, QEvent, QSettings

    from app.widgets.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w.training._ready({"device": "cpu"})  # arms the runs_changed call, as a run's "ready" does
    w.doc.history.set_clean()
    w.close()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qtbot.wait(50)  # the turn the call was due in: an exception there fails the test (pytest-qt)
