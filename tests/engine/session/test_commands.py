"""Every command without a screen: redo changes the project, undo brings back exactly the
file it had (node order included), the model announces each change, typed edits merge."""

from __future__ import annotations

import pytest

from app.engine.examples import load_example
from app.engine.graph import Edge, Node
from app.engine.project import dumps_project
from app.engine.session.commands import AddItems, Connect, MoveNodes, RemoveItems, SetParams, SetSetting
from app.engine.session.document import Document


@pytest.fixture
def doc(tmp_path):
    return Document(load_example("lenet5"), scratch_dir=lambda: tmp_path)


def file_text(doc: Document) -> str:
    """The project as its file says it: nodes in order, positions, params, settings."""
    return dumps_project(doc.project)


def round_trip(doc: Document, command) -> tuple[str, str]:
    """Push ``command``, undo, redo; checks the file text before and after each. Returns
    (before, after)."""
    before = file_text(doc)
    doc.push(command)
    after = file_text(doc)
    assert after != before
    doc.undo()
    assert file_text(doc) == before
    doc.redo()
    assert file_text(doc) == after
    doc.undo()
    assert file_text(doc) == before
    return before, after


def test_add_items_adds_nodes_and_edges_and_undo_removes_them(doc):
    node = Node("relu9", "ReLU", {}, (10.0, 20.0))
    command = AddItems(doc, [node], [Edge("fc3", "relu9")])
    assert command.text == "Add ReLU"
    round_trip(doc, command)
    doc.redo()
    assert doc.graph.nodes["relu9"] is not node and doc.graph.incoming("relu9") == [Edge("fc3", "relu9")]
    node.params["changed"] = 1  # the command kept a copy
    doc.undo()
    doc.redo()
    assert doc.graph.nodes["relu9"].params == {}
    assert AddItems(doc, [Node("a", "ReLU"), Node("b", "ReLU")]).text == "Add 2 layers"


def test_remove_items_undo_restores_the_file_order_and_every_touching_edge(doc):
    events = []
    doc.graph.nodes_reordered.connect(events.append)
    command = RemoveItems(doc, ["conv2", "relu3"], [Edge("input", "conv1")])
    before, _ = round_trip(doc, command)
    assert list(doc.graph.nodes)[4] == "conv2" and list(doc.graph.nodes)[9] == "relu3"
    assert events and events[-1] == list(doc.graph.nodes)
    doc.redo()
    assert "conv2" not in doc.graph.nodes and Edge("input", "conv1") not in doc.graph.edges
    assert not any("conv2" in (e.source, e.target) for e in doc.graph.edges)


def test_removing_the_last_nodes_needs_no_reordering(doc):
    events = []
    doc.graph.nodes_reordered.connect(events.append)
    round_trip(doc, RemoveItems(doc, ["fc3"]))
    assert events == []


def test_connect_adds_an_edge_and_undo_removes_it(doc):
    doc.push(RemoveItems(doc, [], [Edge("relu4", "fc3")]))
    command = Connect(doc, Edge("relu4", "fc3"))
    assert command.text == "Connect relu4 to fc3"
    round_trip(doc, command)


def test_move_nodes_and_back_to_no_position(doc):
    doc.graph.move_node("fc3", None)  # a node placed by no one yet
    moved = []
    doc.graph.node_moved.connect(lambda node: moved.append((node.id, node.position)))
    command = MoveNodes(doc, {"fc3": (None, (5.0, 6.0)), "fc2": (doc.graph.nodes["fc2"].position, (1.0, 2.0))})
    assert command.text == "Move 2 layers"
    round_trip(doc, command)
    assert doc.graph.nodes["fc3"].position is None and ("fc3", None) in moved
    assert MoveNodes(doc, {"fc3": (None, (0.0, 0.0))}).text == "Move fc3"


def test_set_params_round_trip_and_typing_merges_into_one_step(doc):
    old = dict(doc.graph.nodes["fc1"].params)
    round_trip(doc, SetParams(doc, "fc1", {**old, "out_features": 7}))
    for typed in ("1", "12", "128"):
        doc.push(SetParams(doc, "fc1", {**old, "out_features": int(typed)}))
    assert doc.history.count == 1 and doc.history.undo_text == "Edit fc1"
    assert doc.graph.nodes["fc1"].params["out_features"] == 128
    doc.undo()
    assert doc.graph.nodes["fc1"].params == old


def test_set_params_of_another_field_or_node_is_another_step(doc):
    fc1 = dict(doc.graph.nodes["fc1"].params)
    doc.push(SetParams(doc, "fc1", {**fc1, "out_features": 7}))
    doc.push(SetParams(doc, "fc1", {**fc1, "out_features": 7, "bias": False}))
    doc.push(SetParams(doc, "fc2", {**doc.graph.nodes["fc2"].params, "out_features": 9}))
    assert doc.history.count == 3


def test_set_setting_round_trip_announces_the_section_and_merges(doc):
    sections = []
    doc.settings_changed.connect(sections.append)
    command = SetSetting(doc, "training", "lr", 0.5)
    assert command.text == "Set training lr"
    round_trip(doc, command)
    assert sections == ["training"] * 4
    doc.push(SetSetting(doc, "training", "lr", 0.1))
    doc.push(SetSetting(doc, "training", "lr", 0.15))
    doc.push(SetSetting(doc, "dataset", "seed", 3))
    assert doc.history.count == 2 and doc.project.training["lr"] == 0.15
    doc.undo()
    doc.undo()
    assert doc.project.training["lr"] == 0.02 and doc.project.dataset["seed"] == 0


def test_commands_never_replace_the_graph_objects(doc):
    """Views hold the graph: commands edit it in place, through its announced methods."""
    graph, nodes = doc.graph, doc.graph.nodes
    changes = []
    graph.changed.connect(lambda: changes.append(1))
    doc.push(RemoveItems(doc, ["conv1"]))
    doc.undo()
    assert doc.graph is graph and doc.graph.nodes is nodes and changes
