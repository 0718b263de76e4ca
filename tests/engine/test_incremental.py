"""The incremental analysis equals a full one after every edit of any sequence of edits."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine.examples import load_example
from app.engine.graph import Edge, Node
from app.engine.incremental import Analyzer
from app.engine.inference import analyze

EXAMPLES = ("xor", "lenet5", "resnet", "resnet_blocks", "text_transformer", "mobilenet")

# values a parameter may be set to: good ones, bad ones, and ones that change shapes a lot
VALUES = st.one_of(st.integers(-2, 40), st.sampled_from([0.5, "same", "valid", True, None, [2, 2], [3, 1], "x",
                                                         "int64", "float32", [1, 1], [2, 6]]))


def same(incremental, full) -> None:
    assert incremental.issues == full.issues
    assert incremental.shapes == full.shapes
    assert incremental.port_shapes == full.port_shapes
    assert incremental.param_counts == full.param_counts
    assert incremental.params == full.params
    assert incremental.order == full.order and incremental.inputs == full.inputs
    assert incremental.output == full.output and incremental.incoming == full.incoming
    assert incremental.expansions.keys() == full.expansions.keys()
    for node_id, inside in full.expansions.items():
        assert incremental.expansions[node_id].analysis.shapes == inside.analysis.shapes


def edit(graph, draw) -> None:
    """One random edit of ``graph``, as the editor makes them."""
    ids = list(graph.nodes)
    kind = draw(st.sampled_from(["params", "params", "params", "options", "move", "add", "remove", "edge",
                                 "unedge", "reorder"]))
    node_id = draw(st.sampled_from(ids)) if ids else None
    if node_id is None:
        graph.add_node(Node("input", "Input", {"shape": [2]}))
        return
    node = graph.nodes[node_id]
    spec = graph.spec(node.type)
    if kind == "params":
        params = dict(node.params)
        names = [p.name for p in spec.params] if spec else []
        name = draw(st.sampled_from(names + ["nonsense"] + (["dtype"] * 3 if node.type == "Input" else [])))
        if draw(st.booleans()) and name in params:
            params.pop(name)
        else:
            params[name] = draw(VALUES)
        graph.set_params(node_id, params)
    elif kind == "options":
        graph.set_options(node_id, repeat=draw(st.integers(1, 3)), trainable=draw(st.booleans()))
    elif kind == "move":
        graph.move_node(node_id, (draw(st.floats(-500, 500)), 0.0))
    elif kind == "add":
        new_id = f"n{len(graph.nodes)}_{draw(st.integers(0, 999))}"
        if new_id not in graph.nodes:
            graph.add_node(Node(new_id, draw(st.sampled_from(["ReLU", "Linear", "Conv2d", "Add", "Split"])),
                                {"out_features": 4} if draw(st.booleans()) else {}))
            graph.add_edge(Edge(node_id, new_id), check=False)
    elif kind == "reorder":
        graph.reorder(draw(st.permutations(ids)))
    elif kind == "remove":
        graph.remove_node(node_id)
    elif kind == "edge":
        other = draw(st.sampled_from(ids))
        graph.add_edge(Edge(node_id, other, draw(st.integers(0, 2)), draw(st.integers(0, 1))), check=False)
    elif graph.edges:
        graph.remove_edge(draw(st.sampled_from(graph.edges)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), st.data())
def test_after_every_edit_the_incremental_analysis_equals_a_full_one(example, data):
    graph = load_example(example).graph
    analyzer = Analyzer(graph)
    for _ in range(data.draw(st.integers(1, 12))):
        edit(graph, data.draw)
        same(analyzer.analysis(), analyze(graph))
    analyzer.close()


def test_a_parameter_edit_reinfers_only_what_it_reaches():
    graph = load_example("resnet").graph
    analyzer = Analyzer(graph)
    before = analyzer.analysis()
    last = before.order[-1]
    node = graph.nodes[last]
    graph.set_params(last, dict(node.params))  # the same values: nothing downstream to redo
    after = analyzer.analysis()
    assert analyzer.incremental_runs == 1 and analyzer.full_runs == 0
    assert after is not before and after.shapes == before.shapes
    graph.move_node(before.order[0], (10.0, 10.0))
    assert analyzer.analysis() is after  # a move changes nothing analyzed
    graph.add_node(Node("extra", "ReLU"))
    analyzer.analysis()
    assert analyzer.full_runs == 1


def test_an_earlier_analysis_is_never_changed_by_a_later_update():
    graph = load_example("lenet5").graph
    analyzer = Analyzer(graph)
    first = analyzer.analysis()
    shapes, issues = dict(first.shapes), list(first.issues)
    graph.set_params("conv1", {"out_channels": 6, "kernel_size": 40})  # breaks everything after it
    second = analyzer.analysis()
    assert second.errors and first.shapes == shapes and first.issues == issues
