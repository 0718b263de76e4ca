"""The recorder: a supervisor's run written into the store, whatever way it ends."""

from __future__ import annotations

import pytest

from app.engine.examples import load_example
from app.engine.project import project_to_dict
from app.engine.runs.recorder import NO_RESULT, RunRecorder
from app.engine.runs.store import RunStore
from app.engine.session.supervisor import RunSupervisor
from app.engine.signals import Signal
from app.engine.training.events import BatchEvent, EpochEvent, FinishedEvent
from app.engine.weights import read_metadata

RUN = "20261203-064110-ff95"


class FakeSupervisor:
    def __init__(self):
        self.ready, self.batches, self.epoch = Signal(), Signal(), Signal()
        self.finished, self.failed = Signal(), Signal()

    def connected(self) -> int:
        return sum(len(s._slots) for s in (self.ready, self.batches, self.epoch, self.finished, self.failed))


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "xor.runs.sqlite")
    yield s
    s.close()


def ready(sup, run_id=RUN):
    sup.ready.emit({"run_id": run_id, "settings": {"lr": 0.5}, "dataset": {"name": "xor"}, "device": "cpu"})


def one_epoch(sup, epoch=1, val_acc=0.75):
    sup.batches.emit([BatchEvent(epoch, b, 2, 2 * (epoch - 1) + b, 0.6, 0.5, 100.0, 0.5) for b in (1, 2)])
    sup.epoch.emit(EpochEvent(epoch, 3, 0.6, 0.5, 0.5, val_acc, 0.1, 0.5))


@pytest.mark.parametrize("reason, status", [("completed", "finished"), ("early_stopping", "finished"),
                                            ("stopped", "stopped"), ("diverged", "diverged")])
def test_the_status_follows_the_reason(store, tmp_path, reason, status):
    sup = FakeSupervisor()
    recorder = RunRecorder(store, sup, load_example("xor"), tmp_path / "xor.safetensors")
    ready(sup)
    assert recorder.run_id == RUN and recorder.recording
    one_epoch(sup)
    sup.finished.emit(FinishedEvent(reason, "said", 1, 2, 0.5, run_id=RUN))
    record = store.get(RUN)
    assert (record.status, record.message, record.epochs, record.steps) == (status, "said", 1, 2)
    assert not recorder.recording and recorder.status == status and sup.connected() == 0


def test_metrics_weights_and_the_project_as_it_was(store, tmp_path):
    sup = FakeSupervisor()
    project = load_example("xor")
    recorder = RunRecorder(store, sup, project, tmp_path / "xor.safetensors")
    project.training["lr"] = 123.0  # an edit after the start is not the run's
    ready(sup)
    one_epoch(sup, 1, 0.75)
    one_epoch(sup, 2, 0.875)
    written = tmp_path / "xor.safetensors"
    written.write_bytes(b"weights in place")
    sup.finished.emit(FinishedEvent("completed", "trained 2 epochs", 2, 4, 1.0, test_loss=0.2, test_accuracy=0.9,
                                    confusion=[[1, 0], [0, 1]], weights_path=str(written), run_id=RUN))
    record = store.get(RUN)
    assert record.project["training"]["lr"] == 0.5 and record.settings == {"lr": 0.5}
    assert (record.best_val_accuracy, record.test_accuracy, record.confusion) == (0.875, 0.9, [[1, 0], [0, 1]])
    assert store.batches(RUN)["step"] == [1, 2, 3, 4] and store.epochs(RUN)["epoch"] == [1, 2]
    own = tmp_path / "xor.runs" / f"{RUN}.safetensors"
    assert record.weights == str(own) == recorder.weights and own.read_bytes() == b"weights in place"
    assert written.read_bytes() == b"weights in place"  # the project's weights stay


def test_held_back_weights_already_in_the_runs_folder_are_not_copied(store, tmp_path):
    sup = FakeSupervisor()
    RunRecorder(store, sup, load_example("xor"), tmp_path / "xor.safetensors")
    ready(sup)
    own = tmp_path / "xor.runs" / f"{RUN}.safetensors"
    own.parent.mkdir()
    own.write_bytes(b"held back")
    sup.finished.emit(FinishedEvent("stopped", "stopped", 0, 1, 0.1, weights_path=str(own), run_id=RUN))
    assert store.get(RUN).weights == str(own) and own.read_bytes() == b"held back"
    assert [p.name for p in own.parent.iterdir()] == [own.name]


def test_a_failure_after_ready_is_a_crash_keeping_what_was_logged(store, tmp_path):
    sup = FakeSupervisor()
    RunRecorder(store, sup, load_example("xor"), None)
    ready(sup)
    one_epoch(sup)
    sup.batches.emit([BatchEvent(2, 1, 2, 3, 0.4, 0.5, 100.0, 0.5)])  # waits for the next flush
    sup.failed.emit("the training process ended unexpectedly (exit code -9)")
    record = store.get(RUN)
    assert record.status == "crashed" and "exit code -9" in record.message
    assert record.best_val_accuracy == 0.75 and store.batches(RUN)["step"] == [1, 2, 3] and record.steps == 3


def test_a_failure_before_ready_records_nothing(store):
    sup = FakeSupervisor()
    recorder = RunRecorder(store, sup, load_example("xor"), None)
    sup.failed.emit("dataset not found")
    assert store.runs() == [] and recorder.run_id is None and sup.connected() == 0


def test_a_killed_run_is_crashed_on_detach_or_when_the_next_run_starts(store):
    sup = FakeSupervisor()
    first = RunRecorder(store, sup, load_example("xor"), None)
    ready(sup, "20261203-000000-0001")
    one_epoch(sup)
    second = RunRecorder(store, sup, load_example("xor"), None)  # the editor's next run, after a kill
    ready(sup, "20261203-000000-0002")
    assert store.get("20261203-000000-0001").status == "crashed"
    assert store.get("20261203-000000-0001").message == NO_RESULT
    assert second.run_id == "20261203-000000-0002" and first.run_id == "20261203-000000-0001"
    second.detach("killed by the user")
    assert store.get("20261203-000000-0002").status == "crashed"
    assert store.get("20261203-000000-0002").message == "killed by the user"
    assert sup.connected() == 0


def test_a_store_that_fails_never_stops_the_run(store):
    sup = FakeSupervisor()
    recorder = RunRecorder(store, sup, load_example("xor"), None)
    store.close()  # every write now fails
    ready(sup)
    one_epoch(sup)
    sup.finished.emit(FinishedEvent("completed", "done", 1, 2, 0.1, run_id=RUN))
    assert recorder.error and not recorder.recording


def test_a_real_inline_run_is_recorded_under_the_trainers_id(store, tmp_path):
    supervisor = RunSupervisor()
    project = load_example("xor")
    weights = tmp_path / "xor.safetensors"
    recorder = RunRecorder(store, supervisor, project, weights)
    supervisor.start(project, where="inline", weights_path=weights, overrides={"epochs": 2, "device": "cpu"})
    result = supervisor.wait(timeout=120)
    assert result is not None and result.run_id == recorder.run_id == supervisor.info["run_id"]
    record = store.get(result.run_id)
    assert record.status == "finished" and record.epochs == 2 and record.project == project_to_dict(project)
    assert record.settings["epochs"] == 2 and record.dataset["split_sizes"]["train"] == 144
    assert len(store.batches(record.id)["step"]) == record.steps == result.steps
    assert record.weights == str(tmp_path / "xor.runs" / f"{record.id}.safetensors")
    assert read_metadata(record.weights)["run_id"] == read_metadata(weights)["run_id"] == record.id
