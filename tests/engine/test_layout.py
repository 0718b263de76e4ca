"""The layered layout: top to bottom, left to right, wrapped into bands; reading the
direction back from positions."""

from __future__ import annotations

import pytest

from app.engine.errors import NetCanvasError
from app.engine.examples import example_path
from app.engine.graph import Edge, Graph, Node
from app.engine.layout import LR, TB, infer_direction, layer_count, layered_layout
from app.engine.project import load_project


def chain(n: int) -> Graph:
    g = Graph()
    g.add_node(Node("n0", "Input", {"shape": [4]}))
    for i in range(1, n):
        g.add_node(Node(f"n{i}", "ReLU", {}))
        g.add_edge(Edge(f"n{i - 1}", f"n{i}"))
    return g


def test_top_to_bottom_puts_a_chain_in_a_column():
    pos = layered_layout(chain(5))
    assert [pos[f"n{i}"][0] for i in range(5)] == [0.0] * 5
    ys = [pos[f"n{i}"][1] for i in range(5)]
    assert ys == sorted(ys) and len(set(ys)) == 5


def test_left_to_right_puts_a_chain_in_a_row():
    pos = layered_layout(chain(5), direction=LR)
    xs = [pos[f"n{i}"][0] for i in range(5)]
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert len({pos[f"n{i}"][1] for i in range(5)}) == 1
    assert xs[1] - xs[0] >= 196 + 40  # a node's width and room for the shape label between


def test_left_to_right_wraps_a_long_chain_into_bands():
    pos = layered_layout(chain(10), direction=LR, wrap=4)
    rows = sorted({y for _, y in pos.values()})
    assert len(rows) == 3  # 4 + 4 + 2, read like lines of text
    for band, y in enumerate(rows):
        members = [i for i in range(10) if pos[f"n{i}"][1] == y]
        assert members == list(range(band * 4, min(band * 4 + 4, 10)))
        xs = [pos[f"n{i}"][0] for i in members]
        assert xs == sorted(xs) and xs[0] == 0.0
    assert rows[1] - rows[0] >= 66 + 30  # bands do not touch


def test_left_to_right_keeps_branches_apart_and_every_edge_forward():
    graph = load_project(example_path("resnet")).graph
    pos = layered_layout(graph, direction=LR)
    for e in graph.edges:
        assert pos[e.target][0] > pos[e.source][0], e
    spots = list(pos.values())
    assert len(set(spots)) == len(spots)  # no two nodes on one spot
    depth, _ = layer_count(graph)
    assert len({x for x, _ in spots}) == depth  # one column per layer


def test_the_direction_is_read_back_from_positions():
    g = chain(4)
    assert infer_direction(g) == TB  # no positions yet
    for direction in (TB, LR):
        for node_id, p in layered_layout(g, direction=direction).items():
            g.nodes[node_id].position = p
        assert infer_direction(g) == direction
    wrapped = chain(13)
    for node_id, p in layered_layout(wrapped, direction=LR, wrap=4).items():
        wrapped.nodes[node_id].position = p
    assert infer_direction(wrapped) == LR


@pytest.mark.parametrize("kwargs, words", [
    ({"direction": "BT"}, "'BT' is not one of TB, LR"),
    ({"direction": LR, "wrap": 0}, "wrap 0"),
    ({"direction": TB, "wrap": 3}, "left-to-right"),
])
def test_bad_options_are_refused_with_the_valid_values(kwargs, words):
    with pytest.raises(NetCanvasError, match=words):
        layered_layout(chain(3), **kwargs)


def test_an_empty_graph_has_an_empty_layout():
    assert layered_layout(Graph(), direction=LR, wrap=3) == {}
    assert layer_count(Graph()) == (0, 0)
