"""Automatic layered layout (top to bottom), for graphs without positions and on request.

A small Sugiyama-style layout: layers by longest path from the inputs, a few barycenter
sweeps to reduce crossings, then even spacing. Runs in well under a second on 2,000 nodes.
"""

from __future__ import annotations

from .graph import Graph

LAYER_GAP = 110.0
NODE_GAP = 230.0


def layered_layout(graph: Graph, layer_gap: float = LAYER_GAP, node_gap: float = NODE_GAP,
                   sweeps: int = 4) -> dict[str, tuple[float, float]]:
    """A position ``(x, y)`` for every node: data flows downwards, merges sit below the
    branches that feed them. Nodes on a cycle (an invalid graph) go to the bottom."""
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.source in preds and e.target in preds and e.source != e.target:
            preds[e.target].append(e.source)
            succs[e.source].append(e.target)
    layer = _longest_path_layers(graph, preds, succs)
    depth = max(layer.values(), default=0) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for n in graph.nodes:  # file order as the starting order within each layer
        layers[layer[n]].append(n)
    index = {n: i for row in layers for i, n in enumerate(row)}
    for sweep in range(sweeps):
        rows = range(1, depth) if sweep % 2 == 0 else range(depth - 2, -1, -1)
        for r in rows:
            neighbours = preds if sweep % 2 == 0 else succs
            layers[r].sort(key=lambda n: _barycenter(n, neighbours, index))
            for i, n in enumerate(layers[r]):
                index[n] = i
    positions: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(layers):
        offset = (len(row) - 1) / 2
        for i, n in enumerate(row):
            positions[n] = ((i - offset) * node_gap, r * layer_gap)
    return positions


def _longest_path_layers(graph, preds, succs) -> dict[str, int]:
    indegree = {n: len(p) for n, p in preds.items()}
    ready = [n for n in graph.nodes if indegree[n] == 0]
    layer = {n: 0 for n in ready}
    placed = 0
    while ready:
        n = ready.pop()
        placed += 1
        for m in succs[n]:
            layer[m] = max(layer.get(m, 0), layer[n] + 1)
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(m)
    bottom = max(layer.values(), default=-1) + 1
    for n in graph.nodes:
        if indegree[n] > 0:  # on or behind a cycle
            layer[n] = bottom
    return layer


def _barycenter(n: str, neighbours: dict[str, list[str]], index: dict[str, int]) -> float:
    around = neighbours[n]
    if not around:
        return index[n]
    return sum(index[m] for m in around) / len(around)
