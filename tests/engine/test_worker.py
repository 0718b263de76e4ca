"""The training worker's protocol: in this process through run_inline, and once through a
real spawned child and a pipe."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from app.engine.examples import load_example
from app.engine.project import project_to_dict
from app.engine.training import BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent
from app.engine.training.launch import spawn_child
from app.engine.training.protocol import BATCH_SECONDS, QUEUE_SIZE, Outbox, outbox_settings, unbunch
from app.engine.training.worker import _serve, run_inline, worker_main


def run(name="xor", options=None, on_message=None, commands=None, **overrides):
    """run_inline on an example; returns (exit code, messages), bunches (a distributed run's
    process 0 sends them) taken apart."""
    project = load_example(name)
    if name == "xor" and "epochs" not in overrides:
        overrides["epochs"] = 5
    options = {"overrides": {"device": "cpu", **overrides}, **(options or {})}
    messages = []

    def send(message):
        for inner in unbunch(message):
            messages.append(inner)
            if on_message:
                on_message(inner)

    return run_inline(project, options, send, commands), messages


def events(messages, kind=None):
    found = [m[1] for m in messages if m[0] == "event"]
    return [e for e in found if kind is None or isinstance(e, kind)]


def test_xor_reports_ready_then_every_event_in_order(tmp_path):
    code, messages = run(options={"weights_path": str(tmp_path / "xor.safetensors")})
    assert code == 0
    assert messages[0][0] == "ready" and messages[-1] == ("done",)
    info = messages[0][1]
    assert info["device"] == "cpu" and info["input_shape"] == [2] and info["num_classes"] == 2
    assert info["dataset"]["name"] == "xor" and info["dataset"]["split_sizes"]["train"] == 144
    assert info["notes"] == [] and info["settings"]["epochs"] == 5
    assert [m[0] for m in messages[1:-1]] == ["event"] * (len(messages) - 2)  # nothing dropped
    batches = events(messages, BatchEvent)
    assert [e.step for e in batches] == list(range(1, 5 * 9 + 1))
    assert [e.epoch for e in events(messages, EpochEvent)] == [1, 2, 3, 4, 5]
    kinds = [e.kind for e in events(messages)]
    assert kinds.index("epoch") == 9 and kinds[-1] == "finished"  # epoch 1 after its 9 batches
    finished = messages[-2][1]
    assert finished.reason == "completed" and finished.test_accuracy is not None
    assert finished.weights_path == str(tmp_path / "xor.safetensors")
    assert (tmp_path / "xor.safetensors").exists()


def test_pause_snapshot_resume_and_stop_through_the_command_path():
    commands: queue.Queue = queue.Queue()
    seen = {"paused_at": None}

    def react(message):
        kind, value = message[0], message[1] if len(message) > 1 else None
        if isinstance(value, BatchEvent) and value.step == 3:
            commands.put(("pause",))
        elif kind == "paused":
            seen["paused_at"] = time.perf_counter()
            commands.put(("snapshot", None))
        elif isinstance(value, SnapshotEvent):
            commands.put(("resume",))
        elif isinstance(value, EpochEvent) and value.epoch == 3:
            commands.put(("stop",))

    code, messages = run(commands=commands, on_message=react, epochs=500)
    assert code == 0 and messages[-1] == ("done",)
    kinds = [m[1].kind if m[0] == "event" else m[0] for m in messages]
    paused, resumed = kinds.index("paused"), kinds.index("resumed")
    # no minibatch while paused, and the snapshot was served during the pause
    assert kinds[paused + 1:resumed] == ["snapshot"]
    assert messages[paused][1] >= 3  # acted on between minibatches, a moment after the ask
    snapshot = messages[paused + 1][1]
    assert snapshot.activations["input"].shape == (8, 2)  # the first 8 test samples
    finished = messages[-2][1]
    assert finished.reason == "stopped" and finished.test_accuracy is not None
    assert finished.epochs_run >= 3  # the stop acts between minibatches, a moment later
    assert len(events(messages, EpochEvent)) in (finished.epochs_run, finished.epochs_run - 1)


def test_a_stop_before_training_starts_trains_nothing_and_keeps_old_weights(tmp_path):
    commands: queue.Queue = queue.Queue()
    commands.put(("stop",))
    weights = tmp_path / "old.safetensors"
    weights.write_bytes(b"old")
    time.sleep(0.3)  # the listener takes the stop before the trainer exists
    code, messages = run(commands=commands, options={"weights_path": str(weights)})
    assert code == 0 and [m[0] for m in messages] == ["ready", "event", "done"]
    assert messages[1][1].reason == "stopped" and messages[1][1].steps == 0
    assert weights.read_bytes() == b"old"


def test_snapshot_samples_get_a_batch_dimension():
    sample = np.array([0.5, -0.5], dtype=np.float64)
    _, messages = run(options={"snapshot_every": 9, "snapshot_samples": sample}, epochs=1)
    snaps = events(messages, SnapshotEvent)
    assert len(snaps) == 1 and snaps[0].step == 9
    assert snaps[0].activations["input"].tolist() == [[0.5, -0.5]]


def test_a_slow_parent_loses_batch_events_only_and_is_told_how_many():
    def slow(message):
        time.sleep(0.01)

    code, messages = run(options={"queue_size": 2}, on_message=slow, epochs=20)
    assert code == 0 and messages[-1] == ("done",)
    dropped = sum(m[1] for m in messages if m[0] == "dropped")
    batches = events(messages, BatchEvent)
    finished = messages[-2][1]
    assert dropped > 0 and len(batches) + dropped == finished.steps == 20 * 9
    assert [e.epoch for e in events(messages, EpochEvent)] == list(range(1, 21))
    # each "dropped" stands exactly where the missing steps were
    step = 0
    for kind, *rest in messages:
        if kind == "dropped":
            step += rest[0]
        elif kind == "event" and isinstance(rest[0], BatchEvent):
            step += 1
            assert rest[0].step == step


def test_a_dataset_that_does_not_fit_is_an_error_before_training():
    project = load_example("lenet5")
    project.dataset["name"] = "digits"
    messages = []
    code = run_inline(project, {"overrides": {"device": "cpu"}}, messages.append)
    assert code == 0 and len(messages) == 1 and messages[0][0] == "error"
    assert "digits28" in messages[0][1] and "[1, 28, 28]" in messages[0][1]


def test_a_bad_project_and_an_absent_device_are_errors():
    data = project_to_dict(load_example("xor"))
    data["graph"]["nodes"][1]["type"] = "NoSuchLayer"
    messages = []
    assert run_inline(data, {}, messages.append) == 0
    assert messages[0][0] == "error" and "NoSuchLayer" in messages[0][1]
    code, messages = run(device="cuda:7")
    assert code == 0 and messages[0][0] == "error" and "cuda:7" in messages[0][1]


def test_an_unexpected_exception_is_a_crash_with_its_traceback(capfd):
    code, messages = run(options={"_test_crash": True})
    assert code == 1 and [m[0] for m in messages] == ["ready", "crash"]
    assert messages[1][1].startswith("Traceback") and "RuntimeError: simulated crash" in messages[1][1]
    assert "RuntimeError" in capfd.readouterr().err  # also on the child's stderr, for logs


def test_a_parent_that_stops_listening_stops_the_run():
    calls = []

    def send(message):
        calls.append(message)
        if len(calls) == 10:
            raise BrokenPipeError("the parent is gone")

    project = load_example("xor")
    started = time.perf_counter()
    assert run_inline(project, {"overrides": {"device": "cpu", "epochs": 100_000}}, send) == 0
    assert time.perf_counter() - started < 30 and len(calls) == 10
    assert not [t for t in threading.enumerate() if t.name.startswith("netcanvas-")]


def test_worker_main_in_a_spawned_process():
    options = {"overrides": {"device": "cpu", "epochs": 2}, "threads": 1}
    process, parent = spawn_child(worker_main, (project_to_dict(load_example("xor")), options))
    messages, bunches = [], 0
    try:
        while not messages or messages[-1][0] not in ("done", "error", "crash"):
            assert parent.poll(60), f"no message from the child; so far {messages}"
            message = parent.recv()
            bunched = message[0] == "bunch"
            messages.extend(message[1] if bunched else [message])  # several messages in one
            bunches += bunched
        process.join(10)
    finally:
        if process.is_alive():
            process.kill()
            process.join()
    assert process.exitcode == 0
    assert messages[0][0] == "ready" and messages[0][1]["pid"] == process.pid
    assert [e.epoch for e in events(messages, EpochEvent)] == [1, 2]
    assert [e.step for e in events(messages, BatchEvent)] == list(range(1, 19))  # all, in order
    assert bunches >= 1  # an epoch's 9 minibatches take less than the 50 ms between bunches
    finished = messages[-2][1]
    assert isinstance(finished, FinishedEvent) and finished.reason == "completed"
    with pytest.raises(EOFError):
        parent.recv()  # the child closed its end


def test_a_run_across_two_processes_reports_rank_zero_and_stops_on_command(tmp_path):
    commands: queue.Queue = queue.Queue()
    weights = tmp_path / "xor.safetensors"

    def on_message(message):
        if message[0] == "event" and isinstance(message[1], BatchEvent) and message[1].step == 20:
            commands.put(("pause",))  # not served in this mode: ignored, the run goes on
            commands.put(("stop",))

    code, messages = run(options={"nproc": 2, "weights_path": str(weights)}, on_message=on_message,
                         commands=commands, epochs=400)
    assert code == 0 and messages[0][0] == "ready" and messages[-1] == ("done",)
    info = messages[0][1]
    assert info["nproc"] == 2 and info["device"] == "2 x cpu"
    assert any("2 processes (gloo" in note for note in info["notes"])
    assert not any(m[0] == "paused" for m in messages)
    finished = events(messages, FinishedEvent)[-1]
    assert finished.reason == "stopped" and 20 <= finished.steps < 400 * 9
    assert finished.weights_path == str(weights) and weights.exists()
    steps = [e.step for e in events(messages, BatchEvent)]
    assert steps == sorted(steps) and steps[0] == 1  # process 0's minibatches, in order


def test_minibatch_events_go_in_bunches_and_other_messages_at_once():
    sent = []
    outbox = Outbox(lambda m: sent.append((time.perf_counter(), m)), limit=100, batch_seconds=0.3)

    def batch(step):
        return BatchEvent(1, step, 10, step, 0.5, None, 100.0, 0.1)

    start = time.perf_counter()
    outbox.event(batch(1))  # nothing sent lately: goes at once
    deadline = time.perf_counter() + 5
    while not sent and time.perf_counter() < deadline:
        time.sleep(0.005)
    for step in (2, 3, 4):
        outbox.event(batch(step))
    time.sleep(0.1)
    assert [m[1].step for _, m in sent] == [1]  # the next bunch waits its turn
    deadline = time.perf_counter() + 5
    while len(sent) < 4 and time.perf_counter() < deadline:
        time.sleep(0.005)
    assert [m[1].step for _, m in sent] == [1, 2, 3, 4]
    assert sent[1][0] - start >= 0.25 and sent[1][0] == min(t for t, _ in sent[1:])
    outbox.event(batch(5))
    outbox.put(("paused", 5))  # not a minibatch: goes now, after the one waiting before it
    time.sleep(0.1)
    assert [m[0] if m[0] != "event" else m[1].step for _, m in sent[4:]] == [5, "paused"]
    assert outbox.close(5) and outbox.dropped_total == 0


def test_a_longer_bunch_interval_lets_more_minibatches_wait():
    assert outbox_settings({}) == (BATCH_SECONDS, QUEUE_SIZE)
    assert outbox_settings({"batch_seconds": 0.2}) == (0.2, round(QUEUE_SIZE * 0.2 / BATCH_SECONDS))
    assert outbox_settings({"batch_seconds": 0.01}) == (0.01, QUEUE_SIZE)  # never fewer
    assert outbox_settings({"batch_seconds": 0.2, "queue_size": 7}) == (0.2, 7)  # as asked


def test_the_command_listener_sleeps_until_a_command_or_the_end():
    """It asks for a command once per command (and once more, to learn the run has ended):
    a listener that looked every few milliseconds would wake the child that often."""
    commands: queue.Queue = queue.Queue()
    calls = []

    def recv():
        calls.append(time.perf_counter())
        command = commands.get()
        if command is None:
            raise queue.Empty
        return command

    messages = []
    project = load_example("xor")

    def send(message):
        messages.append(message)
        if message[0] == "event" and isinstance(message[1], BatchEvent) and message[1].step == 200:
            commands.put(("pause",))
            threading.Timer(0.5, commands.put, (("resume",),)).start()

    code = _serve(project, {"overrides": {"device": "cpu", "epochs": 60}}, send, recv, lambda: None,
                  wake=lambda: commands.put(None))
    assert code == 0 and messages[-1] == ("done",)
    assert any(m[0] == "paused" for m in messages) and any(m[0] == "resumed" for m in messages)
    assert len(calls) == 3  # pause, resume, and the end
