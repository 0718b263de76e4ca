"""``netcanvas runs`` and ``train`` recording its runs: two runs of xor, listed, shown, used,
tagged and deleted; the errors each name what and where."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from app.engine import cli
from app.engine.examples import example_path
from app.engine.runs.store import RunStore


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two ``train`` runs of xor into one --out folder (the second with another lr)."""
    out = tmp_path_factory.mktemp("xor-runs")
    first = run_cli("train", "xor", "--epochs", "2", "--device", "cpu", "--out", str(out))
    second = run_cli("train", "xor", "--epochs", "1", "--lr", "0.1", "--device", "cpu", "--out", str(out), "--json")
    return out, first, second


@pytest.fixture
def folder(trained, tmp_path):
    """A copy of the trained folder that a test may change."""
    copy = tmp_path / "d"
    shutil.copytree(trained[0], copy)
    return copy


def test_train_says_the_run_id_and_the_store(trained):
    out, (code1, text, _), (code2, lines, _) = trained
    assert code1 == 0 and code2 == 0
    store = out / "xor.runs.sqlite"
    said = [line for line in text.splitlines() if line.startswith("run ")]
    assert len(said) == 1 and said[0].endswith(f"recorded in {store} (netcanvas runs lists the runs)")
    final = json.loads(lines.splitlines()[-1])
    assert final["run_id"] and final["runs_store"] == str(store)
    assert final["run_weights"] == str(out / "xor.runs" / f"{final['run_id']}.safetensors")


def test_two_train_runs_leave_two_runs_with_settings_metrics_and_weights(trained):
    out, (_, text, _), (_, lines, _) = trained
    code, listing, err = run_cli("runs", "xor", "--out", str(out), "--json")
    assert code == 0 and err == ""
    data = json.loads(listing)
    assert data["order"] == "oldest first" and data["store"] == str(out / "xor.runs.sqlite")
    first, second = data["runs"]
    assert second["id"] == json.loads(lines.splitlines()[-1])["run_id"] and first["id"] in text
    assert first["status"] == second["status"] == "finished"
    assert first["settings"]["epochs"] == 2 and second["settings"]["lr"] == 0.1
    assert second["project"]["training"]["lr"] == 0.1  # the options given to train are the run's
    assert first["epoch_metrics"]["epoch"] == [1, 2] and len(second["epoch_metrics"]["val_accuracy"]) == 1
    assert first["best_val_accuracy"] is not None and second["test_accuracy"] is not None
    assert second["confusion"] and sum(map(sum, second["confusion"])) == 40
    for run in (first, second):
        assert run["weights_exists"] and Path(run["weights"]).is_file()
        assert run["versions"]["torch"] and run["device"] == "cpu" and run["dataset"]["name"] == "xor"
    assert first["changes"] == [] and second["changes"] == ["lr 0.5 -> 0.1", "epochs 2 -> 1"]
    with RunStore(out / "xor.runs.sqlite") as store:
        assert store.integrity_ok()


def test_the_table_says_its_order_and_the_changes(trained):
    out = trained[0]
    code, text, _ = run_cli("runs", "xor", "--out", str(out))
    lines = text.splitlines()
    assert code == 0 and lines[0].startswith("2 runs in") and "(oldest first, the newest last)" in lines[0]
    assert lines[1].split()[:4] == ["id", "status", "started", "duration"]
    assert "first run" in lines[2] and lines[3].endswith("lr 0.5 -> 0.1; epochs 2 -> 1")
    assert "finished" in lines[2] and "%" in lines[3]


def test_show_one_run_by_a_unique_prefix(trained):
    out = trained[0]
    data = json.loads(run_cli("runs", "xor", "--out", str(out), "--json")[1])
    second = data["runs"][1]["id"]
    code, text, _ = run_cli("runs", "xor", "--out", str(out), "--show", second)
    assert code == 0 and text.startswith(f"run {second}: finished")
    assert "lr=0.1" in text and "epoch  train loss" in text and "confusion" in text
    code, shown, _ = run_cli("runs", "xor", "--out", str(out), "--show", second[:-1], "--json")
    one = json.loads(shown)
    assert code == 0 and one["id"] == second and one["previous"] == data["runs"][0]["id"]
    assert one["epoch_metrics"]["epoch"] == [1] and len(one["batches"]["step"]) == one["steps"]


def test_use_makes_a_runs_weights_the_projects(folder):
    data = json.loads(run_cli("runs", "xor", "--out", str(folder), "--json")[1])
    first = data["runs"][0]
    target = folder / "xor.safetensors"
    code, text, _ = run_cli("runs", "xor", "--out", str(folder), "--use", first["id"])
    assert code == 0 and f"run {first['id']}" in text and str(target) in text
    assert target.read_bytes() == (folder / "xor.runs" / f"{first['id']}.safetensors").read_bytes()


def test_note_tag_and_delete(folder):
    data = json.loads(run_cli("runs", "xor", "--out", str(folder), "--json")[1])
    first, second = data["runs"][0]["id"], data["runs"][1]["id"]
    assert run_cli("runs", "xor", "--out", str(folder), "--note", first, "the baseline")[0] == 0
    assert run_cli("runs", "xor", "--out", str(folder), "--tag", first, "keep")[0] == 0
    text = run_cli("runs", "xor", "--out", str(folder))[1]
    assert "[keep]" in text and "the baseline" in text
    code, text, _ = run_cli("runs", "xor", "--out", str(folder), "--delete", second)
    assert code == 0 and f"deleted run {second}" in text
    assert not (folder / "xor.runs" / f"{second}.safetensors").exists()
    assert [r["id"] for r in json.loads(run_cli("runs", "xor", "--out", str(folder), "--json")[1])["runs"]] == [first]
    assert (folder / "xor.safetensors").exists()  # the project's weights stay


def test_an_unknown_id_exits_1_naming_the_id_and_the_store(trained):
    out = trained[0]
    for option in ("--show", "--use", "--delete"):
        code, text, err = run_cli("runs", "xor", "--out", str(out), option, "20991231-nope")
        assert code == 1 and text == ""
        assert "'20991231-nope'" in err and str(out / "xor.runs.sqlite") in err and "Traceback" not in err


def test_an_ambiguous_prefix_exits_1_listing_the_candidates(trained):
    code, _, err = run_cli("runs", "xor", "--out", str(trained[0]), "--show", "20")
    assert code == 1 and "2 runs whose id starts with '20'" in err


def test_no_store_is_one_clear_line_and_exit_1(tmp_path):
    code, out, err = run_cli("runs", "xor", "--out", str(tmp_path))
    assert code == 1 and out == ""
    assert err.strip() == (f"error: no runs recorded for xor: {tmp_path / 'xor.runs.sqlite'} does not exist "
                           f"(netcanvas train xor --out {tmp_path} records one)")


def test_a_project_file_finds_the_store_beside_it(tmp_path):
    project = tmp_path / "mine.netcanvas.json"
    shutil.copy(example_path("xor"), project)
    assert run_cli("train", str(project), "--epochs", "1", "--device", "cpu")[0] == 0
    data = json.loads(run_cli("runs", str(project), "--json")[1])
    assert data["store"] == str(tmp_path / "mine.runs.sqlite") and len(data["runs"]) == 1


def test_unreadable_files_exit_2(tmp_path, folder):
    bad = tmp_path / "bad.netcanvas.json"
    bad.write_text("{not json")
    code, _, err = run_cli("runs", str(bad))
    assert code == 2 and err.startswith("error: ") and str(bad) in err
    store = folder / "xor.runs.sqlite"
    conn = sqlite3.connect(store)
    conn.execute("UPDATE netcanvas_schema SET version = 9")
    conn.commit()
    conn.close()
    code, _, err = run_cli("runs", "xor", "--out", str(folder))
    assert code == 2 and str(store) in err and "version 9" in err and "newer NetCanvas" in err
    store.write_bytes(b"garbage" * 1000)
    for name in ("xor.runs.sqlite-wal", "xor.runs.sqlite-shm"):
        (folder / name).unlink(missing_ok=True)
    code, _, err = run_cli("runs", "xor", "--out", str(folder))
    assert code == 2 and "not a run store" in err and err.count("\n") == 1
    # train goes on without recording when its store cannot be opened
    code, text, err = run_cli("train", "xor", "--epochs", "1", "--device", "cpu", "--out", str(folder))
    assert code == 0 and "note: this run will not be recorded" in err and "recorded in" not in text


def test_use_says_when_the_projects_graph_has_changed_since_the_run(tmp_path):
    project = tmp_path / "mine.netcanvas.json"
    shutil.copy(example_path("xor"), project)
    assert run_cli("train", str(project), "--epochs", "1", "--device", "cpu")[0] == 0
    data = json.loads(project.read_text())
    next(n for n in data["graph"]["nodes"] if n["id"] == "fc1")["params"]["out_features"] = 4
    project.write_text(json.dumps(data))
    run_id = json.loads(run_cli("runs", str(project), "--json")[1])["runs"][0]["id"]
    code, text, err = run_cli("runs", str(project), "--use", run_id)
    assert code == 0 and f"the weights of run {run_id} are now the project's" in text
    assert "the project's graph has changed since run" in err and "(fc1 out_features 8 -> 4)" in err
