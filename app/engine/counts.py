"""Parameter counts split into trainable and frozen ones (``trainable: false`` nodes, and
frozen nodes inside blocks), for ``check`` and the editor's status bar. The analysis counts
every parameter of a node (``Analysis.param_counts``); these say how many of them are frozen."""

from __future__ import annotations

from .inference import Analysis


def frozen_counts(graph, a: Analysis) -> dict[str, int]:
    """The frozen parameters of each node with any: all of a node with ``trainable`` false,
    and of a block node those of the frozen nodes inside it (of every copy, when repeated).
    ``a.param_counts`` counts every parameter, frozen or not: trainable = that - these."""
    frozen = {}
    for node in graph.nodes.values():
        total = a.param_counts.get(node.id, 0)
        if not node.trainable:
            count = total
        else:
            count = min(total, _frozen_inside(graph, a, node))
        if count:
            frozen[node.id] = count
    return frozen


def _frozen_inside(graph, a: Analysis, node) -> int:
    """The frozen parameters inside a block node, over all its copies (a later copy of a
    repeated block takes the previous copy's output, which may change its counts)."""
    inside = a.expansions.get(node.id)
    if inside is None:
        return 0
    count = sum(frozen_counts(inside.graph, inside.analysis).values())
    if node.repeat == 1 or not count:
        return count
    expand = graph.spec(node.type).expand
    params = a.params.get(node.id, {})
    for _ in range(node.repeat - 1):
        shape = inside.analysis.shapes[inside.analysis.output]
        inside = expand([shape], params)
        count += sum(frozen_counts(inside.graph, inside.analysis).values())
    return count


def param_split(graph, a: Analysis) -> tuple[int, int]:
    """``(trainable, frozen)`` parameter counts of the whole graph (what the status bar shows)."""
    frozen = sum(frozen_counts(graph, a).values())
    return a.total_params - frozen, frozen
