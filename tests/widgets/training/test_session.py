"""TrainingSession: real child processes driven through the session's Qt signals (the
supervisor under it: tests/engine/session/test_supervisor.py)."""

from __future__ import annotations

import gc
import os
import signal
import sys

import pytest

from app.engine.examples import load_example
from app.engine.training import BatchEvent, EpochEvent, FinishedEvent
from app.engine.session.supervisor import STOPPED_WHILE_STARTING, TRAINING_NICE, TRAINING_POLICY
from tests.helpers import gone
from app.widgets.training.session import TrainingSession

START = 60_000  # a fresh process imports torch before it says "ready"
RUN = 60_000


@pytest.fixture
def session(qtbot):
    s = TrainingSession()
    yield s
    s.kill()


def record(session):
    seen = {"batch": [], "batches": [], "epoch": [], "states": []}
    session.batch.connect(seen["batch"].append)
    session.batches.connect(seen["batches"].append)
    session.epoch.connect(seen["epoch"].append)
    session.state_changed.connect(seen["states"].append)
    return seen


def thread_nices(pid: int) -> set[int]:
    """The nice value of each thread of a process (Linux /proc)."""
    nices = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            nices.add(int(f.read().rsplit(")", 1)[1].split()[16]))
    return nices


def thread_policies(pid: int) -> set[int]:
    """The scheduling policy of each thread of a process (Linux)."""
    return {os.sched_getscheduler(int(task)) for task in os.listdir(f"/proc/{pid}/task")}


def test_xor_trains_with_pause_resume_and_a_stop(qtbot, session, tmp_path):
    seen = record(session)
    weights = tmp_path / "xor.safetensors"
    with qtbot.waitSignal(session.ready, timeout=START) as ready:
        session.start(load_example("xor"), weights_path=weights,
                      overrides={"device": "cpu", "epochs": 100_000}, threads=1)
        assert session.running and session.state == "starting"
    info = ready.args[0]
    assert info["device"] == "cpu" and info["input_shape"] == [2] and info["num_classes"] == 2
    assert info["dataset"]["name"] == "xor" and session.info == info
    with qtbot.waitSignal(session.epoch, timeout=RUN) as first:
        pass
    assert isinstance(first.args[0], EpochEvent)
    if sys.platform.startswith("linux"):  # every thread of the run: its fair share, and no wake-up preempts the editor
        expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + TRAINING_NICE)
        assert thread_nices(info["pid"]) == {expected}
        assert TRAINING_POLICY == "batch" and thread_policies(info["pid"]) == {os.SCHED_BATCH}

    with qtbot.waitSignal(session.state_changed, timeout=RUN, check_params_cb=lambda s: s == "paused"):
        session.pause()
        assert session.paused
    count = len(seen["batch"])
    qtbot.wait(500)
    assert len(seen["batch"]) == count and session.state == "paused"
    with qtbot.waitSignal(session.snapshot, timeout=RUN) as snap:  # served while paused
        session.request_snapshot()
    assert snap.args[0].activations["input"].shape == (8, 2)
    assert len(seen["batch"]) == count

    with qtbot.waitSignal(session.state_changed, timeout=RUN, check_params_cb=lambda s: s == "running"):
        session.resume()
    qtbot.waitUntil(lambda: len(seen["batch"]) > count + 20, timeout=RUN)
    with qtbot.waitSignal(session.finished, timeout=RUN) as finished:
        session.stop()
        assert session.state == "stopping"
    event = finished.args[0]
    assert isinstance(event, FinishedEvent) and event.reason == "stopped"
    assert event.test_accuracy is not None and event.weights_path == str(weights) and weights.exists()
    assert seen["states"] == ["starting", "running", "paused", "running", "stopping", "idle"]
    assert not session.running and session.state == "idle"
    steps = [e.step for e in seen["batch"]]
    assert steps == sorted(steps) and len(steps) + session.dropped_batches == event.steps
    # the same minibatches came in lists, several at a time
    assert [e for events in seen["batches"] for e in events] == seen["batch"]
    assert max(len(events) for events in seen["batches"]) > 1
    qtbot.waitUntil(lambda: gone(info["pid"]), timeout=10_000)  # exited and reaped


def test_a_run_that_completes_then_the_next_one_diverges(qtbot, session):
    seen = record(session)
    with qtbot.waitSignal(session.finished, timeout=START) as finished:
        session.start(load_example("xor"), overrides={"device": "cpu", "epochs": 3})
    assert finished.args[0].reason == "completed" and finished.args[0].test_accuracy is not None
    assert [e.epoch for e in seen["epoch"]] == [1, 2, 3]
    assert all(isinstance(e, BatchEvent) for e in seen["batch"])
    # the NaN case: a huge learning rate ends the run with advice, not an exception
    with qtbot.waitSignal(session.finished, timeout=START) as finished:
        session.start(load_example("mlp"), overrides={"device": "cpu", "lr": 1e9})
    event = finished.args[0]
    assert event.reason == "diverged" and not event.ok
    assert "learning rate" in event.message and event.test_accuracy is None


def test_a_dataset_that_does_not_fit_fails_before_training(qtbot, session):
    project = load_example("lenet5")
    project.dataset["name"] = "digits"
    with qtbot.waitSignal(session.failed, timeout=START) as failed:
        session.start(project, overrides={"device": "cpu"})
    assert "digits28" in failed.args[0] and session.state == "idle" and not session.running


def test_a_crash_in_the_child_is_reported_with_its_last_line(qtbot, session):
    ready = []
    session.ready.connect(ready.append)
    with qtbot.waitSignal(session.failed, timeout=START) as failed:
        session.start(load_example("xor"), overrides={"device": "cpu"}, _test_crash=True)
    message = failed.args[0]
    assert len(ready) == 1  # the crash came after the run was ready
    assert message == "RuntimeError: simulated crash after ready (the _test_crash option)"
    assert session.last_traceback.startswith("Traceback") and not session.running


@pytest.mark.skipif(sys.platform == "win32", reason="signals and zombies are POSIX things")
def test_a_child_that_dies_is_reported_and_kill_leaves_no_zombie(qtbot, session):
    with qtbot.waitSignal(session.epoch, timeout=START):
        session.start(load_example("xor"), overrides={"device": "cpu", "epochs": 100_000}, threads=1)
    pid = session.pid
    with qtbot.waitSignal(session.failed, timeout=RUN) as failed:
        os.kill(pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    assert failed.args[0].startswith("the training process ended unexpectedly (exit code -9)")
    assert session.state == "idle" and gone(pid)

    with qtbot.waitSignal(session.batch, timeout=START):
        session.start(load_example("xor"), overrides={"device": "cpu", "epochs": 100_000}, threads=1)
    pid = session.pid
    with qtbot.assertNotEmitted(session.failed, wait=300), qtbot.assertNotEmitted(session.finished):
        session.kill()
    assert gone(pid) and session.state == "idle" and not session.running


@pytest.mark.skipif(sys.platform == "win32", reason="zombies are a POSIX thing")
def test_deleting_the_session_ends_its_process(qtbot):
    s = TrainingSession()
    with qtbot.waitSignal(s.ready, timeout=START):
        s.start(load_example("xor"), overrides={"device": "cpu", "epochs": 100_000}, threads=1)
    pid = s.pid
    with qtbot.waitSignal(s.destroyed, timeout=5000):
        s.deleteLater()
    del s
    gc.collect()
    assert gone(pid)


@pytest.mark.skipif(sys.platform == "win32", reason="zombies are a POSIX thing")
def test_stop_while_the_process_starts_ends_it_at_once(qtbot, session):
    """The child imports torch and loads the data for seconds before it says "ready":
    Stop ends it at once (it has trained and written nothing), the session is idle again
    with a "stopped" FinishedEvent, no failure, and no process is left behind."""
    seen = record(session)
    failures = []
    session.failed.connect(failures.append)
    with qtbot.waitSignal(session.finished, timeout=1000) as finished:
        session.start(load_example("xor"), overrides={"device": "cpu", "epochs": 100_000}, threads=1)
        pid = session.pid
        assert session.state == "starting"
        session.stop()
        assert session.state == "idle" and not session.running  # at once, not after the start-up
    event = finished.args[0]
    assert event.reason == "stopped" and event.message == STOPPED_WHILE_STARTING and event.steps == 0
    assert event.weights_path is None and seen["states"] == ["starting", "idle"]
    qtbot.waitUntil(lambda: gone(pid), timeout=10_000)  # ended and reaped: no zombie
    qtbot.wait(300)
    assert failures == [] and seen["batch"] == []
    session.start(load_example("xor"), overrides={"device": "cpu"}, threads=1)  # the next run may start
    assert session.running
