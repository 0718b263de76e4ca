"""Group into block, ungroup, edits inside a block, block parameters, copy/paste of block
nodes: each undoable, each leaving the file as it was after undo."""

from __future__ import annotations

import json

import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.graph import Block, Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.project import Project, dumps_project, parse_project
from app.engine.session.block_commands import (BlockEditError, GroupIntoBlock, SetBlockParams, Ungroup,
                                               plan_group)
from app.engine.session.clipboard import clipping, parse_clipboard, paste_command, to_text
from app.engine.session.commands import SetParams
from app.engine.session.document import Document


def _residual_doc() -> Document:
    """input -> stem -> (conv_a -> bn -> relu) + stem -> add -> flat -> fc"""
    g = Graph()
    specs = [("input", "Input", {"shape": [1, 8, 8]}), ("stem", "Conv2d", {"out_channels": 4, "kernel_size": 3,
                                                                              "padding": 1}),
             ("conv_a", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("bn", "BatchNorm2d", {}), ("relu", "ReLU", {}), ("add", "Add", {}),
             ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 3})]
    for k, (i, t, p) in enumerate(specs):
        g.nodes[i] = Node(i, t, p, (0.0, 100.0 * k))
    for a, b in [("input", "stem"), ("stem", "conv_a"), ("conv_a", "bn"), ("bn", "relu"), ("relu", "add"),
                 ("add", "flat"), ("flat", "fc")]:
        g.edges.append(Edge(a, b))
    g.edges.append(Edge("stem", "add", 1))
    return Document(Project(g))


def _outputs(doc: Document, x: torch.Tensor, state=None):
    torch.manual_seed(0)
    model = compile_graph(doc.graph).eval()
    if state is not None:
        model.load_state_dict(state)
    return model(x), model.state_dict()


def test_grouping_makes_one_block_node_that_computes_the_same():
    doc = _residual_doc()
    before_text = dumps_project(doc.project)
    x = torch.randn(2, 1, 8, 8)
    before, state = _outputs(doc, x)
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    g = doc.graph
    assert "Residual" in g.blocks and set(g.nodes) == {"input", "stem", "residual1", "flat", "fc"}
    assert doc.analysis.ok, doc.analysis.issues
    block = g.blocks["Residual"]
    assert block.inputs() == ["x"]
    assert {(e.source, e.target, e.target_port) for e in block.graph.edges} >= {("x", "conv_a", 0), ("x", "add", 1)}
    renamed = {k.replace("conv_a", "residual1.conv_a").replace("bn.", "residual1.bn.")
               .replace("add", "residual1.add"): v for k, v in state.items()}
    after, _ = _outputs(doc, x, renamed)
    assert torch.allclose(before, after, atol=1e-6)
    doc.undo()
    assert dumps_project(doc.project) == before_text
    assert "Residual" not in doc.graph.blocks
    doc.redo()
    assert doc.analysis.ok and "residual1" in doc.graph.nodes


@pytest.mark.parametrize("chosen, message", [
    ([], "select the layers"),
    (["input", "stem"], "Input layers stay outside"),
    (["stem", "conv_a"], "a block has one output, but conv_a and stem send values out"),
])
def test_grouping_what_cannot_be_a_block_says_why(chosen, message):
    doc = _residual_doc()
    with pytest.raises(BlockEditError, match=message):
        plan_group(doc.graph, chosen)
    assert doc.history.count == 0


def test_an_edit_inside_a_block_changes_every_node_of_it_and_undoes():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    # a second node of the same block after the first
    doc.graph.nodes["second"] = Node("second", "Residual", {}, (300.0, 300.0))
    doc.graph.remove_edge(Edge("residual1", "flat"))
    doc.graph.add_edge(Edge("residual1", "second"))
    doc.graph.add_edge(Edge("second", "flat"))
    before = dict(doc.analysis.param_counts)
    inner = doc.graph.blocks["Residual"].graph
    doc.push(SetParams(doc, "conv_a", {"out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
                       graph=inner))
    after = doc.analysis.param_counts  # the document re-analyzed after the edit inside the block
    assert before["residual1"] - after["residual1"] == 4 and before["second"] - after["second"] == 4
    doc.undo()
    assert doc.analysis.param_counts == before


def test_block_parameters_are_declared_and_used_with_undo():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    inner = doc.graph.blocks["Residual"].graph
    doc.push(SetBlockParams(doc, "Residual", {"k": 3}))
    doc.push(SetParams(doc, "conv_a", {"out_channels": 4, "kernel_size": "$k", "padding": 1}, graph=inner))
    assert doc.analysis.ok
    doc.push(SetParams(doc, "residual1", {"k": 5}))
    assert not doc.analysis.ok  # a 5x5 window with padding 1 shrinks the map: Add cannot take it
    assert str(doc.analysis.errors[0]).startswith("residual1/add:")
    doc.undo()
    doc.undo()
    doc.undo()
    assert doc.graph.blocks["Residual"].params == {}


def test_ungrouping_writes_the_layers_back_with_the_node_values():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    grouped_text = dumps_project(doc.project)
    doc.push(Ungroup(doc, "residual1"))
    assert set(doc.graph.nodes) == {"input", "stem", "conv_a", "bn", "relu", "add", "flat", "fc"}
    assert "Residual" not in doc.graph.blocks  # no other node used it
    assert doc.analysis.ok
    assert doc.analysis.total_params == _residual_doc().analysis.total_params
    doc.undo()
    assert dumps_project(doc.project) == grouped_text


def test_ungrouping_a_repeated_block_is_refused():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    doc.graph.set_options("residual1", repeat=2)
    with pytest.raises(BlockEditError, match="repeats 2 times; set repeat to 1"):
        Ungroup(doc, "residual1")


def test_copy_and_paste_of_a_block_node_carries_its_definition_to_another_project():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    text = to_text(clipping(doc.graph, ["residual1"]))
    assert json.loads(text)["blocks"]["Residual"]["graph"]["nodes"][0]["type"] == "Input"
    other = _residual_doc()
    clip = parse_clipboard(text)
    other.push(paste_command(other, clip))
    assert "Residual" in other.graph.blocks
    pasted = next(n for n in other.graph.nodes.values() if n.type == "Residual")
    assert pasted.id == "residual2" or pasted.id.startswith("residual")
    other.undo()
    assert "Residual" not in other.graph.blocks
    # pasted where a different block has the name: added under another name
    other.graph.blocks.add(Block("Residual", {"unused": 1}, Graph()))
    other.push(paste_command(other, clip))
    pasted = [n for n in other.graph.nodes.values() if n.type.startswith("Residual_")]
    assert pasted and pasted[0].type in other.graph.blocks


def test_copy_keeps_repeat_trainable_and_source_port():
    g = Graph()
    g.nodes["i"] = Node("i", "Input", {"shape": [4, 6]}, (0.0, 0.0))
    g.nodes["lstm"] = Node("lstm", "LSTM", {"hidden_size": 5}, (0.0, 100.0), trainable=False)
    g.nodes["lin"] = Node("lin", "Linear", {"out_features": 5}, (0.0, 200.0), repeat=3)
    g.edges += [Edge("i", "lstm"), Edge("lstm", "lin", 0, 1)]
    clip = parse_clipboard(to_text(clipping(g, ["lstm", "lin"])))
    lstm, lin = clip.nodes
    assert not lstm.trainable and lin.repeat == 3 and clip.edges[0].source_port == 1


def test_the_document_follows_blocks_of_a_project_opened_later():
    doc = Document()
    data = {"format": "netcanvas", "version": 2, "name": "b",
            "blocks": {"B": {"params": {}, "graph": {"nodes": [{"id": "x", "type": "Input"},
                                                                {"id": "l", "type": "Linear",
                                                                 "params": {"out_features": 2}}],
                                                      "edges": [{"source": "x", "target": "l"}]}}},
            "graph": {"nodes": [{"id": "i", "type": "Input", "params": {"shape": [3]}}, {"id": "b", "type": "B"}],
                      "edges": [{"source": "i", "target": "b"}]}}
    doc.set_project(parse_project(json.dumps(data)))
    assert doc.analysis.shapes["b"] == (2,)
    doc.push(SetParams(doc, "l", {"out_features": 7}, graph=doc.graph.blocks["B"].graph))
    assert doc.analysis.shapes["b"] == (7,)
    assert analyze(doc.graph).shapes["b"] == (7,)


def test_opening_a_block_shows_its_inside_with_the_shapes_the_node_receives():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    seen = []
    doc.scope_changed.connect(seen.append)
    doc.open_block("residual1")
    assert doc.scope == ("residual1",) and seen == [("residual1",)]
    assert doc.current_graph is doc.graph.blocks["Residual"].graph
    assert doc.current_analysis.shapes["conv_a"] == (4, 8, 8)
    with pytest.raises(ValueError, match="not a block node"):
        doc.open_block("conv_a")
    doc.undo()  # the grouping: the opened node is gone, so the editor is back at the top
    assert doc.scope == () and seen[-1] == ()
    assert doc.current_graph is doc.graph


def test_a_block_whose_node_gets_no_shapes_still_opens():
    doc = _residual_doc()
    doc.push(GroupIntoBlock(doc, ["conv_a", "bn", "relu", "add"], name="Residual"))
    doc.graph.remove_edge(Edge("stem", "residual1"))
    doc.open_block("residual1")
    a = doc.current_analysis
    assert a.shapes.get("conv_a") is None
    assert not any(i.node == "x" for i in a.issues)
