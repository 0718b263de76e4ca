"""The training panel around a run, without training: what it says before the first
minibatch (the read-out, the ETA), and what it does with weights the engine held back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from app.engine.compiler import compile_graph
from app.engine.examples import example_path
from app.engine.training import BatchEvent, FinishedEvent
from app.engine.weights import read_weights, save_weights
from app.widgets.recovery import recovery_dir
from app.widgets.training import panel as panel_module

YES, NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


@pytest.fixture
def panel(window):
    assert window.open_file(example_path("xor"), example=True, ask=False)
    return window.training


def weights_file(panel, path, seed: int):
    """A weights file for the open network, initialized with ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = compile_graph(panel.doc.graph, panel.doc.analysis)
    save_weights(model, path)
    return path


def finished(weights_path, target, held_back, reason="stopped", message="stopped by the user"):
    event = FinishedEvent(reason, message, 2, 40, 1.0, test_loss=0.7, test_accuracy=0.5,
                          weights_path=str(weights_path))
    # the engine's fields (set here, so that this also runs before they exist)
    event.weights_target = str(target)
    event.weights_held_back = held_back
    return event


def same(a, b) -> bool:
    x, y = read_weights(a), read_weights(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# -- weights held back (stopped, diverged, worse): the user chooses ------------------------------
def test_held_back_weights_replace_those_in_place_only_when_the_user_says_yes(panel, tmp_path, monkeypatch):
    target = weights_file(panel, tmp_path / "xor.safetensors", 1)
    run = weights_file(panel, tmp_path / "xor.runs" / "r1.safetensors", 2)
    before, trained = target.read_bytes(), run.read_bytes()
    asked = []

    def answer(parent, title, text, buttons, default):
        asked.append((text, default))
        return YES

    monkeypatch.setattr(QMessageBox, "question", answer)
    panel._finished(finished(run, target, "The run was stopped by the user in epoch 2."))
    assert len(asked) == 1
    text, default = asked[0]
    assert default == NO  # the default keeps the weights in place
    # an unsaved project's files are the editor's own: the question does not show their paths
    assert "stopped by the user in epoch 2" in text and "the weights trained earlier in this session" in text
    assert str(target) not in text and str(run) not in text
    assert target.read_bytes() != before and target.read_bytes() == trained
    assert not run.exists()  # in place now: no second copy left in the runs folder
    assert panel.doc.weights.file == target and panel.local_model is not None
    assert "replaced those in xor.safetensors" in panel.status.text()


def test_held_back_weights_are_kept_aside_when_the_user_says_no(panel, tmp_path, monkeypatch):
    target = weights_file(panel, tmp_path / "xor.safetensors", 1)
    run = weights_file(panel, tmp_path / "xor.runs" / "r1.safetensors", 2)
    before = target.read_bytes()
    monkeypatch.setattr(QMessageBox, "question", lambda *a: NO)
    panel._finished(finished(run, target, "Its validation accuracy, 35.0 %, is below that of the weights in "
                                          "place, 97.8 %.", reason="completed", message="completed 2 epochs"))
    assert target.read_bytes() == before and run.exists()
    assert panel.doc.weights.file == target  # exports and the views use the weights in place
    status = panel.status.text()
    assert "were kept" in status and str(run) in status


def test_a_diverged_run_asks_too_and_an_unsaved_choice_keeps(panel, tmp_path, monkeypatch):
    target = weights_file(panel, tmp_path / "xor.safetensors", 1)
    run = weights_file(panel, tmp_path / "xor.runs" / "r1.safetensors", 2)
    before = target.read_bytes()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or NO)
    panel._finished(finished(run, target, "The run diverged.", reason="diverged", message="the loss diverged"))
    assert len(asked) == 1 and target.read_bytes() == before
    assert "Training stopped" in panel.status.text() and str(run) in panel.status.text()


def test_a_diverged_first_run_replaces_nothing_and_asks_nothing(panel, tmp_path, monkeypatch):
    target = tmp_path / "xor.safetensors"  # no weights in place yet
    run = weights_file(panel, tmp_path / "xor.runs" / "r1.safetensors", 2)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: pytest.fail("nothing in place to replace"))
    panel._finished(finished(run, target, "the run diverged", reason="diverged", message="the loss diverged"))
    assert not target.exists() and str(run) in panel.status.text() and "The run diverged" in panel.status.text()


def test_weights_put_in_place_by_the_engine_are_not_asked_about(panel, tmp_path, monkeypatch):
    target = weights_file(panel, tmp_path / "xor.safetensors", 1)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: pytest.fail("asked about weights already in place"))
    panel._finished(finished(target, target, None, reason="completed", message="completed 2 epochs"))
    assert panel.doc.weights.file == target
    # an engine that does not say (older events): as before, no question
    del_event = FinishedEvent("completed", "completed 2 epochs", 2, 40, 1.0, weights_path=str(target))
    panel._finished(del_event)
    assert panel.doc.weights.file == target


# -- before the first minibatch ----------------------------------------------------------------
def test_the_readout_waits_for_a_minibatch_only_while_a_run_starts_or_trains(panel):
    curves = panel.curves
    curves.flush()
    assert "Waiting" not in curves.hover_text()  # idle: nothing to wait for
    panel.curves.start_run()
    panel.session.state_changed.emit("starting")
    assert "Waiting for the first minibatch" in curves.hover_text()
    panel.session.state_changed.emit("idle")  # the start was refused (failed): nothing comes
    panel.session.failed.emit("the data does not fit")
    curves.flush()
    assert "Waiting" not in curves.hover_text()


def batch(epoch: int, index: int, batches: int) -> BatchEvent:
    return BatchEvent(epoch, index, batches, (epoch - 1) * batches + index, 0.5, None, 100.0, 0.1)


def test_no_eta_until_a_fifth_of_the_first_epoch_then_one_from_the_throughput(panel, monkeypatch):
    """The process took 100 s to start: the ETA leaves that out, and shows only once 20 %
    of the first epoch has been measured."""
    clock = [1000.0]
    monkeypatch.setattr(panel_module.time, "perf_counter", lambda: clock[0])
    panel.doc.project.training["epochs"] = 10
    panel._started_at = clock[0] - 100  # (pressed Train 100 s ago)
    panel._rate_from = None
    batches = 100  # a minibatch every 0.1 s: 1000 of them, 100 s in all

    def at(index: int):
        clock[0] = 1000.0 + 0.1 * (index - 1)
        panel._last_progress = 0.0
        panel._batches([batch(1 + (index - 1) // batches, 1 + (index - 1) % batches, batches)])
        return panel.progress.format()

    assert at(1) == "epoch 1/10 · batch 1/100"
    assert "ETA" not in at(15)  # 14 % of the first epoch measured
    text = at(21)  # 20 %: 2 s for 20 steps, 979 to go
    assert "ETA 1m 37s" in text, text
    assert "ETA 1m 29s" in at(101)


def test_weights_that_could_not_be_written_in_place_are_said_so(panel, tmp_path, monkeypatch):
    kept = weights_file(panel, tmp_path / "recovery" / "r1.safetensors", 2)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: pytest.fail("nothing to choose"))
    event = FinishedEvent("completed", "completed 2 epochs", 2, 40, 1.0, weights_path=str(kept))
    event.weights_target = str(tmp_path / "ro" / "xor.safetensors")
    event.weights_error = f"the weights could not be written to ro/xor.safetensors; they were kept in {kept}"
    panel._finished(event)
    status = panel.status.text()
    assert "could not be written" in status and str(kept) in status and "Weights saved" not in status
    assert panel.doc.weights.file == kept  # the only copy of this run's weights: exports use it


# -- a project never saved (every example opens so): its runs are compared with the weights held ---
TIMEOUT = 90_000  # the child process imports torch before it trains


def test_an_unsaved_example_trained_again_and_stopped_asks_and_keeps_the_first_runs_weights(
        panel, qtbot, monkeypatch):
    """The issue's case in the editor: train, train again, stop. The second run is compared with
    the weights the panel holds from the first (not with a fresh file of its own, which would
    let it replace them unasked); the default answer keeps them, for exports and the first save."""
    assert panel.doc.project.path is None
    panel._edit("training", "epochs", 3)
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT) as done:
        panel.start()
    assert done.args[0].reason == "completed" and done.args[0].weights_held_back is None
    first = panel.doc.weights.file.read_bytes()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or a[4])  # the default
    panel._edit("training", "epochs", 5000)
    with qtbot.waitSignal(panel.session.batch, timeout=TIMEOUT):
        panel.start()
    with qtbot.waitSignal(panel.session.finished, timeout=TIMEOUT) as done:
        panel.stop()
    event = done.args[0]
    assert event.reason == "stopped" and event.weights_held_back == "the run was stopped by the user"
    assert len(asked) == 1 and "stopped by the user" in asked[0]
    assert panel.doc.weights.file.read_bytes() == first  # what exports use and the first save copies
    assert event.weights_path != str(panel.doc.weights.file) and Path(event.weights_path).exists()
    assert "were kept" in panel.status.text()


def test_the_runs_of_an_unsaved_project_start_from_the_weights_held(window, panel, tmp_path, monkeypatch):
    """Imported (or otherwise adopted) weights of an unsaved project are what its next run is
    compared with: copied to the document's runs' file in the recovery folder; one such file
    per document."""
    imported = weights_file(panel, tmp_path / "imported.safetensors", 3)
    assert panel.adopt_weights(imported, "imported")
    assert panel.doc.weights.state == "loaded" and panel.local_model is not None
    started = {}
    monkeypatch.setattr(panel.session, "start", lambda project, **options: started.update(options))
    panel.start()
    panel.training_active.emit(False)
    target = Path(started["weights_path"])
    assert target.parent == recovery_dir() and target.read_bytes() == imported.read_bytes()
    assert panel.doc.weights.run_target() == target  # the same file for every run of this document
    assert imported.read_bytes() == target.read_bytes()  # the import itself is never written
    assert window.open_file(example_path("xor"), example=True, ask=False)  # another document
    assert panel.doc.weights.state == "none" and panel.local_model is None
    assert panel.doc.weights.run_target() != target  # a file of its own


def test_a_run_that_cannot_copy_the_weights_held_is_not_started(panel, tmp_path, monkeypatch):
    unreadable = tmp_path / "held.safetensors"
    unreadable.mkdir()  # (reading it fails as a full disk or a removed drive would)
    panel.doc.weights.hold(unreadable)
    monkeypatch.setattr(panel.session, "start", lambda project, **options: pytest.fail("started"))
    panel.start()
    assert "Not started: the weights held here could not be copied" in panel.status.text()
    assert "directory" in panel.status.text()


def test_a_save_puts_the_weights_held_beside_the_project_file(window, panel, tmp_path):
    imported = weights_file(panel, tmp_path / "imported.safetensors", 3)
    assert panel.adopt_weights(imported, "imported")
    window.doc.save(tmp_path / "mine.netcanvas.json")
    beside = tmp_path / "mine.safetensors"
    assert panel.doc.weights.file == beside and panel.doc.weights.state == "saved"
    assert beside.read_bytes() == imported.read_bytes()


def test_weights_that_cannot_be_copied_on_save_are_said_so(window, panel, tmp_path):
    assert panel.adopt_weights(weights_file(panel, tmp_path / "imported.safetensors", 3), "imported")
    (tmp_path / "mine.safetensors").mkdir()  # in the way
    window.doc.save(tmp_path / "mine.netcanvas.json")
    assert "could not be saved beside the project" in panel.status.text()
    assert panel.doc.weights.file == tmp_path / "imported.safetensors"
