"""The whole application without a screen: open an example, edit it through commands, undo,
train through the supervisor (to its end, and paused, resumed and stopped), decide whose
weights are the project's, and save. What the editor does, driven by a test."""

from __future__ import annotations

import time

from app.engine.cli_io import open_project
from app.engine.graph import Edge, Node
from app.engine.project import load_project, weights_path_for
from app.engine.session.commands import AddItems, RemoveItems, SetParams, SetSetting
from app.engine.session.document import Document
from app.engine.session.supervisor import RunSupervisor
from app.engine.weights import read_metadata


def _open(tmp_path) -> Document:
    project, is_example = open_project("xor")
    assert is_example and project.path is None
    return Document(project, scratch_dir=lambda: tmp_path / "scratch")


def _until(supervisor: RunSupervisor, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out; state {supervisor.state}"
        supervisor.poll()
        time.sleep(0.01)


def test_open_edit_undo_train_and_save_without_a_screen(tmp_path):
    doc = _open(tmp_path)
    events = []
    doc.analyzed.connect(lambda a: events.append(("analyzed", a.total_params)))
    doc.dirty_changed.connect(lambda dirty: events.append(("dirty", dirty)))
    doc.settings_changed.connect(lambda section: events.append(("settings", section)))
    assert not doc.dirty and doc.weights.state == "none"
    params_before = doc.analysis.total_params

    # a wider hidden layer, typed in two edits that merge into one step
    doc.push(SetParams(doc, "fc1", {"out_features": 1}))
    doc.push(SetParams(doc, "fc1", {"out_features": 16}))
    assert doc.history.count == 1 and doc.history.undo_text == "Edit fc1"
    assert doc.analysis.total_params == 16 * 2 + 16 + 16 + 1
    # a dropout between tanh and fc2, then taken out again by Undo
    doc.push(RemoveItems(doc, [], [Edge("tanh", "fc2")], "Disconnect"))
    doc.push(AddItems(doc, [Node("drop", "Dropout", {"p": 0.1})], [Edge("tanh", "drop"), Edge("drop", "fc2")]))
    assert doc.analysis.ok and "drop" in doc.graph.nodes
    doc.undo()
    doc.undo()
    assert "drop" not in doc.graph.nodes and Edge("tanh", "fc2") in doc.graph.edges
    doc.redo()
    doc.redo()
    assert doc.analysis.ok and doc.graph.incoming("fc2")[0].source == "drop"
    doc.push(SetSetting(doc, "training", "epochs", 40))
    doc.push(SetSetting(doc, "training", "lr", 0.5))
    assert doc.dirty and ("dirty", True) in events and ("settings", "training") in events
    assert doc.analysis.total_params != params_before

    # train to the end, in this process (as `netcanvas train` does)
    supervisor = RunSupervisor(tick_seconds=0.02)
    states = []
    supervisor.state_changed.connect(states.append)
    target = doc.weights.run_target()
    assert target.parent == tmp_path / "scratch"
    supervisor.start(doc.project, where="inline", weights_path=target)
    finished = supervisor.wait(timeout=300)
    assert finished is not None and finished.reason in ("completed", "early_stopping"), finished
    assert finished.test_accuracy is not None and finished.test_accuracy >= 0.9
    assert states[0] == "starting" and "running" in states and states[-1] == "idle"
    assert len(supervisor.metrics.epochs) == finished.epochs_run > 0
    assert len(supervisor.metrics.batches) > 0
    outcome = doc.weights.run_finished(finished)
    assert outcome.what == "adopted" and doc.weights.state == "trained-unsaved"
    assert doc.weights.file == target and target.exists()

    # save: the project file, and the trained weights beside it
    path = tmp_path / "xor.netcanvas.json"
    written = doc.save(path)
    assert written == path and not doc.dirty and ("dirty", False) in events
    beside = doc.weights.project_saved(written)
    assert beside == weights_path_for(path) and beside.exists()
    assert doc.weights.state == "saved"
    reopened = load_project(path)
    assert reopened.training["epochs"] == 40
    assert [n.id for n in reopened.graph.nodes.values()] == list(doc.graph.nodes)
    assert read_metadata(beside).get("run_id")
    # undo after the save makes it dirty again; redo back to the saved step is clean
    doc.undo()
    assert doc.dirty
    doc.redo()
    assert not doc.dirty


def test_pause_resume_and_stop_in_a_process_keep_the_weights_in_place(tmp_path):
    doc = _open(tmp_path)
    doc.push(SetSetting(doc, "training", "epochs", 3))
    path = doc.save(tmp_path / "xor.netcanvas.json")
    supervisor = RunSupervisor(tick_seconds=0.02)
    try:
        supervisor.start(doc.project, weights_path=doc.weights.run_target())
        first = supervisor.wait(timeout=300)
        assert first.reason == "completed" and doc.weights.run_finished(first).what == "adopted"
        kept = weights_path_for(path).read_bytes()

        # a long run, paused and resumed once it trains, then stopped
        doc.push(SetSetting(doc, "training", "epochs", 10_000))
        batches = []
        supervisor.batch.connect(batches.append)
        supervisor.start(doc.project, weights_path=doc.weights.run_target())
        _until(supervisor, lambda: batches)
        supervisor.pause()
        _until(supervisor, lambda: supervisor.state == "paused")
        count = len(batches)
        supervisor.poll()
        assert len(batches) == count  # no minibatch follows "paused"
        supervisor.resume()
        _until(supervisor, lambda: len(batches) > count)
        supervisor.stop()
        stopped = supervisor.wait(timeout=120)
        assert stopped.reason == "stopped" and stopped.weights_held_back
        outcome = doc.weights.run_finished(stopped)
        assert outcome.what == "ask"  # weights are in place: the user chooses; nobody here, so keep
        assert doc.weights.keep(outcome).what == "kept"
        assert doc.weights.file == weights_path_for(path)
        assert weights_path_for(path).read_bytes() == kept
        assert outcome.run_file.exists()  # the stopped run's weights are not lost
    finally:
        supervisor.shutdown()
