"""The open project's weights without a screen: where runs write, what every end of a run
means for the weights held, the first save, and the scratch folder's pruning."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from app.engine.compiler import compile_graph
from app.engine.errors import WeightsError
from app.engine.examples import load_example
from app.engine.inference import analyze
from app.engine.runs.store import RunStore, store_path_for
from app.engine.session.weights import (
    UNSAVED_WEIGHTS_DAYS,
    init_weights_fit,
    ProjectWeights,
    RunOutcome,
    load_model,
    prune_unsaved_weights,
    unsaved_weights_path,
)
from app.engine.training import FinishedEvent
from app.engine.training.trainer import Trainer, prepare_run
from app.engine.weights import save_weights


@pytest.fixture
def project():
    project = load_example("xor")
    project.path = None  # as the editor opens an example: never saved
    return project


@pytest.fixture
def weights(project, tmp_path):
    return ProjectWeights(lambda: project, lambda: tmp_path / "scratch")


def weights_file(project, path: Path, seed: int) -> Path:
    """A weights file for the project's network, initialized with ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    save_weights(compile_graph(project.graph), path)
    return path


def finished(run, target, held_back=None, error=None, reason="completed") -> FinishedEvent:
    return FinishedEvent(reason, "done", 2, 40, 1.0, weights_path=str(run) if run else None,
                         weights_target=str(target) if target else None, weights_held_back=held_back,
                         weights_error=error)


# -- state ------------------------------------------------------------------------------------
def test_states_follow_what_is_held_and_where(project, weights, tmp_path):
    assert weights.state == "none" and weights.file is None and weights.unsaved_file is None
    imported = weights_file(project, tmp_path / "imported.safetensors", 1)
    model = weights.load(project.graph, analyze(project.graph), imported)
    assert isinstance(model, torch.nn.Module)
    assert weights.state == "loaded" and weights.file == imported and weights.unsaved_file == imported
    project.path = tmp_path / "xor.netcanvas.json"
    assert weights.project_saved(project.path) == tmp_path / "xor.safetensors"
    assert weights.state == "saved" and weights.unsaved_file is None
    assert (tmp_path / "xor.safetensors").read_bytes() == imported.read_bytes()
    weights.reset()
    assert weights.state == "none" and weights.file is None
    with pytest.raises(ValueError):
        weights.hold(imported, "saved")


def test_weights_that_do_not_fit_are_refused_and_nothing_held_changes(project, weights, tmp_path):
    other = load_example("mlp")
    wrong = tmp_path / "mlp.safetensors"
    save_weights(compile_graph(other.graph), wrong)
    with pytest.raises(WeightsError):
        weights.load(project.graph, analyze(project.graph), wrong)
    assert weights.state == "none"
    with pytest.raises(WeightsError):
        load_model(project.graph, analyze(project.graph), wrong)


def test_saved_file_is_the_projects_weights_when_they_exist(project, weights, tmp_path):
    assert weights.saved_file() is None  # never saved
    project.path = tmp_path / "xor.netcanvas.json"
    assert weights.saved_file() is None  # saved, never trained
    weights_file(project, tmp_path / "xor.safetensors", 1)
    assert weights.saved_file() == tmp_path / "xor.safetensors"


# -- where a run writes -----------------------------------------------------------------------
def test_a_saved_projects_runs_write_beside_it(project, weights, tmp_path):
    project.path = tmp_path / "xor.netcanvas.json"
    assert weights.run_target() == tmp_path / "xor.safetensors"
    assert not (tmp_path / "scratch").exists()


def test_an_unsaved_projects_runs_write_one_file_holding_the_weights_held(project, weights, tmp_path):
    imported = weights_file(project, tmp_path / "imported.safetensors", 3)
    weights.hold(imported)
    target = weights.run_target()
    assert target.parent == tmp_path / "scratch" and target.name.startswith("unsaved-")
    assert target != imported and target.read_bytes() == imported.read_bytes()
    assert weights.run_target() == target  # the same file for every run of this document
    weights.hold(target, "trained-unsaved")  # a run put its weights there: no copy onto itself
    assert weights.run_target() == target and target.read_bytes() == imported.read_bytes()
    weights.hold(None)  # nothing held: nothing in place for a run to be compared with
    assert not weights.run_target().exists()
    weights.reset()  # another document: a file of its own
    assert weights.run_target() != target


def test_a_copy_that_cannot_be_written_raises(project, weights, tmp_path):
    weights.hold(weights_file(project, tmp_path / "imported.safetensors", 3))
    (tmp_path / "scratch").write_bytes(b"a file where the folder goes")
    with pytest.raises(OSError):
        weights.run_target()


# -- what a finished run means ----------------------------------------------------------------
def test_weights_put_in_place_are_held(project, weights, tmp_path):
    run = weights_file(project, tmp_path / "scratch" / "unsaved-1.safetensors", 1)
    outcome = weights.run_finished(finished(run, run))
    assert outcome == RunOutcome("adopted", file=run, run_file=run, target=run, unsaved_project=True)
    assert weights.file == run and weights.state == "trained-unsaved"


def test_a_project_saved_while_it_trained_gets_the_weights_beside_it(project, weights, tmp_path):
    run = weights_file(project, tmp_path / "scratch" / "unsaved-1.safetensors", 1)
    project.path = tmp_path / "xor.netcanvas.json"
    outcome = weights.run_finished(finished(run, run))
    beside = tmp_path / "xor.safetensors"
    assert outcome.what == "adopted" and outcome.file == beside and not outcome.unsaved_project
    assert outcome.failure is None and beside.read_bytes() == run.read_bytes() and weights.state == "saved"


def test_a_failed_copy_beside_the_project_is_said(project, weights, tmp_path):
    run = weights_file(project, tmp_path / "scratch" / "unsaved-1.safetensors", 1)
    (tmp_path / "xor.safetensors").mkdir()  # in the way
    project.path = tmp_path / "xor.netcanvas.json"
    outcome = weights.run_finished(finished(run, run))
    assert outcome.what == "adopted" and outcome.failure and outcome.file == run
    assert weights.state == "trained-unsaved"


def test_weights_kept_elsewhere_after_an_error_are_held(project, weights, tmp_path):
    kept = weights_file(project, tmp_path / "recovery" / "r1.safetensors", 2)
    outcome = weights.run_finished(finished(kept, tmp_path / "ro" / "xor.safetensors", error="not written"))
    assert outcome.what == "kept-elsewhere" and outcome.error == "not written"
    assert weights.file == kept  # the only copy of this run's weights


def test_a_run_without_weights_changes_nothing(project, weights, tmp_path):
    held = weights_file(project, tmp_path / "held.safetensors", 1)
    weights.hold(held)
    outcome = weights.run_finished(finished(None, tmp_path / "xor.safetensors", error="they are lost"))
    assert outcome.what == "none" and outcome.error == "they are lost" and weights.file == held
    outcome = weights.run_finished(finished(None, None, held_back="the run was stopped by the user"))
    assert outcome.what == "none" and weights.file == held


def test_held_back_weights_with_nothing_in_place_are_only_said(project, weights, tmp_path):
    run = weights_file(project, tmp_path / "xor.runs" / "r1.safetensors", 2)
    outcome = weights.run_finished(finished(run, tmp_path / "xor.safetensors", "the run diverged", reason="diverged"))
    assert outcome.what == "held-back" and outcome.held_back == "the run diverged" and outcome.run_file == run
    assert weights.file is None and run.exists()


def test_held_back_weights_replace_those_in_place_when_chosen(project, weights, tmp_path):
    target = weights_file(project, tmp_path / "xor.safetensors", 1)
    run = weights_file(project, tmp_path / "xor.runs" / "r1.safetensors", 2)
    trained = run.read_bytes()
    weights.hold(target, "trained-unsaved")
    asked = weights.run_finished(finished(run, target, "the run was stopped by the user", reason="stopped"))
    assert asked.what == "ask" and asked.target == target and asked.run_file == run and asked.unsaved_project
    assert asked.held_back == "the run was stopped by the user" and weights.file == target  # not yet
    outcome = weights.replace_with_run(asked)
    assert outcome.what == "replaced" and outcome.file == target and weights.file == target
    assert target.read_bytes() == trained and not run.exists()  # no second copy in the runs folder


def test_held_back_weights_kept_aside_leave_the_weights_in_place_held(project, weights, tmp_path):
    target = weights_file(project, tmp_path / "xor.safetensors", 1)
    run = weights_file(project, tmp_path / "xor.runs" / "r1.safetensors", 2)
    before = target.read_bytes()
    imported = weights_file(project, tmp_path / "imported.safetensors", 1)
    weights.hold(imported, "loaded")
    outcome = weights.keep(weights.run_finished(finished(run, target, "worse")))
    assert outcome.what == "kept" and outcome.file == target and weights.file == target
    assert weights.state == "loaded"  # a copy of the imported weights: still not the project's own
    assert target.read_bytes() == before and run.exists()


def test_a_replacement_that_fails_keeps_the_weights_in_place(project, weights, tmp_path):
    target = weights_file(project, tmp_path / "xor.safetensors", 1)
    run = weights_file(project, tmp_path / "xor.runs" / "r1.safetensors", 2)
    asked = weights.run_finished(finished(run, target, "worse"))
    run.unlink()  # gone meanwhile
    outcome = weights.replace_with_run(asked)
    assert outcome.what == "replace-failed" and "cannot be read" in outcome.failure
    assert weights.file == target and outcome.file == target


def test_project_saved_without_weights_or_path_does_nothing(project, weights, tmp_path):
    assert weights.project_saved(tmp_path / "xor.netcanvas.json") is None
    weights.hold(tmp_path / "gone.safetensors")
    assert weights.project_saved(tmp_path / "xor.netcanvas.json") is None
    assert weights.project_saved("") is None
    assert not (tmp_path / "xor.safetensors").exists()


def test_a_failed_copy_on_save_raises_and_keeps_the_weights_where_they_were(project, weights, tmp_path):
    held = weights_file(project, tmp_path / "held.safetensors", 1)
    weights.hold(held, "trained-unsaved")
    (tmp_path / "xor.safetensors").mkdir()
    with pytest.raises(OSError):
        weights.project_saved(tmp_path / "xor.netcanvas.json")
    assert weights.file == held


# -- the scratch folder -----------------------------------------------------------------------
def test_weights_of_unsaved_runs_do_not_pile_up(tmp_path):
    folder = tmp_path
    old, recent, other = (folder / "unsaved-0001.safetensors", folder / "unsaved-0002.safetensors",
                          folder / "keep.netcanvas.json")
    for path in (old, recent, other):
        path.write_bytes(b"x")
    long_ago = time.time() - (UNSAVED_WEIGHTS_DAYS + 1) * 86400
    for path in (old, other):
        os.utime(path, (long_ago, long_ago))
    new = unsaved_weights_path(folder)
    assert new.parent == folder and new.name.startswith("unsaved-") and not new.exists()
    assert not old.exists() and recent.exists() and other.exists()  # only old run weights go


def test_held_back_runs_of_unsaved_projects_are_pruned_with_them(tmp_path):
    folder = tmp_path
    runs, recent_runs = folder / "unsaved-0001.runs", folder / "unsaved-0002.runs"
    runs.mkdir()
    recent_runs.mkdir()
    old, recent = runs / "20261101-120000-aaaa.safetensors", recent_runs / "20261202-120000-bbbb.safetensors"
    other = folder / "imported-0003.safetensors"
    for path in (old, recent, other):
        path.write_bytes(b"x")
    long_ago = time.time() - (UNSAVED_WEIGHTS_DAYS + 1) * 86400
    for path in (old, other):
        os.utime(path, (long_ago, long_ago))
    assert prune_unsaved_weights(folder) == [old]
    assert not runs.exists()  # the emptied folder goes too
    assert recent.exists() and other.exists()


def test_the_default_scratch_folder_is_made_under_the_temporary_folder(project, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    target = ProjectWeights(lambda: project).run_target()
    assert target.parent == tmp_path / "netcanvas-scratch" and target.parent.is_dir()


def test_a_run_starts_from_the_weights_held_unless_asked_for_a_fresh_start(project, weights, tmp_path):
    assert weights.start_file() is None and weights.start_overrides() == {}  # nothing held: fresh
    held = weights_file(project, tmp_path / "held.safetensors", seed=1)
    weights.hold(held)
    assert weights.start_from == "held" and weights.start_file() == held
    assert weights.start_overrides() == {"init_weights": str(held.resolve())}
    weights.start_from = "fresh"
    assert weights.start_file() is None and weights.start_overrides() == {}
    weights.start_from = "held"
    project.training["init_weights"] = "other.safetensors"  # the project's own choice goes first
    assert weights.start_overrides() == {}
    del project.training["init_weights"]
    held.write_bytes(b"not safetensors")  # unreadable: a fresh start, not a failing run
    assert weights.start_file() is None and weights.start_overrides() == {}


def test_the_run_started_from_the_held_weights_keeps_the_nodes_that_fit(project, weights, tmp_path):
    held = weights_file(project, tmp_path / "held.safetensors", seed=1)
    weights.hold(held)
    project.graph.nodes["fc1"].params["out_features"] = 16  # fc1 and fc2 change shape
    analysis = analyze(project.graph)
    fit = init_weights_fit(project, analysis, weights.start_file())
    assert fit.kept == [] and fit.initialized == ["fc1", "fc2"]
    project.graph.nodes["fc1"].params["out_features"] = 8
    trainer = Trainer(prepare_run(project, epochs=1, device="cpu", **weights.start_overrides()))
    assert trainer.start_weights.complete and trainer.start_weights.kept == ["fc1", "fc2"]
    stored = load_file(held)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, stored[name]), name
    assert any("start from held.safetensors" in note or "starts from held.safetensors" in note
               for note in trainer.run_spec.notes)


def test_the_runs_of_a_never_saved_project_come_beside_it_on_the_first_save(project, weights, tmp_path):
    target = weights.run_target()  # the scratch file of this never-saved project's runs
    store = RunStore(store_path_for(target))
    store.begin("20261203-000000-aaaa", project, {"lr": 0.1}, {"name": "xor"}, "cpu")
    own = weights_file(project, store.run_weights_path("20261203-000000-aaaa"), seed=2)
    store.finish("20261203-000000-aaaa", "finished", "done", weights=str(own), epochs=1, steps=3)
    store.close()
    project.path = tmp_path / "saved" / "xor.netcanvas.json"
    project.path.parent.mkdir()
    weights.project_saved(project.path)
    carried = RunStore(tmp_path / "saved" / "xor.runs.sqlite")
    [run] = carried.runs()
    assert run.id == "20261203-000000-aaaa" and run.status == "finished"
    assert Path(carried.run_weights_path(run.id)).read_bytes() == own.read_bytes()
    assert carried.integrity_ok()
    carried.close()
