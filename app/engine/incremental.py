"""Analysis kept current across edits, re-inferring only what an edit can reach.

``Analyzer(graph)`` follows the graph's signals. An edit of parameters or options (the
inspector's, a hundred times a day) updates a copy of the last analysis: the edited nodes'
own checks, the ports checks of the nodes they feed, and the shapes of the nodes downstream,
in topological order, as far as the shapes change; the issues are put back where a full
``analyze`` lists them, so the result equals ``analyze(graph)`` exactly (tests/engine/
test_incremental.py checks that over random edit sequences). Moving a node changes nothing
an analysis holds. Any other edit (nodes or edges added or removed, the nodes' order, a block
definition) takes a full analysis.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

from .errors import Issue
from .graph import Graph
from .inference import (P_DTYPES, P_NODES, P_OPTIONS, P_PORTS, P_SHAPES, Analysis, _check_dtypes, _check_options,
                        _check_ports, analyze, check_node, infer_node)


class Analyzer:
    """``analysis()``: the analysis of ``graph`` as it is now (a new object after each change;
    earlier ones are never modified). ``full_runs`` / ``incremental_runs`` count what was done."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._analysis = analyze(graph)
        self._changed: set[str] | None = set()  # nodes edited since; None: a full analysis is due
        self._ranks: dict[int, dict[str, int]] = {}  # per pass, the order its nodes' issues are listed in
        self.full_runs = self.incremental_runs = 0
        self._wiring = [(graph.params_changed, self._edited), (graph.options_changed, self._edited)]
        self._wiring += [(signal, self._restructured) for signal in (
            graph.node_added, graph.node_removed, graph.edge_added, graph.edge_removed, graph.nodes_reordered,
            graph.blocks.changed)]
        for signal, slot in self._wiring:
            signal.connect(slot)

    def close(self) -> None:
        """Stop following the graph."""
        for signal, slot in self._wiring:
            signal.disconnect(slot)

    def analysis(self) -> Analysis:
        if self._changed is None:
            self._analysis = analyze(self.graph)
            self._ranks = {}
            self.full_runs += 1
        elif self._changed:
            self._analysis = self._update(self._analysis, self._changed)
            self.incremental_runs += 1
        self._changed = set()
        return self._analysis

    # -- what changed ------------------------------------------------------------------
    def _edited(self, node, _old) -> None:
        if self._changed is not None:
            self._changed.add(node.id)

    def _restructured(self, *_args) -> None:
        self._changed = None

    # -- the update ----------------------------------------------------------------------
    def _update(self, old: Analysis, changed: set[str]) -> Analysis:
        g, st = self.graph, old.state
        if st is None or any(n not in g.nodes or g.nodes[n].type != st_type(old, n) for n in changed):
            self._ranks = {}
            self.full_runs += 1
            return analyze(g)
        a = Analysis(shapes=dict(old.shapes), port_shapes=dict(old.port_shapes), param_counts=dict(old.param_counts),
                     params=dict(old.params), order=old.order, inputs=old.inputs, output=old.output,
                     incoming=old.incoming, expansions=dict(old.expansions))
        st = a.state = replace(st, param_ok=set(st.param_ok), ports_bad=set(st.ports_bad),
                               repeat_ok=set(st.repeat_ok), marks=list(st.marks))
        segments = [old.issues[st.marks[i]:(st.marks[i + 1] if i + 1 < len(st.marks) else len(old.issues))]
                    for i in range(len(st.marks))]
        fresh: dict[int, dict[str, list[Issue]]] = {P_NODES: {}, P_PORTS: {}, P_OPTIONS: {}, P_SHAPES: {}}

        for node_id in changed:  # the nodes' own checks
            _spec, resolved, found, ok = check_node(g, g.nodes[node_id])
            a.params[node_id] = resolved
            (st.param_ok.add if ok else st.param_ok.discard)(node_id)
            fresh[P_NODES][node_id] = found
            options: list[Issue] = []
            spec = st.specs[node_id]
            if _check_options(g, {node_id: spec}, a.incoming, options):
                st.repeat_ok.add(node_id)
            else:
                st.repeat_ok.discard(node_id)
            fresh[P_OPTIONS][node_id] = options
        fed = {e.target for n in changed for e in st.outgoing.get(n, ())}
        for node_id in fed:  # how many outputs a source has may follow its parameters (Split)
            ports: list[Issue] = []
            if _check_ports(g, st.specs, a.params, st.param_ok, {node_id: a.incoming[node_id]}, ports):
                st.ports_bad.add(node_id)
            else:
                st.ports_bad.discard(node_id)
            fresh[P_PORTS][node_id] = ports
        if any(g.nodes[n].type == "Input" for n in changed):  # an Input's dtype reaches every layer it feeds
            segments[P_DTYPES] = []
            _check_dtypes(g, a, st.specs, st.outgoing, segments[P_DTYPES])

        rank = self._rank(P_SHAPES, old.order)
        queue = [rank[n] for n in changed | fed if n in rank]
        heapq.heapify(queue)
        done: set[int] = set()
        while queue:
            position = heapq.heappop(queue)
            if position in done:
                continue
            done.add(position)
            node_id = old.order[position]
            before = a.port_shapes.get(node_id)
            fresh[P_SHAPES][node_id] = infer_node(g, a, st, node_id)
            if a.port_shapes.get(node_id) != before:  # the change goes on downstream
                for e in st.outgoing.get(node_id, ()):
                    if e.target in rank:
                        heapq.heappush(queue, rank[e.target])

        node_order = None
        for phase, replaced in fresh.items():
            if not replaced:
                continue
            if phase == P_SHAPES:
                order = rank
            elif phase == P_PORTS:
                order = self._rank(P_PORTS, list(a.incoming))
            else:
                node_order = node_order or self._rank(P_NODES, list(g.nodes))
                order = node_order
            segments[phase] = _merge(segments[phase], replaced, order)
        a.issues = [i for segment in segments for i in segment]
        st.marks = [0]
        for segment in segments[:-1]:
            st.marks.append(st.marks[-1] + len(segment))
        return a

    def _rank(self, phase: int, names: list[str]) -> dict[str, int]:
        """Each name's position in ``names``, kept until the structure changes."""
        ranks = self._ranks.get(phase)
        if ranks is None:
            ranks = self._ranks[phase] = {n: i for i, n in enumerate(names)}
        return ranks


def st_type(a: Analysis, node_id: str) -> str | None:
    """The type ``a`` analyzed ``node_id`` as (None: unknown then)."""
    spec = a.state.specs.get(node_id) if a.state else None
    return spec.type if spec is not None else None


def _merge(segment: list[Issue], replaced: dict[str, list[Issue]], rank: dict[str, int]) -> list[Issue]:
    """``segment`` (issues listed node by node in ``rank``'s order) with the issues of the
    nodes in ``replaced`` put in their place."""
    by_node: dict[str | None, list[Issue]] = {}
    for issue in segment:
        by_node.setdefault(issue.node, []).append(issue)
    by_node.update(replaced)
    keys = sorted((k for k, v in by_node.items() if v), key=lambda k: rank.get(k, -1))
    return [i for k in keys for i in by_node[k]]
