"""Project files (app/engine/project.py, format: PROJECT_FORMAT.md): loading, the round
trip, atomic saving, every load error with the field named, and a fuzz test that nothing
but ProjectError ever comes out of parse_project."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import config, project
from app.engine.errors import NetCanvasError, ProjectError
from app.engine.graph import Edge, Node
from app.engine.inference import analyze
from app.engine.project import (
    Project,
    dumps_project,
    load_project,
    parse_project,
    project_to_dict,
    save_project,
    weights_path_for,
)

# The example of PROJECT_FORMAT.md, as written there.
EXAMPLE_TEXT = """{
  "format": "netcanvas",
  "version": 1,
  "name": "LeNet-5 on digits",
  "graph": {
    "nodes": [
      {"id": "input", "type": "Input",  "params": {"shape": [1, 28, 28]}, "position": [0, 0]},
      {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 6, "kernel_size": 5}, "position": [0, 120]},
      {"id": "relu1", "type": "ReLU",   "params": {}, "position": [0, 240]}
    ],
    "edges": [
      {"source": "input", "target": "conv1"},
      {"source": "conv1", "target": "relu1", "target_port": 0}
    ]
  },
  "dataset":  {"name": "digits"},
  "training": {"optimizer": "SGD", "lr": 0.01, "momentum": 0.9, "batch_size": 64,
               "epochs": 10, "loss": "CrossEntropyLoss", "device": "auto", "seed": 0}
}
"""


def example() -> dict:
    return json.loads(EXAMPLE_TEXT)


def refused(data, *fragments: str) -> ProjectError:
    """Parse ``data`` expecting a ProjectError whose text contains every fragment."""
    with pytest.raises(ProjectError) as info:
        parse_project(data)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return info.value


def with_node(data: dict, index: int, **changes) -> dict:
    data = copy.deepcopy(data)
    node = data["graph"]["nodes"][index]
    for key, value in changes.items():
        if value is _DROP:
            node.pop(key, None)
        else:
            node[key] = value
    return data


_DROP = object()


# -- loading ------------------------------------------------------------------------------
def test_load_the_format_example(tmp_path):
    path = tmp_path / "lenet.netcanvas.json"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    p = load_project(path)
    assert p.path == path and p.name == "LeNet-5 on digits"
    assert list(p.graph.nodes) == ["input", "conv1", "relu1"]
    conv = p.graph.nodes["conv1"]
    assert conv.type == "Conv2d" and conv.position == (0.0, 120.0)
    assert conv.params == {"out_channels": 6, "kernel_size": 5}
    assert p.graph.edges == [Edge("input", "conv1", 0), Edge("conv1", "relu1", 0)]
    assert p.dataset == config.defaults(config.DATASET_FIELDS)
    assert p.training["optimizer"] == "SGD" and p.training["batch_size"] == 64
    assert p.training == config.defaults(config.TRAINING_FIELDS)
    assert p.editor is None
    assert p.weights_path == tmp_path / "lenet.safetensors"
    a = analyze(p.graph)
    assert a.ok and a.shapes["relu1"] == (6, 24, 24)


def test_parse_text_bytes_and_objects_alike():
    from_text = parse_project(EXAMPLE_TEXT)
    from_bytes = parse_project(EXAMPLE_TEXT.encode("utf-8"))
    from_bom = parse_project(b"\xef\xbb\xbf" + EXAMPLE_TEXT.encode("utf-8"))
    from_object = parse_project(example())
    for p in (from_bytes, from_bom, from_object):
        assert project_to_dict(p) == project_to_dict(from_text)


def test_parse_bytearray_and_memoryview():
    raw = EXAMPLE_TEXT.encode("utf-8")
    for buffer in (bytearray(raw), memoryview(raw)):
        assert list(parse_project(buffer).graph.nodes) == ["input", "conv1", "relu1"]
    refused(bytearray(b"\xff"), "not UTF-8")


def test_minimal_project():
    p = parse_project({"format": "netcanvas", "version": 1, "graph": {"nodes": []}})
    assert p.name == "Untitled" and p.graph.nodes == {} and p.graph.edges == []
    assert p.dataset["name"] == "digits" and p.training["device"] == "auto"


def test_params_keep_only_what_was_written():
    p = parse_project(example())
    assert p.graph.nodes["relu1"].params == {}
    assert "stride" not in p.graph.nodes["conv1"].params


def test_node_without_position_or_params():
    data = with_node(example(), 2, position=_DROP, params=_DROP)
    node = parse_project(data).graph.nodes["relu1"]
    assert node.position is None and node.params == {}


def test_load_file_errors(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "missing.netcanvas.json")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)
    bad = tmp_path / "bad.netcanvas.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        load_project(bad)
    assert str(bad) in str(info.value) and "line 1, column 2" in str(info.value)


def test_weights_path_for():
    assert weights_path_for("a/lenet.netcanvas.json") == Path("a/lenet.safetensors")
    assert weights_path_for("a/model.json") == Path("a/model.safetensors")
    assert Project().weights_path is None


def test_resolve_relative_paths(tmp_path):
    p = parse_project(example())
    assert p.resolve("data/x.csv") == Path("data/x.csv")
    p.path = tmp_path / "p.netcanvas.json"
    assert p.resolve("data/x.csv") == tmp_path / "data" / "x.csv"
    assert p.resolve("/abs/x.csv") == Path("/abs/x.csv")


# -- round trip -----------------------------------------------------------------------------
def rich_project() -> dict:
    data = example()
    data["name"] = "Round trip ü"
    nodes = data["graph"]["nodes"]
    nodes[1]["params"] = {"out_channels": 6, "kernel_size": [5, 3], "stride": [1, 2],
                          "padding": "same", "bias": False}
    nodes[1]["params"]["stride"] = 1
    nodes[2]["position"] = [12.5, -40.25]
    nodes.append({"id": "other", "type": "Input", "params": {"shape": [6, 28, 28]}})
    nodes.append({"id": "add", "type": "Add", "params": {}, "position": [3, 4]})
    nodes.append({"id": "pool", "type": "MaxPool2d", "params": {"kernel_size": 2, "stride": None}})
    data["graph"]["edges"] += [{"source": "other", "target": "add", "target_port": 1},
                               {"source": "relu1", "target": "add"},
                               {"source": "add", "target": "pool"}]
    data["dataset"] = {"name": "csv", "path": "data/train.csv", "label_column": "label",
                       "validation_fraction": 0.25, "normalize": False, "seed": 3}
    data["training"] = {"optimizer": "AdamW", "lr": 0.001, "weight_decay": 0.01,
                        "batch_size": 32, "epochs": 3, "drop_last": True, "loss": "NLLLoss",
                        "schedule": "step", "step_size": 2, "gamma": 0.5,
                        "early_stopping_patience": 4, "seed": 7, "device": "cuda:1",
                        "kernels": "off"}
    data["editor"] = {"zoom": 1.5, "panels": ["training", "inspector"],
                      "groups": [{"name": "features", "nodes": ["conv1", "relu1"]}],
                      "nested": {"a": None, "b": [1, {"c": True}]}}
    return data


def assert_same_project(a: Project, b: Project) -> None:
    assert a.name == b.name
    assert list(a.graph.nodes) == list(b.graph.nodes)
    for node_id, node in a.graph.nodes.items():
        other = b.graph.nodes[node_id]
        assert (node.type, node.params, node.position) == (other.type, other.params, other.position)
    assert a.graph.edges == b.graph.edges
    assert a.dataset == b.dataset
    assert a.training == b.training
    assert a.editor == b.editor


def test_round_trip_save_load(tmp_path):
    original = parse_project(rich_project())
    assert analyze(original.graph).ok
    path = save_project(original, tmp_path / "rt.netcanvas.json")
    assert path == tmp_path / "rt.netcanvas.json" and original.path == path
    loaded = load_project(path)
    assert_same_project(original, loaded)
    assert loaded.editor == rich_project()["editor"]
    assert loaded.graph.nodes["relu1"].position == (12.5, -40.25)
    assert loaded.graph.edges[2] == Edge("other", "add", 1)
    # saving again gives the same bytes
    again = save_project(loaded, tmp_path / "rt2.netcanvas.json")
    assert again.read_bytes() == path.read_bytes()


def test_round_trip_of_the_example_and_of_defaults(tmp_path):
    for data in (example(), {"format": "netcanvas", "version": 1, "graph": {"nodes": []}}):
        p = parse_project(data)
        assert_same_project(p, parse_project(dumps_project(p)))


def test_saved_file_is_pretty_utf8_json_stating_all_settings(tmp_path):
    p = parse_project(rich_project())
    path = save_project(p, tmp_path / "x.netcanvas.json")
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "\n  " in text
    data = json.loads(text)
    assert list(data)[:2] == ["format", "version"] and data["version"] == project.VERSION
    assert data["training"]["momentum"] == 0.9  # defaults are written too
    assert data["training"]["schedule"] == "step"
    assert "target_port" not in data["graph"]["edges"][0]
    assert data["graph"]["nodes"][2]["position"] == [12.5, -40.25]
    assert data["graph"]["nodes"][0]["position"] == [0, 0]
    assert "position" not in data["graph"]["nodes"][3]


def test_save_to_the_loaded_path(tmp_path):
    path = tmp_path / "p.netcanvas.json"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    p = load_project(path)
    p.name = "renamed"
    assert save_project(p) == path
    assert load_project(path).name == "renamed"


def test_save_without_a_path():
    with pytest.raises(ProjectError, match="no file yet"):
        save_project(Project())


def test_edits_through_the_graph_are_saved(tmp_path):
    p = parse_project(example())
    p.graph.add_node(Node("flat", "Flatten"))
    p.graph.add_edge(Edge("relu1", "flat"))
    p.graph.set_params("conv1", {"out_channels": 8, "kernel_size": 3})
    p.graph.move_node("flat", (1, 2))
    loaded = load_project(save_project(p, tmp_path / "e.netcanvas.json"))
    assert loaded.graph.nodes["conv1"].params == {"out_channels": 8, "kernel_size": 3}
    assert loaded.graph.nodes["flat"].position == (1.0, 2.0)
    assert analyze(loaded.graph).shapes["flat"] == (8 * 26 * 26,)


# -- atomic save -----------------------------------------------------------------------------
def test_atomic_save_keeps_the_old_file_when_replace_fails(tmp_path, monkeypatch):
    path = tmp_path / "p.netcanvas.json"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    before = path.read_bytes()
    p = load_project(path)
    p.name = "changed"

    def failing_replace(src, dst):
        assert Path(src).read_bytes().startswith(b"{")  # the new text was fully written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        save_project(p)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["p.netcanvas.json"]
    assert load_project(path).name == "LeNet-5 on digits"


def test_atomic_save_cleans_up_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "p.netcanvas.json"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    before = path.read_bytes()
    p = load_project(path)

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        save_project(p)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["p.netcanvas.json"]


def test_save_creates_a_new_file_without_leftovers(tmp_path):
    p = parse_project(example())
    save_project(p, tmp_path / "new.netcanvas.json")
    assert [f.name for f in tmp_path.iterdir()] == ["new.netcanvas.json"]


# -- load errors, each naming its field -----------------------------------------------------
def test_not_json():
    refused(b"this is not json", "invalid JSON", "line 1, column 1")
    refused("", "invalid JSON")


def test_not_utf8():
    refused(b'{"name": "\xff\xfe"}', "not UTF-8", "byte 10")


def test_json_syntax_error_names_line_and_column():
    text = EXAMPLE_TEXT.replace('"version": 1,', '"version": 1', 1)
    e = refused(text, "line 4, column 3", "invalid JSON")
    assert "Expecting ',' delimiter" in str(e)


def test_duplicate_keys():
    refused('{"format": "netcanvas", "format": "netcanvas"}', "'format' appears twice")
    text = EXAMPLE_TEXT.replace('"params": {}', '"params": {}, "params": {}')
    refused(text, "'params' appears twice")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals(constant):
    text = EXAMPLE_TEXT.replace('"lr": 0.01', f'"lr": {constant}')
    refused(text, f"{constant.lstrip('-')} is not a JSON number")


def test_numbers_too_large_for_a_float():
    refused(EXAMPLE_TEXT.replace('"lr": 0.01', '"lr": 1e400'), "invalid JSON", "1e400")
    refused(EXAMPLE_TEXT.replace("[0, 240]", "[0, -1e999]"), "invalid JSON")


def test_integers_too_long_to_read():
    refused(EXAMPLE_TEXT.replace('"seed": 0', '"seed": ' + "9" * 5000), "invalid JSON")


def test_nested_too_deeply():
    refused("[" * 100_000 + "]" * 100_000, "invalid JSON")


@pytest.mark.parametrize("value", [[], "netcanvas", 1, None, True, 2.5])
def test_top_level_not_an_object(value):
    if not isinstance(value, str):  # a str is read as JSON text
        refused(value, "expected a JSON object at the top")
    refused(json.dumps(value), "expected a JSON object at the top")


def test_top_level_of_a_python_type_json_lacks():
    refused((1, 2), "expected a JSON object at the top, received a tuple")
    refused(3.5, "received a number")


@pytest.mark.parametrize("value", ["NetCanvas", None, 1, ["netcanvas"]])
def test_wrong_format(value):
    data = example()
    data["format"] = value
    refused(data, "format", 'expected "netcanvas"', json.dumps(value))
    del data["format"]
    refused(data, "format", "received null")


@pytest.mark.parametrize("value", ["1", 1.0, True, None, [1]])
def test_version_not_an_integer(value):
    data = example()
    data["version"] = value
    refused(data, "version: expected an integer", json.dumps(value))


def test_newer_version_names_both_versions():
    data = example()
    data["version"] = 7
    e = refused(data, "version", "format version 7", "versions up to 2", "newer NetCanvas")
    data["version"] = 10**5000  # no crash while quoting an absurd number
    refused(data, "version")
    assert e.where == "<project>"


def test_older_version_without_a_migration():
    data = example()
    data["version"] = 0
    refused(data, "version", "no migration from format version 0 to 2")


def test_older_version_goes_through_the_migrations(monkeypatch):
    calls = []

    def from_zero(doc: dict) -> dict:
        calls.append(doc["version"])
        doc = dict(doc)
        doc["graph"] = doc.pop("network")  # say version 0 called the graph "network"
        return doc

    monkeypatch.setitem(project.MIGRATIONS, 0, from_zero)
    data = example()
    data["version"] = 0
    data["network"] = data.pop("graph")
    original = copy.deepcopy(data)
    p = parse_project(data)
    assert calls == [0]
    assert list(p.graph.nodes) == ["input", "conv1", "relu1"]
    assert data == original  # the caller's document is not changed
    assert project_to_dict(p)["version"] == project.VERSION
    # a chain of migrations runs in order
    monkeypatch.setitem(project.MIGRATIONS, -1, lambda doc: calls.append(doc["version"]) or doc)
    data["version"] = -1
    parse_project(data)
    assert calls == [0, -1, 0]


def test_unknown_top_level_key():
    data = example()
    data["model"] = {}
    refused(data, "model", "unknown key at the top level", "graph", "editor")


def test_missing_graph():
    data = example()
    del data["graph"]
    refused(data, "graph", "missing")


@pytest.mark.parametrize("value", [None, [], "graph"])
def test_graph_not_an_object(value):
    data = example()
    data["graph"] = value
    refused(data, "graph", "expected an object with nodes and edges")


def test_graph_keys():
    data = example()
    data["graph"]["groups"] = []
    refused(data, "graph.groups", "unknown key")
    data = example()
    del data["graph"]["nodes"]
    refused(data, "graph.nodes", "expected a list of nodes", "received null")
    data = example()
    data["graph"]["edges"] = {}
    refused(data, "graph.edges", "expected a list of edges")


def test_name_not_a_string():
    data = example()
    data["name"] = 5
    refused(data, "name", "expected a string", "received 5")


def test_node_not_an_object():
    data = example()
    data["graph"]["nodes"][1] = ["conv1"]
    refused(data, "graph.nodes[1]", "expected an object with id, type and params")


def test_unknown_node_key():
    refused(with_node(example(), 1, label="first conv"), "graph.nodes[1].label",
            "unknown key; a node takes: id, type, params, position")


def test_missing_id():
    refused(with_node(example(), 1, id=_DROP), "graph.nodes[1].id", "missing")


@pytest.mark.parametrize("bad_id", ["1conv", "conv-1", "", 7, None, "class", "forward", "to",
                                    "conv 1", "__init__", "recompile"])
def test_bad_id(bad_id):
    e = refused(with_node(example(), 1, id=bad_id), "graph.nodes[1].id")
    assert repr(bad_id) in str(e)


def test_duplicate_id():
    data = example()
    data["graph"]["nodes"][2]["id"] = "conv1"
    refused(data, "graph.nodes[2].id", "'conv1' is used by two nodes")


@pytest.mark.parametrize("type_name", ["Conv4d", "conv2d", "", None, 3, ["ReLU"]])
def test_unknown_type(type_name):
    refused(with_node(example(), 1, type=type_name), "graph.nodes[1] (conv1).type",
            "unknown layer type", json.dumps(type_name), "Conv2d, ")


def test_missing_type():
    refused(with_node(example(), 1, type=_DROP), "graph.nodes[1] (conv1).type",
            "unknown layer type null")


def test_unknown_param():
    refused(with_node(example(), 1, params={"out_channels": 6, "kernel_size": 5, "in_channels": 1}),
            "graph.nodes[1] (conv1).params.in_channels", "Conv2d has no parameter 'in_channels'")


@pytest.mark.parametrize("params, param, expected, received", [
    ({"out_channels": "6", "kernel_size": 5}, "out_channels", "an integer >= 1", '"6"'),
    ({"out_channels": 6.0, "kernel_size": 5}, "out_channels", "an integer >= 1", "6.0"),
    ({"out_channels": True, "kernel_size": 5}, "out_channels", "an integer >= 1", "true"),
    ({"out_channels": 6, "kernel_size": [5]}, "kernel_size",
     "an integer >= 1 or a list of two such integers", "[5]"),
    ({"out_channels": 6, "kernel_size": 5, "padding": "valid"}, "padding",
     'an integer >= 0, a list of two such integers, or "same"', '"valid"'),
    ({"out_channels": 6, "kernel_size": 5, "bias": "yes"}, "bias", "true or false", '"yes"'),
    ({"out_channels": 6, "kernel_size": 5, "stride": None}, "stride",
     "an integer >= 1 or a list of two such integers", "null"),
])
def test_wrongly_typed_param_names_node_param_and_expected_type(params, param, expected, received):
    e = refused(with_node(example(), 1, params=params))
    assert str(e) == (f"<project>: graph.nodes[1] (conv1).params.{param}: "
                      f"expected {expected}, received {received}")


def test_params_not_an_object():
    refused(with_node(example(), 1, params=[6, 5]), "graph.nodes[1] (conv1).params",
            "expected an object")
    refused(with_node(example(), 1, params=None), "graph.nodes[1] (conv1).params",
            "expected an object", "received null")


def test_missing_required_param():
    refused(with_node(example(), 1, params={"out_channels": 6}),
            "graph.nodes[1] (conv1).params.kernel_size", "Conv2d needs kernel_size")
    refused(with_node(example(), 0, params={}), "graph.nodes[0] (input).params.shape",
            "Input needs shape")


@pytest.mark.parametrize("position", [[0], [0, 1, 2], ["0", 1], [None, 0], {"x": 0, "y": 0}, "0,0",
                                      [True, 0], [0, 10**400], None])
def test_bad_position(position):
    refused(with_node(example(), 1, position=position), "graph.nodes[1] (conv1).position",
            "expected [x, y] (two numbers)")


def test_position_nan_from_an_object():
    refused(with_node(example(), 1, position=[float("nan"), 0]), "position")
    refused(with_node(example(), 1, position=[float("inf"), 0]), "position")


@pytest.mark.parametrize("edge, field, fragment", [
    ({"source": "input", "target": "ghost"}, "target", 'no node has the id "ghost"'),
    ({"source": "ghost", "target": "conv1"}, "source", 'no node has the id "ghost"'),
    ({"source": 1, "target": "conv1"}, "source", "no node has the id 1"),
    ({"target": "conv1"}, "source", "missing"),
    ({"source": "input"}, "target", "missing"),
    ({"source": "input", "target": "conv1", "target_port": -1}, "target_port",
     "expected an integer >= 0, received -1"),
    ({"source": "input", "target": "conv1", "target_port": "0"}, "target_port", 'received "0"'),
    ({"source": "input", "target": "conv1", "target_port": 1.0}, "target_port", "received 1.0"),
    ({"source": "input", "target": "conv1", "target_port": True}, "target_port", "received true"),
    ({"source": "input", "target": "conv1", "target_port": None}, "target_port", "received null"),
    ({"source": "input", "target": "conv1", "weight": 1}, "weight", "unknown key"),
])
def test_bad_edge(edge, field, fragment):
    data = example()
    data["graph"]["edges"][0] = edge
    refused(data, f"graph.edges[0].{field}", fragment)


def test_edge_not_an_object():
    data = example()
    data["graph"]["edges"].append(["input", "conv1"])
    refused(data, "graph.edges[2]", "expected an object with source and target")


def test_structural_problems_load_and_are_reported_by_analyze():
    """A file may describe an invalid model (a cycle, a doubly fed slot); it loads and
    analyze names the problem, so the editor can show it."""
    data = example()
    data["graph"]["edges"].append({"source": "relu1", "target": "conv1", "target_port": 1})
    a = analyze(parse_project(data).graph)
    assert any("cycle" in i.message for i in a.errors)


@pytest.mark.parametrize("section", ["dataset", "training"])
def test_unknown_section_key(section):
    data = example()
    data[section]["colour"] = "red"
    refused(data, f"{section}.colour", "unknown key", f"{section} takes:")


@pytest.mark.parametrize("section", ["dataset", "training"])
@pytest.mark.parametrize("value", [None, [], "digits"])
def test_section_not_an_object(section, value):
    data = example()
    data[section] = value
    refused(data, f"{section}: expected an object, received {json.dumps(value)}")


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu ", "", "tpu", 0])
def test_bad_device(device):
    data = example()
    data["training"]["device"] = device
    refused(data, "training.device")


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_good_device(device):
    data = example()
    data["training"]["device"] = device
    assert parse_project(data).training["device"] == device


@pytest.mark.parametrize("section, key, value, fragment", [
    ("training", "optimizer", "Adagrad", 'one of "SGD", "Adam", "AdamW", "RMSprop"'),
    ("training", "lr", 0, "a number >= 1e-12"),
    ("training", "lr", "0.01", 'received "0.01"'),
    ("training", "batch_size", 0, "an integer from 1 to 1000000"),
    ("training", "epochs", 2.5, "received 2.5"),
    ("training", "drop_last", 0, "true or false"),
    ("training", "loss", "L1Loss", "CrossEntropyLoss"),
    ("training", "schedule", "linear", '"step", "cosine" or null'),
    ("training", "early_stopping_patience", 0, "an integer from 1 to 100000 or null"),
    ("training", "kernels", True, '"auto", "on", "off"'),
    ("training", "momentum", 1.5, "a number from 0 to 1"),
    ("dataset", "name", "cifar10", '"digits"'),
    ("dataset", "validation_fraction", 0.95, "from 0 to 0.9"),
    ("dataset", "normalize", "yes", "true or false"),
    ("dataset", "label_column", -1, "a column name"),
    ("dataset", "samples", 2, "an integer from 4 to 1000000"),
])
def test_bad_setting(section, key, value, fragment):
    data = example()
    data[section][key] = value
    refused(data, f"{section}.{key}: expected", fragment)


@pytest.mark.parametrize("name, needs", [("csv", "path"), ("mnist", "path"),
                                         ("fashion_mnist", "path"), ("image_folder", "path"),
                                         ("idx", "images")])
def test_dataset_needs_its_files(name, needs):
    data = example()
    data["dataset"] = {"name": name}
    refused(data, f"dataset.{needs}", f"dataset {name!r} needs {needs}")


def test_dataset_with_its_files():
    data = example()
    data["dataset"] = {"name": "idx", "images": "i.idx", "labels": "l.idx"}
    assert parse_project(data).dataset["images"] == "i.idx"
    data["dataset"] = {"name": "csv", "path": "train.csv"}
    assert parse_project(data).dataset["label_column"] is None


@pytest.mark.parametrize("editor", [[], "zoom", 1, None])
def test_editor_must_be_an_object(editor):
    data = example()
    data["editor"] = editor
    refused(data, "editor", "expected an object")


def test_editor_must_hold_json_values():
    data = example()
    data["editor"] = {"zoom": float("nan")}
    refused(data, "editor", "JSON values only")
    data["editor"] = {"zoom": {1, 2}}
    refused(data, "editor", "JSON values only")


def test_errors_are_netcanvas_errors_with_a_place():
    e = refused(with_node(example(), 1, type="Nope"))
    assert isinstance(e, NetCanvasError)
    assert e.where == "<project>: graph.nodes[1] (conv1).type"
    with pytest.raises(ProjectError) as info:
        parse_project(b"{", source="my.netcanvas.json")
    assert info.value.where == "my.netcanvas.json"


# -- fuzzing -------------------------------------------------------------------------------
json_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-3, 3)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
                | st.sampled_from(["netcanvas", "Input", "Conv2d", "ReLU", "Add", "same",
                                   "input", "conv1", "relu1", "digits", "csv", "cuda:0", ""]))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(list(project.TOP_KEYS)
                                                           + ["id", "type", "params", "nodes",
                                                              "edges", "shape", "source",
                                                              "target", "target_port"]),
                      children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    """Every (container path) inside a JSON document, to pick a place to mutate."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _parent(doc, path):
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated_documents(draw):
    doc = rich_project() if draw(st.booleans()) else example()
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["drop", "replace", "rename", "duplicate"]))
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(json_values)
        elif action == "rename" and isinstance(parent, dict):
            new_key = draw(st.text(max_size=6) | st.sampled_from(["id", "type", "params"]))
            parent[new_key] = parent.pop(key)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    nodes = doc.get("graph", {}).get("nodes") if isinstance(doc.get("graph"), dict) else None
    if isinstance(nodes, list) and nodes and draw(st.booleans()):
        node = draw(st.sampled_from(nodes))
        if isinstance(node, dict):  # rename an id, leaving the edges pointing at the old one
            node["id"] = draw(st.sampled_from(["conv1", "input", "x", "1x", "to", ""]))
    return doc


def must_refuse_cleanly(raw) -> None:
    try:
        p = parse_project(raw)
    except ProjectError as e:
        assert isinstance(e, NetCanvasError) and str(e)
        return
    # whatever loads also saves and loads again unchanged
    again = parse_project(dumps_project(p))
    assert_same_project(p, again)


FUZZ = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@FUZZ
@given(json_values)
def test_fuzz_random_json_values(value):
    must_refuse_cleanly(value)
    text = json.dumps(value, allow_nan=True)  # NaN and infinities written as Python does
    must_refuse_cleanly(text)
    must_refuse_cleanly(text.encode("utf-8"))


@FUZZ
@given(mutated_documents())
def test_fuzz_mutated_documents(doc):
    must_refuse_cleanly(doc)
    text = json.dumps(doc, allow_nan=True)
    must_refuse_cleanly(text)
    must_refuse_cleanly(text.encode("utf-8"))


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(raw):
    must_refuse_cleanly(raw)


@FUZZ
@given(st.binary(max_size=30), st.integers(0, len(EXAMPLE_TEXT)))
def test_fuzz_bytes_spliced_into_a_valid_file(junk, at):
    data = EXAMPLE_TEXT.encode("utf-8")
    must_refuse_cleanly(data[:at] + junk + data[at:])
    must_refuse_cleanly(data[:at])


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_random_text(text):
    must_refuse_cleanly(text)


def test_saved_files_get_normal_permissions_and_keep_existing_ones(tmp_path):
    path = tmp_path / "p.netcanvas.json"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    p = load_project(path)
    fresh = tmp_path / "fresh.netcanvas.json"
    save_project(p, fresh)
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    os.chmod(path, 0o640)
    save_project(p)
    assert path.stat().st_mode & 0o777 == 0o640
