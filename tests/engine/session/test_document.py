"""The open project without a screen: its events, the analysis kept current, the dirty
state, saving, batches of edits, the layout of nodes a file gives no position, and
imports and recoveries opened as unsaved work."""

from __future__ import annotations

import pytest
import torch

from app.engine.errors import ProjectError
from app.engine.examples import load_example
from app.engine.graph import Edge, Graph, Node
from app.engine.project import Project, load_project
from app.engine.session.commands import AddItems, RemoveItems, SetParams, SetSetting
from app.engine.session.document import Document
from app.engine.session.recovery import Recovery, RecoveryCopy
from app.engine.weights import read_weights, save_tensors


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


def test_an_import_is_unsaved_work_holding_its_weights_from_the_scratch_folder(doc, tmp_path):
    events = Events(doc)
    tensors = {"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}
    weights = doc.adopt_import(load_example("xor"), tensors, {"source": "model.onnx"})
    assert weights.parent == tmp_path / "scratch" and weights.name.startswith("imported-")
    assert torch.equal(read_weights(weights)["fc.weight"], tensors["fc.weight"])
    assert doc.weights.file == weights and doc.weights.state == "loaded" and doc.weights.unsaved_file == weights
    assert doc.project.name == load_example("xor").name and doc.dirty and doc.history.count == 0
    assert "reset" in events.names() and events.log[-1] == ("dirty_changed", True)


def test_an_import_whose_weights_cannot_be_written_leaves_the_project_open(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    doc = Document(load_example("lenet5"), scratch_dir=lambda: blocked)
    with pytest.raises(OSError):
        doc.adopt_import(load_example("xor"), {"w": torch.ones(1)})
    assert "conv1" in doc.graph.nodes and not doc.dirty and doc.weights.file is None


def test_a_recovery_opens_as_unsaved_work_under_its_original_path_with_its_weights(doc, tmp_path):
    copy = RecoveryCopy(lambda: tmp_path / "recovery")
    edited = load_example("xor")
    edited.path = tmp_path / "mine.netcanvas.json"
    edited.name = "edited"
    held = save_tensors({"w": torch.ones(1)}, tmp_path / "unsaved-1.safetensors")
    (tmp_path / "recovery").mkdir()
    copy.write(edited, held)
    recovery = Recovery(copy.file, str(edited.path), 0.0, "edited", held)
    assert doc.recover(recovery) == held  # for the caller to load into the views
    assert doc.project.name == "edited" and doc.project.path == edited.path and doc.dirty
    held.unlink()  # pruned meanwhile: nothing to hold again
    assert doc.recover(recovery) is None
    never_saved = Recovery(copy.file, None, 0.0, "edited", None)
    assert doc.recover(never_saved) is None and doc.project.path is None and doc.dirty


def test_a_recovery_copy_that_cannot_be_read_leaves_the_project_open(doc, tmp_path):
    broken = tmp_path / "x.netcanvas.json"
    broken.write_text("{", "utf-8")
    with pytest.raises(ProjectError):
        doc.recover(Recovery(broken, None, 0.0, "x"))
    assert "conv1" in doc.graph.nodes and not doc.dirty
