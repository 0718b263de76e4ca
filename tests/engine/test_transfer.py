"""Transfer learning: weights that survive edits (a partial load), a run that starts from
another run's weights (``training.init_weights``), subsets of classes and few samples per
class, freezing several nodes in one step, and the frozen counts of ``check``."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch

from app.engine import cli
from app.engine.compiler import compile_graph
from app.engine.config import DATASET_FIELDS, check_section
from app.engine.datasets import load_dataset
from app.engine.errors import DatasetError, ProjectError, WeightsError
from app.engine.examples import example_path, load_example
from app.engine.inference import analyze
from app.engine.project import dumps_project, parse_project
from app.engine.session.document import Document
from app.engine.session.option_commands import SetTrainable
from app.engine.training.trainer import Trainer, prepare_run
from app.engine.weights import apply_partial, load_partial, load_weights, save_weights


def mlp(hidden=16, out=3, extra=False) -> dict:
    nodes = [{"id": "input", "type": "Input", "params": {"shape": [4]}},
             {"id": "fc1", "type": "Linear", "params": {"out_features": hidden}},
             {"id": "act", "type": "ReLU"}]
    if extra:
        nodes.append({"id": "mid", "type": "Linear", "params": {"out_features": hidden}})
    nodes.append({"id": "head", "type": "Linear", "params": {"out_features": out}})
    ids = [n["id"] for n in nodes]
    return {"format": "netcanvas", "version": 2, "name": "mlp",
            "graph": {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in zip(ids, ids[1:])]},
            "dataset": {"name": "iris"}, "training": {"epochs": 2, "device": "cpu", "batch_size": 16}}


def compiled(data: dict, seed: int):
    torch.manual_seed(seed)
    return compile_graph(parse_project(json.dumps(data)).graph)


# -- a partial load ----------------------------------------------------------------------
def test_a_new_head_keeps_the_other_nodes_weights_and_initializes_the_head(tmp_path):
    trained = compiled(mlp(out=3), 0)
    path = save_weights(trained, tmp_path / "w.safetensors")
    edited = compiled(mlp(out=5), 1)
    fresh_head = edited.head.weight.detach().clone()
    result = load_partial(edited, path)
    assert result.kept == ["fc1"] and result.initialized == ["head"] and result.dropped == []
    assert torch.equal(edited.fc1.weight, trained.fc1.weight)
    assert torch.equal(edited.head.weight, fresh_head)
    assert "head.weight" in result.reasons["head"] and "[3, 16]" in result.reasons["head"]
    assert "1 node (fc1) starts from w.safetensors" in result.summary()
    assert "1 node (head) initialized" in result.summary()


def test_an_inserted_layer_is_initialized_and_a_removed_one_is_reported(tmp_path):
    trained = compiled(mlp(extra=True), 0)
    tensors = trained.state_dict()
    edited = compiled(mlp(extra=False), 1)
    result = apply_partial(edited, tensors, "w.safetensors")
    assert result.kept == ["fc1", "head"] and result.dropped == ["mid"] and not result.complete
    assert "unused from the file: 1 node (mid)" in result.summary()
    inserted = compiled(mlp(extra=True), 2)
    result = apply_partial(inserted, compiled(mlp(), 0).state_dict())
    assert result.initialized == ["mid"] and result.reasons["mid"] == "the file has no 'mid.weight'"


def test_a_node_with_one_tensor_of_another_shape_keeps_none_of_the_file():
    model = compiled(mlp(), 1)
    tensors = {k: v.clone() + 1 for k, v in compiled(mlp(), 0).state_dict().items()}
    tensors["head.bias"] = torch.zeros(7)
    before = model.head.weight.detach().clone()
    result = apply_partial(model, tensors)
    assert result.initialized == ["head"] and torch.equal(model.head.weight, before)


def test_weights_of_another_network_are_an_error_and_the_strict_load_stays(tmp_path):
    path = save_weights(compiled(mlp(hidden=8), 0), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="fits no node of the graph"):
        load_partial(compiled(mlp(hidden=16), 1), path)
    with pytest.raises(WeightsError, match=r"'fc1.weight' has shape \[8, 4\], but the graph needs \[16, 4\]"):
        load_weights(compiled(mlp(hidden=16), 1), path)


# -- a run that starts from weights ---------------------------------------------------------
def test_a_run_starts_from_init_weights_and_frozen_nodes_keep_them(tmp_path):
    base = compiled(mlp(), 0)
    save_weights(base, tmp_path / "base.safetensors")
    data = mlp(out=3)
    data["graph"]["nodes"][1]["trainable"] = False
    data["graph"]["nodes"][-1]["id"] = "new_head"
    data["graph"]["edges"][-1]["target"] = "new_head"
    data["training"]["init_weights"] = "base.safetensors"
    (tmp_path / "p.netcanvas.json").write_text(json.dumps(data))
    project = parse_project((tmp_path / "p.netcanvas.json").read_text())
    project.path = tmp_path / "p.netcanvas.json"
    run = prepare_run(project)
    trainer = Trainer(run)
    assert trainer.start_weights.kept == ["fc1"] and trainer.start_weights.initialized == ["new_head"]
    assert any(n.startswith("weights: 1 node (fc1) starts from base.safetensors") for n in run.notes)
    trainer.run()
    assert torch.equal(trainer.model.fc1.weight.cpu(), base.fc1.weight)  # frozen: untouched


def test_a_missing_init_weights_file_is_named(tmp_path):
    data = mlp()
    data["training"]["init_weights"] = "nowhere.safetensors"
    project = parse_project(json.dumps(data))
    project.path = tmp_path / "p.netcanvas.json"
    with pytest.raises(WeightsError, match=r"nowhere\.safetensors.*does not exist: training.init_weights"):
        Trainer(prepare_run(project))


def test_init_weights_is_written_only_when_set():
    project = parse_project(json.dumps(mlp()))
    assert "init_weights" not in json.loads(dumps_project(project))["training"]
    project.training["init_weights"] = "base.safetensors"
    assert json.loads(dumps_project(project))["training"]["init_weights"] == "base.safetensors"


# -- classes and samples per class -----------------------------------------------------
def test_classes_and_samples_per_class_pick_a_few_shots_of_some_digits():
    data = load_dataset({"name": "digits", "classes": [5, 6, 7, 8, 9], "samples_per_class": 3})
    assert data.class_names == ["5", "6", "7", "8", "9"]
    assert data.class_counts("train") == [3] * 5
    assert len(data.test) > 100 and set(data.test.y.tolist()) == {0, 1, 2, 3, 4}
    assert any("classes 5, 6, 7, 8, 9 of digits only" in n for n in data.notes)
    assert any("training on 3 samples per class (15 of" in n for n in data.notes)
    whole = load_dataset({"name": "digits", "classes": [5, 6, 7, 8, 9]})
    assert torch.equal(whole.test.y, data.test.y)  # the same held-out digits either way


@pytest.mark.parametrize("value, message", [
    ([], "expected a non-empty list of class indices"),
    ("5-9", "expected a non-empty list of class indices"),
    ([1, -2], "received -2"),
    ([1, True], "received true"),
    ([3, 3], "class 3 is listed twice"),
])
def test_bad_classes_are_refused_naming_the_field(value, message):
    _, problems = check_section("dataset", {"name": "digits", "classes": value}, DATASET_FIELDS)
    assert problems and problems[0][0] == "dataset.classes" and message in problems[0][1]
    data = mlp()
    data["dataset"]["classes"] = value
    with pytest.raises(ProjectError, match="dataset.classes"):
        parse_project(json.dumps(data))


def test_a_class_the_data_lacks_is_a_dataset_error():
    with pytest.raises(DatasetError, match=r"dataset.classes: class 3 does not exist: iris has 3 classes \(0 to 2\)"):
        load_dataset({"name": "iris", "classes": [0, 3]})


# -- freezing in one step ----------------------------------------------------------------
def test_freezing_a_selection_is_one_undo_step():
    doc = Document(load_example("lenet5"))
    doc.push(SetTrainable(doc, ["conv1", "conv2", "fc1"], False))
    assert [doc.graph.nodes[i].trainable for i in ("conv1", "conv2", "fc1", "fc2")] == [False, False, False, True]
    assert doc.history.undo_text == "Freeze 3 nodes" and doc.history.index == 1
    doc.push(SetTrainable(doc, ["conv1", "conv2"], False))  # nothing changes: no step
    assert doc.history.index == 1
    doc.push(SetTrainable(doc, ["conv1", "fc2"], True))
    assert doc.graph.nodes["conv1"].trainable and doc.graph.nodes["fc2"].trainable
    doc.history.undo()
    assert not doc.graph.nodes["conv1"].trainable
    doc.history.undo()
    assert all(n.trainable for n in doc.graph.nodes.values()) and not doc.history.can_undo


# -- check ------------------------------------------------------------------------------
def test_check_counts_frozen_parameters_also_inside_repeated_blocks():
    from tests.engine.test_blocks import _project, res_block

    data = _project(blocks={"Res": res_block(trainable=False)})
    data["graph"]["nodes"][-1]["trainable"] = False  # fc
    project = parse_project(json.dumps(data))
    a = analyze(project.graph)
    report = cli.check_report(project, a)
    bn = 2 * 4 + 3 * 2 * 6  # BatchNorm2d: weight and bias per channel, in layer1 and 3 copies of layer2
    fc = a.param_counts["fc"]
    assert report["frozen_params"] == bn + fc and report["nodes"]["fc"]["trainable"] is False
    assert report["trainable_params"] == a.total_params - bn - fc
    assert report["nodes"]["layer2"]["frozen_params"] == 36
    table = cli.summary_table(project, a)
    assert f"Trainable params: {a.total_params - bn - fc:,}\nFrozen params: {bn + fc:,}\n" in table
    assert "fc (Linear, frozen)" in table


def test_check_json_of_the_transfer_example(tmp_path):
    out = io.StringIO()
    assert cli.main(["check", str(example_path("transfer")), "--json"], out, io.StringIO()) == 0
    report = json.loads(out.getvalue())
    assert report["trainable_params"] == 425 and report["frozen_params"] == report["total_params"] - 425


# -- the example, end to end (one epoch each) ---------------------------------------------
def test_the_transfer_example_starts_from_the_base_runs_weights(tmp_path):
    for name in ("transfer_base", "transfer"):
        shutil.copy(example_path(name), tmp_path / f"{name}.netcanvas.json")
    base = parse_project((tmp_path / "transfer_base.netcanvas.json").read_text())
    base.path = tmp_path / "transfer_base.netcanvas.json"
    Trainer(prepare_run(base, epochs=1, device="cpu"), weights_path=tmp_path / "transfer_base.safetensors").run()
    project = parse_project((tmp_path / "transfer.netcanvas.json").read_text())
    project.path = tmp_path / "transfer.netcanvas.json"
    run = prepare_run(project, epochs=1, device="cpu")
    assert run.dataset.class_names == ["5", "6", "7", "8", "9"] and run.dataset.class_counts() == [20] * 5
    trainer = Trainer(run)
    assert trainer.start_weights.kept == ["conv1", "conv2", "fc1", "fc2"]
    assert trainer.start_weights.initialized == ["head"] and trainer.start_weights.dropped == ["fc3"]
    event = trainer.run()
    assert event.test_accuracy is not None and event.reason == "completed"


def test_weights_trained_on_other_classes_are_not_compared_by_accuracy(tmp_path):
    data = mlp()
    data["dataset"]["classes"] = [0, 1]
    project = parse_project(json.dumps(data))
    target = tmp_path / "w.safetensors"
    Trainer(prepare_run(project), weights_path=target).run()
    project.dataset["classes"] = [1, 2]
    event = Trainer(prepare_run(project), weights_path=target).run()
    assert event.weights_held_back == ("the weights in place were trained on the classes setosa, versicolor, "
                                       "this run on versicolor, virginica: they cannot be compared")
