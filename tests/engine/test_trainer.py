"""The trainer: convergence on the examples, control from another thread, failures."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from app.engine import config, health
from app.engine.compiler import compile_graph
from app.engine.datasets.base import RawData, prepare
from app.engine.errors import DatasetError, DeviceError, TrainingError
from app.engine.examples import load_example
from app.engine.project import Project
from app.engine.training import (BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent, Trainer, as_dict,
                                 prepare_run)
from app.engine.training.protocol import unbunch
from app.engine.training.worker import run_inline
from app.engine.weights import load_weights
from tests.helpers import chain

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist-t10k"


def collect(run, **kw):
    events = []
    result = Trainer(run, events.append, **kw).run()
    return result, events


def blobs(n=240, classes=3, features=4, seed=0) -> RawData:
    """Separable gaussian blobs: a dataset that trains in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = rng.normal(0, 4, (classes, features))
    x = (centers[y] + rng.normal(0, 0.5, (n, features))).astype(np.float32)
    return RawData(x, y, [str(i) for i in range(classes)], "blobs")


def mlp_project(out=3, features=4, tail=(), **training) -> Project:
    g = chain(("input", "Input", {"shape": [features]}), ("fc1", "Linear", {"out_features": 16}),
              ("relu", "ReLU"), ("fc2", "Linear", {"out_features": out}), *tail)
    p = Project(g, "blobs")
    p.training.update({"epochs": 3, "lr": 0.05, "batch_size": 16, "device": "cpu", **training})
    return p


def test_xor_example_reaches_100_percent():
    result, events = collect(prepare_run(load_example("xor"), device="cpu"))
    assert result.reason == "completed"
    assert result.test_accuracy == 1.0
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert len(epochs) == 30 and epochs[-1].train_loss < epochs[0].train_loss


def test_mlp_example_reaches_95_percent_on_digits(tmp_path):
    run = prepare_run(load_example("mlp"), device="cpu")
    result, events = collect(run, weights_path=tmp_path / "mlp.safetensors")
    assert result.test_accuracy >= 0.95, result
    batch = [e for e in events if isinstance(e, BatchEvent)]
    assert batch and all(e.loss > 0 and 0 <= e.accuracy <= 1 and e.samples_per_second > 0 for e in batch)
    assert [e.step for e in batch] == list(range(1, len(batch) + 1))
    assert result.confusion is not None and len(result.confusion) == 10
    assert sum(map(sum, result.confusion)) == len(run.dataset.test) == 359  # 20% of 1,797
    assert all(t != p for _, t, p in result.misclassified)
    # the weights file holds the trained model: reloaded, it scores the same
    run = prepare_run(load_example("mlp"), device="cpu")
    fresh = Trainer(run)
    load_weights(fresh.model, tmp_path / "mlp.safetensors")
    assert fresh.evaluate(run.dataset.test)[1] == pytest.approx(result.test_accuracy)


@pytest.mark.slow
def test_lenet5_on_real_mnist_reaches_97_percent():
    if not MNIST.is_dir():
        pytest.skip(f"the real MNIST test set is not at {MNIST} (a plain clone has no shared/ data)")
    from app.engine.datasets.idx import read_idx

    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")
    x = images.reshape(-1, 1, 28, 28).astype(np.float32) / 255
    raw = RawData(x[:8000], labels[:8000].astype(np.int64), [str(i) for i in range(10)], "MNIST",
                  test=(x[8000:], labels[8000:].astype(np.int64)), image=True)
    data = prepare(raw, "mnist", {"validation_fraction": 0.05, "normalize": True, "seed": 0})
    project = load_example("lenet5")
    project.training.update({"epochs": 4, "device": "cpu", "lr": 0.02, "batch_size": 64})
    result, _ = collect(prepare_run(project, dataset=data))
    assert len(data.test) == 2000
    assert result.test_accuracy >= 0.97, result.test_accuracy


@pytest.mark.parametrize("name", ["linear", "lenet5", "three_conv", "deep_mlp", "autoencoder",
                                  "resnet", "lstm"])
def test_every_example_trains_offline(name):
    project = load_example(name)
    run = prepare_run(project, epochs=1, device="cpu")
    # a few minibatches are enough to show it runs end to end; stop then
    seen = []

    def stop_after_three(event):
        seen.append(event)
        if isinstance(event, BatchEvent) and event.step == 3:
            trainer.stop()

    trainer = Trainer(run, stop_after_three)
    result = trainer.run()
    assert result.reason == "stopped" and result.steps == 3
    losses = [e.loss for e in seen if isinstance(e, BatchEvent)]
    assert len(losses) == 3 and all(np.isfinite(losses))
    if name == "autoencoder":
        assert all(e.accuracy is None for e in seen if isinstance(e, BatchEvent))
        assert result.test_accuracy is None and result.test_loss is not None
    else:
        assert result.test_accuracy is not None


def test_nan_loss_stops_with_a_message_suggesting_a_lower_rate():
    project = mlp_project(lr=1e9, momentum=0.9)
    result, events = collect(prepare_run(project, dataset=prepare(blobs(), "blobs", {})))
    assert result.reason == "diverged" and not result.ok
    assert "learning rate" in result.message and "1e+09" in result.message
    assert "try 0.01" in result.message
    assert isinstance(events[-1], FinishedEvent)


def test_pause_resume_and_stop_from_another_thread():
    project = mlp_project(epochs=200)
    run = prepare_run(project, dataset=prepare(blobs(2000), "blobs", {}))
    events: list = []
    first_batch = threading.Event()

    def record(event):
        events.append(event)
        if isinstance(event, BatchEvent):
            first_batch.set()

    pauses: list[tuple[bool, int]] = []
    held = threading.Event()
    trainer = Trainer(run, record, on_pause=lambda paused, step: (pauses.append((paused, step)),
                                                                  held.set() if paused else None))
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert first_batch.wait(10)
    trainer.pause()
    assert held.wait(10)  # the minibatch in flight finished and the loop holds
    count = len(events)
    assert pauses[0][0] is True and pauses[0][1] == sum(isinstance(e, BatchEvent) for e in events)
    threading.Event().wait(0.3)
    assert len(events) == count, "minibatches ran while paused"
    trainer.request_snapshot()  # served while paused
    threading.Event().wait(0.3)
    assert isinstance(events[-1], SnapshotEvent)
    trainer.resume()
    threading.Event().wait(0.2)
    assert len(events) > count + 1 and pauses[1] == (False, pauses[0][1])
    trainer.stop()
    thread.join(10)
    assert not thread.is_alive()
    finished = events[-1]
    assert isinstance(finished, FinishedEvent) and finished.reason == "stopped"
    assert finished.epochs_run < 200 and finished.test_accuracy is not None


def test_a_stop_before_the_first_minibatch_keeps_the_saved_weights(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"earlier weights")
    trainer = Trainer(prepare_run(mlp_project(), dataset=prepare(blobs(), "blobs", {})), weights_path=weights)
    trainer.stop()
    result = trainer.run()
    assert result.reason == "stopped" and result.steps == 0 and result.weights_path is None
    assert weights.read_bytes() == b"earlier weights"


def test_snapshot_holds_filters_and_every_activation():
    project = load_example("lenet5")
    run = prepare_run(project, epochs=1, device="cpu")
    trainer = Trainer(run)
    snap = trainer.snapshot(run.dataset.test.x[:3])
    assert snap.filters["conv1"].shape == (6, 1, 5, 5)
    assert snap.filters["conv2"].shape == (16, 6, 5, 5)
    shapes = run.analysis.shapes
    for node_id in project.graph.nodes:
        assert snap.activations[node_id].shape == (3, *shapes[node_id])
    # a first Linear on an image shows as image-shaped templates
    linear = Trainer(prepare_run(load_example("linear"), device="cpu"))
    assert linear.snapshot(torch.zeros(1, 1, 28, 28)).filters["fc"].shape == (10, 1, 28, 28)


def test_periodic_snapshots():
    run = prepare_run(mlp_project(epochs=1), dataset=prepare(blobs(), "blobs", {}))
    _, events = collect(run, snapshot_every=4)
    snaps = [e for e in events if isinstance(e, SnapshotEvent)]
    assert [s.step for s in snaps] == [4, 8]
    assert snaps[0].activations["fc2"].shape == (8, 3)


@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
def test_every_optimizer_learns(optimizer):
    lr = 0.05 if optimizer == "SGD" else 0.01
    run = prepare_run(mlp_project(optimizer=optimizer, lr=lr, epochs=5), dataset=prepare(blobs(), "blobs", {}))
    result, events = collect(run)
    assert result.test_accuracy >= 0.9, (optimizer, result.test_accuracy)


@pytest.mark.parametrize("loss,tail,out", [
    ("CrossEntropyLoss", (("softmax", "Softmax"),), 3),
    ("NLLLoss", (("logsoftmax", "LogSoftmax"),), 3),
    ("MSELoss", (("softmax", "Softmax"),), 3),
    ("BCEWithLogitsLoss", (), 3),
    ("BCELoss", (("sigmoid", "Sigmoid"),), 3),
])
def test_every_loss_learns(loss, tail, out):
    run = prepare_run(mlp_project(out=out, tail=tail, loss=loss, epochs=8, lr=0.1),
                      dataset=prepare(blobs(), "blobs", {}))
    result, _ = collect(run)
    assert result.test_accuracy >= 0.9, (loss, result.test_accuracy)


def test_softmax_output_with_cross_entropy_uses_the_logits():
    run = prepare_run(mlp_project(tail=(("softmax", "Softmax"),)), dataset=prepare(blobs(), "blobs", {}))
    assert run.objective.loss_node == "fc2"
    assert any("logits" in note for note in run.notes)
    trainer = Trainer(run)
    x = run.dataset.test.x[:4]
    probabilities = trainer.model(x)
    assert torch.allclose(probabilities.sum(1), torch.ones(4))
    assert torch.allclose(torch.softmax(trainer.train_model(x), 1), probabilities)


def test_binary_output_with_bce_with_logits():
    project = mlp_project(out=1, loss="BCEWithLogitsLoss", epochs=8, lr=0.1)
    run = prepare_run(project, dataset=prepare(blobs(classes=2), "blobs", {}))
    result, _ = collect(run)
    assert result.test_accuracy >= 0.9


def test_schedules_change_the_learning_rate():
    data = prepare(blobs(), "blobs", {})
    _, events = collect(prepare_run(mlp_project(epochs=4, schedule="step", step_size=2, gamma=0.5), dataset=data))
    assert [round(e.lr, 6) for e in events if isinstance(e, EpochEvent)] == [0.05, 0.05, 0.025, 0.025]
    _, events = collect(prepare_run(mlp_project(epochs=4, schedule="cosine"), dataset=data))
    lrs = [e.lr for e in events if isinstance(e, EpochEvent)]
    assert lrs[0] == pytest.approx(0.05) and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.02


def test_early_stopping_keeps_the_best_weights():
    data = prepare(blobs(), "blobs", {})
    run = prepare_run(mlp_project(epochs=50, lr=1e-9, early_stopping_patience=2), dataset=data)
    result, events = collect(run)
    assert result.reason == "early_stopping" and "did not improve" in result.message
    assert result.epochs_run == 3


def test_checkpoints_per_epoch_are_safetensors(tmp_path):
    run = prepare_run(mlp_project(epochs=2), dataset=prepare(blobs(), "blobs", {}))
    collect(run, checkpoint_dir=tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["epoch-001.safetensors", "epoch-002.safetensors"]
    model = compile_graph(run.project.graph)
    load_weights(model, tmp_path / "ckpt" / "epoch-002.safetensors")


def test_training_is_reproducible_for_a_seed():
    data = prepare(blobs(), "blobs", {})
    losses = []
    for _ in range(2):
        _, events = collect(prepare_run(mlp_project(epochs=2), dataset=data))
        losses.append([e.loss for e in events if isinstance(e, BatchEvent)])
    assert losses[0] == losses[1]


@pytest.mark.parametrize("graph,loss,message", [
    ((("input", "Input", {"shape": [1, 8, 8]}), ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 3})),
     "CrossEntropyLoss", "one score per class"),
    ((("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 2})), "CrossEntropyLoss",
     "has 3 classes, but the output 'fc' has 2 units"),
    ((("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 1})), "CrossEntropyLoss",
     "has 3 classes"),
    ((("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 3})), "BCELoss",
     "end the graph with Sigmoid"),
])
def test_output_that_does_not_fit_the_loss_is_refused_before_training(graph, loss, message):
    project = Project(chain(*graph))
    project.training["loss"] = loss
    raw = blobs()
    if graph[0][2]["shape"] == [1, 8, 8]:
        raw = RawData(np.zeros((30, 1, 8, 8), np.float32), np.arange(30) % 3, ["a", "b", "c"], "z", image=True)
    with pytest.raises(TrainingError, match=message):
        prepare_run(project, dataset=prepare(raw, "blobs", {}))


def test_cross_entropy_with_one_unit_suggests_bce():
    project = Project(chain(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 1})))
    with pytest.raises(TrainingError, match="BCEWithLogitsLoss"):
        prepare_run(project, dataset=prepare(blobs(classes=2), "blobs", {}))


def test_dataset_that_does_not_fit_the_input_is_refused_with_the_fix():
    project = load_example("lenet5")
    project.dataset["name"] = "digits"
    with pytest.raises(DatasetError, match="digits28"):
        prepare_run(project)


def test_absent_device_is_a_clear_error():
    run = prepare_run(mlp_project(device="cuda:7"), dataset=prepare(blobs(), "blobs", {}))
    with pytest.raises(DeviceError, match="cuda:7.*this machine has: cpu"):
        Trainer(run)


def test_graph_errors_stop_before_training():
    from app.engine.errors import GraphError

    project = Project(chain(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 0})))
    with pytest.raises(GraphError, match="out_features"):
        prepare_run(project, dataset=prepare(blobs(), "blobs", {}))


def test_saved_weights_carry_the_input_normalization(tmp_path):
    import json

    from safetensors import safe_open

    run = prepare_run(mlp_project(epochs=1), dataset=prepare(blobs(), "blobs", {}))
    Trainer(run, weights_path=tmp_path / "w.safetensors").run()
    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["input_shape"]) == [4]
    assert np.allclose(json.loads(meta["input_mean"]), run.dataset.mean.numpy(), atol=1e-6)
    assert json.loads(meta["class_names"]) == ["0", "1", "2"] and meta["reason"] == "completed"


def test_snapshots_carry_the_health_of_a_step_and_the_boundary_through_the_pipe(monkeypatch):
    # no wall-time limits: measured on every HEALTH_EVERY_SNAPSHOTS-th snapshot (2)
    monkeypatch.setattr(health, "HEALTH_MIN_SECONDS", 0.0)
    monkeypatch.setattr(health, "HEALTH_DUTY", float("inf"))
    run = prepare_run(load_example("xor"), device="cpu", epochs=2)
    _, events = collect(run, snapshot_every=3)
    snaps = [e for e in events if isinstance(e, SnapshotEvent)]
    first = snaps[0]
    assert first.health_step == first.step == 3  # the step before it was measured for it
    assert set(first.health) == {"fc1", "tanh", "fc2", "sigmoid"}
    assert first.health["fc1"]["grad_norm"] > 0 and 0 < first.health["fc1"]["update_ratio"] < 1
    assert first.health["sigmoid"]["grad_norm"] is None and first.health["tanh"]["saturated"] is not None
    # in between (HEALTH_EVERY_SNAPSHOTS), the last measurement again
    assert [s.health_step for s in snaps[:4]] == [3, 3, 9, 9]
    assert first.boundary["probs"].shape == (64, 64, 1) and first.boundary["predicted"].shape == (64, 64)
    assert set(first.boundary["units"]) == {"fc1", "tanh", "fc2"}
    # the editor gets events pickled through a pipe, and --json as plain data
    back = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(back.boundary["probs"], first.boundary["probs"])
    assert back.health == first.health
    json.dumps(as_dict(first))


def test_health_costs_training_nothing_and_a_model_without_two_features_has_no_boundary():
    def losses(snapshot_every):
        run = prepare_run(mlp_project(epochs=1), dataset=prepare(blobs(), "blobs", {}))
        _, events = collect(run, snapshot_every=snapshot_every)
        snaps = [e for e in events if isinstance(e, SnapshotEvent)]
        return [e.loss for e in events if isinstance(e, BatchEvent)], snaps

    plain, _ = losses(0)
    watched, snaps = losses(2)
    assert watched == plain  # measuring (eval mode, no gradients, weights copied) changes nothing
    assert snaps[0].boundary is None and snaps[0].health["relu"]["dead"] is not None


def test_the_worker_sends_the_new_fields_to_the_editor():
    messages = []
    options = {"overrides": {"device": "cpu", "epochs": 1}, "snapshot_every": 9}
    code = run_inline(load_example("xor"), options, lambda m: messages.extend(unbunch(m)), bunched=True)
    assert code == 0
    snap = next(m[1] for m in messages if m[0] == "event" and isinstance(m[1], SnapshotEvent))
    assert snap.health["fc1"]["grad_norm"] is not None and snap.boundary["points"]["train"].shape == (144, 2)
