"""Validation and shape inference (app/engine/inference.py), and the fx compiler
(app/engine/compiler.py) checked against it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import fx

from app.engine.compiler import build_modules, compile_graph
from app.engine.errors import GraphError, Issue, NetCanvasError
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import UNCOMPUTABLE, Analysis, analyze, describe_shape, resolve_params
from app.engine.layers import CATALOGUE, get_spec


def sequential(*layers: tuple) -> Graph:
    """A chain of nodes ``(id, type, params)``, each feeding the next."""
    g = Graph()
    for node_id, type_name, params in layers:
        g.add_node(Node(node_id, type_name, dict(params)))
    for a, b in zip(layers, layers[1:]):
        g.add_edge(Edge(a[0], b[0]))
    return g


def lenet5(size: int) -> Graph:
    return sequential(
        ("input", "Input", {"shape": [1, size, size]}),
        ("conv1", "Conv2d", {"out_channels": 6, "kernel_size": 5}),
        ("relu1", "ReLU", {}),
        ("pool1", "MaxPool2d", {"kernel_size": 2}),
        ("conv2", "Conv2d", {"out_channels": 16, "kernel_size": 5}),
        ("relu2", "ReLU", {}),
        ("pool2", "MaxPool2d", {"kernel_size": 2}),
        ("flatten", "Flatten", {}),
        ("fc1", "Linear", {"out_features": 120}),
        ("relu3", "ReLU", {}),
        ("fc2", "Linear", {"out_features": 84}),
        ("relu4", "ReLU", {}),
        ("fc3", "Linear", {"out_features": 10}),
    )


def mlp() -> Graph:
    return sequential(
        ("input", "Input", {"shape": [784]}),
        ("fc1", "Linear", {"out_features": 1000}),
        ("relu1", "ReLU", {}),
        ("fc2", "Linear", {"out_features": 500}),
        ("relu2", "ReLU", {}),
        ("fc3", "Linear", {"out_features": 100}),
        ("relu3", "ReLU", {}),
        ("fc4", "Linear", {"out_features": 10}),
    )


def three_conv() -> Graph:
    return sequential(
        ("input", "Input", {"shape": [1, 28, 28]}),
        ("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 5, "stride": 1, "padding": "same"}),
        ("relu1", "ReLU", {}),
        ("conv2", "Conv2d", {"out_channels": 8, "kernel_size": 4, "stride": 2, "padding": 1}),
        ("relu2", "ReLU", {}),
        ("conv3", "Conv2d", {"out_channels": 12, "kernel_size": 4, "stride": 2, "padding": 1}),
        ("relu3", "ReLU", {}),
        ("flatten", "Flatten", {}),
        ("fc1", "Linear", {"out_features": 200}),
        ("relu4", "ReLU", {}),
        ("dropout", "Dropout", {}),
        ("fc2", "Linear", {"out_features": 10}),
        ("softmax", "Softmax", {}),
    )


def two_inputs() -> Graph:
    g = Graph()
    g.add_node(Node("image", "Input", {"shape": [3, 8, 8]}))
    g.add_node(Node("extra", "Input", {"shape": [5]}))
    g.add_node(Node("flatten", "Flatten"))
    g.add_node(Node("both", "Concat"))
    g.add_node(Node("fc", "Linear", {"out_features": 4}))
    g.add_edge(Edge("image", "flatten"))
    g.add_edge(Edge("extra", "both", 1))
    g.add_edge(Edge("flatten", "both", 0))
    g.add_edge(Edge("both", "fc"))
    return g


def residual() -> Graph:
    g = sequential(
        ("input", "Input", {"shape": [4, 6, 6]}),
        ("conv1", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
        ("bn1", "BatchNorm2d", {}),
        ("add", "Add", {}),
        ("relu", "ReLU", {}),
    )
    g.add_edge(Edge("input", "add", 1))
    return g


def sequence_classifier() -> Graph:
    return sequential(
        ("input", "Input", {"shape": [12, 3]}),
        ("lstm1", "LSTM", {"hidden_size": 8, "num_layers": 2, "bidirectional": True}),
        ("last", "LastStep", {}),
        ("fc", "Linear", {"out_features": 2}),
        ("out", "LogSoftmax", {}),
    )


def only(a: Analysis) -> Issue:
    assert len(a.errors) == 1, [str(i) for i in a.issues]
    return a.errors[0]


# -- valid graphs ---------------------------------------------------------------------------
@pytest.mark.parametrize("graph, total", [
    (lenet5(28), 44_426),
    (lenet5(32), 61_706),
    (mlp(), 1_336_610),
    (three_conv(), 121_982),
], ids=["lenet28", "lenet32", "mlp", "three_conv"])
def test_known_parameter_counts(graph, total):
    a = analyze(graph)
    assert a.ok and a.issues == []
    assert a.total_params == total


def test_lenet_shapes():
    a = analyze(lenet5(28))
    assert a.shapes["input"] == (1, 28, 28)
    assert a.shapes["conv1"] == (6, 24, 24)
    assert a.shapes["pool1"] == (6, 12, 12)
    assert a.shapes["conv2"] == (16, 8, 8)
    assert a.shapes["pool2"] == (16, 4, 4)
    assert a.shapes["flatten"] == (256,)
    assert a.shapes["fc3"] == (10,)
    assert a.param_counts["conv1"] == 156 and a.param_counts["fc1"] == 256 * 120 + 120
    assert a.param_counts["relu1"] == 0 and a.param_counts["input"] == 0
    assert a.inputs == ["input"] and a.output == "fc3"
    assert a.order == list(lenet5(28).nodes)


def test_three_conv_shapes():
    a = analyze(three_conv())
    assert [a.shapes[n] for n in ("conv1", "conv2", "conv3", "flatten", "fc1", "softmax")] == [
        (4, 28, 28), (8, 14, 14), (12, 7, 7), (588,), (200,), (10,)]
    assert [a.param_counts[n] for n in ("conv1", "conv2", "conv3", "fc1", "fc2")] == [
        104, 520, 1548, 117_800, 2010]


def test_params_are_resolved_with_defaults():
    a = analyze(lenet5(28))
    # (version 2 adds parameters to these types: their version-1 ones are checked)
    assert a.params["conv1"].items() >= {"out_channels": 6, "kernel_size": 5, "stride": 1, "padding": 0,
                                         "dilation": 1, "groups": 1, "bias": True}.items()
    assert a.params["pool1"].items() >= {"kernel_size": 2, "stride": None, "padding": 0}.items()
    assert a.params["relu1"] == {}


def test_multi_input_graph():
    a = analyze(two_inputs())
    assert a.ok, [str(i) for i in a.issues]
    assert a.inputs == ["image", "extra"]
    assert a.shapes["both"] == (3 * 8 * 8 + 5,)
    assert a.input_shapes("both") == [(192,), (5,)]
    assert a.output == "fc"
    assert a.total_params == 197 * 4 + 4


def test_inputs_are_in_file_order_not_topological_order():
    g = Graph()
    g.add_node(Node("b", "Input", {"shape": [2]}))
    g.add_node(Node("a", "Input", {"shape": [3]}))
    g.add_node(Node("cat", "Concat"))
    g.add_edge(Edge("a", "cat", 0))
    g.add_edge(Edge("b", "cat", 1))
    a = analyze(g)
    assert a.ok and a.inputs == ["b", "a"] and a.shapes["cat"] == (5,)


def test_topological_order_follows_file_order_among_ready_nodes():
    g = Graph()
    g.add_node(Node("out", "Add"))
    g.add_node(Node("right", "Tanh"))
    g.add_node(Node("left", "ReLU"))
    g.add_node(Node("input", "Input", {"shape": [3]}))
    g.add_edge(Edge("input", "left"))
    g.add_edge(Edge("input", "right"))
    g.add_edge(Edge("left", "out", 0))
    g.add_edge(Edge("right", "out", 1))
    a = analyze(g)
    assert a.ok
    assert a.order == ["input", "right", "left", "out"]


def test_residual_and_sequence_graphs():
    a = analyze(residual())
    assert a.ok and a.shapes["relu"] == (4, 6, 6)
    assert a.param_counts["bn1"] == 8
    a = analyze(sequence_classifier())
    assert a.ok and a.shapes["lstm1"] == (12, 16) and a.shapes["out"] == (2,)


def test_a_lone_input_is_its_own_output():
    a = analyze(sequential(("x", "Input", {"shape": [3]})))
    assert a.ok and a.output == "x" and a.total_params == 0


def test_analyze_does_not_change_the_graph():
    g = lenet5(28)
    before = {n.id: dict(n.params) for n in g.nodes.values()}
    analyze(g)
    assert {n.id: n.params for n in g.nodes.values()} == before


def test_hints_are_warnings_and_do_not_block():
    g = sequential(("input", "Input", {"shape": [5, 3]}),
                   ("rnn", "GRU", {"hidden_size": 4, "dropout": 0.5}))
    a = analyze(g)
    assert a.ok
    (hint,) = a.issues
    assert (hint.node, hint.param, hint.severity) == ("rnn", "dropout", "warning")
    compile_graph(g)  # a warning does not block compiling (nor make torch warn)


def test_describe_shape():
    assert describe_shape(None) == "?"
    assert describe_shape((1, 28, 28)) == "[1, 28, 28]"


# -- errors, each tied to its node ----------------------------------------------------------
def test_unknown_type():
    g = sequential(("input", "Input", {"shape": [3]}), ("x", "Conv4d", {}), ("relu", "ReLU", {}))
    a = analyze(g)
    e = only(a)
    assert (e.node, e.param) == ("x", None) and "Conv4d" in e.message
    assert a.shapes["x"] is None and a.shapes["relu"] is None  # no cascade
    assert a.issues_for("relu") == []


def test_bad_param_value():
    g = sequential(("input", "Input", {"shape": [1, 8, 8]}),
                   ("conv", "Conv2d", {"out_channels": 0, "kernel_size": 3}),
                   ("relu", "ReLU", {}))
    a = analyze(g)
    e = only(a)
    assert (e.node, e.param) == ("conv", "out_channels")
    assert "expected an integer >= 1" in e.message and "received 0" in e.message
    assert a.shapes["conv"] is None and a.shapes["relu"] is None


def test_wrongly_typed_param():
    g = sequential(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": "10"}))
    e = only(analyze(g))
    assert (e.node, e.param) == ("fc", "out_features") and 'received "10"' in e.message


def test_unknown_param():
    g = sequential(("input", "Input", {"shape": [4]}),
                   ("fc", "Linear", {"out_features": 3, "in_features": 4}))
    e = only(analyze(g))
    assert (e.node, e.param) == ("fc", "in_features")
    assert "no parameter 'in_features'" in e.message and "out_features" in e.message


def test_missing_required_param():
    g = sequential(("input", "Input", {"shape": [1, 8, 8]}),
                   ("conv", "Conv2d", {"out_channels": 3}))
    e = only(analyze(g))
    assert (e.node, e.param) == ("conv", "kernel_size")
    assert "Conv2d needs kernel_size" in e.message


def test_params_not_an_object():
    g = sequential(("input", "Input", {"shape": [4]}), ("fc", "Linear", {}))
    g.nodes["fc"].params = [1, 2]  # type: ignore[assignment]
    e = only(analyze(g))
    assert (e.node, e.param) == ("fc", None) and "[1, 2]" in e.message


def test_several_problems_in_one_node_are_all_reported():
    g = sequential(("input", "Input", {"shape": [1, 8, 8]}),
                   ("conv", "Conv2d", {"stride": 0, "colour": "red"}))
    a = analyze(g)
    assert {i.param for i in a.errors} == {"colour", "out_channels", "kernel_size", "stride"}
    assert all(i.node == "conv" for i in a.errors)


def test_resolve_params():
    spec = get_spec("MaxPool2d")
    resolved, problems = resolve_params(spec, {"kernel_size": 2})
    assert problems == [] and resolved.items() >= {"kernel_size": 2, "stride": None, "padding": 0}.items()
    resolved, problems = resolve_params(spec, {"kernel_size": [2, 2, 2]})
    assert problems and problems[0][0] == "kernel_size"


def test_bad_node_id():
    g = sequential(("input", "Input", {"shape": [4]}), ("forward", "ReLU", {}))
    e = only(analyze(g))
    assert (e.node, e.param) == ("forward", None) and "torch.nn.Module attribute" in e.message


def test_cycle_message_lists_the_path():
    g = sequential(("input", "Input", {"shape": [4]}), ("a", "Add", {}), ("b", "ReLU", {}),
                   ("c", "Tanh", {}), ("out", "Sigmoid", {}))
    g.add_edge(Edge("c", "a", 1), check=False)
    a = analyze(g)
    cycle_issues = [i for i in a.errors if "cycle" in i.message]
    assert {i.node for i in cycle_issues} >= {"a", "b", "c"}
    path = cycle_issues[0].message.split(": ", 1)[1].split(" -> ")
    assert path[0] == path[-1] and set(path) == {"a", "b", "c"}
    # the path follows the edges
    for x, y in zip(path, path[1:]):
        assert any(e.source == x and e.target == y for e in g.edges), (x, y)
    downstream = a.issues_for("out")
    assert len(downstream) == 1 and "fed, directly or not, by a cycle" in downstream[0].message
    assert a.issues_for("input") == []
    assert "a" not in a.order and "out" not in a.order and a.order == ["input"]


def test_two_node_cycle_without_input():
    g = Graph()
    g.add_node(Node("a", "ReLU"))
    g.add_node(Node("b", "ReLU"))
    g.add_edge(Edge("a", "b"))
    g.add_edge(Edge("b", "a"), check=False)
    a = analyze(g)
    messages = [str(i) for i in a.errors]
    assert any("a -> b -> a" in m or "b -> a -> b" in m for m in messages)
    assert any(i.node is None and "no Input" in i.message for i in a.errors)


def test_self_loop():
    g = sequential(("input", "Input", {"shape": [4]}), ("r", "ReLU", {}))
    g.add_edge(Edge("r", "r", 1), check=False)
    a = analyze(g)
    assert any(i.node == "r" and "cannot feed itself" in i.message for i in a.errors)


def test_unconnected_slot():
    g = sequential(("input", "Input", {"shape": [4]}), ("relu", "ReLU", {}))
    g.add_node(Node("add", "Add"))
    g.add_edge(Edge("input", "add", 0))
    g.add_edge(Edge("relu", "add", 2))
    a = analyze(g)
    e = only(a)
    assert (e.node, e.param) == ("add", None) and "input slot 1 is not connected" in e.message
    assert a.shapes["add"] is None


def test_nothing_connected():
    g = sequential(("input", "Input", {"shape": [4]}))
    g.add_node(Node("relu", "ReLU"))
    a = analyze(g)
    relu = [i for i in a.errors if i.node == "relu" and "nothing is connected" in i.message]
    assert len(relu) == 1 and "ReLU needs 1 input" in relu[0].message


def test_doubly_connected_slot():
    g = sequential(("a", "Input", {"shape": [4]}), ("relu", "ReLU", {}))
    g.add_node(Node("b", "Input", {"shape": [4]}))
    g.add_edge(Edge("b", "relu", 0), check=False)
    a = analyze(g)
    e = only(a)
    assert e.node == "relu"
    assert "input slot 0 is fed by both 'a' and 'b'" in e.message


def test_add_with_one_input():
    g = sequential(("input", "Input", {"shape": [4]}), ("add", "Add", {}))
    e = only(analyze(g))
    assert e.node == "add" and "Add needs 2 or more inputs; received 1" in e.message


def test_relu_with_two_inputs():
    g = sequential(("input", "Input", {"shape": [4]}), ("relu", "ReLU", {}))
    g.add_node(Node("other", "Input", {"shape": [4]}))
    g.add_edge(Edge("other", "relu", 1))
    e = only(analyze(g))
    assert e.node == "relu" and "ReLU needs 1 input; received 2" in e.message


def test_input_with_an_input():
    g = sequential(("a", "Input", {"shape": [4]}), ("b", "Input", {"shape": [4]}))
    e = only(analyze(g))
    assert e.node == "b" and "Input takes no inputs; received 1" in e.message


def test_several_sinks():
    g = sequential(("input", "Input", {"shape": [4]}), ("a", "ReLU", {}))
    g.add_node(Node("b", "Tanh"))
    g.add_edge(Edge("input", "b"))
    a = analyze(g)
    assert {i.node for i in a.errors} == {"a", "b"}
    assert all("2 outputs ('a', 'b')" in i.message for i in a.errors)
    assert a.output is None
    assert a.shapes["a"] == (4,) and a.shapes["b"] == (4,)  # shapes are still inferred


def test_no_input():
    g = Graph()
    g.add_node(Node("relu", "ReLU"))
    a = analyze(g)
    assert any(i.node is None and "no Input layer" in i.message for i in a.errors)


def test_empty_graph():
    a = analyze(Graph())
    e = only(a)
    assert e.node is None and "empty" in e.message
    assert a.order == [] and a.output is None and a.total_params == 0


def test_edge_to_a_missing_node():
    g = sequential(("input", "Input", {"shape": [4]}), ("relu", "ReLU", {}))
    g.edges.append(Edge("ghost", "relu", 1))
    g.edges.append(Edge("relu", "phantom"))
    a = analyze(g)
    ghost = [i for i in a.errors if "'ghost'" in i.message]
    assert len(ghost) == 1 and ghost[0].node == "relu"
    phantom = [i for i in a.errors if "'phantom'" in i.message]
    assert len(phantom) == 1 and phantom[0].node is None
    assert len(a.errors) == 2


def test_shape_error_is_tied_to_node_and_param_and_does_not_cascade():
    g = sequential(
        ("input", "Input", {"shape": [1, 4, 4]}),
        ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 5}),
        ("relu", "ReLU", {}),
        ("flatten", "Flatten", {}),
        ("fc", "Linear", {"out_features": 3}),
    )
    a = analyze(g)
    e = only(a)
    assert (e.node, e.param) == ("conv", "kernel_size")
    assert "larger than its padded input" in e.message
    for n in ("conv", "relu", "flatten", "fc"):
        assert a.shapes[n] is None and a.param_counts[n] == 0
    assert a.shapes["input"] == (1, 4, 4)


def test_add_shape_error_names_both_shapes():
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [1, 28, 28]}))
    g.add_node(Node("conv", "Conv2d", {"out_channels": 6, "kernel_size": 5}))
    g.add_node(Node("pool", "MaxPool2d", {"kernel_size": 2}))
    g.add_node(Node("add", "Add"))
    g.add_edge(Edge("input", "conv"))
    g.add_edge(Edge("conv", "pool"))
    g.add_edge(Edge("conv", "add", 0))
    g.add_edge(Edge("pool", "add", 1))
    e = only(analyze(g))
    assert e.node == "add"
    # (format version 2: Add broadcasts, and says where the shapes do not)
    assert e.message.startswith("Add needs inputs") and "received [6, 24, 24] and [6, 12, 12]" in e.message
    assert str(e) == "add: " + e.message


def test_linear_after_conv_suggests_flatten():
    """torch's Linear acts on the last dimension of a feature map; a warning says how to
    connect every value, as a course's network usually means to."""
    g = sequential(("input", "Input", {"shape": [1, 8, 8]}),
                   ("conv", "Conv2d", {"out_channels": 16, "kernel_size": 5}),
                   ("fc", "Linear", {"out_features": 3}))
    a = analyze(g)
    assert a.ok and a.shapes["fc"] == (16, 4, 3)
    [w] = [i for i in a.issues if i.node == "fc"]
    assert w.severity == "warning" and "Flatten" in w.message and "[16, 4, 4]" in w.message


def test_errors_in_two_branches_are_independent():
    g = two_inputs()
    g.set_params("fc", {"out_features": -1})
    g.set_params("extra", {"shape": [5, 5]})
    a = analyze(g)
    assert {(i.node, i.param) for i in a.errors} == {("fc", "out_features"), ("both", None)}
    concat = a.issues_for("both")[0]
    assert "[192]" in concat.message and "[5, 5]" in concat.message


def test_issue_str():
    assert str(Issue("conv1", "kernel_size", "bad")) == "conv1.kernel_size: bad"
    assert str(Issue(None, None, "empty")) == "graph: empty"


# -- the compiler ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: lenet5(28), lambda: lenet5(32), mlp, three_conv,
                                  two_inputs, residual, sequence_classifier],
                         ids=["lenet28", "lenet32", "mlp", "three_conv", "two_inputs", "residual",
                              "sequence"])
def test_compiled_module_matches_analysis(make):
    g = make()
    a = analyze(g)
    gm = compile_graph(g)
    assert isinstance(gm, fx.GraphModule)
    total = sum(p.numel() for p in gm.parameters() if p.requires_grad)
    assert total == a.total_params
    non_inputs = [n for n in a.order if g.nodes[n].type != "Input"]
    assert [name for name, _ in gm.named_children()] == non_inputs
    for node_id in non_inputs:
        count = sum(p.numel() for p in getattr(gm, node_id).parameters())
        assert count == a.param_counts[node_id], node_id
    assert gm.input_shapes == [a.shapes[i] for i in a.inputs]
    assert gm.output_shape == a.shapes[a.output]
    xs = [torch.zeros(2, *a.shapes[i]) for i in a.inputs]
    gm.eval()
    with torch.no_grad():
        out = gm(*xs)
    assert tuple(out.shape) == (2, *a.shapes[a.output])
    for node_id in non_inputs:
        assert f"self.{node_id}(" in gm.code


def test_state_dict_keys_are_node_id_dot_torch_name():
    gm = compile_graph(lenet5(28))
    keys = list(gm.state_dict())
    assert keys[:4] == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"]
    assert "fc3.bias" in keys
    gm = compile_graph(residual())
    keys = set(gm.state_dict())
    assert {"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"} <= keys
    gm = compile_graph(sequence_classifier())
    keys = set(gm.state_dict())
    assert "lstm1.weight_ih_l0" in keys and "lstm1.weight_hh_l1_reverse" in keys


def test_generated_code_reads_like_hand_written_code():
    gm = compile_graph(three_conv())
    code = gm.code
    assert "def forward(self, input" in code
    assert "self.conv1(" in code and "self.softmax(" in code
    assert code.index("self.conv1(") < code.index("self.conv2(") < code.index("self.fc2(")


def test_compile_refuses_a_graph_with_errors():
    g = sequential(("input", "Input", {"shape": [1, 4, 4]}),
                   ("conv", "Conv2d", {"out_channels": 2, "kernel_size": 5}))
    with pytest.raises(GraphError) as info:
        compile_graph(g)
    assert isinstance(info.value, NetCanvasError)
    assert [(i.node, i.param) for i in info.value.issues] == [("conv", "kernel_size")]
    assert "conv.kernel_size: Conv2d kernel 5x5" in str(info.value)
    with pytest.raises(GraphError):
        compile_graph(Graph())


def test_compile_another_output_shares_weights():
    g = three_conv()
    gm = compile_graph(g)
    logits = compile_graph(g, output="fc2", modules=gm)
    assert logits.fc2.weight is gm.fc2.weight
    assert "self.softmax(" not in logits.code and "self.fc2(" in logits.code
    x = torch.rand(2, 1, 28, 28)
    gm.eval(), logits.eval()
    with torch.no_grad():
        assert torch.allclose(torch.softmax(logits(x), 1), gm(x), atol=1e-6)
    assert logits.output_shape == (10,)


def test_compile_to_a_device_and_with_a_given_analysis():
    g = mlp()
    a = analyze(g)
    gm = compile_graph(g, a, device="cpu")
    assert next(gm.parameters()).device.type == "cpu"


def test_build_modules_names_submodules_by_id():
    g = lenet5(28)
    root = build_modules(g, analyze(g))
    assert [n for n, _ in root.named_children()] == [n for n in g.nodes if n != "input"]


def test_an_input_called_self_compiles():
    """``self`` is forward's own first argument, so that Input's argument is renamed."""
    g = Graph()
    g.add_node(Node("self", "Input", {"shape": [4]}))
    g.add_node(Node("self_", "Input", {"shape": [2]}))
    g.add_node(Node("cat", "Concat"))
    g.add_node(Node("fc", "Linear", {"out_features": 3}))
    g.add_edge(Edge("self", "cat", 0))
    g.add_edge(Edge("self_", "cat", 1))
    g.add_edge(Edge("cat", "fc"))
    gm = compile_graph(g)
    out = gm(torch.zeros(2, 4), torch.ones(2, 2))
    assert out.shape == (2, 3)
    assert "def forward(self, self__, self_)" in gm.code


@pytest.mark.parametrize("node_id", ["input", "torch", "getattr", "x_1", "output", "inf"])
def test_input_ids_that_shadow_names_compile(node_id):
    g = sequential((node_id, "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 3}))
    assert compile_graph(g)(torch.ones(2, 4)).shape == (2, 3)


# -- fuzzing: analyze never raises; whatever it accepts compiles and agrees ---------------
_odd = st.none() | st.text(max_size=3) | st.floats(allow_nan=True) | st.booleans() | st.just([])
_small = st.integers(1, 5)
_pairs = st.lists(_small, min_size=2, max_size=2)


def _value(draw, p):
    """Mostly a value of the parameter's kind (not always in range), now and then null or
    something odd."""
    roll = draw(st.integers(0, 19))
    if roll == 0:
        return draw(_odd)
    if roll == 1 and p.nullable:
        return None
    return draw({
        "int": st.integers(-1, 5),
        "float": st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]),
        "bool": st.booleans(),
        "choice": st.sampled_from(p.choices or ("x",)),
        "int_or_pair": _small | _pairs,
        "padding": st.integers(0, 2) | st.lists(st.integers(0, 2), min_size=2, max_size=2)
        | st.just("same"),
        "shape": st.lists(st.integers(1, 9), min_size=1, max_size=3)
        | st.lists(st.integers(-1, 6), min_size=1, max_size=3),
        "scale": st.sampled_from([0.5, 1, 1.5, 2, 3])
        | st.lists(st.sampled_from([0.5, 1, 2]), min_size=2, max_size=2),
        "string": st.text(max_size=3),
        "column": st.integers(0, 3),
    }[p.kind])


@st.composite
def random_graphs(draw):
    """Mostly chains of catalogue layers with extra edges into higher slots, sometimes
    broken (odd parameter values, missing or duplicate edges, cycles, unknown types)."""
    types = sorted(set(CATALOGUE) - {"Embedding"})  # its output depends on the values
    g = Graph()
    n = draw(st.integers(1, 6))
    for i in range(n):
        t = "Input" if i == 0 else draw(st.sampled_from(types + ["Nope"]))
        spec = CATALOGUE.get(t)
        params = {}
        for p in spec.params if spec else ():
            if p.required or draw(st.booleans()):
                params[p.name] = _value(draw, p)
        g.nodes[f"n{i}"] = Node(f"n{i}", t, params)
    for i in range(1, n):
        if draw(st.integers(0, 19)):
            g.edges.append(Edge(f"n{i - 1}", f"n{i}", 0))
        spec = CATALOGUE.get(g.nodes[f"n{i}"].type)
        extra = draw(st.integers(1, 2)) if spec and spec.max_inputs is None else 0
        extra += draw(st.integers(0, 19)) == 0
        for port in range(1, 1 + extra):
            odd = draw(st.integers(0, 9)) == 0
            source = draw(st.integers(0, n - 1) if odd else st.integers(0, i - 1))
            port = draw(st.sampled_from([0, -1, 5])) if odd else port
            g.edges.append(Edge(f"n{source}", f"n{i}", port))
    return g


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_fuzz_analyze_never_raises_and_compiled_graphs_agree(g):
    a = analyze(g)
    assert all(i.node is None or i.node in g.nodes for i in a.issues)
    if not a.ok:
        with pytest.raises(GraphError):
            compile_graph(g, a)
        return
    gm = compile_graph(g, a)
    assert sum(p.numel() for p in gm.parameters()) == a.total_params
    gm.eval()
    with torch.no_grad():
        out = gm(*[torch.zeros(2, *a.shapes[i]) for i in a.inputs])
    assert tuple(out.shape) == (2, *a.shapes[a.output])


def test_the_parameter_cache_never_hides_a_change():
    """analyze caches each node's checked parameters; an edit, in place or not, and a value
    equal in Python but of another type (True vs 1) must still be seen."""
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [4]}))
    g.add_node(Node("fc", "Linear", {"out_features": 3, "bias": True}))
    g.add_edge(Edge("input", "fc"))
    assert analyze(g).ok
    g.nodes["fc"].params["bias"] = 1  # edited in place, to a wrongly typed value
    a = analyze(g)
    assert not a.ok and a.errors[0].param == "bias"
    g.nodes["fc"].params["bias"] = False
    g.nodes["fc"].params["out_features"] = 5
    a = analyze(g)
    assert a.ok and a.shapes["fc"] == (5,) and a.param_counts["fc"] == 20
    g.nodes["fc"].type = "ReLU"  # same id, another type
    assert not analyze(g).ok


def test_two_graphs_sharing_node_ids_are_analyzed_each_by_its_own_parameters():
    """The parameter cache is keyed on content, not on node ids: graphs alternating with
    the same ids and other parameters never see each other's."""
    small = sequential(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 3}))
    large = sequential(("input", "Input", {"shape": [1, 8, 8]}),
                       ("fc", "Conv2d", {"out_channels": 2, "kernel_size": 3}))
    wrong = sequential(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 3.0}))
    for _ in range(2):
        assert analyze(small).shapes["fc"] == (3,)
        assert analyze(large).shapes["fc"] == (2, 6, 6)
        a = analyze(wrong)
        assert not a.ok and a.errors[0].param == "out_features"


def test_the_resolved_parameters_are_each_analysis_own():
    g = sequential(("input", "Input", {"shape": [1, 8, 8]}))
    first = analyze(g)
    first.params["input"]["shape"].append(99)
    first.params["input"]["extra"] = 1
    again = analyze(g)
    assert again.params["input"]["shape"] == [1, 8, 8] and "extra" not in again.params["input"]
    assert g.nodes["input"].params == {"shape": [1, 8, 8]}


def test_parameters_that_cannot_be_a_key_are_still_checked():
    g = sequential(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": {3}}))
    a = analyze(g)
    assert not a.ok and a.errors[0].param == "out_features"


def test_a_repeated_layer_on_an_input_it_cannot_take_is_an_error_at_the_node_not_a_crash():
    """The repeat loop counted the parameters before checking the shape: a transformer layer
    repeated on a 1-d input raised IndexError out of analyze (found by a fuzzer)."""
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [12]}))
    g.add_node(Node("enc", "TransformerEncoderLayer", {"nhead": 4}, repeat=2))
    g.add_edge(Edge("input", "enc"))
    a = analyze(g)
    assert [i.node for i in a.errors] == ["enc"] and a.shapes["enc"] is None
    assert UNCOMPUTABLE not in a.errors[0].message  # the shape rule said what is wrong
