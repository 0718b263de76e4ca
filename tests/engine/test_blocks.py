"""Blocks (format version 2): named sub-graphs with parameters, used as layer types."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from app.engine.blocks import is_block
from app.engine.compiler import compile_graph
from app.engine.errors import ProjectError
from app.engine.graph import Edge, Node
from app.engine.inference import analyze
from app.engine.project import dumps_project, parse_project


def res_block(**bn) -> dict:
    """A residual block: conv-bn-relu-conv plus a 1x1 projection of the input; ``width``
    sets the channels; ``bn``: keys for the BatchNorm node (``trainable=False``)."""
    return {
        "params": {"width": 8, "stride": 1},
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input"},
                {"id": "conv1", "type": "Conv2d", "params": {"out_channels": "$width", "kernel_size": 3,
                                                              "stride": "$stride", "padding": 1, "bias": False}},
                {"id": "bn1", "type": "BatchNorm2d", **bn},
                {"id": "relu", "type": "ReLU"},
                {"id": "conv2", "type": "Conv2d", "params": {"out_channels": "$width", "kernel_size": 3,
                                                              "padding": 1}},
                {"id": "proj", "type": "Conv2d", "params": {"out_channels": "$width", "kernel_size": 1,
                                                             "stride": "$stride"}},
                {"id": "add", "type": "Add"},
            ],
            "edges": [
                {"source": "x", "target": "conv1"}, {"source": "conv1", "target": "bn1"},
                {"source": "bn1", "target": "relu"}, {"source": "relu", "target": "conv2"},
                {"source": "conv2", "target": "add"}, {"source": "x", "target": "proj"},
                {"source": "proj", "target": "add", "target_port": 1},
            ],
        },
    }


def _project(blocks=None, nodes=None, edges=None, version=2) -> dict:
    nodes = nodes or [
        {"id": "input", "type": "Input", "params": {"shape": [1, 12, 12]}},
        {"id": "layer1", "type": "Res", "params": {"width": 4}},
        {"id": "layer2", "type": "Res", "params": {"width": 6, "stride": 2}, "repeat": 3},
        {"id": "flat", "type": "Flatten"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 5}},
    ]
    ids = [n["id"] for n in nodes]
    edges = edges if edges is not None else [{"source": a, "target": b} for a, b in zip(ids, ids[1:])]
    data = {"format": "netcanvas", "version": version, "name": "blocks",
            "graph": {"nodes": nodes, "edges": edges}}
    if blocks is not False:
        data["blocks"] = blocks or {"Res": res_block()}
    return data


def _load(data) -> object:
    return parse_project(json.dumps(data))


# -- shapes, counts, names ---------------------------------------------------------------
def test_shapes_and_counts_follow_each_instance_and_each_copy():
    p = _load(_project())
    a = analyze(p.graph)
    assert a.ok, a.issues
    assert a.shapes["layer1"] == (4, 12, 12)
    # stride 2 in every copy of the repeat: 12 -> 6 -> 3 -> 2
    assert a.shapes["layer2"] == (6, 2, 2)
    model = compile_graph(p.graph, a)
    counted = {name: sum(t.numel() for n, t in model.named_parameters() if n.split(".")[0] == name)
               for name in a.param_counts}
    assert counted == a.param_counts
    assert a.total_params == sum(t.numel() for t in model.parameters())
    assert model(torch.randn(2, 1, 12, 12)).shape == (2, 5)


def test_weights_are_named_as_the_format_says():
    p = _load(_project())
    names = set(compile_graph(p.graph).state_dict())
    assert {"layer1.conv1.weight", "layer1.bn1.running_mean", "layer1.proj.bias",
            "layer2.0.conv1.weight", "layer2.2.conv2.bias"} <= names
    assert not any(n.startswith("layer2.3.") for n in names)


def test_a_block_computes_what_its_layers_written_out_compute():
    """The block project and the same layers written into the graph, with the same
    weights, give the same output."""
    p = _load(_project(nodes=[
        {"id": "input", "type": "Input", "params": {"shape": [1, 12, 12]}},
        {"id": "layer1", "type": "Res", "params": {"width": 4, "stride": 2}},
        {"id": "flat", "type": "Flatten"},
    ]))
    inner = res_block()["graph"]
    nodes = [{"id": "input", "type": "Input", "params": {"shape": [1, 12, 12]}}]
    for n in inner["nodes"][1:]:
        params = {k: {"$width": 4, "$stride": 2}.get(v, v) if isinstance(v, str) else v
                  for k, v in n.get("params", {}).items()}
        nodes.append({"id": n["id"], "type": n["type"], "params": params})
    nodes.append({"id": "flat", "type": "Flatten"})
    edges = [{**e, "source": "input" if e["source"] == "x" else e["source"]} for e in inner["edges"]]
    edges.append({"source": "add", "target": "flat"})
    flat = _load(_project(blocks=False, nodes=nodes, edges=edges))
    blocked_model = compile_graph(p.graph).eval()
    flat_model = compile_graph(flat.graph).eval()
    flat_model.load_state_dict({k.removeprefix("layer1."): v for k, v in blocked_model.state_dict().items()})
    x = torch.randn(3, 1, 12, 12)
    assert torch.allclose(blocked_model(x), flat_model(x), atol=1e-6)
    assert analyze(p.graph).total_params == analyze(flat.graph).total_params


def test_blocks_inside_blocks_pass_parameters_down():
    blocks = {
        "Res": res_block(),
        "Stage": {"params": {"w": 3}, "graph": {
            "nodes": [{"id": "inp", "type": "Input"},
                      {"id": "first", "type": "Res", "params": {"width": "$w", "stride": 2}},
                      {"id": "second", "type": "Res", "params": {"width": "$w"}}],
            "edges": [{"source": "inp", "target": "first"}, {"source": "first", "target": "second"}]}},
    }
    p = _load(_project(blocks=blocks, nodes=[
        {"id": "input", "type": "Input", "params": {"shape": [2, 8, 8]}},
        {"id": "stage1", "type": "Stage", "params": {"w": 5}},
    ]))
    a = analyze(p.graph)
    assert a.ok, a.issues
    assert a.shapes["stage1"] == (5, 4, 4)
    model = compile_graph(p.graph, a)
    assert "stage1.second.conv2.weight" in model.state_dict()
    assert model(torch.randn(1, 2, 8, 8)).shape == (1, 5, 4, 4)


def test_a_block_with_two_inputs_takes_them_in_the_order_of_its_input_nodes():
    blocks = {"Gate": {"params": {}, "graph": {
        "nodes": [{"id": "a", "type": "Input"}, {"id": "b", "type": "Input"},
                  {"id": "sub", "type": "Subtract"}],
        "edges": [{"source": "a", "target": "sub"}, {"source": "b", "target": "sub", "target_port": 1}]}}}
    nodes = [{"id": "left", "type": "Input", "params": {"shape": [3]}},
             {"id": "right", "type": "Input", "params": {"shape": [3]}},
             {"id": "gate", "type": "Gate"}]
    edges = [{"source": "right", "target": "gate", "target_port": 1}, {"source": "left", "target": "gate"}]
    p = _load(_project(blocks=blocks, nodes=nodes, edges=edges))
    spec = p.graph.spec("Gate")
    assert is_block(spec) and spec.input_names == ("a", "b")
    model = compile_graph(p.graph)
    left, right = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.equal(model(left, right), left - right)


# -- errors ------------------------------------------------------------------------------
def test_an_error_inside_a_block_names_the_path():
    data = _project()
    data["graph"]["nodes"][1]["params"] = {"width": 0}
    a = analyze(_load(data).graph)
    texts = [str(i) for i in a.errors]
    assert any(t.startswith("layer1/conv1.out_channels: expected an integer >= 1, received 0") for t in texts), texts
    assert {i.node for i in a.errors} == {"layer1"}


def test_an_error_in_a_later_copy_of_a_repeated_block_says_which_copy():
    blocks = {"Down": {"params": {}, "graph": {
        "nodes": [{"id": "x", "type": "Input"},
                  {"id": "conv", "type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 3, "stride": 2}}],
        "edges": [{"source": "x", "target": "conv"}]}}}
    # 8x8 -> 3x3 -> 1x1, and a third 3x3 window does not fit a 1x1 map
    data = _project(blocks=blocks, nodes=[{"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}},
                                          {"id": "down", "type": "Down", "repeat": 3}])
    message = next(str(i) for i in analyze(_load(data).graph).errors)
    assert message.startswith("down: copy 2 of 3 (repeat) receives [2, 1, 1] from copy 1: conv"), message


def test_setting_an_undeclared_block_parameter_names_both():
    data = _project()
    data["graph"]["nodes"][1]["params"] = {"depth": 2}
    with pytest.raises(ProjectError, match=r"layer1\).params.depth: Res has no parameter 'depth' "
                                           r"\(it has: width, stride\)"):
        _load(data)


def test_referring_to_an_undeclared_parameter_names_both():
    data = _project()
    data["blocks"]["Res"]["graph"]["nodes"][2]["params"] = {"eps": "$epsilon"}
    with pytest.raises(ProjectError, match=r'blocks.Res.graph.nodes\[2\] \(bn1\).params.eps: refers to '
                                           r'"\$epsilon", which block Res does not declare '
                                           r"\(it declares: width, stride\)"):
        _load(data)


def test_a_reference_is_a_whole_value_only():
    data = _project()
    data["blocks"]["Res"]["graph"]["nodes"][1]["params"]["kernel_size"] = ["$k", 3]
    with pytest.raises(ProjectError, match=r"conv1\).params.kernel_size: expected an integer"):
        _load(data)
    data = _project()
    data["blocks"]["Res"]["graph"]["nodes"][1]["repeat"] = "$width"
    with pytest.raises(ProjectError, match=r"conv1\).repeat: expected an integer from 1"):
        _load(data)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["blocks"].update(Conv2d=d["blocks"].pop("Res")), "Conv2d is a layer type of the catalogue"),
    (lambda d: d["blocks"].update({"2fast": {"params": {}, "graph": {"nodes": []}}}), "must be a Python identifier"),
    (lambda d: d["blocks"]["Res"]["graph"]["nodes"][0].update(params={"shape": [3]}),
     "a block's Input takes no parameters"),
    (lambda d: d["blocks"]["Res"]["graph"]["nodes"].pop(0), r'edges\[0\].source: no node has the id "x"'),
    (lambda d: d["blocks"]["Res"]["graph"]["edges"].pop(), "a block has exactly one output"),
    (lambda d: d["blocks"]["Res"].update(extra=1), "unknown key; a block takes: params, graph"),
    (lambda d: d["blocks"]["Res"]["params"].update({"a-b": 1}), "parameter's name must be an identifier"),
    (lambda d: d.update(version=1), "blocks .*new in format version 2"),
])
def test_bad_block_definitions_are_refused_naming_the_field(change, message):
    data = _project()
    change(data)
    with pytest.raises(ProjectError, match=message):
        _load(data)


def test_a_block_without_an_input_is_refused():
    data = _project()
    data["blocks"]["Res"]["graph"] = {"nodes": [{"id": "c", "type": "Identity"}], "edges": []}
    with pytest.raises(ProjectError, match=r"blocks.Res.graph.nodes: a block needs at least one Input"):
        _load(data)


def test_a_block_that_uses_itself_is_refused():
    blocks = {
        "A": {"params": {}, "graph": {"nodes": [{"id": "x", "type": "Input"}, {"id": "b", "type": "B"}],
                                      "edges": [{"source": "x", "target": "b"}]}},
        "B": {"params": {}, "graph": {"nodes": [{"id": "x", "type": "Input"}, {"id": "a", "type": "A"}],
                                      "edges": [{"source": "x", "target": "a"}]}},
    }
    with pytest.raises(ProjectError, match=r"a block cannot use itself, directly or not: A -> B -> A"):
        _load(_project(blocks=blocks))


def test_a_block_made_to_use_itself_after_loading_is_an_analysis_error_not_a_hang():
    p = _load(_project())
    inner = p.graph.blocks["Res"].graph
    inner.add_node(Node("again", "Res"))
    inner.remove_edge(next(e for e in inner.edges if e.target == "add" and e.target_port == 1))
    inner.add_edge(Edge("x", "again"))
    inner.add_edge(Edge("again", "add", 1))
    a = analyze(p.graph)
    assert any("a block cannot use itself: Res -> Res" in str(i) for i in a.errors), a.errors


# -- editing a definition --------------------------------------------------------------------
def test_editing_a_definition_changes_every_instance():
    data = _project()
    data["graph"]["nodes"][1]["params"] = {}  # layer1 takes the declared default width
    p = _load(data)
    before = analyze(p.graph).param_counts
    p.graph.blocks["Res"].graph.set_params("conv2", {"out_channels": "$width", "kernel_size": 3,
                                                     "padding": 1, "bias": False})
    after = analyze(p.graph).param_counts
    assert before["layer1"] - after["layer1"] == 8  # conv2's bias, width 8
    assert before["layer2"] - after["layer2"] == 3 * 6  # in each of the 3 copies, width 6
    p.graph.blocks.set_params("Res", {"width": 2, "stride": 1})
    a = analyze(p.graph)
    assert a.shapes["layer1"] == (2, 12, 12) and a.shapes["layer2"] == (6, 2, 2)


# -- files ---------------------------------------------------------------------------------
def test_a_file_with_blocks_saves_as_it_was_written():
    data = _project()
    text = dumps_project(_load(data))
    again = json.loads(text)
    assert again["blocks"]["Res"]["params"] == {"width": 8, "stride": 1}
    assert again["blocks"]["Res"]["graph"]["nodes"][1]["params"]["out_channels"] == "$width"
    assert list(again) [:5] == ["format", "version", "name", "blocks", "graph"]
    assert dumps_project(parse_project(text)) == text


def test_a_copy_of_the_graph_has_its_own_definitions():
    p = _load(_project())
    other = p.graph.copy()
    other.blocks["Res"].graph.set_params("conv2", {"out_channels": 2, "kernel_size": 1})
    assert analyze(p.graph).ok
    assert other.blocks is not p.graph.blocks
    assert other.blocks["Res"].graph.blocks is other.blocks


def test_a_frozen_block_node_has_no_gradients():
    data = _project()
    data["graph"]["nodes"][1]["trainable"] = False
    model = compile_graph(_load(data).graph)
    assert not any(t.requires_grad for t in model.layer1.parameters())
    assert all(t.requires_grad for t in model.layer2.parameters())


def test_deep_copies_of_parsed_data_do_not_share_block_parameters():
    data = _project()
    p = _load(copy.deepcopy(data))
    p.graph.blocks["Res"].params["width"] = 99
    assert _load(data).graph.blocks["Res"].params["width"] == 8


def test_filters_and_activations_reach_inside_blocks_and_repeats():
    from app.engine import snapshots
    p = _load(_project())
    a = analyze(p.graph)
    model = compile_graph(p.graph, a)
    filters = snapshots.conv_filters(model, p.graph)
    assert {"layer1/conv1", "layer1/proj", "layer2/conv2"} <= set(filters)
    assert filters["layer2/conv1"].shape == (6, 4, 3, 3)  # the first copy: 4 channels in
    acts = snapshots.activations(model, a, torch.randn(2, 1, 12, 12))
    assert acts["layer2"].shape == (2, 6, 2, 2)
