"""What changed between two runs, written out."""

from __future__ import annotations

import copy

from app.engine.examples import load_example
from app.engine.project import project_to_dict
from app.engine.runs.changes import changes, describe_changes


def lenet():
    return project_to_dict(load_example("lenet5"))


def node(data, node_id):
    return next(n for n in data["graph"]["nodes"] if n["id"] == node_id)


def test_equal_projects_have_no_changes_and_moved_nodes_are_no_change():
    a, b = lenet(), lenet()
    node(b, "conv1")["position"] = [999, 999]
    b["name"] = "renamed"
    assert changes(a, b) == [] and describe_changes(a, b) == "same settings"
    assert changes(None, b) == []


def test_settings_and_node_parameters_are_written_out_in_order():
    a, b = lenet(), lenet()
    a["training"]["lr"], b["training"]["lr"] = 0.01, 0.05
    b["training"]["optimizer"] = "Adam"
    old = node(a, "conv1")["params"]["out_channels"]
    node(b, "conv1")["params"]["out_channels"] = 8
    # in the order the file writes the settings, then the nodes
    assert changes(a, b) == [f"optimizer {a['training']['optimizer']} -> Adam", "lr 0.01 -> 0.05",
                             f"conv1 out_channels {old} -> 8"]
    assert describe_changes(a, b) == "; ".join(changes(a, b))


def test_an_int_equal_to_a_float_is_no_change_and_none_reads_none():
    a, b = lenet(), lenet()
    a["training"]["weight_decay"], b["training"]["weight_decay"] = 0, 0.0
    a["training"]["early_stopping_patience"], b["training"]["early_stopping_patience"] = None, 3
    assert changes(a, b) == ["early_stopping_patience none -> 3"]


def test_added_removed_retyped_frozen_and_rewired_nodes():
    a = project_to_dict(load_example("xor"))
    b = copy.deepcopy(a)
    b["graph"]["nodes"].insert(2, {"id": "drop", "type": "Dropout", "params": {"p": 0.2}})
    b["graph"]["edges"] = [e for e in b["graph"]["edges"] if e["source"] != "fc1"]
    b["graph"]["edges"] += [{"source": "fc1", "target": "drop"}, {"source": "drop", "target": "tanh"}]
    node(b, "tanh")["type"] = "ReLU"
    node(b, "fc2")["trainable"] = False
    node(b, "fc1")["params"]["bias"] = False
    b["graph"]["nodes"] = [n for n in b["graph"]["nodes"] if n["id"] != "sigmoid"]
    lines = changes(a, b)
    assert lines[:2] == ["added drop (Dropout)", "removed sigmoid"]
    assert "tanh Tanh -> ReLU" in lines and "fc2 frozen" in lines and "fc1 bias default -> false" in lines
    assert "disconnected fc1 -> tanh" in lines  # both nodes stay: the rewiring is said
    assert not any("drop ->" in line or "sigmoid" in line for line in lines[2:])  # implied by added/removed


def test_dataset_changes_are_included():
    a = project_to_dict(load_example("xor"))
    b = copy.deepcopy(a)
    b["dataset"]["name"] = "moons"
    b["dataset"]["samples"] = 400
    assert changes(a, b) == ["dataset xor -> moons", f"dataset samples {a['dataset']['samples']} -> 400"]


def test_block_definitions_are_compared_inside():
    a = {"blocks": {"Res": {"params": {"c": 8}, "graph": {"nodes": [{"id": "conv", "type": "Conv2d",
                                                                     "params": {"kernel_size": 3}}], "edges": []}}},
         "graph": {"nodes": [], "edges": []}}
    b = copy.deepcopy(a)
    b["blocks"]["Res"]["graph"]["nodes"][0]["params"]["kernel_size"] = 5
    b["blocks"]["Res"]["params"] = {"c": 16}
    b["blocks"]["New"] = {"params": {}, "graph": {"nodes": [], "edges": []}}
    assert changes(a, b) == ["added block New", 'block Res parameters {"c": 8} -> {"c": 16}',
                             "Res/conv kernel_size 3 -> 5"]


def test_malformed_input_gives_no_traceback():
    assert changes({"graph": {"nodes": "x"}, "training": []}, {"graph": {"nodes": [1, {"id": 2}]}}) == []
