"""The evented graph model (app/engine/graph.py): signals, edit checks, node ids."""

from __future__ import annotations

import keyword
from pathlib import Path

import pytest
import torch
from torch import fx, nn

from app.engine import graph as graph_module
from app.engine.compiler import compile_graph
from app.engine.graph import (
    ID_PATTERN,
    MODULE_ATTRIBUTES,
    PRIVATE_MODULE_ATTRIBUTES,
    Edge,
    Graph,
    Node,
    Signal,
    id_problem,
)


class Recorder:
    """Connects to every signal of a graph and records (signal name, args) in order."""

    SIGNALS = ("node_added", "node_removed", "edge_added", "edge_removed",
               "params_changed", "node_moved", "nodes_reordered", "changed")

    def __init__(self, graph: Graph):
        self.events: list[tuple[str, tuple]] = []
        for name in self.SIGNALS:
            getattr(graph, name).connect(self._slot(name))

    def _slot(self, name):
        return lambda *args: self.events.append((name, args))

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def clear(self) -> None:
        self.events.clear()


def chain(*types: str) -> Graph:
    """Nodes n0, n1, ... of the given types, each feeding the next."""
    g = Graph()
    for i, t in enumerate(types):
        g.add_node(Node(f"n{i}", t))
    for i in range(len(types) - 1):
        g.add_edge(Edge(f"n{i}", f"n{i + 1}"))
    return g


# -- signals ------------------------------------------------------------------------------
def test_add_node_announces_node_added_then_changed():
    g = Graph()
    rec = Recorder(g)
    node = g.add_node(Node("conv1", "Conv2d", {"out_channels": 6}))
    assert rec.events == [("node_added", (node,)), ("changed", ())]
    assert g.node("conv1") is node


def test_add_node_refuses_a_duplicate_id():
    g = chain("Input")
    rec = Recorder(g)
    with pytest.raises(ValueError, match="already a node 'n0'"):
        g.add_node(Node("n0", "ReLU"))
    assert rec.events == []


def test_add_edge_announces_edge_added():
    g = Graph()
    g.add_node(Node("a", "Input"))
    g.add_node(Node("b", "ReLU"))
    rec = Recorder(g)
    edge = g.add_edge(Edge("a", "b"))
    assert rec.events == [("edge_added", (edge,)), ("changed", ())]
    assert g.edges == [edge]


def test_add_edge_at_an_index_keeps_the_file_order():
    g = chain("Input", "ReLU", "Tanh")
    first = g.edges[0]
    g.remove_edge(first)
    rec = Recorder(g)
    g.add_edge(first, index=0)
    assert g.edges[0] == first and rec.events == [("edge_added", (first,)), ("changed", ())]


def test_remove_node_removes_its_edges_first_each_announced():
    g = chain("Input", "ReLU", "Tanh")
    rec = Recorder(g)
    removed = g.remove_node("n1")
    assert removed.id == "n1" and "n1" not in g.nodes
    assert g.edges == []
    assert rec.names() == ["edge_removed", "changed", "edge_removed", "changed",
                           "node_removed", "changed"]
    removed_edges = {args[0] for name, args in rec.events if name == "edge_removed"}
    assert removed_edges == {Edge("n0", "n1"), Edge("n1", "n2")}
    assert rec.events[4] == ("node_removed", (removed,))


def test_remove_node_keeps_unrelated_edges():
    g = chain("Input", "ReLU", "Tanh", "Sigmoid")
    g.remove_node("n3")
    assert g.edges == [Edge("n0", "n1"), Edge("n1", "n2")]


def test_remove_edge_announces_edge_removed():
    g = chain("Input", "ReLU")
    rec = Recorder(g)
    g.remove_edge(Edge("n0", "n1"))
    assert rec.events == [("edge_removed", (Edge("n0", "n1"),)), ("changed", ())]


def test_set_params_announces_the_old_params():
    g = Graph()
    g.add_node(Node("fc", "Linear", {"out_features": 10}))
    rec = Recorder(g)
    new = {"out_features": 20, "bias": False}
    g.set_params("fc", new)
    node = g.node("fc")
    assert node.params == new and node.params is not new  # a copy is stored
    assert rec.events == [("params_changed", (node, {"out_features": 10})), ("changed", ())]


def test_move_node_announces_node_moved_with_float_position():
    g = chain("Input")
    rec = Recorder(g)
    g.move_node("n0", (3, 4))
    node = g.node("n0")
    assert node.position == (3.0, 4.0) and all(isinstance(v, float) for v in node.position)
    assert rec.events == [("node_moved", (node,)), ("changed", ())]


def test_move_node_to_none_clears_the_position_announced():
    g = chain("Input")
    g.move_node("n0", (3, 4))
    rec = Recorder(g)
    g.move_node("n0", None)
    node = g.node("n0")
    assert node.position is None
    assert rec.events == [("node_moved", (node,)), ("changed", ())]


def test_reorder_puts_the_nodes_in_the_given_order_announced():
    g = chain("Input", "ReLU", "Flatten")
    nodes = g.nodes
    rec = Recorder(g)
    g.reorder(["n2", "n0", "n1"])
    assert list(g.nodes) == ["n2", "n0", "n1"] and g.nodes is nodes
    assert rec.events == [("nodes_reordered", (["n2", "n0", "n1"],)), ("changed", ())]


@pytest.mark.parametrize("order", [["n0", "n1"], ["n0", "n1", "n1"], ["n0", "n1", "x"], ["n0", "n1", "n2", "n3"]])
def test_reorder_refuses_an_order_that_is_not_every_node_once(order):
    g = chain("Input", "ReLU", "Flatten")
    rec = Recorder(g)
    with pytest.raises(ValueError, match="every node once"):
        g.reorder(order)
    assert list(g.nodes) == ["n0", "n1", "n2"] and rec.events == []


def test_signal_connect_disconnect_and_order():
    s = Signal()
    calls = []
    first = lambda *a: calls.append(("first", a))  # noqa: E731
    second = lambda *a: calls.append(("second", a))  # noqa: E731
    s.connect(first)
    s.connect(second)
    s.emit(1, "x")
    assert calls == [("first", (1, "x")), ("second", (1, "x"))]
    s.disconnect(first)
    calls.clear()
    s.emit()
    assert calls == [("second", ())]


def test_a_slot_may_disconnect_itself_while_emitting():
    s = Signal()
    calls = []

    def once():
        calls.append("once")
        s.disconnect(once)

    s.connect(once)
    s.connect(lambda: calls.append("other"))
    s.emit()
    s.emit()
    assert calls == ["once", "other", "other"]


def test_copy_is_deep_and_has_no_listeners():
    g = chain("Input", "ReLU")
    g.set_params("n0", {"shape": [1, 28, 28]})
    g.move_node("n1", (5, 6))
    rec = Recorder(g)
    c = g.copy()
    c.nodes["n0"].params["shape"].append(9)
    c.add_node(Node("extra", "Tanh"))
    c.add_edge(Edge("n1", "extra"))
    assert g.nodes["n0"].params == {"shape": [1, 28, 28]}
    assert "extra" not in g.nodes and len(g.edges) == 1
    assert c.nodes["n1"].position == (5.0, 6.0)
    assert rec.events == []


# -- queries ------------------------------------------------------------------------------
def test_incoming_sorted_by_port_and_outgoing():
    g = Graph()
    for n in ("a", "b", "add"):
        g.add_node(Node(n, "Input" if n != "add" else "Add"))
    g.add_edge(Edge("b", "add", 1))
    g.add_edge(Edge("a", "add", 0))
    assert [e.source for e in g.incoming("add")] == ["a", "b"]
    assert g.outgoing("a") == [Edge("a", "add", 0)]
    assert g.outgoing("add") == []


def test_reaches():
    g = chain("Input", "ReLU", "Tanh")
    assert g.reaches("n0", "n2") and g.reaches("n1", "n1")
    assert not g.reaches("n2", "n0")


# -- connection_problem ------------------------------------------------------------------
def test_connection_problem_allows_a_good_edge():
    g = chain("Input", "ReLU")
    g.add_node(Node("t", "Tanh"))
    assert g.connection_problem("n1", "t", 0) is None
    # an output may feed many targets
    assert g.connection_problem("n0", "t", 0) is None


def test_connection_problem_refuses_self_loops():
    g = chain("Input", "ReLU")
    assert g.connection_problem("n1", "n1", 0) == "a node cannot feed itself"
    with pytest.raises(ValueError, match="cannot feed itself"):
        g.add_edge(Edge("n1", "n1"))


def test_connection_problem_refuses_cycles():
    g = chain("Input", "ReLU", "Tanh", "Sigmoid")
    problem = g.connection_problem("n3", "n1", 1)
    assert problem == "connecting 'n3' to 'n1' would make a cycle"
    rec = Recorder(g)
    with pytest.raises(ValueError, match="cycle"):
        g.add_edge(Edge("n3", "n1", 1))
    assert rec.events == [] and len(g.edges) == 3


def test_connection_problem_refuses_an_occupied_slot():
    g = chain("Input", "ReLU")
    g.add_node(Node("other", "Input"))
    assert g.connection_problem("other", "n1", 0) == "input slot 0 of 'n1' is already fed by 'n0'"
    assert g.connection_problem("other", "n1", 1) is None  # another slot is free
    with pytest.raises(ValueError, match="already fed"):
        g.add_edge(Edge("other", "n1", 0))


def test_connection_problem_refuses_missing_nodes():
    g = chain("Input")
    assert g.connection_problem("n0", "ghost", 0) == "there is no node 'ghost'"
    assert g.connection_problem("ghost", "n0", 0) == "there is no node 'ghost'"


def test_add_edge_without_check_accepts_anything():
    """A file may say anything; analyze reports it (the editor always checks)."""
    g = chain("Input", "ReLU")
    g.add_edge(Edge("n1", "n1"), check=False)
    g.add_edge(Edge("n1", "n0"), check=False)
    assert len(g.edges) == 3


# -- ids ----------------------------------------------------------------------------------
def test_unique_id_counts_up_past_existing_ids():
    g = Graph()
    assert g.unique_id("conv") == "conv1"
    g.add_node(Node("conv1", "Conv2d"))
    g.add_node(Node("conv2", "Conv2d"))
    assert g.unique_id("conv") == "conv3"
    g.remove_node("conv1")
    assert g.unique_id("conv") == "conv1"


@pytest.mark.parametrize("prefix", ["Conv2d", "conv", "Max Pool", "3d", "", "é", "class", "to",
                                    "forward", "__init__", "input_shape", "-"])
def test_unique_id_is_always_a_valid_fresh_id(prefix):
    g = Graph()
    for _ in range(3):
        new = g.unique_id(prefix)
        assert id_problem(new) is None, new
        assert new not in g.nodes
        g.add_node(Node(new, "ReLU"))


def test_unique_id_lowercases_and_cleans():
    g = Graph()
    assert g.unique_id("MaxPool2d") == "maxpool2d1"
    assert g.unique_id("Max Pool") == "max_pool1"
    assert g.unique_id("3d") == "n3d1"
    assert g.unique_id("") == "node1"


@pytest.mark.parametrize("good", ["conv1", "x", "_x", "A_b_9", "input", "relu", "fc_1", "self"])
def test_id_problem_accepts_identifiers(good):
    assert id_problem(good) is None


@pytest.mark.parametrize("bad", ["", "1conv", "conv-1", "conv 1", "conv.1", "é", "conv1\n", None,
                                 1, ["a"], "a\u00a0"])
def test_id_problem_refuses_non_identifiers(bad):
    problem = id_problem(bad)
    assert problem and "Python identifier" in problem and repr(bad) in problem


@pytest.mark.parametrize("word", keyword.kwlist)
def test_id_problem_refuses_keywords(word):
    problem = id_problem(word)
    assert problem and "keyword" in problem


@pytest.mark.parametrize("name", ["forward", "to", "cuda", "state_dict", "parameters", "training",
                                  "code", "graph", "recompile", "print_readable", "input_shapes",
                                  "output_shape", "_modules", "_parameters", "__init__",
                                  "__class__", "_version"])
def test_id_problem_refuses_module_attributes(name):
    problem = id_problem(name)
    assert problem and "torch.nn.Module attribute" in problem and repr(name) in problem


def test_module_attributes_cover_torch_nn_module():
    public = {n for n in dir(nn.Module) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES, sorted(public - MODULE_ATTRIBUTES)


def compiled_linear(node_id: str = "fc") -> fx.GraphModule:
    g = Graph()
    g.add_node(Node("inp", "Input", {"shape": [4]}))
    g.add_node(Node(node_id, "Linear", {"out_features": 3}))
    g.add_edge(Edge("inp", node_id))
    return compile_graph(g)


def test_every_attribute_of_the_compiled_module_is_refused_as_an_id():
    """The compiled GraphModule (and nn.Module) carry public and private attributes; a
    submodule of one of those names would be shadowed or refused by torch."""
    gm = compiled_linear()
    names = (set(dir(nn.Module)) | set(dir(fx.GraphModule)) | set(dir(gm)) | set(vars(gm))
             | set(vars(nn.Module())))
    names.discard("fc")
    names = {n for n in names if ID_PATTERN.match(n) and not keyword.iskeyword(n)}
    allowed = sorted(n for n in names if id_problem(n) is None)
    assert allowed == []


def test_private_and_public_lists_do_not_overlap():
    assert not MODULE_ATTRIBUTES & PRIVATE_MODULE_ATTRIBUTES
    assert all(n.startswith("_") for n in PRIVATE_MODULE_ATTRIBUTES)
    assert not any(n.startswith("_") for n in MODULE_ATTRIBUTES)


@pytest.mark.parametrize("node_id", ["self", "torch", "x", "getattr", "_foo", "input", "len"])
def test_ids_that_are_accepted_compile_and_run(node_id):
    assert id_problem(node_id) is None
    gm = compiled_linear(node_id)
    assert gm(torch.zeros(2, 4)).shape == (2, 3)
    assert sorted(gm.state_dict()) == [f"{node_id}.bias", f"{node_id}.weight"]


def test_graph_module_does_not_import_torch():
    source = Path(graph_module.__file__).read_text(encoding="utf-8")
    assert "import torch" not in source and "from torch" not in source
