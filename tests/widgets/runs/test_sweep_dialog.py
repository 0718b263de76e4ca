"""The Sweep dialog and its runner, against a fake ``netcanvas sweep`` (a script that prints
the contract's JSON lines) and once against the real command on xor."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import warnings
from pathlib import Path

import optuna
import pytest
from PySide6.QtCore import Qt

from app.engine.examples import example_path
from app.engine.project import load_project, weights_path_for
from app.engine.runs.store import RunStore
from app.widgets.runs.sweep_dialog import SweepDialog, searchable_names, suggested_spec
from app.widgets.runs.sweep_plots import axis_values, study_importances
from app.widgets.runs.sweep_runner import SweepRunner, parse_line

ENDED_MS = 20_000


def fake_sweep(tmp_path: Path, body: str) -> list[str]:
    """A command whose process records its arguments (and the project file it was given)
    into tmp_path, then runs ``body`` (helpers: ``emit(obj)``, ``out(text)``)."""
    script = tmp_path / "fake_sweep.py"
    script.write_text(textwrap.dedent("""\
        import json, os, signal, sys, time
        from pathlib import Path
        here = Path(__file__).parent
        (here / "argv.json").write_text(json.dumps(sys.argv[1:]))
        if len(sys.argv) > 2 and Path(sys.argv[2]).is_file():
            (here / "project_copy.json").write_text(Path(sys.argv[2]).read_text())
        (here / "cwd.txt").write_text(os.getcwd())
        def out(text):
            sys.stdout.write(text); sys.stdout.flush()
        def emit(obj):
            out(json.dumps(obj) + "\\n")
        """) + textwrap.dedent(body))
    return [sys.executable, str(script)]


def trial_line(n: int, value, best_n: int, best_value, state="complete", lr=None, width=None) -> dict:
    params = {"lr": lr if lr is not None else 10 ** (-4 + 3 * n / 8),
              "fc1.out_features": width if width is not None else [4, 8, 16][n % 3]}
    return {"trial": n, "run_id": f"20261203-0700{n:02d}-abcd", "state": state, "params": params,
            "value": value, "best": {"trial": best_n, "value": best_value,
                                     "params": {"lr": 0.01, "fc1.out_features": 8}}}


@pytest.fixture
def xor():
    project = load_project(example_path("xor"))
    project.path = None  # an example opens as a never-saved copy
    return project


def make_dialog(qtbot, project, tmp_path, command, dirty=True):
    dialog = SweepDialog(project, tmp_path / "out" / "unsaved-1234.safetensors", dirty=dirty, command=command)
    (tmp_path / "out").mkdir(exist_ok=True)
    qtbot.addWidget(dialog)
    dialog.runner.grace_ms = 500
    return dialog


def run_to_end(qtbot, dialog) -> str:
    with qtbot.waitSignal(dialog.runner.ended, timeout=ENDED_MS) as ended:
        assert dialog.start(), dialog.status.text()
    return ended.args[0]


# -- the lines ------------------------------------------------------------------------------
def test_parse_line_takes_the_contract_and_nothing_else():
    kind, trial = parse_line(json.dumps(trial_line(2, 0.9, 2, 0.9)))
    assert kind == "trial" and trial["trial"] == 2 and trial["value"] == 0.9 and trial["best"]["trial"] == 2
    kind, done = parse_line('{"done": true, "study": "s1", "storage": "sqlite:////x.db", "best": null, "trials": 3}')
    assert kind == "done" and done == {"done": True, "study": "s1", "storage": "sqlite:////x.db", "best": None,
                                       "trials": 3}
    assert parse_line("epoch 3/10 loss 0.2") == ("log", "epoch 3/10 loss 0.2")
    assert parse_line('{"trial": 1') == ("log", '{"trial": 1')  # cut short
    assert parse_line('{"unrelated": 1}')[0] == "log"
    assert parse_line('{"trial": -1, "params": {}}')[0] == "log"
    assert parse_line('[1, 2]')[0] == "log"
    # wrong types become None / "failed" instead of reaching the table
    kind, odd = parse_line('{"trial": 4, "params": {"lr": 0.1}, "value": NaN, "state": "weird", "run_id": 5, '
                           '"best": "no"}')
    assert kind == "trial" and odd["value"] is None and odd["state"] == "failed" and odd["run_id"] is None
    assert odd["best"] is None


def test_axis_values_scale_numbers_logs_and_categories():
    pos, labels = axis_values([1e-4, 1e-2, 1e-3, None], log=True)
    assert pos[:3].tolist() == pytest.approx([0.0, 1.0, 0.5]) and str(pos[3]) == "nan"
    assert labels == [(0.0, "0.0001"), (1.0, "0.01")]
    pos, labels = axis_values(["SGD", "Adam", "SGD", "RMSprop"])
    assert pos.tolist() == [1.0, 0.0, 1.0, 0.5] and labels == [(0.0, "Adam"), (0.5, "RMSprop"), (1.0, "SGD")]
    assert axis_values([3, 3])[0].tolist() == [0.5, 0.5] and axis_values([3, 3])[1] == [(0.5, "3")]
    assert axis_values([f"c{i:02d}" for i in range(20)])[1] == [(0.0, "c00"), (1.0, "c19")]


# -- the runner -----------------------------------------------------------------------------
def test_runner_joins_partial_lines_and_logs_the_rest(qtbot, tmp_path):
    line = json.dumps(trial_line(0, 0.75, 0, 0.75))
    command = fake_sweep(tmp_path, f"""\
        out({line[:20]!r})
        time.sleep(0.3)  # the rest of the line arrives in a later read
        out({line[20:]!r} + "\\n")
        out("not json at all\\n")
        sys.stderr.write("a warning on stderr\\n")
        emit({{"done": True, "study": "s", "storage": "sqlite:///x", "best": None, "trials": 1}})
        out("trailing text without newline")
        """)
    runner = SweepRunner(command)
    trials, logs = [], []
    runner.trial.connect(trials.append)
    runner.log.connect(logs.append)
    with qtbot.waitSignal(runner.ended, timeout=ENDED_MS) as ended:
        runner.start(["sweep", "f.json"])
    assert ended.args == [""]
    assert [t["trial"] for t in trials] == [0] and trials[0]["value"] == 0.75
    assert runner.result["study"] == "s"
    assert "not json at all" in logs and "a warning on stderr" in logs
    assert "trailing text without newline" in logs


@pytest.mark.parametrize("body, expected", [
    ("emit({'trial': 0, 'state': 'complete', 'params': {}, 'value': 1.0})\nos.kill(os.getpid(), signal.SIGKILL)\n",
     "the sweep process crashed"),
    ("sys.stderr.write('error: lr: unknown\\n')\nsys.exit(3)\n",
     "the sweep process ended with exit code 3: error: lr: unknown"),
    ("emit({'trial': 0, 'state': 'complete', 'params': {}, 'value': 1.0})\n",
     "the sweep process ended without its final result line"),
])
def test_runner_says_how_a_sweep_went_wrong(qtbot, tmp_path, body, expected):
    runner = SweepRunner(fake_sweep(tmp_path, body))
    with qtbot.waitSignal(runner.ended, timeout=ENDED_MS) as ended:
        runner.start(["sweep"])
    assert ended.args[0].startswith(expected), ended.args[0]


def test_runner_reports_a_command_that_does_not_start(qtbot, tmp_path):
    runner = SweepRunner([str(tmp_path / "no-such-program")])
    with qtbot.waitSignal(runner.ended, timeout=ENDED_MS) as ended:
        runner.start(["sweep"])
    assert ended.args[0].startswith("could not start the sweep")


# -- the dialog -----------------------------------------------------------------------------
def test_names_and_specs_are_checked_as_typed(qtbot, tmp_path, xor):
    assert {"lr", "batch_size", "fc1.out_features"} <= set(searchable_names(xor))
    assert "device" not in searchable_names(xor)
    assert suggested_spec("lr", xor) == "0.05:5:log" and suggested_spec("fc1.out_features", xor) == "4:16"
    dialog = make_dialog(qtbot, xor, tmp_path, ["unused"])
    dialog.show()
    row = dialog.rows[0]
    assert row.name.currentText() == "lr" and row.spec.text() == "0.05:5:log"
    assert dialog.start_button.isEnabled()
    row.spec.clear()
    qtbot.keyClicks(row.spec, "1:0.1")
    assert not dialog.start_button.isEnabled()
    assert row.message.isVisible() and "LOW must be below HIGH" in row.message.text()
    row.spec.setText("0.001:0.1:log")
    assert dialog.start_button.isEnabled() and not row.message.isVisible()
    second = dialog.add_param("fc9.out_features", "4,8")
    assert "no node 'fc9'" in second.message.text() and not dialog.start_button.isEnabled()
    second.name.setCurrentText("fc1.out_features")
    assert dialog.start_button.isEnabled()
    dialog.sampler_box.setCurrentText("grid")  # grid search takes lists only
    assert "grid sampler takes lists only" in row.message.text() and not dialog.start_button.isEnabled()
    row.spec.setText("0.01,0.1")
    assert dialog.start_button.isEnabled() and "4 points" in dialog.status.text()
    second.remove.click()
    assert dialog.rows == [row]
    dialog.metric_box.setCurrentText("val_loss")
    assert dialog.direction_box.currentText() == "min"
    # repeats set the seed themselves: searching it too is refused at its row
    seed = dialog.add_param("seed", "1,2")
    assert dialog.start_button.isEnabled()
    dialog.repeats_box.setValue(2)
    assert "repeats set the seed" in seed.message.text() and not dialog.start_button.isEnabled()
    dialog.repeats_box.setValue(1)
    assert dialog.start_button.isEnabled() and not seed.message.isVisible()


def make_study(tmp_path: Path, name: str, trials: list[dict]) -> str:
    """A study in an SQLite file holding ``trials`` (what the real sweep leaves), its URL."""
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    dists = {"lr": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True),
             "fc1.out_features": optuna.distributions.CategoricalDistribution([4, 8, 16])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=name, storage=url, direction="maximize")
        for t in trials:
            if t["state"] == "complete":
                study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=dists, value=t["value"]))
    return url


def eight_trials() -> list[dict]:
    values = [0.61, 0.74, None, 0.88, 0.69, 0.93, 0.81, 0.77]
    lines, best = [], None
    for n, v in enumerate(values):
        if v is not None and (best is None or v > best[1]):
            best = (n, v)
        line = trial_line(n, v, *best, state="pruned" if v is None else "complete")
        line["best"]["params"] = {"lr": 10 ** (-4 + 3 * best[0] / 8), "fc1.out_features": [4, 8, 16][best[0] % 3]}
        lines.append(line)
    return lines


def feed_eight(tmp_path: Path) -> tuple[str, list[dict], str]:
    trials = eight_trials()
    url = make_study(tmp_path, "sweep-xor-1", trials)
    done = {"done": True, "study": "sweep-xor-1", "storage": url, "best": trials[-1]["best"], "trials": 8}
    body = "".join(f"emit(json.loads({json.dumps(line)!r}))\n" for line in [*trials, done])
    return body, trials, url


def test_a_sweep_fills_the_table_the_best_trial_and_both_plots(qtbot, tmp_path, xor):
    body, trials, _ = feed_eight(tmp_path)
    xor.training["epochs"] = 3  # an unsaved change: the sweep must get this, not the file
    dialog = make_dialog(qtbot, xor, tmp_path, fake_sweep(tmp_path, body))
    dialog.rows[0].spec.setText("1e-4:1e-1:log")
    dialog.add_param("fc1.out_features", "4,8,16")
    dialog.trials_box.setValue(8)
    dialog.workers_box.setValue(1)
    dialog.repeats_box.setValue(3)
    dialog.show()
    with qtbot.waitSignals([dialog.runner.ended, dialog.importance.computed], timeout=ENDED_MS):
        assert dialog.start(), dialog.status.text()
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[0] == "sweep" and argv[-1] == "--json"
    assert argv[argv.index("--trials") + 1] == "8" and argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--repeats") + 1] == "3"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--param"] == ["lr=1e-4:1e-1:log",
                                                                           "fc1.out_features=4,8,16"]
    assert argv[argv.index("--out") + 1] == str(tmp_path / "out")
    assert Path(argv[1]).name == "unsaved-1234.netcanvas.json"  # the sweep writes beside the weights target
    assert not Path(argv[1]).exists()  # the temporary copy is gone
    assert json.loads((tmp_path / "project_copy.json").read_text())["training"]["epochs"] == 3
    assert xor.path is None  # writing the copy did not point the project at it
    assert (tmp_path / "cwd.txt").read_text() == str(tmp_path / "out")

    assert dialog.table.rowCount() == 8
    headers = [dialog.table.horizontalHeaderItem(c).text() for c in range(dialog.table.columnCount())]
    assert headers == ["Trial", "State", "val_accuracy", "lr", "fc1.out_features", "Run"]
    assert dialog.table.item(2, 1).text() == "pruned" and dialog.table.item(2, 2).text() == ""
    assert dialog.table.item(5, 2).data(Qt.ItemDataRole.DisplayRole) == pytest.approx(0.93)
    assert dialog.table.item(5, 0).font().bold() and not dialog.table.item(4, 0).font().bold()
    assert dialog.best_label.text().startswith("Best trial: #5: val_accuracy 0.93")
    assert dialog.progress.value() == 8
    assert "finished: 8 trials, 1 pruned" in dialog.status.text()
    assert dialog.parallel.axes == ["lr", "fc1.out_features", "val_accuracy"], [t["params"] for t in dialog.trials]
    assert len(dialog.parallel.lines) == 7  # the complete trials
    assert set(dialog.importance.importances) == {"lr", "fc1.out_features"}
    assert dialog.importance.stack.currentWidget() is dialog.importance.plot
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_importance_needs_two_complete_trials(qtbot, tmp_path, xor):
    one = trial_line(0, 0.5, 0, 0.5)
    done = {"done": True, "study": "s", "storage": "sqlite:///nowhere.db", "best": one["best"], "trials": 1}
    body = "".join(f"emit(json.loads({json.dumps(line)!r}))\n" for line in (one, done))
    dialog = make_dialog(qtbot, xor, tmp_path, fake_sweep(tmp_path, body))
    assert run_to_end(qtbot, dialog) == ""
    assert "at least 2 complete trials" in dialog.importance.message.text()
    with pytest.raises(ValueError, match="could not read the study 'missing'"):
        study_importances(make_study(tmp_path, "other", []), "missing")
    with pytest.raises(ValueError, match="at least 2 complete trials; the study has 0"):
        study_importances(make_study(tmp_path, "empty", []), "empty")


HANGS = """\
    import subprocess
    emit({"trial": 0, "state": "complete", "params": {"lr": 0.1}, "value": 0.5, "best": None})
    signal.signal(signal.SIGINT, %s)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # like a sweep's worker
    (here / "worker.pid").write_text(str(worker.pid))
    (here / "waiting").write_text("")
    while True:
        time.sleep(0.05)
    """


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie waiting to be reaped is not running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


# the first stops its worker and exits when asked (what `netcanvas sweep` does on Ctrl+C);
# the second ignores the request: it and its worker are killed after the grace period
@pytest.mark.parametrize("on_interrupt", ["lambda *a: (worker.kill(), sys.exit(1))", "signal.SIG_IGN"])
def test_cancel_ends_the_sweep_and_its_workers(qtbot, tmp_path, xor, on_interrupt):
    dialog = make_dialog(qtbot, xor, tmp_path, fake_sweep(tmp_path, HANGS % on_interrupt))
    assert dialog.start() and dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1 and (tmp_path / "waiting").exists(), timeout=ENDED_MS)
    with qtbot.waitSignal(dialog.runner.ended, timeout=ENDED_MS) as ended:
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert ended.args[0] == "cancelled after 1 finished trial"
    assert "stopped: cancelled" in dialog.status.text()
    assert not dialog.runner.running and dialog.start_button.isEnabled()
    worker = int((tmp_path / "worker.pid").read_text())
    qtbot.waitUntil(lambda: not alive(worker), timeout=ENDED_MS)


def test_closing_the_dialog_ends_the_sweep(qtbot, tmp_path, xor):
    dialog = make_dialog(qtbot, xor, tmp_path, fake_sweep(tmp_path, HANGS % "signal.SIG_IGN"))
    dialog.show()
    assert dialog.start()
    qtbot.waitUntil(lambda: (tmp_path / "waiting").exists(), timeout=ENDED_MS)
    process = dialog.runner.process
    dialog.close()
    assert process.state() == process.ProcessState.NotRunning and not dialog.isVisible()
    worker = int((tmp_path / "worker.pid").read_text())
    qtbot.waitUntil(lambda: not alive(worker), timeout=ENDED_MS)


def test_a_saved_unchanged_project_is_passed_as_it_is(qtbot, tmp_path):
    project = load_project(example_path("xor"))
    body = "emit({'done': True, 'study': 's', 'storage': None, 'best': None, 'trials': 0})\n"
    dialog = SweepDialog(project, weights_path_for(project.path), dirty=False,
                         command=fake_sweep(tmp_path, body))
    qtbot.addWidget(dialog)
    assert dialog.project_file() == project.path
    changed = [False]
    dialog.dirty = lambda: changed[0]  # the editor's document says, at Start
    assert dialog.project_file() == project.path
    changed[0] = True
    copy = dialog.project_file()
    assert copy != project.path and copy.name == project.path.name and project.path.parent != copy.parent
    dialog.reject()
    assert not copy.exists()
    assert dialog.arguments(project.path)[1] == str(project.path)


def test_the_real_sweep_command_on_xor(qtbot, tmp_path, xor):
    dialog = make_dialog(qtbot, xor, tmp_path, None)  # this installation's `netcanvas`
    dialog.rows[0].spec.setText("0.01:0.5:log")
    dialog.add_param("fc1.out_features", "4,8")
    dialog.trials_box.setValue(2)
    dialog.workers_box.setValue(1)
    dialog.epochs_box.setValue(1)
    with qtbot.waitSignals([dialog.runner.ended, dialog.importance.computed], timeout=300_000):
        assert dialog.start(), dialog.status.text()
    assert "finished: 2 trials" in dialog.status.text(), dialog.log_view.toPlainText()
    result = dialog.runner.result
    assert result["trials"] == 2 and result["storage"].endswith("unsaved-1234.runs.sqlite")
    assert dialog.table.rowCount() == 2 and dialog.best_label.text().startswith("Best trial: #")
    store = RunStore(tmp_path / "out" / "unsaved-1234.runs.sqlite")
    try:
        runs = store.runs(sweep=result["study"])
    finally:
        store.close()
    assert sorted(r.trial for r in runs) == [0, 1] and all(r.epochs == 1 for r in runs)
    assert {dialog.table.item(i, 5).text() for i in range(2)} == {r.id for r in runs}
    assert [t["state"] for t in dialog.trials] == ["complete", "complete"]
    assert len(dialog.parallel.lines) == 2
    assert set(dialog.importance.importances) == {"lr", "fc1.out_features"}, dialog.importance.message.text()
