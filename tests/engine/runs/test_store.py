"""The run store: SQLite beside the project, WAL, retries while locked, schema versions, stale
runs, each run's weights, and a recording process killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

from app.engine.errors import NetCanvasError
from app.engine.examples import load_example
from app.engine.project import project_to_dict
from app.engine.runs.store import (SCHEMA_VERSION, STATUSES, RunNotFound, RunStore, StoreError, migrate,
                                   read_version, store_path_for, use_run_weights, use_weights)
from app.engine.weights import new_run_id, runs_dir

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "xor.runs.sqlite")
    yield s
    s.close()


def begin(store, run_id=None, **kw):
    run_id = run_id or new_run_id()
    store.begin(run_id, load_example("xor"), {"lr": 0.5, "epochs": 2}, {"name": "xor", "split_sizes": {"train": 144}},
                "cpu", **kw)
    return run_id


def a_dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_store_lies_beside_the_weights_and_its_runs_folder():
    assert store_path_for("/p/lenet.safetensors") == Path("/p/lenet.runs.sqlite")
    assert store_path_for("/p/lenet.safetensors").with_suffix("") == runs_dir("/p/lenet.safetensors")


def test_a_run_round_trips_with_its_metrics(store, tmp_path):
    run_id = begin(store)
    record = store.get(run_id)
    assert record.status == "running" and record.ended is None and record.pid == os.getpid()
    assert record.host == socket.gethostname() and record.device == "cpu"
    assert record.project == project_to_dict(load_example("xor"))
    assert record.settings == {"lr": 0.5, "epochs": 2} and record.dataset["name"] == "xor"
    assert set(record.versions) == {"netcanvas", "torch", "python"} and record.versions["torch"]
    store.log_batches(run_id, [(1, 1, 0.7, 0.5, 0.5), (2, 1, float("nan"), None, 0.5)])
    store.log_epoch(run_id, 1, 0.6, 0.7, 0.5, 0.75, 0.5, 0.1)
    store.log_epoch(run_id, 2, 0.4, 0.8, 0.45, 0.70, 0.5, 0.1)
    store.finish(run_id, "finished", "trained 2 epochs", test_loss=0.3, test_accuracy=0.9,
                 confusion=[[3, 1], [0, 4]], epochs=2, steps=18, seconds=1.5)
    record = store.get(run_id)
    assert record.status == "finished" and record.ended >= record.started and record.duration == 1.5
    assert (record.best_val_accuracy, record.best_val_loss) == (0.75, 0.45)
    assert (record.test_accuracy, record.confusion, record.epochs, record.steps) == (0.9, [[3, 1], [0, 4]], 2, 18)
    assert store.batches(run_id) == {"step": [1, 2], "epoch": [1, 1], "loss": [0.7, None], "accuracy": [0.5, None],
                                     "lr": [0.5, 0.5]}
    assert store.epochs(run_id)["val_accuracy"] == [0.75, 0.70]
    assert store.integrity_ok()


def test_runs_are_listed_newest_first_and_by_sweep(store):
    first = begin(store, "20261203-000000-0001")
    second = begin(store, "20261203-000001-0002", sweep="s1", trial=0, params={"lr": 0.01})
    assert [r.id for r in store.runs()] == [second, first]
    [trial] = store.runs(sweep="s1")
    assert (trial.sweep, trial.trial, trial.params) == ("s1", 0, {"lr": 0.01})
    with pytest.raises(StoreError, match="already has a run"):
        begin(store, first)


def test_an_unknown_run_names_the_id_and_the_file(store):
    with pytest.raises(RunNotFound) as e:
        store.get("nope")
    assert "'nope'" in str(e.value) and str(store.path) in str(e.value)
    with pytest.raises(RunNotFound):
        store.finish("nope", "finished", "x")
    assert isinstance(e.value, NetCanvasError)


def test_status_note_tags_and_delete(store):
    run_id = begin(store)
    store.finish(run_id, "stopped", "stopped by the user")
    store.set_status(run_id, "pruned", "pruned at epoch 1")
    store.set_note(run_id, "baseline")
    store.set_tags(run_id, ["a", "b", "a"])
    record = store.get(run_id)
    assert (record.status, record.message, record.note, record.tags) == ("pruned", "pruned at epoch 1", "baseline",
                                                                         ["a", "b"])
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_status(run_id, "weird")
    assert set(STATUSES) == {"running", "finished", "stopped", "diverged", "crashed", "pruned"}
    own = store.run_weights_path(run_id)
    own.parent.mkdir()
    own.write_bytes(b"w")
    store.log_epoch(run_id, 1, 1, 1, 1, 1, 1, 1)
    store.finish(run_id, "finished", "done", weights=str(own))
    assert store.get(run_id).weights == str(own)
    store.delete(run_id)
    assert not own.exists() and store.runs() == [] and store.epochs(run_id)["epoch"] == []
    with pytest.raises(RunNotFound):
        store.delete(run_id)


def test_wal_mode_and_only_prefixed_tables(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables and all(t.startswith("netcanvas_") for t in tables)
    assert read_version(conn) == SCHEMA_VERSION == 1
    conn.close()


def test_an_optuna_storage_shares_the_file(tmp_path):
    import optuna  # here: only this test needs it

    path = tmp_path / "xor.runs.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with RunStore(path) as s:
        begin(s)
        assert len(s.runs()) == 1 and s.integrity_ok()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{path}").trials) == 1


def test_a_newer_store_is_refused_naming_the_file_and_both_versions(tmp_path):
    path = tmp_path / "x.runs.sqlite"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE netcanvas_schema SET version = 7")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as e:
        RunStore(path)
    text = str(e.value)
    assert str(path) in text and "version 7" in text and f"up to {SCHEMA_VERSION}" in text and "newer" in text


def test_an_older_store_is_migrated_step_by_step_keeping_its_runs(tmp_path):
    path = tmp_path / "x.runs.sqlite"
    with RunStore(path) as s:
        run_id = begin(s)
    conn = sqlite3.connect(path, isolation_level=None)

    def to_v2(c):
        c.execute("ALTER TABLE netcanvas_runs ADD COLUMN colour TEXT DEFAULT 'red'")

    assert migrate(conn, path, target=2, migrations={1: to_v2}) == 1
    assert read_version(conn) == 2
    assert conn.execute("SELECT id, colour FROM netcanvas_runs").fetchall() == [(run_id, "red")]
    with pytest.raises(StoreError, match="no migration from version 2 to 4"):
        migrate(conn, path, target=4, migrations={})
    assert read_version(conn) == 2  # nothing half done
    conn.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "x.runs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(path)


def test_a_write_waits_for_another_process_lock_and_gives_up_clearly(tmp_path):
    path = tmp_path / "x.runs.sqlite"
    RunStore(path).close()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    with RunStore(path, retry_seconds=0.3) as s:
        with pytest.raises(StoreError, match="stayed locked by another process"):
            begin(s)
    released = threading.Event()

    def release():
        other.execute("COMMIT")
        released.set()

    with RunStore(path, retry_seconds=30) as s:
        timer = threading.Timer(0.2, release)
        timer.start()
        run_id = begin(s)  # blocks until the other connection lets go
        assert released.is_set() and s.get(run_id).status == "running"
        timer.join()
    other.close()


def test_fail_stale_marks_only_runs_of_dead_processes_on_this_host(store):
    dead, alive, elsewhere = begin(store), begin(store), begin(store)
    store.log_epoch(dead, 1, 0.5, 0.6, 0.4, 0.8, 0.1, 1.0)
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE netcanvas_runs SET pid = ?, process_start = '' WHERE id = ?", (a_dead_pid(), dead))
    conn.execute("UPDATE netcanvas_runs SET host = 'another-host', pid = 1 WHERE id = ?", (elsewhere,))
    conn.commit()
    conn.close()
    assert store.fail_stale() == [dead]
    record = store.get(dead)
    assert record.status == "crashed" and "ended before the run did" in record.message
    assert record.best_val_accuracy == 0.8 and record.epochs == 1  # what it had logged is kept
    assert store.get(alive).status == store.get(elsewhere).status == "running"
    assert store.fail_stale() == []


def test_a_reused_pid_is_not_taken_for_the_recording_process(store):
    run_id = begin(store)
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE netcanvas_runs SET process_start = 'another start' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    expected = [run_id] if Path("/proc/self/stat").exists() else []
    assert store.fail_stale() == expected


def test_use_weights_copies_atomically_and_keeps_unrecorded_weights(store, tmp_path):
    run_id = begin(store)
    own = store.run_weights_path(run_id)
    own.parent.mkdir()
    own.write_bytes(b"run weights")
    store.finish(run_id, "finished", "done", weights=str(own))
    target = tmp_path / "xor.safetensors"
    target.write_bytes(b"older weights nobody recorded")
    result, aside = use_run_weights(store, run_id, target)
    assert result == target and target.read_bytes() == b"run weights"
    assert aside is not None and aside.parent == store.runs_dir
    assert aside.read_bytes() == b"older weights nobody recorded"
    assert use_weights(store, run_id, target) == target
    bare = begin(store)
    store.finish(bare, "diverged", "diverged")
    with pytest.raises(NetCanvasError, match=f"run {bare} has no weights file"):
        use_weights(store, bare, target)
    assert target.read_bytes() == b"run weights"


RECORDING_CHILD = textwrap.dedent("""
    import sys
    from app.engine.examples import load_example
    from app.engine.runs.recorder import RunRecorder
    from app.engine.runs.store import RunStore
    from app.engine.signals import Signal
    from app.engine.training.events import BatchEvent, EpochEvent

    class Supervisor:
        def __init__(self):
            self.ready, self.batches, self.epoch = Signal(), Signal(), Signal()
            self.finished, self.failed = Signal(), Signal()

    supervisor = Supervisor()
    store = RunStore(sys.argv[1])
    recorder = RunRecorder(store, supervisor, load_example("xor"), sys.argv[1] + ".safetensors")
    supervisor.ready.emit({"run_id": "20261203-000000-dead", "settings": {"epochs": 10**6}, "dataset": {},
                           "device": "cpu"})
    step = 0
    for epoch in range(1, 10**6):
        for _ in range(20):
            step += 1
            supervisor.batches.emit([BatchEvent(epoch, 1, 20, step, 0.5, 0.5, 1.0, 0.1)] * 1)
        supervisor.epoch.emit(EpochEvent(epoch, 10**6, 0.5, 0.5, 0.4, 0.6, 0.01, 0.1))
        if epoch == 3:
            print("recording", flush=True)
""")


def test_a_recording_process_killed_mid_run_leaves_a_sound_store_and_a_crashed_run(tmp_path):
    path = tmp_path / "xor.runs.sqlite"
    child = subprocess.Popen([sys.executable, "-c", RECORDING_CHILD, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "recording"
        with RunStore(path) as s:  # it writes on: a few more epochs go in while we look
            assert s.get("20261203-000000-dead").status == "running"
            assert s.fail_stale() == []  # its process is alive
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with RunStore(path) as s:
        assert s.integrity_ok()
        assert s.fail_stale() == ["20261203-000000-dead"]
        record = s.get("20261203-000000-dead")
        assert record.status == "crashed" and record.epochs >= 3 and record.best_val_accuracy == 0.6
        assert len(s.epochs(record.id)["epoch"]) == record.epochs
        assert len(s.batches(record.id)["step"]) >= 60


def test_writers_on_separate_connections_all_get_their_rows_in(tmp_path):
    path = tmp_path / "xor.runs.sqlite"
    RunStore(path).close()
    errors = []

    def writer(n):
        try:
            with RunStore(path) as s:
                run_id = begin(s, f"20261203-000000-000{n}")
                for step in range(1, 41):
                    s.log_batches(run_id, [(step, 1, 0.5, 0.5, 0.1)])
                s.log_epoch(run_id, 1, 0.5, 0.5, 0.5, 0.5, 0.1, 1.0)
                s.finish(run_id, "finished", "done", steps=40, epochs=1)
        except Exception as e:  # reported below: a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with RunStore(path) as s:
        assert s.integrity_ok() and len(s.runs()) == 4
        assert all(r.status == "finished" and len(s.batches(r.id)["step"]) == 40 for r in s.runs())


def test_a_run_still_recorded_by_a_live_process_is_not_deleted(store):
    run_id = begin(store)
    with pytest.raises(NetCanvasError, match=f"run {run_id} is still running"):
        store.delete(run_id)
    with pytest.raises(NetCanvasError, match="still running: its weights come when it ends"):
        use_weights(store, run_id, store.path.with_name("xor.safetensors"))
    store.mark_crashed(run_id, "gone")
    store.delete(run_id)
    assert store.runs() == []
