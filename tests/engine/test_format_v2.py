"""Format version 2's core (../shared/PROJECT_FORMAT.md): migrating version 1, refusing what
version 2 added in a file that says version 1, output ports (``source_port``, Split, the
recurrent layers' hidden state), ``repeat``, ``trainable``, Input ``dtype``."""

from __future__ import annotations

import copy
import json

import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import project as project_module
from app.engine.compiler import compile_graph
from app.engine.errors import ProjectError
from app.engine.export.onnx_export import export_onnx
from app.engine.export.python_export import export_python
from app.engine.graph import Edge
from app.engine.inference import MAX_REPEAT, _infer, analyze
from app.engine.layers import CATALOGUE, get_spec
from app.engine.layers.spec import V1_PARAMS, LayerSpec
from app.engine.project import Project, dumps_project, parse_project, project_to_dict


def doc(nodes, edges, version=2, **extra) -> dict:
    return {"format": "netcanvas", "version": version, "name": "v2",
            "graph": {"nodes": nodes, "edges": edges}, **extra}


def chain(*nodes, version=2) -> dict:
    """Nodes ``(id, type, params, extra keys)`` connected one after the other."""
    items = [{"id": i, "type": t, "params": p, **x} for i, t, p, x in nodes]
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(items, items[1:])]
    return doc(items, edges, version)


def refused(data, *fragments: str) -> str:
    with pytest.raises(ProjectError) as info:
        parse_project(data)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def build(data) -> tuple[Project, torch.nn.Module]:
    p = parse_project(data)
    a = analyze(p.graph)
    assert a.ok, [str(i) for i in a.errors]
    torch.manual_seed(0)
    return p, compile_graph(p.graph, a)


# -- versions --------------------------------------------------------------------------------
def test_writers_write_version_2_and_a_version_1_file_migrates():
    v1 = chain(("x", "Input", {"shape": [4]}, {}), ("fc", "Linear", {"out_features": 2}, {}), version=1)
    p = parse_project(v1)
    assert project_to_dict(p)["version"] == project_module.VERSION == 2
    again = parse_project(dumps_project(p))
    assert [(n.id, n.type, n.params) for n in again.graph.nodes.values()] == [
        ("x", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 2})]


def test_a_newer_version_is_refused_naming_both():
    data = chain(("x", "Input", {"shape": [4]}, {}), version=3)
    refused(data, "format version 3", "versions up to 2")


@pytest.mark.parametrize("node, where, fragment", [
    (("act", "SiLU", {}, {}), "graph.nodes[1] (act).type", "type 'SiLU' is new in format version 2"),
    (("act", "ReLU", {}, {"repeat": 2}), "graph.nodes[1] (act).repeat", "'repeat' is new in format version 2"),
    (("act", "ReLU", {}, {"trainable": False}), "graph.nodes[1] (act).trainable", "'trainable' is new"),
    (("act", "GELU", {"approximate": "tanh"}, {}), "graph.nodes[1] (act).params.approximate",
     "the parameter 'approximate' of GELU is new in format version 2"),
    (("act", "Flatten", {"end_dim": -1}, {}), "graph.nodes[1] (act).params.end_dim", "new in format version 2"),
    (("act", "Split", {"sizes": [4]}, {}), "graph.nodes[1] (act).type", "'Split' is new"),
])
def test_a_version_1_file_may_not_use_what_version_2_adds(node, where, fragment):
    data = chain(("x", "Input", {"shape": [4]}, {}), node, version=1)
    text = refused(data, where, fragment, "this file says version 1")
    data["version"] = 2  # the same file saying version 2 is fine
    parse_project(data)
    assert text


def test_a_version_1_file_may_not_use_source_port_nor_int64_inputs():
    data = chain(("x", "Input", {"shape": [4]}, {}), ("r", "ReLU", {}, {}), version=1)
    data["graph"]["edges"][0]["source_port"] = 0
    refused(data, "graph.edges[0].source_port", "'source_port' is new in format version 2", "says version 1")
    data = chain(("x", "Input", {"shape": [4], "dtype": "int64"}, {}), version=1)
    refused(data, "graph.nodes[0] (x).params.dtype", "new in format version 2")


def test_the_version_1_list_names_32_catalogue_types_with_their_parameters():
    assert len(V1_PARAMS) == 32
    for name, params in V1_PARAMS.items():
        spec = get_spec(name)
        assert spec is not None and spec.since == 1, name
        assert params <= set(spec.param_index), (name, params - set(spec.param_index))
    assert all(spec.since == 2 for name, spec in CATALOGUE.items() if name not in V1_PARAMS)


def test_the_bundled_examples_load_whatever_version_they_say():
    from app.engine.examples import example_path, list_examples
    for e in list_examples():
        p = project_module.load_project(example_path(e.name))
        assert analyze(p.graph).ok, e.name
        assert json.loads(dumps_project(p))["version"] == 2


def test_editor_is_carried_through_unchanged():
    editor = {"zoom": 1.5, "groups": [{"name": "stem", "nodes": ["x"]}], "panels": {"log": True}}
    data = chain(("x", "Input", {"shape": [4]}, {}), ("r", "ReLU", {}, {}))
    data["editor"] = copy.deepcopy(editor)
    assert json.loads(dumps_project(parse_project(data)))["editor"] == editor


# -- output ports --------------------------------------------------------------------------------
def split_doc(port=1, sizes=(3, 7)) -> dict:
    return doc([{"id": "x", "type": "Input", "params": {"shape": [10]}},
                {"id": "split", "type": "Split", "params": {"sizes": list(sizes)}},
                {"id": "fc", "type": "Linear", "params": {"out_features": 2}}],
               [{"source": "x", "target": "split"}, {"source": "split", "target": "fc", "source_port": port}])


def test_an_edge_from_port_k_takes_output_k():
    p, model = build(split_doc())
    a = analyze(p.graph)
    assert a.port_shapes["split"] == ((3,), (7,)) and a.shapes["split"] == (3,)
    assert a.input_shapes("fc") == [(7,)] and a.shapes["fc"] == (2,)
    x = torch.randn(4, 10)
    with torch.no_grad():
        assert torch.allclose(model(x), model.fc(x[:, 3:]))
    assert "split[1]" in model.code
    assert p.graph.edges[1] == Edge("split", "fc", 0, 1)


def test_source_port_is_saved_only_when_not_0():
    edges = project_to_dict(parse_project(split_doc()))["graph"]["edges"]
    assert edges == [{"source": "x", "target": "split"}, {"source": "split", "target": "fc", "source_port": 1}]
    edges = project_to_dict(parse_project(split_doc(port=0, sizes=(10,))))["graph"]["edges"]
    assert "source_port" not in edges[1]


def test_a_port_the_source_lacks_is_an_issue_naming_it():
    p = parse_project(split_doc(port=2))
    a = analyze(p.graph)
    [issue] = a.errors
    assert issue.node == "fc" and "output 2 of 'split'" in issue.message and "2 outputs" in issue.message
    p = parse_project(chain(("x", "Input", {"shape": [4]}, {}), ("r", "ReLU", {}, {})))
    p.graph.edges[0] = Edge("x", "r", 0, 1)
    assert "Input with 1 output" in analyze(p.graph).errors[0].message


@pytest.mark.parametrize("value", [-1, "1", 1.0, True, None, 2**40])
def test_a_bad_source_port_is_refused(value):
    data = split_doc()
    data["graph"]["edges"][1]["source_port"] = value
    refused(data, "graph.edges[1].source_port: expected an integer >= 0")


def test_the_sink_output_is_its_port_0_and_unused_ports_are_fine():
    data = doc([{"id": "x", "type": "Input", "params": {"shape": [10]}},
                {"id": "split", "type": "Split", "params": {"sizes": [4, 6]}}], [{"source": "x", "target": "split"}])
    p, model = build(data)
    x = torch.randn(2, 10)
    assert torch.equal(model(x), x[:, :4]) and model.output_shape == (4,)


def test_split_sizes_must_add_up():
    data = split_doc(sizes=(3, 8))
    [issue] = analyze(parse_project(data).graph).errors
    assert issue.param == "sizes" and "add up to 11" in issue.message and "size 10" in issue.message


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_output_1_is_the_last_layers_final_hidden_state(kind, bidirectional):
    data = doc([{"id": "x", "type": "Input", "params": {"shape": [5, 3]}},
                {"id": "rnn", "type": kind, "params": {"hidden_size": 4, "num_layers": 2,
                                                       "bidirectional": bidirectional}},
                {"id": "fc", "type": "Linear", "params": {"out_features": 2}}],
               [{"source": "x", "target": "rnn"}, {"source": "rnn", "target": "fc", "source_port": 1}])
    p, model = build(data)
    width = 8 if bidirectional else 4
    assert analyze(p.graph).port_shapes["rnn"] == ((5, width), (width,))
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        out, hidden = model.rnn(x)
    assert hidden.shape == (2, width)
    # forward direction: the last step of the sequence; backward: its first step
    assert torch.allclose(hidden[:, :4], out[:, -1, :4], atol=1e-6)
    if bidirectional:
        assert torch.allclose(hidden[:, 4:], out[:, 0, 4:], atol=1e-6)


def test_ports_export_to_onnx_and_python(tmp_path):
    p = parse_project(split_doc())
    export_onnx(p, tmp_path / "m.onnx")  # raises unless onnxruntime agrees
    export_python(p, tmp_path / "py", data=False)  # raises unless model.py matches


# -- repeat ---------------------------------------------------------------------------------------
def stack_doc(repeat=3, **extra) -> dict:
    return chain(("x", "Input", {"shape": [5]}, {}),
                 ("stack", "Linear", {"out_features": 8}, {"repeat": repeat, **extra}),
                 ("out", "Linear", {"out_features": 2}, {}))


def test_repeat_chains_copies_with_their_own_weights():
    p, model = build(stack_doc())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("stack.")}
    assert shapes == {"stack.0.weight": (8, 5), "stack.0.bias": (8,), "stack.1.weight": (8, 8),
                      "stack.1.bias": (8,), "stack.2.weight": (8, 8), "stack.2.bias": (8,)}
    a = analyze(p.graph)
    assert a.param_counts["stack"] == 48 + 72 + 72 == sum(t.numel() for k, t in model.state_dict().items()
                                                          if k.startswith("stack."))
    assert project_to_dict(p)["graph"]["nodes"][1]["repeat"] == 3
    assert "repeat" not in project_to_dict(parse_project(stack_doc(1)))["graph"]["nodes"][1]


def test_repeat_exports_to_onnx_and_python(tmp_path):
    p = parse_project(stack_doc(4))
    export_onnx(p, tmp_path / "m.onnx")
    export_python(p, tmp_path / "py", data=False)
    text = (tmp_path / "py" / "model.py").read_text()
    assert "for _ in range(3)" in text


@pytest.mark.parametrize("value", [0, -1, MAX_REPEAT + 1, 2.0, True, "2", None])
def test_a_bad_repeat_is_refused(value):
    refused(stack_doc(value), "graph.nodes[1] (stack).repeat: expected an integer from 1 to")


def test_types_with_several_outputs_or_no_input_cannot_repeat():
    data = split_doc()
    data["graph"]["nodes"][1]["repeat"] = 2
    refused(data, "graph.nodes[1] (split).repeat", "Split cannot repeat")
    data = stack_doc()
    data["graph"]["nodes"][0]["repeat"] = 2
    refused(data, "Input cannot repeat")


def test_a_repeated_node_takes_one_input():
    data = doc([{"id": "a", "type": "Input", "params": {"shape": [4]}},
                {"id": "b", "type": "Input", "params": {"shape": [4]}},
                {"id": "cat", "type": "Concat", "repeat": 2}],
               [{"source": "a", "target": "cat"}, {"source": "b", "target": "cat", "target_port": 1}])
    errors = analyze(parse_project(data).graph).errors
    assert any("takes one input" in e.message and e.node == "cat" for e in errors)


def test_a_copy_that_cannot_take_the_previous_output_names_it():
    data = chain(("x", "Input", {"shape": [5, 3]}, {}), ("last", "LastStep", {}, {"repeat": 2}))
    [issue] = analyze(parse_project(data).graph).errors
    assert "copy 1 of 2 (repeat) receives [3] from copy 0" in issue.message and "[time, features]" in issue.message


def test_repeat_arithmetic_follows_cycles_without_a_loop_per_copy():
    swap = LayerSpec("Swap", "Shape", "", (), lambda s, p: s[0][::-1], lambda s, p: None,
                     lambda s, p: s[0][0])
    ports, count, _ = _infer(swap, [(2, 3)], {}, 5)  # inputs (2,3) (3,2) (2,3) (3,2) (2,3)
    assert ports == ((3, 2),) and count == 2 + 3 + 2 + 3 + 2
    ports, count, _ = _infer(swap, [(2, 3)], {}, 1000)
    assert ports == ((2, 3),) and count == 500 * 5


# -- trainable ------------------------------------------------------------------------------------
def test_a_frozen_node_keeps_its_weights_and_statistics_through_a_training_step():
    data = chain(("x", "Input", {"shape": [6]}, {}),
                 ("fc1", "Linear", {"out_features": 8}, {"trainable": False}),
                 ("bn", "BatchNorm1d", {}, {"trainable": False}),
                 ("fc2", "Linear", {"out_features": 3}, {}))
    p, model = build(data)
    assert project_to_dict(p)["graph"]["nodes"][2]["trainable"] is False
    assert "trainable" not in project_to_dict(p)["graph"]["nodes"][3]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert not any(prm.requires_grad for prm in model.fc1.parameters())
    model.train()
    optimizer = torch.optim.SGD([prm for prm in model.parameters() if prm.requires_grad], lr=0.5)
    loss = model(torch.randn(16, 6) * 3 + 1).square().mean()
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    for key in ("fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["fc2.weight"], after["fc2.weight"])
    assert not model.bn.training  # kept in eval while the model trains
    assert analyze(p.graph).param_counts["bn"] == 16  # still counted: frozen, not gone


def test_a_bad_trainable_is_refused():
    refused(stack_doc(1, trainable="no"), "graph.nodes[1] (stack).trainable: expected true or false")


def test_a_frozen_node_exports_to_python_frozen(tmp_path):
    p = parse_project(stack_doc(2, trainable=False))
    export_python(p, tmp_path / "py", data=False)
    assert "self.stack.requires_grad_(False)" in (tmp_path / "py" / "model.py").read_text()


# -- Input dtype ----------------------------------------------------------------------------------
def tokens_doc() -> dict:
    return chain(("ids", "Input", {"shape": [6], "dtype": "int64"}, {}),
                 ("emb", "Embedding", {"num_embeddings": 11, "embedding_dim": 4}, {}),
                 ("flat", "Flatten", {}, {}), ("fc", "Linear", {"out_features": 3}, {}))


def test_int64_inputs_compile_and_export(tmp_path):
    p, model = build(tokens_doc())
    assert model.input_dtypes == [torch.int64]
    assert model(torch.randint(0, 11, (2, 6))).shape == (2, 3)
    export_onnx(p, tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    export_python(p, tmp_path / "py", data=False)


def test_an_int64_input_reaching_a_computing_layer_is_an_error():
    data = chain(("ids", "Input", {"shape": [6], "dtype": "int64"}, {}), ("fc", "Linear", {"out_features": 3}, {}))
    a = analyze(parse_project(data).graph)
    assert not a.ok and any(i.param == "dtype" and "'fc' (Linear)" in i.message for i in a.errors)
    # through a layer that only moves values, and through Mean, which computes
    data = chain(("ids", "Input", {"shape": [2, 3], "dtype": "int64"}, {}), ("f", "Flatten", {}, {}),
                 ("fc", "Linear", {"out_features": 3}, {}))
    assert any("'fc' (Linear)" in i.message for i in analyze(parse_project(data).graph).errors)
    data = chain(("ids", "Input", {"shape": [2, 3], "dtype": "int64"}, {}), ("m", "Mean", {"dims": [2]}, {}),
                 ("e", "Embedding", {"num_embeddings": 5, "embedding_dim": 2}, {}))
    assert any("'m' (Mean)" in i.message for i in analyze(parse_project(data).graph).errors)
    # token ids flattened into an Embedding are fine
    data = chain(("ids", "Input", {"shape": [2, 3], "dtype": "int64"}, {}), ("f", "Flatten", {}, {}),
                 ("e", "Embedding", {"num_embeddings": 5, "embedding_dim": 2}, {}))
    assert analyze(parse_project(data).graph).ok


# -- other version-2 parameters of core types -------------------------------------------------------
def test_flatten_end_dim():
    data = chain(("x", "Input", {"shape": [2, 3, 4]}, {}), ("f", "Flatten", {"start_dim": 2, "end_dim": 3}, {}))
    assert analyze(parse_project(data).graph).shapes["f"] == (2, 12)
    data = chain(("x", "Input", {"shape": [2, 3, 4]}, {}), ("f", "Flatten", {"start_dim": 3, "end_dim": 2}, {}))
    [issue] = analyze(parse_project(data).graph).errors
    assert issue.param == "end_dim" and "before start_dim" in issue.message


def test_gelu_approximate_is_torchs():
    p, model = build(chain(("x", "Input", {"shape": [4]}, {}), ("g", "GELU", {"approximate": "tanh"}, {})))
    assert model.g.approximate == "tanh"
    refused(chain(("x", "Input", {"shape": [4]}, {}), ("g", "GELU", {"approximate": "erf"}, {})),
            "params.approximate", '"none", "tanh"')


# -- fuzz: version-2 keys never raise anything but ProjectError --------------------------------------
ANY = st.recursive(st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats(allow_nan=False)
                   | st.text(max_size=5), lambda inner: st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
NODE_KEYS = st.sampled_from(["repeat", "trainable", "params", "type", "id", "position", "extra"])
EDGE_KEYS = st.sampled_from(["source_port", "target_port", "source", "target", "extra"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([1, 2]), node=st.integers(0, 2), node_key=NODE_KEYS, node_value=ANY,
       edge=st.integers(0, 1), edge_key=EDGE_KEYS, edge_value=ANY)
def test_fuzz_v2_keys(version, node, node_key, node_value, edge, edge_key, edge_value):
    data = split_doc()
    data["version"] = version
    data["graph"]["nodes"][node][node_key] = node_value
    data["graph"]["edges"][edge][edge_key] = edge_value
    try:
        p = parse_project(data)
    except ProjectError:
        return
    analyze(p.graph)  # never raises
    parse_project(dumps_project(p))  # what loads saves and loads again


def test_a_frozen_normalization_exports_to_onnx_and_python(tmp_path):
    data = chain(("x", "Input", {"shape": [3, 6, 6]}, {}),
                 ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}, {"trainable": False}),
                 ("bn", "BatchNorm2d", {}, {"trainable": False}), ("relu", "ReLU", {}, {}))
    p = parse_project(data)
    export_onnx(p, tmp_path / "m.onnx")
    export_python(p, tmp_path / "py", data=False)


