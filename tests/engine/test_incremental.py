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
    assert list(incremental.incoming) == list(full.incoming)  # (the order the ports issues are listed in)
    assert incremental.expansions.keys() == full.expansions.keys()
    for node_id, inside in full.expansions.items():
        assert incremental.expansions[node_id].analysis.shapes == inside.analysis.shapes


def edit(graph, draw) -> None:
    """One random edit of ``graph``, as the editor makes them."""
    ids = list(graph.nodes)
    kind = draw(st.sampled_from(["params", "params", "params", "options", "move", "add", "add", "remove", "edge",
                                 "edge", "unedge", "reorder", "readd", "reinsert"]))
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
    elif kind == "add":  # a layer dropped on its own, or fed by a node (add_layer); now and then a new Input
        new_id = f"n{len(graph.nodes)}_{draw(st.integers(0, 999))}"
        if new_id not in graph.nodes:
            kind = draw(st.sampled_from(["ReLU", "Linear", "Conv2d", "Add", "Split", "Input", "Nonsense"]))
            params = {"shape": [3, 8, 8]} if kind == "Input" else {"out_features": 4} if draw(st.booleans()) else {}
            graph.add_node(Node(new_id, kind, params))
            if kind != "Input" and draw(st.booleans()):
                graph.add_edge(Edge(node_id, new_id), check=False)
    elif kind == "reorder":
        graph.reorder(draw(st.permutations(ids)))
    elif kind == "remove":
        graph.remove_node(node_id)
    elif kind == "readd":  # deleted, then put back (the undo of a delete, the node now last in the file)
        slots = [(i, e) for i, e in enumerate(graph.edges) if node_id in (e.source, e.target)]
        graph.remove_node(node_id)
        graph.add_node(node)
        for index, e in slots:
            graph.add_edge(e, check=False, index=index)
    elif kind == "edge":
        other = draw(st.sampled_from(ids))
        graph.add_edge(Edge(node_id, other, draw(st.integers(0, 2)), draw(st.integers(0, 1))), check=False)
    elif graph.edges:
        index = draw(st.integers(0, len(graph.edges) - 1))
        e = graph.edges[index]
        graph.remove_edge(e)
        if kind == "reinsert":  # the undo of removing it: back in its place in the file
            graph.add_edge(e, check=False, index=index)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), st.data())
def test_after_every_edit_the_incremental_analysis_equals_a_full_one(example, data):
    graph = load_example(example).graph
    analyzer = Analyzer(graph)
    before = analyzer.analysis()
    for _ in range(data.draw(st.integers(1, 12))):
        for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3]))):  # several edits between two analyses (a batch)
            edit(graph, data.draw)
        after = analyzer.analysis()
        same(after, analyze(graph))
        if after is not before and after.changed is not None:
            unchanged(before, after)
        before = after
    analyzer.close()


def unchanged(before, after) -> None:
    """Every node outside ``after.changed`` shows what it showed in ``before``."""
    by_node = {}
    for a in (before, after):
        for issue in a.issues:
            by_node.setdefault((id(a), issue.node), []).append(issue)
    for node_id in {*before.shapes, *before.params, *after.shapes, *after.params} - after.changed:
        for facts in ("shapes", "port_shapes", "param_counts", "params", "incoming"):
            assert getattr(before, facts).get(node_id) == getattr(after, facts).get(node_id), (node_id, facts)
        assert by_node.get((id(before), node_id)) == by_node.get((id(after), node_id)), node_id
        assert (node_id == before.output) == (node_id == after.output), node_id


def test_structural_edits_are_analyzed_incrementally():
    graph = load_example("resnet").graph
    analyzer = Analyzer(graph)
    last = analyzer.analysis().order[-1]
    graph.add_node(Node("extra", "ReLU"))
    graph.add_edge(Edge(last, "extra"))
    same(analyzer.analysis(), analyze(graph))
    middle = list(graph.nodes)[len(graph.nodes) // 2]
    graph.remove_node(middle)
    same(analyzer.analysis(), analyze(graph))
    graph.add_edge(Edge("extra", next(iter(graph.nodes)), 1), check=False)  # a cycle
    same(analyzer.analysis(), analyze(graph))
    graph.remove_edge(graph.edges[-1])
    same(analyzer.analysis(), analyze(graph))
    graph.reorder(list(reversed(graph.nodes)))
    same(analyzer.analysis(), analyze(graph))
    assert analyzer.full_runs == 0 and analyzer.incremental_runs == 5


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
    graph.blocks.touch()
    analyzer.analysis()
    assert analyzer.full_runs == 1  # a change of the block definitions is analyzed whole


def test_an_earlier_analysis_is_never_changed_by_a_later_update():
    graph = load_example("lenet5").graph
    analyzer = Analyzer(graph)
    first = analyzer.analysis()
    held = _facts(first)
    graph.set_params("conv1", {"out_channels": 6, "kernel_size": 40})  # breaks everything after it
    second = analyzer.analysis()
    assert second.errors and _facts(first) == held
    held = _facts(second)
    graph.add_node(Node("extra", "ReLU"))
    graph.add_edge(Edge("conv1", "extra"))
    graph.remove_node("fc3")
    graph.remove_edge(graph.edges[0])
    graph.add_edge(Edge("extra", "relu1", 1), check=False)
    third = analyzer.analysis()
    assert analyzer.full_runs == 0 and _facts(second) == held and _facts(third) != held


def _facts(a) -> tuple:
    """Everything ``a`` and its state hold, copied."""
    st = a.state
    lists = lambda d: {k: list(v) for k, v in d.items()}  # noqa: E731
    return (dict(a.shapes), dict(a.port_shapes), dict(a.param_counts), {k: dict(v) for k, v in a.params.items()},
            list(a.issues), list(a.order), list(a.inputs), a.output, lists(a.incoming), lists(st.outgoing),
            dict(st.specs), set(st.param_ok), set(st.slots_ok), set(st.ports_bad), set(st.repeat_ok),
            list(st.marks), dict(st.keys), dict(st.positions), st.next_position, list(st.sinks))
