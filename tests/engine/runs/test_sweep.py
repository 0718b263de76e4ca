"""Sweeps with Optuna on xor: samplers, pruning, joining a study, a killed worker."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import optuna
import pytest

from app.engine.examples import example_path
from app.engine.project import load_project
from app.engine.runs.store import RunStore
from app.engine.runs.studies import SweepError
from app.engine.runs.sweep import Sweep, study_names, study_trials

WAIT = 120.0  # seconds any condition below may take on a busy machine before the test fails


@pytest.fixture
def xor():
    project = load_project(example_path("xor"))
    project.path = None  # as the CLI opens an example
    return project


def _sweep(xor, tmp_path, params, **kw) -> Sweep:
    return Sweep(xor, params, tmp_path / "xor.safetensors", epochs=kw.pop("epochs", 2), **kw)


@pytest.mark.parametrize("sampler, params", [
    ("tpe", ["lr=0.05:1:log", "fc1.out_features=4:8"]),
    ("random", ["lr=0.05:1", "optimizer=SGD,Adam"]),
    ("grid", ["lr=0.1,0.5", "fc1.out_features=4,8"]),
])
def test_each_sampler_records_each_trial_as_a_run(xor, tmp_path, sampler, params):
    sweep = _sweep(xor, tmp_path, params, sampler=sampler, pruner=None)
    seen = []
    result = sweep.run(trials=2, workers=0, on_trial=lambda t, best: seen.append((t.number, best)))
    assert [n for n, _ in seen] == [0, 1] and seen[-1][1] == result.best
    assert [t.state for t in result.trials] == ["complete", "complete"]
    with RunStore(tmp_path / "xor.runs.sqlite") as store:
        runs = {r.trial: r for r in store.runs(sweep=result.study)}
        assert sorted(runs) == [0, 1]
        for t in result.trials:
            run = runs[t.number]
            assert run.id == t.run_id and run.status == "finished" and run.sweep == sweep.study_name
            assert run.params == t.params and set(t.params) == {p.split("=")[0] for p in params}
            assert run.settings["epochs"] == 2 and run.settings["lr"] == t.params["lr"]
            # the trial's value: the final weights' validation accuracy (the last epoch's)
            assert store.epochs(run.id)["val_accuracy"][-1] == pytest.approx(t.value)
            assert run.best_val_accuracy >= t.value
            assert Path(run.weights).is_file() and Path(run.weights).parent == tmp_path / "xor.runs"
            assert len(store.epochs(run.id)["epoch"]) == 2
    if sampler == "grid":
        assert result.trials[0].params != result.trials[1].params
    elif sampler == "tpe":  # the project's own settings come first, when they lie in the space
        assert result.trials[0].params == {"lr": 0.5, "fc1.out_features": 8}
        assert any("trial 0 uses the project's own settings: lr 0.5, fc1.out_features 8" in n for n in sweep.notes)
    assert not (tmp_path / "xor.safetensors").exists()  # trials never write the project's weights
    assert sorted(os.listdir(tmp_path / "xor.runs")) == sorted(f"{t.run_id}.safetensors" for t in result.trials)


def test_a_pruned_trial_is_a_pruned_run(xor, tmp_path):
    # an accuracy never reaches 2: the pruner stops every trial after its first epoch
    sweep = _sweep(xor, tmp_path, ["lr=0.1:0.5"], pruner=optuna.pruners.ThresholdPruner(lower=2.0), epochs=30)
    result = sweep.run(trials=1, workers=0)
    assert [t.state for t in result.trials] == ["pruned"] and result.best is None
    with RunStore(sweep.store_path) as store:
        run = store.get(result.trials[0].run_id)
        assert run.status == "pruned" and "pruned" in run.message
        assert 1 <= run.epochs < 30 and Path(run.weights).is_file()


def test_joining_a_study_goes_on_with_its_trials(xor, tmp_path):
    first = _sweep(xor, tmp_path, ["lr=0.1:0.5"], study="mine", join=True, pruner=None).run(1, workers=0)
    second = _sweep(xor, tmp_path, ["lr=0.1:0.5"], study="mine", join=True, pruner=None).run(1, workers=0)
    assert first.study == second.study == "mine"
    assert [t.number for t in second.trials] == [0, 1]
    with pytest.raises(SweepError, match="exists already"):
        _sweep(xor, tmp_path, ["lr=0.1:0.5"], study="mine").start(1, workers=0)
    with pytest.raises(SweepError, match="goes maximize, not minimize"):
        _sweep(xor, tmp_path, ["lr=0.1:0.5"], study="mine", join=True, metric="val_loss").start(1, workers=0)


def test_the_direction_follows_the_metric(xor, tmp_path):
    assert _sweep(xor, tmp_path, ["lr=0.1:0.5"]).direction == "maximize"
    assert _sweep(xor, tmp_path, ["lr=0.1:0.5"], metric="val_loss").direction == "minimize"
    assert _sweep(xor, tmp_path, ["lr=0.1:0.5"], metric="val_loss", direction="max").direction == "maximize"
    with pytest.raises(SweepError, match="unknown metric"):
        _sweep(xor, tmp_path, ["lr=0.1:0.5"], metric="accuracy")


def _until(condition, what: str):
    end = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_a_killed_worker_leaves_the_store_sound_and_its_trial_failed(xor, tmp_path):
    sweep = _sweep(xor, tmp_path, ["lr=0.1:0.5"], epochs=100_000, pruner=None, heartbeat_interval=1,
                   grace_period=2)
    store = RunStore(sweep.store_path)
    try:
        sweep.start(trials=1, workers=1)

        def training() -> bool:  # mid-trial: its run has written epochs
            runs = store.runs(sweep=sweep.study_name)
            return bool(runs) and len(store.epochs(runs[0].id)["epoch"]) >= 2

        _until(training, "the trial's run to log epochs")
        os.kill(sweep.worker_pids[0], signal.SIGKILL)
        finished = []

        def failed() -> bool:  # each poll fails the trials whose heartbeat is overdue
            finished.extend(sweep.poll())
            return [t.state for t in finished] == ["failed"]

        _until(failed, "the killed trial to turn FAIL")
        assert not sweep.running
        (run,) = store.runs(sweep=sweep.study_name)
        assert run.id == finished[0].run_id and run.status == "crashed"
        assert len(store.epochs(run.id)["epoch"]) >= 2  # what it had logged is kept
        assert store.integrity_ok()
        with sqlite3.connect(sweep.store_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        sweep.close()
        store.close()
    # the killed run wrote no weights, and its trial's scratch folder (where it would have) is gone
    assert os.listdir(tmp_path / "xor.runs") == []


def test_a_trial_that_cannot_train_fails_with_its_message_and_the_sweep_goes_on(xor, tmp_path):
    # a batch larger than the training split, dropped as the last short one: refused before training
    sweep = _sweep(xor, tmp_path, ["batch_size=1000", "drop_last=true"], pruner=None)
    result = sweep.run(trials=2, workers=0)
    assert [t.state for t in result.trials] == ["failed", "failed"] and result.best is None
    assert all("drop_last" in t.message for t in result.trials)
    with RunStore(sweep.store_path) as store:
        assert store.runs(sweep=result.study) == []  # refused before it began: nothing trained


def test_a_finished_study_is_read_back_from_its_storage(xor, tmp_path):
    sweep = _sweep(xor, tmp_path, ["lr=0.1:0.5"], study="kept", pruner=None)
    result = sweep.run(trials=1, workers=0)
    assert study_names(sweep.storage_url) == ["kept"]
    assert study_trials(sweep.storage_url, "kept") == result.trials
    with pytest.raises(SweepError, match="no study named 'other'"):
        study_trials(sweep.storage_url, "other")


def test_repeats_train_consecutive_seeds_and_the_trial_value_is_their_mean(xor, tmp_path):
    xor.training["seed"] = 7  # the base of the repeats' seeds
    sweep = _sweep(xor, tmp_path, ["lr=0.1:0.5"], pruner=None, epochs=1, repeats=2)
    result = sweep.run(trials=2, workers=0)
    assert [t.state for t in result.trials] == ["complete", "complete"]
    with RunStore(sweep.store_path) as store:
        assert len(store.runs(sweep=result.study)) == 4
        for t in result.trials:
            assert len(t.run_ids) == 2 and t.run_id == t.run_ids[0]
            runs = [store.get(i) for i in t.run_ids]
            assert [r.settings["seed"] for r in runs] == [7, 8]
            assert [r.project["training"]["seed"] for r in runs] == [7, 8]
            assert [r.tags for r in runs] == [["repeat 1/2"], ["repeat 2/2"]]
            assert all(r.trial == t.number and r.params == t.params and r.status == "finished" for r in runs)
            assert all(r.settings["lr"] == t.params["lr"] for r in runs)
            finals = [store.epochs(i)["val_accuracy"][-1] for i in t.run_ids]
            assert t.values == pytest.approx(finals) and t.value == pytest.approx(sum(finals) / 2)
    assert study_trials(sweep.storage_url, result.study) == result.trials


def test_a_pruned_trial_skips_its_remaining_repeats(xor, tmp_path):
    sweep = _sweep(xor, tmp_path, ["lr=0.1:0.5"], pruner=optuna.pruners.ThresholdPruner(lower=2.0), epochs=30,
                   repeats=3)
    result = sweep.run(trials=1, workers=0)
    (trial,) = result.trials
    assert trial.state == "pruned" and trial.values == [] and trial.value is None
    with RunStore(sweep.store_path) as store:
        (run,) = store.runs(sweep=result.study)
        assert trial.run_ids == [run.id] and run.status == "pruned" and run.tags == ["repeat 1/3"]
        assert run.settings["seed"] == 0 and 1 <= run.epochs < 30


def test_repeats_refuse_a_searched_seed(xor, tmp_path):
    with pytest.raises(SweepError, match="searches seed, and 2 repeats set it themselves"):
        _sweep(xor, tmp_path, ["seed=1,2"], repeats=2)
    with pytest.raises(SweepError, match="expected repeats from 1 to 100; received 0"):
        _sweep(xor, tmp_path, ["lr=0.1:0.5"], repeats=0)
    assert _sweep(xor, tmp_path, ["seed=1,2"]).repeats == 1  # a searched seed alone is fine


def test_only_the_first_worker_takes_the_queued_trial_the_others_wait_until_it_is_taken(xor, tmp_path, monkeypatch):
    """Two workers that took the queued trial (the project's own settings) off SQLite's queue at
    once trained it twice, and the second died on "Cannot tell a COMPLETE trial"."""
    import threading

    from app.engine.runs import sweep_worker

    sweep = _sweep(xor, tmp_path, ["lr=0.05:1:log"])
    assert [sweep._plan(2, 1, k).after_queue for k in range(3)] == [False, True, True]

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'q.db'}", study_name="q")
    study.enqueue_trial({"x": 1.0})
    taken = []

    def first_worker():
        time.sleep(0.3)
        began = time.monotonic()  # (the trial leaves the queue inside ask)
        taken.append((study.ask().number, began))

    thread = threading.Thread(target=first_worker)
    thread.start()
    sweep_worker._wait_for_queue(study, poll=0.02)
    returned = time.monotonic()
    thread.join()
    assert taken and taken[0][0] == 0 and returned >= taken[0][1]
    monkeypatch.setattr(sweep_worker, "QUEUE_WAIT_SECONDS", 0.2)  # a first worker that never comes
    study.enqueue_trial({"x": 2.0})
    start = time.monotonic()
    sweep_worker._wait_for_queue(study, poll=0.02)
    assert time.monotonic() - start < 5
