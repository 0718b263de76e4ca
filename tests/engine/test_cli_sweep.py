"""``netcanvas sweep``: a 6-trial, 2-worker sweep on xor, and clear refusals of bad parameters."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.engine import cli
from app.engine.runs.store import RunStore


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def test_six_trials_on_two_workers_leave_six_runs(tmp_path):
    code, out, err = run_cli("sweep", "xor", "--trials", "6", "--workers", "2", "--param", "lr=0.05:1:log",
                             "--param", "fc1.out_features=2,8", "--epochs", "2", "--out", str(tmp_path), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    trials, done = lines[:-1], lines[-1]
    assert len(trials) == 6 and sorted(t["trial"] for t in trials) == list(range(6))
    for t in trials:
        assert set(t) == {"trial", "run_id", "state", "params", "value", "best", "run_ids", "values"}
        assert t["run_ids"] == [t["run_id"]] and t["values"] == ([t["value"]] if t["state"] == "complete" else [])
        assert t["state"] in ("complete", "pruned") and set(t["params"]) == {"lr", "fc1.out_features"}
    complete = [t for t in trials if t["state"] == "complete"]
    best = min(complete, key=lambda t: (-t["value"], t["trial"]))  # of equal values, the lowest number
    assert done == {"done": True, "study": done["study"], "storage": "sqlite:///" + str(tmp_path / "xor.runs.sqlite"),
                    "best": {"trial": best["trial"], "value": best["value"], "params": best["params"]},
                    "trials": 6}
    assert trials[-1]["best"]["value"] == best["value"]
    with RunStore(tmp_path / "xor.runs.sqlite") as store:
        runs = store.runs(sweep=done["study"])
        assert sorted(r.id for r in runs) == sorted(t["run_id"] for t in trials)
        for r in runs:
            t = next(t for t in trials if t["run_id"] == r.id)
            assert r.trial == t["trial"] and r.params == t["params"]
            assert r.status == ("finished" if t["state"] == "complete" else "pruned")
            assert r.settings["lr"] == t["params"]["lr"] and r.settings["epochs"] == 2
            assert r.project["graph"]["nodes"][1]["params"]["out_features"] == t["params"]["fc1.out_features"]
            assert len(store.epochs(r.id)["val_accuracy"]) >= 1 and store.batches(r.id)["loss"]
            assert Path(r.weights).is_file()
        assert len({r.pid for r in runs}) == 2  # two worker processes trained them
        assert store.integrity_ok()
    assert not (tmp_path / "xor.safetensors").exists()
    assert sorted(p.name for p in (tmp_path / "xor.runs").iterdir()) == sorted(f"{t['run_id']}.safetensors"
                                                                               for t in trials)


def test_text_output_one_line_per_trial_and_the_best_last(tmp_path):
    code, out, err = run_cli("sweep", "xor", "--trials", "2", "--param", "lr=0.3,0.6", "--sampler", "grid",
                             "--metric", "val_loss", "--epochs", "1", "--out", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert "minimize val_loss" in lines[0] and "lr in {0.3, 0.6}" in lines[0]
    assert [line.split()[:3] for line in lines[2:4]] == [["trial", "0", "complete"], ["trial", "1", "complete"]]
    assert len(lines) == 5
    assert lines[-1].startswith("best: trial ") and "val_loss" in lines[-1]


@pytest.mark.parametrize("param, words", [
    ("conv1.out_channels=4,8", "--param conv1.out_channels: the project has no node 'conv1'"),
    ("fc1.kernel_size=3,5", "--param fc1.kernel_size: Linear node 'fc1' has no parameter 'kernel_size'"),
    ("fc1.out_features=0:8", "--param fc1.out_features: expected an integer >= 1"),
    ("momentum=0.5:3", "--param momentum: expected a number from 0 to 1"),
    ("lr=abc", "--param lr: expected a number"),
])
def test_bad_parameters_exit_2_naming_them(tmp_path, param, words):
    code, out, err = run_cli("sweep", "xor", "--trials", "2", "--param", param, "--out", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and words in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_grid_with_a_range_no_param_and_a_bad_storage_exit_2(tmp_path):
    code, _, err = run_cli("sweep", "xor", "--trials", "2", "--sampler", "grid", "--param", "lr=0.1:0.5",
                           "--out", str(tmp_path))
    assert code == 2 and "lr: the grid sampler takes lists only" in err
    code, _, err = run_cli("sweep", "xor", "--trials", "2", "--out", str(tmp_path))
    assert code == 2 and "at least one NAME=SPEC" in err
    code, _, err = run_cli("sweep", "xor", "--trials", "1", "--param", "lr=0.1,0.5", "--storage", "nosuchdb://x",
                           "--out", str(tmp_path))
    assert code == 2 and "cannot open the Optuna storage" in err and "nosuchdb://x" in err
    with pytest.raises(SystemExit):
        cli.main(["sweep", "xor", "--trials", "0", "--param", "lr=0.1,0.5"], io.StringIO(), io.StringIO())


def test_no_trial_completing_exits_1_with_each_message(tmp_path):
    code, out, err = run_cli("sweep", "xor", "--trials", "1", "--param", "batch_size=1000", "--param", "drop_last=true",
                             "--out", str(tmp_path))
    assert code == 1 and "Traceback" not in out + err
    assert "trial   0 failed" in out and "drop_last" in out and out.splitlines()[-1] == "no trial completed"


def test_repeats_run_each_trial_with_consecutive_seeds_and_report_the_mean(tmp_path):
    code, out, err = run_cli("sweep", "xor", "--trials", "2", "--repeats", "2", "--param", "lr=0.3,0.6",
                             "--sampler", "grid", "--epochs", "1", "--out", str(tmp_path), "--json")
    assert code == 0, err
    trials = [json.loads(line) for line in out.splitlines()][:-1]
    assert [t["state"] for t in trials] == ["complete", "complete"]
    with RunStore(tmp_path / "xor.runs.sqlite") as store:
        for t in trials:
            assert len(t["run_ids"]) == 2 and t["run_id"] == t["run_ids"][0] and len(t["values"]) == 2
            runs = [store.get(i) for i in t["run_ids"]]
            assert [r.settings["seed"] for r in runs] == [0, 1] and [r.tags for r in runs] == [["repeat 1/2"],
                                                                                                ["repeat 2/2"]]
            finals = [store.epochs(i)["val_accuracy"][-1] for i in t["run_ids"]]
            assert t["values"] == pytest.approx(finals) and t["value"] == pytest.approx(sum(finals) / 2)
        assert len(store.runs()) == 4


def test_repeats_text_line_shows_the_mean_and_each_value(tmp_path):
    code, out, err = run_cli("sweep", "xor", "--trials", "1", "--repeats", "2", "--param", "lr=0.3,0.6",
                             "--sampler", "grid", "--epochs", "1", "--out", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert "1 trials, 2 runs per trial" in lines[0]
    line = lines[2]
    assert line.split()[:3] == ["trial", "0", "complete"] and "(mean of " in line and "runs " in line
    assert lines[-1].startswith("best: trial 0 mean val_accuracy ")


def test_repeats_with_a_searched_seed_exit_2_naming_both(tmp_path):
    code, out, err = run_cli("sweep", "xor", "--trials", "2", "--repeats", "3", "--param", "seed=1,2",
                             "--out", str(tmp_path))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: --repeats 3 with --param seed") and not list(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        cli.main(["sweep", "xor", "--trials", "1", "--repeats", "0", "--param", "lr=0.1,0.5"], io.StringIO(),
                 io.StringIO())
