"""RunSupervisor without Qt: real runs in a thread, in child processes, in a warm worker and
across two processes, driven through its methods and read through its Signals."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from app.engine.examples import load_example
from app.engine.session.supervisor import STOPPED_WHILE_STARTING, RunSupervisor
from tests.helpers import gone
from app.engine.training.events import BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent

LONG = {"device": "cpu", "epochs": 100_000}
TIMEOUT = 60.0  # a fresh process imports torch before it says "ready"


@pytest.fixture
def supervisor():
    s = RunSupervisor(tick_seconds=0.05)
    yield s
    s.shutdown()


def record(s: RunSupervisor) -> dict:
    seen = {name: [] for name in ("ready", "batches", "batch", "epoch", "snapshot", "finished", "failed",
                                  "state_changed")}
    for name, items in seen.items():
        getattr(s, name).connect(lambda *args, items=items: items.append(args[0]))
    return seen


def until(s: RunSupervisor, condition, timeout: float = TIMEOUT) -> None:
    """Poll ``s`` (blocking on its run between polls) until ``condition()`` holds."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        if s.running:
            s.wait(0.05)
        else:
            s.poll()
            time.sleep(0.01)


def test_an_inline_run_goes_to_its_end_and_fills_the_metrics(supervisor, tmp_path):
    seen = record(supervisor)
    weights = tmp_path / "xor.safetensors"
    supervisor.start(load_example("xor"), where="inline", weights_path=weights,
                     overrides={"device": "cpu", "epochs": 3})
    assert supervisor.state == "starting" and supervisor.pid == os.getpid()
    with pytest.raises(RuntimeError):
        supervisor.start(load_example("xor"), where="inline")
    finished = supervisor.wait(TIMEOUT)
    assert isinstance(finished, FinishedEvent) and finished.reason == "completed"
    assert finished.weights_path == str(weights) and weights.exists()
    assert not supervisor.busy and not [t for t in threading.enumerate() if t.name.startswith("netcanvas-")]
    assert seen["state_changed"] == ["starting", "running", "idle"] and seen["finished"] == [finished]
    assert seen["ready"][0]["input_shape"] == [2] and supervisor.info == seen["ready"][0]
    assert [e.epoch for e in seen["epoch"]] == [1, 2, 3] and seen["failed"] == []
    assert [e for events in seen["batches"] for e in events] == seen["batch"]
    assert [e.step for e in seen["batch"]] == list(range(1, 28))
    assert len(supervisor.metrics.batches) == 27 and list(supervisor.metrics.epochs["epoch"]) == [1, 2, 3]
    with pytest.raises(ValueError):
        supervisor.start(load_example("xor"), where="elsewhere")


def test_a_run_in_a_process_pauses_serves_a_snapshot_resumes_and_stops(supervisor, tmp_path):
    seen = record(supervisor)
    weights = tmp_path / "xor.safetensors"
    supervisor.start(load_example("xor"), weights_path=weights, overrides=LONG, threads=1)
    until(supervisor, lambda: seen["epoch"])
    assert supervisor.pid == supervisor.info["pid"] != os.getpid()
    supervisor.pause()
    assert supervisor.paused
    until(supervisor, lambda: supervisor.state == "paused")
    count = len(seen["batch"])
    supervisor.request_snapshot()
    until(supervisor, lambda: seen["snapshot"])
    assert isinstance(seen["snapshot"][0], SnapshotEvent) and seen["snapshot"][0].activations["input"].shape == (8, 2)
    assert len(seen["batch"]) == count  # nothing trained while paused
    supervisor.resume()
    until(supervisor, lambda: len(seen["batch"]) > count + 20)
    supervisor.stop()
    assert supervisor.state == "stopping"
    pid = supervisor.pid
    finished = supervisor.wait(TIMEOUT)
    assert finished.reason == "stopped" and finished.weights_path == str(weights) and weights.exists()
    assert seen["state_changed"] == ["starting", "running", "paused", "running", "stopping", "idle"]
    assert len(seen["batch"]) + supervisor.dropped_batches == finished.steps
    until(supervisor, lambda: not supervisor.busy)  # exited and reaped
    assert gone(pid)


def test_stop_while_the_process_starts_ends_it_at_once(supervisor):
    seen = record(supervisor)
    supervisor.start(load_example("xor"), overrides=LONG, threads=1)
    pid = supervisor.pid
    supervisor.stop()
    assert supervisor.state == "idle" and not supervisor.running  # at once, not after the start-up
    event = seen["finished"][0]
    assert event.reason == "stopped" and event.message == STOPPED_WHILE_STARTING and event.steps == 0
    assert seen["state_changed"] == ["starting", "idle"] and supervisor.wait() is event
    until(supervisor, lambda: not supervisor.busy)
    assert gone(pid) and seen["failed"] == [] and seen["batch"] == []


def test_a_killed_child_fails_and_kill_leaves_no_zombie(supervisor):
    seen = record(supervisor)
    supervisor.start(load_example("xor"), overrides=LONG, threads=1)
    until(supervisor, lambda: seen["batch"])
    pid = supervisor.pid
    os.kill(pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    assert supervisor.wait(TIMEOUT) is None
    assert seen["failed"][0].startswith("the training process ended unexpectedly (exit code -9)")
    assert supervisor.state == "idle" and gone(pid)

    supervisor.start(load_example("xor"), overrides=LONG, threads=1)
    until(supervisor, lambda: supervisor.state == "running")
    pid = supervisor.pid
    supervisor.kill()
    assert gone(pid) and supervisor.state == "idle" and not supervisor.busy
    assert len(seen["failed"]) == 1 and seen["finished"] == []


def test_a_crash_is_reported_with_its_last_line(supervisor):
    seen = record(supervisor)
    supervisor.start(load_example("xor"), where="inline", overrides={"device": "cpu"}, _test_crash=True)
    assert supervisor.wait(TIMEOUT) is None
    assert len(seen["ready"]) == 1  # the crash came after the run was ready
    assert seen["failed"] == ["RuntimeError: simulated crash after ready (the _test_crash option)"]
    assert supervisor.last_traceback.startswith("Traceback") and not supervisor.running


def test_a_warm_worker_takes_the_run_and_a_fresh_one_waits_for_the_next():
    supervisor = RunSupervisor(tick_seconds=0.05, keep_warm=True)
    try:
        first = supervisor.warm_pid
        assert first is not None
        supervisor.start(load_example("xor"), overrides={"device": "cpu", "epochs": 2}, threads=1)
        assert supervisor.pid == first and supervisor.warm_pid is None  # none is made while it trains
        assert supervisor.wait(TIMEOUT).reason == "completed" and supervisor.info["pid"] == first
        second = supervisor.warm_pid
        assert second not in (None, first)
        supervisor.start(load_example("xor"), overrides={"device": "cpu", "epochs": 1}, threads=1)
        assert supervisor.pid == second
        assert supervisor.wait(TIMEOUT).reason == "completed"
        until(supervisor, lambda: gone(first) and not supervisor.busy)
        third = supervisor.warm_pid
    finally:
        supervisor.shutdown()
    assert gone(second) and gone(third)


def test_two_processes_on_the_cpu_through_the_supervisor(supervisor, tmp_path):
    seen = record(supervisor)
    weights = tmp_path / "xor.safetensors"
    supervisor.start(load_example("xor"), where="inline", nproc=2, weights_path=weights,
                     overrides={"device": "cpu", "epochs": 2})
    finished = supervisor.wait(TIMEOUT)
    assert finished is not None and finished.reason == "completed", seen["failed"]
    assert supervisor.info["nproc"] == 2 and supervisor.info["backend"] == "gloo"
    assert [e.epoch for e in seen["epoch"]] == [1, 2] and weights.exists()
    steps = [e.step for e in seen["batch"]]
    assert steps == sorted(steps) and steps[0] == 1  # process 0's minibatches, bunched, in order


def test_a_bunch_comes_as_lists_of_minibatches_around_other_messages(supervisor):
    """One ``batches`` emission for each run of minibatches in a bunch, then ``batch`` for
    each of them; other messages in their place in between."""
    seen = []
    supervisor.batches.connect(lambda events: seen.append(("batches", [e.step for e in events])))
    supervisor.batch.connect(lambda e: seen.append(("batch", e.step)))
    supervisor.epoch.connect(lambda e: seen.append(("epoch", e.epoch)))

    def batch(step):
        return ("event", BatchEvent(1, step, 3, step, 0.5, None, 100.0, 0.1))

    epoch = ("event", EpochEvent(1, 2, 0.5, None, None, None, 1.0, 0.1))
    supervisor._handle(("bunch", [batch(1), batch(2), epoch, ("dropped", 4), batch(3)]))
    assert seen == [("batches", [1, 2]), ("batch", 1), ("batch", 2), ("epoch", 1), ("batches", [3]), ("batch", 3)]
    assert supervisor.dropped_batches == 4
    assert list(supervisor.metrics.batches["step"]) == [1, 2, 3] and len(supervisor.metrics.epochs) == 1
