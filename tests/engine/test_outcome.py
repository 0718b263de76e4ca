"""How a run ends and where its weights go: divergence seen from more than NaN; a
stopped, diverged or worse run never replaces the weights in place (issue 14, items 3 and
14); the destination is checked before training and a failed write keeps the weights."""

from __future__ import annotations

import errno
import io
import json
import pickle
from pathlib import Path

import pytest
import torch

from app.engine import cli
from app.engine.datasets.base import prepare
from app.engine.errors import WeightsError
from app.engine.examples import load_example
from app.engine.training import EpochEvent, FinishedEvent, Trainer, prepare_run
from app.engine.training import trainer as trainer_module
from app.engine.weights import adopt_run_weights, read_metadata, read_weights, runs_dir, save_tensors
from tests.engine.test_trainer import blobs, mlp_project


def xor_run(**overrides):
    return prepare_run(load_example("xor"), **{"device": "cpu", "epochs": 2, **overrides})


def in_place(path, val_accuracy=None, val_loss=None, dataset="xor") -> bytes:
    """A weights file at ``path`` as an earlier run left it (its metrics in the metadata)."""
    model = Trainer(xor_run()).model
    meta = {"dataset": dataset}
    if val_accuracy is not None:
        meta["val_accuracy"] = repr(val_accuracy)
    if val_loss is not None:
        meta["val_loss"] = repr(val_loss)
    save_tensors(model.state_dict(), path, meta)
    return path.read_bytes()


def run_files(target):
    folder = runs_dir(target)
    return sorted(folder.glob("*.safetensors")) if folder.exists() else []


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


# -- divergence -------------------------------------------------------------------------
def test_huge_weights_with_a_finite_loss_are_divergence_and_never_replace_weights(tmp_path):
    """The issue's case: BCE's loss stays finite at lr 1e38 while weights reach 1e37."""
    target = tmp_path / "xor.safetensors"
    before = in_place(target, val_accuracy=1.0)
    code, out, err = run_cli("train", "xor", "--lr", "1e38", "--epochs", "3", "--device", "cpu",
                             "--out", str(tmp_path))
    assert code == 1 and "grew to" in err and "learning rate" in err
    assert target.read_bytes() == before
    [kept] = run_files(target)
    assert kept.parent == tmp_path / "xor.runs" and str(kept) in out
    assert read_metadata(kept)["reason"] == "diverged"


def test_a_diverged_run_goes_to_the_runs_folder_even_when_nothing_is_in_place(tmp_path):
    target = tmp_path / "xor.safetensors"
    result = Trainer(xor_run(lr=1e38), weights_path=target).run()
    assert result.reason == "diverged" and not result.ok
    assert not target.exists() and result.weights_path == str(run_files(target)[0])
    assert result.weights_target == str(target) and result.weights_held_back == "the run diverged"


def test_an_epoch_loss_ten_times_the_first_is_divergence():
    trainer = Trainer(xor_run())
    assert trainer._diverged(1, 0.7) is None
    assert trainer._diverged(2, 6.9) is None
    message = trainer._diverged(3, 7.5)
    assert "more than 10 times the first epoch's" in message and "7.5" in message


def test_weights_beyond_1e6_or_not_finite_end_the_run_as_diverged():
    for value in (2e6, float("nan"), float("-inf")):
        run = xor_run(epochs=5)
        trainer = Trainer(run)

        def poison(event, trainer=trainer, value=value):
            if isinstance(event, EpochEvent) and event.epoch == 1:
                with torch.no_grad():
                    trainer.model.fc1.weight[0, 0] = value

        trainer.callback = poison
        result = trainer.run()
        assert result.reason == "diverged" and result.epochs_run == 1, (value, result.message)
        assert ("grew to 2e+06" if value == 2e6 else "NaN or infinite") in result.message


def test_a_stopped_run_with_huge_weights_is_diverged_too(tmp_path):
    trainer = Trainer(xor_run(epochs=50), weights_path=tmp_path / "xor.safetensors")

    def poison_and_stop(event):
        if getattr(event, "kind", "") == "batch" and event.step == 3:
            with torch.no_grad():
                trainer.model.fc1.bias[0] = -5e7
            trainer.stop()

    trainer.callback = poison_and_stop
    result = trainer.run()
    assert result.reason == "diverged" and "grew to" in result.message
    assert not (tmp_path / "xor.safetensors").exists()


# -- stopped and worse runs ----------------------------------------------------------------
def test_a_stopped_run_keeps_the_weights_in_place_and_says_where_its_own_are(tmp_path):
    target = tmp_path / "xor.safetensors"
    before = in_place(target, val_accuracy=0.5)
    trainer = Trainer(xor_run(epochs=50), weights_path=target)
    trainer.callback = lambda e: trainer.stop() if getattr(e, "step", 0) == 5 else None
    result = trainer.run()
    assert result.reason == "stopped" and result.ok
    assert target.read_bytes() == before
    assert result.weights_held_back == "the run was stopped by the user"
    assert result.weights_path == str(run_files(target)[0]) and result.weights_target == str(target)


def test_a_stopped_run_goes_to_the_target_when_nothing_is_there(tmp_path):
    target = tmp_path / "xor.safetensors"
    trainer = Trainer(xor_run(epochs=50), weights_path=target)
    trainer.callback = lambda e: trainer.stop() if getattr(e, "step", 0) == 5 else None
    result = trainer.run()
    assert result.reason == "stopped" and result.weights_path == str(target) and target.exists()
    assert result.weights_held_back is None and run_files(target) == []


def test_a_run_worse_than_the_weights_in_place_does_not_replace_them(tmp_path):
    target = tmp_path / "xor.safetensors"
    before = in_place(target, val_accuracy=0.999)
    code, out, err = run_cli("train", "xor", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    assert code == 0, err
    assert target.read_bytes() == before
    [kept] = run_files(target)
    assert str(kept) in out and "is below the 99.9 % of the weights in place" in out
    meta = read_metadata(kept)
    assert float(meta["val_accuracy"]) < 0.999 and "val_loss" in meta


def test_a_run_replaces_weights_it_is_better_than(tmp_path):
    target = tmp_path / "xor.safetensors"
    before = in_place(target, val_accuracy=0.01)
    result = Trainer(xor_run(), weights_path=target).run()
    assert result.weights_held_back is None and result.weights_path == str(target)
    assert target.read_bytes() != before and run_files(target) == []
    assert float(read_metadata(target)["val_accuracy"]) == result.val_accuracy


def trained_xor(path, *, flipped=False, metadata=None) -> bytes:
    """Weights of a fully trained xor at ``path`` (100 % accuracy; 0 % when ``flipped``: the
    output layer negated), with no metrics recorded: as every weights file written before
    runs recorded them, and every ONNX import, leave them."""
    trainer = Trainer(xor_run(epochs=30))
    trainer.run()
    state = trainer.model.state_dict()
    if flipped:
        state = {k: -v if k.startswith("fc2.") else v for k, v in state.items()}
    save_tensors(state, path, metadata)
    return path.read_bytes()


@pytest.mark.parametrize("metadata", [None, {"dataset": "xor"}], ids=["no-metadata", "no-metrics"])
def test_weights_in_place_without_metrics_are_evaluated_on_this_runs_validation_split(tmp_path, metadata):
    target = tmp_path / "xor.safetensors"
    before = trained_xor(target, metadata=metadata)
    result = Trainer(xor_run(epochs=1, lr=0.01), weights_path=target).run()
    assert result.val_accuracy < 1.0
    assert target.read_bytes() == before
    assert result.weights_held_back.endswith("is below the 100.0 % of the weights in place")
    assert result.weights_path == str(run_files(target)[0])
    # weights in place that are worse on this run's validation split are replaced
    trained_xor(target, flipped=True, metadata=metadata)
    result = Trainer(xor_run(), weights_path=target).run()
    assert result.weights_held_back is None and result.weights_path == str(target)
    assert float(read_metadata(target)["val_accuracy"]) == result.val_accuracy


def test_evaluating_the_weights_in_place_leaves_this_runs_weights_as_they_are(tmp_path):
    target = tmp_path / "xor.safetensors"
    trained_xor(target)
    trainer = Trainer(xor_run(epochs=1, lr=0.01), weights_path=target)
    result = trainer.run()
    saved = read_weights(result.weights_path)
    assert all(torch.equal(saved[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.evaluate(trainer.run_spec.dataset.val) == (result.val_loss, result.val_accuracy)


def test_weights_that_cannot_be_compared_are_not_replaced(tmp_path):
    target = tmp_path / "xor.safetensors"
    # trained on other data
    before = in_place(target, val_accuracy=0.01, dataset="moons")
    result = Trainer(xor_run(), weights_path=target).run()
    assert result.weights_held_back == ("the weights in place were trained on moons, this run on xor: "
                                        "they cannot be compared")
    assert target.read_bytes() == before and result.weights_path == str(run_files(target)[0])
    # of another network
    state = Trainer(xor_run()).model.state_dict()
    save_tensors({**state, "fc1.weight": torch.zeros(3, 3)}, target, {"dataset": "xor"})
    before = target.read_bytes()
    result = Trainer(xor_run(), weights_path=target).run()
    held = result.weights_held_back
    assert held.startswith("the weights in place do not fit this network") and "fc1.weight" in held
    assert held.endswith("they cannot be compared") and target.read_bytes() == before
    # no validation split to compare on, even with metrics recorded
    before = in_place(target, val_accuracy=0.01)
    project = load_example("xor")
    project.dataset["validation_fraction"] = 0.0
    result = Trainer(prepare_run(project, device="cpu", epochs=2), weights_path=target).run()
    assert result.val_loss is None and "no validation split" in result.weights_held_back
    assert target.read_bytes() == before


def test_early_stopping_compares_the_best_weights_it_restored(tmp_path):
    """Early stopping puts the best epoch's weights back: those are compared with the weights
    in place, and written, not the last epoch's."""
    data = prepare(blobs(), "blobs", {})
    project = mlp_project(out=4, target="input", loss="MSELoss", epochs=20, lr=1e-4,
                          early_stopping_patience=1)

    def train(target=None):
        trainer = Trainer(prepare_run(project, dataset=data), weights_path=target)
        losses = []

        def spoil(event):  # the second epoch makes the weights worse: early stopping after it
            if isinstance(event, EpochEvent):
                losses.append(event.val_loss)
            elif getattr(event, "kind", "") == "batch" and event.epoch == 2 and event.batch == 1:
                with torch.no_grad():
                    for p in trainer.model.parameters():
                        p.mul_(1.5)

        trainer.callback = spoil
        return trainer, trainer.run(), losses

    _, result, losses = train()
    best, last = losses
    assert result.reason == "early_stopping" and last > best and result.val_loss == pytest.approx(best)
    # in place: better than the last epoch, worse than the best one -> replaced
    target = tmp_path / "ae.safetensors"
    save_tensors(Trainer(prepare_run(project, dataset=data)).model.state_dict(), target,
                 {"dataset": "blobs", "val_loss": repr((best + last) / 2)})
    trainer, result, _ = train(target)
    assert result.weights_held_back is None and result.weights_path == str(target)
    assert float(read_metadata(target)["val_loss"]) == pytest.approx(best)
    # in place: better than the best epoch -> held back, and the run's file holds the best weights
    save_tensors(Trainer(prepare_run(project, dataset=data)).model.state_dict(), target,
                 {"dataset": "blobs", "val_loss": repr(best * 0.9)})
    trainer, result, _ = train(target)
    assert result.weights_held_back.startswith(f"validation loss {best:.4g} is above")
    kept = read_weights(result.weights_path)
    assert all(torch.equal(kept[k], v) for k, v in trainer.model.state_dict().items())
    assert float(read_metadata(result.weights_path)["val_loss"]) == pytest.approx(best)


def test_without_accuracy_a_higher_validation_loss_is_worse(tmp_path):
    project = mlp_project(out=4, target="input", loss="MSELoss", epochs=1)
    data = prepare(blobs(), "blobs", {})
    target = tmp_path / "ae.safetensors"
    save_tensors(Trainer(prepare_run(project, dataset=data)).model.state_dict(), target,
                 {"dataset": "blobs", "val_loss": "1e-09"})
    result = Trainer(prepare_run(project, dataset=data), weights_path=target).run()
    assert result.val_accuracy is None and result.val_loss > 1e-9
    assert result.weights_held_back.startswith("validation loss") and "above the 1e-09" in result.weights_held_back
    assert result.weights_path != str(target)


def test_adopt_run_weights_copies_a_run_over_the_target(tmp_path):
    target = tmp_path / "xor.safetensors"
    in_place(target, val_accuracy=0.999)
    trainer = Trainer(xor_run(epochs=1), weights_path=target)
    result = trainer.run()
    run_file = result.weights_path
    assert run_file != str(target)
    assert adopt_run_weights(run_file, target) == target
    assert target.read_bytes() == Path(run_file).read_bytes()
    with pytest.raises(WeightsError, match="cannot be read"):
        adopt_run_weights(tmp_path / "missing.safetensors", target)


def test_the_finished_event_carries_the_agreed_fields_through_a_pipe(tmp_path):
    event = FinishedEvent("stopped", "m", 1, 2, 0.1, weights_path="a.runs/x.safetensors",
                          weights_target="a.safetensors", weights_held_back="the run was stopped by the user")
    copy = pickle.loads(pickle.dumps(event))
    assert (copy.weights_target, copy.weights_held_back, copy.weights_path) == \
        ("a.safetensors", "the run was stopped by the user", "a.runs/x.safetensors")


# -- the destination (item 14) --------------------------------------------------------------
@pytest.mark.parametrize("where", ["proc", "file-in-the-way", "folder-as-target"])
def test_an_unwritable_destination_is_refused_before_training(tmp_path, where):
    if where == "proc":
        out_dir = "/proc/netcanvas-test"
    elif where == "file-in-the-way":
        (tmp_path / "f").write_text("x")
        out_dir = str(tmp_path / "f")
    else:
        (tmp_path / "xor.safetensors").mkdir()
        out_dir = str(tmp_path)
    code, out, err = run_cli("train", "xor", "--epochs", "1", "--device", "cpu", "--out", out_dir)
    assert code == 1 and "epoch" not in out and "Traceback" not in err
    assert err.startswith("error: ") and "xor.safetensors" in err and len(err.splitlines()) == 1


def test_the_trainer_checks_its_destination_before_training(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(WeightsError, match="cannot be written"):
        Trainer(xor_run(), weights_path=tmp_path / "blocker" / "xor.safetensors")


def test_a_write_that_fails_at_the_end_keeps_the_weights_somewhere_safe(tmp_path, monkeypatch):
    target = tmp_path / "xor.safetensors"
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    real = trainer_module.save_weights

    def full_disk(module, path, metadata=None):
        if str(path) == str(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(module, path, metadata)

    monkeypatch.setattr(trainer_module, "save_weights", full_disk)
    code, out, err = run_cli("train", "xor", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    assert code == 1 and "Traceback" not in err
    [safe] = (tmp_path / "tmp" / "netcanvas-weights").glob("xor-*.safetensors")
    assert "No space left on device" in err and str(safe) in err and str(safe) in out
    assert not target.exists()
    assert read_metadata(safe)["dataset"] == "xor"
    code, out, _ = run_cli("train", "xor", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path), "--json")
    last = json.loads(out.splitlines()[-1])
    assert code == 1 and "No space left on device" in last["weights_error"]
    assert last["weights"].startswith(str(tmp_path / "tmp" / "netcanvas-weights"))


def test_when_no_place_takes_the_weights_the_run_says_they_are_lost(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def full_disk(module, path, metadata=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(trainer_module, "save_weights", full_disk)
    result = Trainer(xor_run(), weights_path=tmp_path / "xor.safetensors").run()
    assert result.weights_path is None and result.weights_error.endswith("this run's weights are lost")
    assert str(tmp_path / "home" / ".netcanvas" / "recovery") in result.weights_error
    assert result.weights_held_back == result.weights_error


def test_where_nobody_can_be_asked_incomparable_weights_move_aside_and_the_run_takes_their_place(tmp_path):
    """The CLI's rule: a completed run that cannot be compared with the weights in place (here:
    they do not fit the network any more, after an edit) replaces them; they move to the runs
    folder, and the event says so. A stopped run still never replaces them."""
    target = tmp_path / "xor.safetensors"
    state = Trainer(xor_run()).model.state_dict()
    save_tensors({**state, "fc1.weight": torch.zeros(3, 3)}, target, {"dataset": "xor"})
    before = target.read_bytes()
    result = Trainer(xor_run(), weights_path=target, set_aside_incomparable=True).run()
    assert result.weights_held_back is None and result.weights_path == str(target)
    assert result.weights_set_aside.startswith("the weights in place do not fit this network")
    moved = run_files(target)
    assert len(moved) == 1 and moved[0].name.startswith("before-") and moved[0].read_bytes() == before
    assert str(moved[0]) in result.weights_set_aside
    assert read_weights(target)["fc1.weight"].shape != torch.Size([3, 3])
    # a stopped run is held back, whatever it is compared with
    save_tensors({**state, "fc1.weight": torch.zeros(3, 3)}, target, {"dataset": "xor"})
    before = target.read_bytes()
    trainer = Trainer(xor_run(), weights_path=target, set_aside_incomparable=True)
    trainer.stop()
    trainer.step = 1  # as if a step was taken before the stop
    result = trainer.run()
    assert target.read_bytes() == before and result.weights_set_aside is None


def test_the_cli_moves_weights_that_no_longer_fit_aside_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = Trainer(xor_run()).model.state_dict()
    save_tensors({**state, "fc1.weight": torch.zeros(3, 3)}, tmp_path / "xor.safetensors", {"dataset": "xor"})
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["train", "xor", "--epochs", "3"], out, err) == 0, err.getvalue()
    assert "note: the weights in place do not fit this network" in out.getvalue()
    # the weights set aside, and the run's own copy (every run keeps one in the runs folder)
    assert "moved to" in out.getvalue()
    assert sorted(p.name.startswith("before-") for p in run_files(tmp_path / "xor.safetensors")) == [False, True]
    assert cli.main(["export", "xor", "--onnx", str(tmp_path / "m.onnx")], out, err) == 0, err.getvalue()


def test_one_epoch_is_said_in_the_singular():
    assert Trainer(xor_run(epochs=1)).run().message == "trained 1 epoch"
    assert Trainer(xor_run(epochs=2)).run().message == "trained 2 epochs"
