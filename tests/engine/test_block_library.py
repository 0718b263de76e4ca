"""The block library (app/engine/block_library.py): the built-in entries in resources/blocks,
inserting an entry into a project, saving a project's block as an entry, bad files."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from app.engine.block_library import (MAX_BYTES, builtin_folder, insert_entry, list_library, load_entry,
                                      parse_entry, save_entry)
from app.engine.compiler import compile_graph
from app.engine.errors import ProjectError
from app.engine.graph import Edge, Node
from app.engine.inference import analyze
from app.engine.project import dumps_project, graph_to_dict, parse_project

BUILTIN = sorted(builtin_folder().glob("*.json"))
# what the issue asks the built-in library to hold
EXPECTED = {"BasicBlock", "BasicBlockDown", "Bottleneck", "BottleneckDown", "InvertedResidual",
            "InvertedResidualDown", "SqueezeExcitation", "DenseLayer", "DoubleConv",
            "TransformerEncoderPreNorm", "TransformerEncoderPostNorm", "PatchEmbedding"}


def one_node_project(entry, version=2):
    """A project with an Input per block input (the entry's shapes) feeding one node of it."""
    nodes = [{"id": f"input{k}", "type": "Input", "params": {"shape": s}} for k, s in enumerate(entry.input_shapes)]
    nodes.append({"id": "block", "type": entry.name})
    edges = [{"source": f"input{k}", "target": "block", "target_port": k} for k in range(len(entry.input_shapes))]
    return parse_project({"format": "netcanvas", "version": version, "blocks": entry.data,
                          "graph": {"nodes": nodes, "edges": edges}})


def test_the_builtin_library_holds_the_issues_blocks_each_documented():
    entries = list_library()
    assert {e.name for e in entries} == EXPECTED
    assert all(e.builtin and e.error is None and len(e.doc) > 40 and e.input_shapes for e in entries)
    assert len(BUILTIN) == len(EXPECTED)


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_builtin_entry_checks_compiles_and_runs_in_a_one_node_project(path):
    entry = load_entry(path)
    project = one_node_project(entry)
    a = analyze(project.graph)
    assert a.errors == []
    assert a.total_params > 0
    model = compile_graph(project.graph, a).eval()
    assert sum(p.numel() for p in model.parameters()) == a.total_params
    x = [torch.randn(2, *s) for s in entry.input_shapes]
    with torch.no_grad():
        y = model(*x)
    assert tuple(y.shape) == (2, *a.shapes["block"])
    assert torch.isfinite(y).all()
    # the saved project (with the copied blocks) loads again to the same analysis
    again = parse_project(dumps_project(project))
    assert analyze(again.graph).shapes == a.shapes


@pytest.mark.parametrize("name, norm_first", [("transformer_encoder_postnorm", False),
                                              ("transformer_encoder_prenorm", True)])
def test_transformer_blocks_are_torchs_encoder_layer(name, norm_first):
    """Their inner ids are torch's names, so the weights load strictly into
    nn.TransformerEncoderLayer, which then computes the same."""
    entry = load_entry(builtin_folder() / f"{name}.json")
    project = one_node_project(entry)
    model = compile_graph(project.graph).eval()
    torch_layer = nn.TransformerEncoderLayer(512, 8, 2048, dropout=0.1, batch_first=True, norm_first=norm_first,
                                             activation="gelu" if norm_first else "relu").eval()
    inner = {k[len("block."):]: v for k, v in model.state_dict().items()}
    torch_layer.load_state_dict(inner, strict=True)
    x = torch.randn(3, 16, 512)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch_layer(x), atol=1e-5, rtol=1e-5)


def test_insert_copies_the_entry_and_its_dependencies_but_keeps_the_projects_own(tmp_path):
    project = parse_project({"format": "netcanvas", "version": 2,
                             "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [4]}}]}})
    blocks = project.graph.blocks
    se = load_entry(builtin_folder() / "squeeze_excitation.json")
    own = copy.deepcopy(se.data)
    own["SqueezeExcitation"]["params"]["squeeze"] = 2
    save_entry(parse_project({"format": "netcanvas", "version": 2, "blocks": own, "graph": {
        "nodes": [{"id": "i", "type": "Input", "params": {"shape": [1]}}]}}).graph.blocks,
        "SqueezeExcitation", tmp_path)
    # a user's block that uses the SE block: saved with it as a dependency
    user = {"Gated": {"params": {"c": 8}, "graph": {"nodes": [
        {"id": "x", "type": "Input"}, {"id": "conv", "type": "Conv2d", "params": {"out_channels": "$c", "kernel_size": 1}},
        {"id": "se", "type": "SqueezeExcitation", "params": {"channels": "$c", "squeeze": 2}}],
        "edges": [{"source": "x", "target": "conv"}, {"source": "conv", "target": "se"}]}}}
    user.update(se.data)
    source = parse_project({"format": "netcanvas", "version": 2, "blocks": user, "graph": {
        "nodes": [{"id": "i", "type": "Input", "params": {"shape": [1]}}]}}).graph.blocks
    path = save_entry(source, "Gated", tmp_path / "mine", doc="conv + SE", input_shapes=[[3, 8, 8]])
    entry = load_entry(path)
    assert (entry.name, entry.doc, entry.input_shapes, entry.builtin) == ("Gated", "conv + SE", [[3, 8, 8]], False)
    assert list(entry.blocks) == ["Gated", "SqueezeExcitation"]

    assert insert_entry(blocks, entry) == ["Gated", "SqueezeExcitation"]
    assert insert_entry(blocks, entry) == []  # already there: nothing copied
    assert insert_entry(blocks, se) == []  # the project's own SqueezeExcitation is kept
    project.graph.add_node(Node("input2", "Input", {"shape": [3, 8, 8]}))
    project.graph.add_node(Node("g", "Gated", {"c": 8}))
    project.graph.add_edge(Edge("input2", "g"))
    project.graph.remove_node("input")
    a = analyze(project.graph)
    assert a.errors == [] and a.shapes["g"] == (8, 8, 8)
    assert parse_project(dumps_project(project)).graph.blocks["SqueezeExcitation"].params == {"channels": 64,
                                                                                             "squeeze": 16}
    listed = list_library([tmp_path, tmp_path / "mine", tmp_path / "missing"], builtin=False)
    assert [(e.name, e.error) for e in listed] == [("SqueezeExcitation", None), ("Gated", None)]


def test_save_round_trip_keeps_every_definition(tmp_path):
    entry = load_entry(builtin_folder() / "resnet_bottleneck_down.json")
    project = one_node_project(entry)
    path = save_entry(project.graph.blocks, "BottleneckDown", tmp_path, doc=entry.doc, input_shapes=entry.input_shapes)
    again = load_entry(path)
    assert again.doc == entry.doc and list(again.blocks) == list(entry.blocks)
    for name, block in entry.blocks.items():  # (a saved node writes its empty params: {})
        assert again.blocks[name].params == block.params
        assert graph_to_dict(again.blocks[name].graph) == graph_to_dict(block.graph)
    assert analyze(one_node_project(again).graph).shapes == analyze(project.graph).shapes
    with pytest.raises(ProjectError, match="no block 'Nope'"):
        save_entry(project.graph.blocks, "Nope", tmp_path)


def test_a_bad_file_is_listed_with_its_error_and_refused_by_insert(tmp_path):
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    [broken] = list_library([tmp_path], builtin=False)
    assert broken.name == "broken" and "broken.json" in broken.error and "invalid JSON" in broken.error
    with pytest.raises(ProjectError, match="invalid JSON"):
        insert_entry(parse_project({"format": "netcanvas", "version": 2, "graph": {
            "nodes": [{"id": "i", "type": "Input", "params": {"shape": [1]}}]}}).graph.blocks, broken)


def _entry_data():
    return json.loads((builtin_folder() / "squeeze_excitation.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("change, where, words", [
    (lambda d: d.update(format="netcanvas"), "format", 'expected "netcanvas-block"'),
    (lambda d: d.update(version=3), "version", "version 3"),
    (lambda d: d.update(version=1), "version", "integer >= 2"),
    (lambda d: d.update(extra=1), "extra", "unknown key"),
    (lambda d: d.update(name="Other"), "name", "not one of the file's blocks"),
    (lambda d: d.update(doc=5), "doc", "expected a string"),
    (lambda d: d.pop("blocks"), "blocks", "missing"),
    (lambda d: d.update(input_shapes=[[64, 8]] * 2), "input_shapes", "list of 1 shape"),
    (lambda d: d.update(input_shapes=[[0, 8, 8]]), "input_shapes", "integers >= 1"),
    (lambda d: d["blocks"].update(Unused=copy.deepcopy(d["blocks"]["SqueezeExcitation"])), "blocks.Unused",
     "does not use it"),
    (lambda d: d["blocks"]["SqueezeExcitation"]["graph"]["nodes"][2]["params"].update(out_channels="$nope"),
     "blocks.SqueezeExcitation.graph.nodes[2] (fc1).params.out_channels", 'refers to "$nope"'),
    (lambda d: d["blocks"]["SqueezeExcitation"]["graph"]["nodes"][1].update(type="Nope"),
     "blocks.SqueezeExcitation.graph.nodes[1] (avgpool).type", "unknown layer type"),
])
def test_bad_entries_name_the_file_and_field(tmp_path, change, where, words):
    data = _entry_data()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ProjectError) as e:
        load_entry(path)
    assert e.value.where == f"{path}: {where}" and words in e.value.message


def test_unreadable_and_oversized_files(tmp_path):
    with pytest.raises(ProjectError, match="no such file"):
        load_entry(tmp_path / "missing.json")
    with pytest.raises(ProjectError, match="is a folder"):
        load_entry(tmp_path)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_BYTES + 1))
    with pytest.raises(ProjectError, match="at most 1,048,576"):
        load_entry(big)
    (tmp_path / "latin.json").write_bytes(b"\xff{}")
    with pytest.raises(ProjectError, match="not UTF-8"):
        load_entry(tmp_path / "latin.json")


# -- fuzz: whatever the file says, load_entry returns an entry or raises ProjectError ----------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["$channels", "$squeeze", "$nope", "Input", "Conv2d", "x"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _containers(value, path=()):
    """Every (path, container) inside a decoded document."""
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        if isinstance(v, (dict, list)):
            yield from _containers(v, path + (k,))


@st.composite
def mutated_entries(draw) -> bytes:
    data = json.loads(draw(st.sampled_from(BUILTIN)).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        places = list(_containers(data))
        _, box = places[draw(st.integers(0, len(places) - 1))]
        keys = list(box) if isinstance(box, dict) else list(range(len(box)))
        action = draw(st.integers(0, 2))
        if keys and action == 0:
            box[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        elif keys and action == 1:
            key = draw(st.sampled_from(keys))
            box.pop(key) if isinstance(box, dict) else box.pop(key)
        elif isinstance(box, dict):
            box[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        else:
            box.append(draw(JSON_VALUES))
    raw = json.dumps(data).encode("utf-8")
    if draw(st.integers(0, 4)) == 0:  # the bytes themselves: cut short, or a byte changed
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] if draw(st.booleans()) else raw[:cut] + bytes([draw(st.integers(0, 255))]) + raw[cut + 1:]
    return raw


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_entries())
def test_fuzzed_entries_load_or_are_refused_cleanly(raw):
    try:
        entry = parse_entry(raw, source="fuzz.json")
    except ProjectError as e:
        assert str(e).startswith("fuzz.json")
        return
    assert entry.name in entry.blocks
