"""The open project without a screen: its events, the analysis kept current, the dirty
state, saving, batches of edits, and the layout of nodes a file gives no position."""

from __future__ import annotations

import pytest

from app.engine.errors import ProjectError
from app.engine.examples import load_example
from app.engine.graph import Edge, Graph, Node
from app.engine.project import Project, load_project
from app.engine.session.commands import AddItems, RemoveItems, SetParams, SetSetting
from app.engine.session.document import Document


class Events:
    NAMES = ("analyzed", "reset", "path_changed", "dirty_changed", "settings_changed")

    def __init__(self, doc: Document):
        self.log: list[tuple] = []
        for name in self.NAMES:
            getattr(doc, name).connect(lambda *args, name=name: self.log.append((name, *args)))

    def names(self) -> list[str]:
        return [e[0] for e in self.log]


@pytest.fixture
def doc(tmp_path):
    return Document(load_example("lenet5"), scratch_dir=lambda: tmp_path / "scratch")


def test_a_new_document_holds_an_empty_project_analysed_and_clean():
    doc = Document()
    assert doc.graph.nodes == {} and not doc.dirty and doc.history.count == 0
    assert doc.analysis.total_params == 0 and doc.weights.state == "none"


def test_an_edit_is_analysed_and_makes_the_document_dirty(doc):
    events = Events(doc)
    params = {**doc.graph.nodes["fc3"].params, "out_features": 5}
    doc.push(SetParams(doc, "fc3", params))
    assert doc.dirty and doc.analysis.shapes["fc3"] == (5,)
    assert events.names() == ["analyzed", "dirty_changed"] and events.log[1] == ("dirty_changed", True)
    doc.undo()
    assert not doc.dirty and doc.analysis.shapes["fc3"] == (10,) and events.log[-1] == ("dirty_changed", False)
    doc.redo()
    assert doc.dirty and doc.analysis.shapes["fc3"] == (5,)


def test_settings_announce_their_section(doc):
    events = Events(doc)
    doc.push(SetSetting(doc, "dataset", "seed", 4))
    assert ("settings_changed", "dataset") in events.log and doc.project.dataset["seed"] == 4 and doc.dirty
    with pytest.raises(ValueError, match="dataset, training; received 'model'"):
        doc.set_section("model", {})


def test_save_marks_the_document_clean_and_says_where(doc, tmp_path):
    doc.push(RemoveItems(doc, ["relu4"]))
    events = Events(doc)
    target = doc.save(tmp_path / "net.netcanvas.json")
    assert target == tmp_path / "net.netcanvas.json" and not doc.dirty
    assert events.log == [("dirty_changed", False), ("path_changed", str(target))]
    assert list(load_project(target).graph.nodes) == list(doc.graph.nodes)
    assert doc.history.clean_index == 1
    doc.undo()  # back before the save: differs from the file
    assert doc.dirty


def test_save_without_a_path_raises_and_stays_dirty():
    doc = Document(Project(name="untitled"))
    doc.push(AddItems(doc, [Node("input1", "Input", {"shape": [3]}, (0.0, 0.0))]))
    with pytest.raises(ProjectError):
        doc.save()
    assert doc.dirty


def test_a_batch_of_edits_is_analysed_once(doc):
    events = Events(doc)
    with doc.batch():
        with doc.batch():
            doc.graph.remove_node("fc3")
            doc.graph.remove_node("relu4")
        assert events.names() == []
    assert events.names() == ["analyzed"] and "fc3" not in doc.analysis.shapes


def test_set_project_lays_out_the_nodes_without_a_position(doc):
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [4]}))
    g.add_node(Node("fc", "Linear", {"out_features": 2}, (500.0, 600.0)))
    g.add_node(Node("out", "ReLU"))
    g.add_edge(Edge("input", "fc"))
    g.add_edge(Edge("fc", "out"))
    doc.push(RemoveItems(doc, ["fc3"]))
    events = Events(doc)
    doc.set_project(Project(graph=g, name="loaded"))
    assert all(n.position is not None for n in doc.graph.nodes.values())
    assert doc.graph.nodes["fc"].position == (500.0, 600.0)  # placed by the file: kept
    assert doc.graph.nodes["input"].position[1] < doc.graph.nodes["out"].position[1]
    assert events.names() == ["dirty_changed", "reset", "analyzed", "path_changed"]
    assert events.log[-1] == ("path_changed", "") and events.log[0] == ("dirty_changed", False)
    assert doc.history.count == 0 and not doc.dirty and doc.analysis.shapes["out"] == (2,)


def test_set_project_drops_the_weights_held_and_listens_to_the_new_graph(doc, tmp_path):
    old_graph = doc.graph
    doc.weights.hold(tmp_path / "w.safetensors")
    doc.set_project(load_example("xor"))
    assert doc.weights.state == "none" and doc.weights.file is None
    events = Events(doc)
    old_graph.remove_node("fc3")  # the old project no longer counts
    assert events.log == []
    doc.graph.remove_node(next(reversed(doc.graph.nodes)))
    assert events.names() and set(events.names()) == {"analyzed"}


def test_reset_clean_makes_unsaved_work_of_an_unedited_project(doc):
    events = Events(doc)
    doc.history.reset_clean()
    assert doc.dirty and events.log == [("dirty_changed", True)]


def test_a_new_document_lays_out_the_nodes_without_a_position():
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [4]}))
    g.add_node(Node("fc", "Linear", {"out_features": 2}))
    g.add_edge(Edge("input", "fc"))
    doc = Document(Project(graph=g, name="loaded"))
    assert doc.graph.nodes["input"].position[1] < doc.graph.nodes["fc"].position[1]
    assert not doc.dirty and doc.history.count == 0
