"""RestoreRun: a recorded run's graph, training and dataset settings come back as one undo
step, and undo brings back exactly the project file there was (blocks and order included)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.engine.errors import ProjectError
from app.engine.examples import load_example
from app.engine.graph import Node
from app.engine.project import dumps_project, project_to_dict
from app.engine.session.document import Document
from app.engine.session.run_commands import RestoreRun, run_project


@pytest.fixture
def doc(tmp_path):
    return Document(load_example("lenet5"), scratch_dir=lambda: tmp_path)


def record_of(project, run_id="20261203-064110-ff95"):
    """What the run store keeps of a run that matters to a restore."""
    return SimpleNamespace(id=run_id, project=project_to_dict(project))


def other_lenet():
    """lenet5 as an earlier run had it: another lr, 8 filters in conv1, a dropout added, and
    another dataset split."""
    p = load_example("lenet5")
    p.training = {**p.training, "lr": 0.05, "epochs": 3}
    p.dataset = {**p.dataset, "validation_fraction": 0.2, "seed": 7}
    p.graph.nodes["conv1"].params["out_channels"] = 8
    p.graph.add_node(Node("drop9", "Dropout", {"p": 0.3}, (5.0, 6.0)))
    return p


def test_restore_is_one_step_that_brings_back_graph_and_settings_and_undoes_cleanly(doc):
    run = other_lenet()
    before = dumps_project(doc.project)
    graph = doc.graph
    settings_events, analyses = [], []
    doc.settings_changed.connect(settings_events.append)
    doc.analyzed.connect(analyses.append)

    doc.push(RestoreRun(doc, record_of(run)))

    assert doc.history.count == 1 and doc.history.undo_text == "Restore run 20261203-064110-ff95"
    assert doc.graph is graph  # changed in place: views keep following the same graph
    assert doc.project.training == run.training and doc.project.dataset == run.dataset
    assert doc.graph.nodes["conv1"].params["out_channels"] == 8 and "drop9" in doc.graph.nodes
    assert project_to_dict(doc.project)["graph"] == project_to_dict(run)["graph"]
    assert sorted(settings_events) == ["dataset", "training"]
    assert len(analyses) == 1  # one analysis for the whole replacement
    assert doc.analysis.shapes["conv1"][0] == 8  # the analysis follows the restored graph
    restored = dumps_project(doc.project)

    doc.undo()
    assert dumps_project(doc.project) == before
    assert doc.history.index == 0 and not doc.dirty
    doc.redo()
    assert dumps_project(doc.project) == restored
    doc.undo()
    assert dumps_project(doc.project) == before


def test_restore_brings_back_block_definitions_and_leaves_an_open_block(tmp_path):
    doc = Document(load_example("lenet5"), scratch_dir=lambda: tmp_path)
    blocks_run = load_example("resnet_blocks")
    assert len(blocks_run.graph.blocks)
    lenet_text = dumps_project(doc.project)
    doc.push(RestoreRun(doc, record_of(blocks_run)))
    assert list(doc.graph.blocks) == list(blocks_run.graph.blocks)
    assert project_to_dict(doc.project)["blocks"] == project_to_dict(blocks_run)["blocks"]
    block_node = next(n for n in doc.graph.nodes.values() if n.type in doc.graph.blocks)
    doc.open_block(block_node.id)
    assert doc.scope == (block_node.id,)
    doc.undo()  # lenet has no such block: the editor goes back to the project's graph
    assert doc.scope == () and dumps_project(doc.project) == lenet_text and not len(doc.graph.blocks)
    doc.redo()
    # the redone definitions are live copies: editing inside one does not touch the command's
    doc.graph.blocks[block_node.type].graph.set_params(
        next(iter(doc.graph.blocks[block_node.type].graph.nodes)), {"changed": 1})
    doc.undo()
    doc.redo()
    assert project_to_dict(doc.project)["blocks"] == project_to_dict(blocks_run)["blocks"]


def test_a_run_whose_nodes_have_no_positions_is_laid_out(doc):
    run = other_lenet()
    data = project_to_dict(run)
    for node in data["graph"]["nodes"]:
        node.pop("position", None)
    doc.push(RestoreRun(doc, SimpleNamespace(id="r1", project=data)))
    assert all(n.position is not None for n in doc.graph.nodes.values())


def test_an_unreadable_stored_project_is_refused_with_the_run_named_and_nothing_changes(doc):
    before = dumps_project(doc.project)
    broken = SimpleNamespace(id="20261203-000000-dead", project={"format": "netcanvas", "version": 2,
                                                                  "graph": {"nodes": "oops"}})
    with pytest.raises(ProjectError, match="run 20261203-000000-dead"):
        RestoreRun(doc, broken)
    with pytest.raises(ProjectError, match="run 20261203-000000-dead"):
        run_project(broken)
    assert dumps_project(doc.project) == before and doc.history.count == 0
