"""Analysis kept current across edits, re-inferring only what an edit can reach.

``Analyzer(graph)`` follows the graph's signals and updates a copy of the last analysis:

- an edit of parameters or options (the inspector's, a hundred times a day): the edited
  nodes' own checks, the ports checks of the nodes they feed;
- nodes added or removed, edges added or removed (the canvas's): the new nodes' own checks,
  the slot, ports and options checks of the nodes whose inputs changed, the topological
  order from the first place the edit can change it on (``_reorder``), the nodes that feed
  nothing (the graph's output) and the graph-wide checks;
- a new order of the nodes (undoing a delete): the topological order and the graph-wide
  checks redone, every issue listed in the new order;

then the shapes of the nodes those reach downstream, in topological order, as far as the
shapes change. The issues are put back where a full ``analyze`` lists them, so the result
equals ``analyze(graph)`` exactly (tests/engine/test_incremental.py checks that over random
edit sequences); ``Analysis.changed`` says which nodes' facts may differ from the analysis
before. Moving a node changes nothing an analysis holds. A change of the block definitions,
an edge naming no node or feeding its source (only a file or a script makes those), or more
edits at once than a full analysis costs, take a full analysis.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

from .errors import Issue
from .graph import Edge, Graph
from .inference import (P_DTYPES, P_EDGES, P_ENDS, P_NODES, P_OPTIONS, P_ORDER, P_PORTS, P_SHAPES, P_SLOTS,
                        Analysis, _check_dtypes, _check_ends, _check_options, _check_ports, _check_slots,
                        _slot, _topological_order, analyze, check_node, infer_node)

# more structural edits than this (plus a quarter of the node count) between two analyses
# take a full one: each costs about what a few nodes of a full analysis cost
_EDITS_LIMIT = 32


class Analyzer:
    """``analysis()``: the analysis of ``graph`` as it is now (a new object after each change;
    earlier ones are never modified). ``full_runs`` / ``incremental_runs`` count what was done."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._analysis = analyze(graph)
        self._changed: set[str] = set()  # nodes whose parameters or options were edited since
        self._log: list[tuple] | None = []  # the structural edits since, in turn; None: a full analysis is due
        self._rank: dict[str, int] | None = None  # each node's index in the analysis's order
        self._edge_rank: dict[str, int] | None = None  # the order a full analysis lists ports issues in
        self.full_runs = self.incremental_runs = 0
        self._wiring = [(graph.params_changed, self._edited), (graph.options_changed, self._edited),
                        (graph.node_added, self._node_added), (graph.node_removed, self._node_removed),
                        (graph.edge_added, self._edge_added), (graph.edge_removed, self._edge_removed),
                        (graph.nodes_reordered, self._reordered), (graph.blocks.changed, self._restructured)]
        for signal, slot in self._wiring:
            signal.connect(slot)

    def close(self) -> None:
        """Stop following the graph."""
        for signal, slot in self._wiring:
            signal.disconnect(slot)

    def analysis(self) -> Analysis:
        if self._log is None:
            self._full()
        elif self._changed or self._log:
            updated = self._update(self._analysis)
            if updated is None:
                self._full()
            else:
                self._analysis = updated
                self.incremental_runs += 1
        self._changed, self._log = set(), []
        return self._analysis

    def _full(self) -> None:
        self._analysis = analyze(self.graph)
        self._rank = self._edge_rank = None
        self.full_runs += 1

    # -- what changed ------------------------------------------------------------------
    def _edited(self, node, _old) -> None:
        if self._log is not None:
            self._changed.add(node.id)

    def _restructured(self, *_args) -> None:
        self._log = None

    def _reordered(self, _order) -> None:
        self._record(("order",))

    def _record(self, event: tuple) -> None:
        if self._log is not None:
            self._log.append(event)
            if len(self._log) > _EDITS_LIMIT + len(self.graph.nodes) // 4:
                self._log = None

    def _node_added(self, node) -> None:
        self._record(("node+", node.id))

    def _node_removed(self, node) -> None:
        self._record(("node-", node.id))

    def _edge_added(self, edge: Edge) -> None:
        nodes, edges = self.graph.nodes, self.graph.edges
        if edge.source not in nodes or edge.target not in nodes or edge.source == edge.target:
            self._log = None  # (an issue of its own, listed in the edges' file order)
        else:  # whether it went last in the file: if not, the lists of its ends are rebuilt
            self._record(("edge+", edge, bool(edges) and edges[-1] is edge))

    def _edge_removed(self, edge: Edge) -> None:
        self._record(("edge-", edge, True))

    # -- the update ----------------------------------------------------------------------
    def _update(self, old: Analysis) -> Analysis | None:
        """``old`` brought up to date with the edits since, or None where a full analysis is due."""
        g, ost, log = self.graph, old.state, self._log
        if ost is None:
            return None
        marks = ost.marks
        segments = [old.issues[marks[i]:(marks[i + 1] if i + 1 < len(marks) else len(old.issues))]
                    for i in range(len(marks))]
        if log and segments[P_EDGES]:  # (edges naming no node: which a new node may now name)
            return None
        added: dict[str, None] = {}  # the nodes added (in the order they now stand in the file)
        removed: set[str] = set()
        for event in log:
            if event[0] == "node+":
                added.pop(event[1], None)
                added[event[1]] = None
            elif event[0] == "node-":
                added.pop(event[1], None)
                removed.add(event[1])
        gone = {n for n in removed if n in ost.positions}  # old nodes removed (some perhaps added again)
        changed = {n for n in self._changed if n in g.nodes and n not in added}
        if any(g.nodes[n].type != _type_of(ost, n) for n in changed):
            return None
        if len(g.nodes) != len(ost.positions) - len(gone) + len(added) or any(
                e[1].source not in ost.positions and e[1].source not in added
                or e[1].target not in ost.positions and e[1].target not in added
                for e in log if e[0] == "edge+"):
            return None  # nodes put in or taken out of ``graph.nodes`` unannounced (a script may)

        a = Analysis(shapes=dict(old.shapes), port_shapes=dict(old.port_shapes), param_counts=dict(old.param_counts),
                     params=dict(old.params), order=old.order, inputs=old.inputs, output=old.output,
                     incoming=old.incoming, expansions=dict(old.expansions))
        st = a.state = replace(ost, specs=dict(ost.specs), param_ok=set(ost.param_ok), ports_bad=set(ost.ports_bad),
                               repeat_ok=set(ost.repeat_ok), keys=dict(ost.keys), marks=[])
        fresh: dict[int, dict[str, list[Issue]]] = {P_NODES: {}, P_SLOTS: {}, P_PORTS: {}, P_OPTIONS: {},
                                                    P_SHAPES: {}}
        targets: set[str] = set()  # the nodes whose inputs changed
        sources: set[str] = set()  # the nodes whose outputs changed
        if log:
            st.slots_ok, st.positions = set(ost.slots_ok), dict(ost.positions)
            a.incoming, st.outgoing = dict(old.incoming), dict(ost.outgoing)
            for n in gone:
                self._forget(a, n, fresh)
            self._edge_rank = None
            if _rewire(g, log, a.incoming, st.outgoing, targets, sources):
                # (``incoming`` lists the nodes by their first edge in the file, as ``_connect`` does)
                a.incoming = {n: a.incoming[n] for n in self._ports_rank(True)}
        for n in added:
            _spec, found = self._check(a, n)
            fresh[P_NODES][n] = found
            st.positions[n] = st.next_position
            st.next_position += 1
        reordered = any(event[0] == "order" for event in log)
        if reordered:  # (the nodes' own facts stay; the order they are listed in, the inputs' and outputs' follow)
            st.positions = {n: i for i, n in enumerate(g.nodes)}
            st.next_position = len(st.positions)
        for n in changed:
            _spec, fresh[P_NODES][n] = self._check(a, n)

        present = {*added, *(n for n in targets if n in g.nodes)}
        for n in present:  # how the inputs feed a node
            if n in st.specs:
                slots: list[Issue] = []
                (st.slots_ok.add if _check_slots(g, st.specs, a.incoming, slots, [n]) else st.slots_ok.discard)(n)
                fresh[P_SLOTS][n] = slots
        for n in changed | present:  # a node's repeat, and how many inputs it takes
            spec = st.specs.get(n)
            if spec is not None:
                options: list[Issue] = []
                (st.repeat_ok.add if _check_options(g, {n: spec}, a.incoming, options) else st.repeat_ok.discard)(n)
                fresh[P_OPTIONS][n] = options
        fed = {e.target for n in changed for e in st.outgoing.get(n, ())}
        for n in fed | present:  # how many outputs a source has may follow its parameters (Split)
            ports: list[Issue] = []
            into = a.incoming.get(n)
            if into and _check_ports(g, st.specs, a.params, st.param_ok, {n: into}, ports):
                st.ports_bad.add(n)
            else:
                st.ports_bad.discard(n)
            fresh[P_PORTS][n] = ports

        seeds = changed | fed | present
        rank = self._rank_of(old)
        if log:
            rank = self._order(a, old, gone, list(added), targets, rank, seeds, fresh, segments, reordered)
            if added or gone or reordered:
                a.inputs = [n for n in old.inputs if n not in gone] + \
                           [n for n in added if g.nodes[n].type == "Input" and n in st.specs]
                if reordered:
                    a.inputs.sort(key=st.positions.__getitem__)
            ends = {*sources, *added, *gone, *(st.positions if reordered else ())}
            st.sinks = sorted({*(n for n in ost.sinks if n not in ends),
                               *(n for n in ends if n in g.nodes and n not in st.outgoing)},
                              key=st.positions.__getitem__)
            segments[P_ENDS] = []
            _check_ends(g, a, st.sinks, segments[P_ENDS])
        if log or any(n in a.inputs for n in changed):  # an Input's dtype reaches every layer it feeds
            segments[P_DTYPES] = []
            _check_dtypes(g, a, st.specs, st.outgoing, segments[P_DTYPES])
        self._reinfer(a, rank, seeds, fresh[P_SHAPES])
        self._rank = rank

        for phase, replaced in fresh.items():
            if not (replaced or (phase == P_SHAPES and a.order is not old.order) or (reordered and phase != P_PORTS)):
                continue
            if phase == P_SHAPES:
                order = rank
            elif phase == P_PORTS:
                if not segments[P_PORTS] and not any(replaced.values()):
                    continue
                order = self._ports_rank(not segments[P_EDGES])
            else:
                order = st.positions
            segments[phase] = _merge(segments[phase], replaced, order)
        a.issues = [i for segment in segments for i in segment]
        st.marks = [0]
        for segment in segments[:-1]:
            st.marks.append(st.marks[-1] + len(segment))
        touched = seeds | targets | sources | gone
        for replaced in fresh.values():
            touched.update(replaced)
        for phase in (P_ORDER, P_ENDS, P_DTYPES):  # the issues of the whole graph, listed on nodes
            before = old.issues[marks[phase]:marks[phase + 1]]
            if segments[phase] != before:
                touched.update(i.node for i in (*before, *segments[phase]) if i.node is not None)
        a.changed = frozenset(touched)
        return a

    def _check(self, a: Analysis, node_id: str):
        """A node's own checks into ``a`` (a new node, or new parameters); returns its spec and issues."""
        st = a.state
        spec, resolved, found, ok, key = check_node(self.graph, self.graph.nodes[node_id])
        if spec is not None:
            st.specs[node_id] = spec
            a.params[node_id] = resolved
        (st.param_ok.add if ok else st.param_ok.discard)(node_id)
        if key is None:
            st.keys.pop(node_id, None)
        else:
            st.keys[node_id] = key
        return spec, found

    @staticmethod
    def _forget(a: Analysis, node_id: str, fresh) -> None:
        """Everything ``a`` holds of a removed node."""
        st = a.state
        for held in (a.shapes, a.port_shapes, a.param_counts, a.params, a.expansions, st.specs, st.keys,
                     st.positions):
            held.pop(node_id, None)
        for held in (st.param_ok, st.slots_ok, st.ports_bad, st.repeat_ok):
            held.discard(node_id)
        for replaced in fresh.values():
            replaced[node_id] = []

    def _order(self, a: Analysis, old: Analysis, gone, added, targets, rank, seeds, fresh, segments,
               reordered: bool) -> dict[str, int]:
        """Put the new topological order into ``a`` and the cycle issues into ``segments``;
        returns each node's index in it. A node placed anew joins ``seeds``; one no longer
        placed (behind a new cycle) loses its shapes."""
        g, st = self.graph, a.state
        placed_before = len(old.order) == len(old.state.positions)  # (no cycle)
        if placed_before and not reordered:
            found = _reorder(old.order, rank, st.positions, a.incoming, st.outgoing, gone, added, targets)
            if found is not None:
                a.order, rank = found
                return rank
        segments[P_ORDER] = []
        a.order = _topological_order(g, st.outgoing, a.incoming, segments[P_ORDER])
        rank = {n: i for i, n in enumerate(a.order)}
        for n in old.order:
            if n not in rank and n not in gone:  # (a full analysis infers no node behind a cycle)
                for held in (a.shapes, a.port_shapes, a.param_counts, a.expansions):
                    held.pop(n, None)
                fresh[P_SHAPES][n] = []
        seeds.update(n for n in a.order if n not in self._rank_of(old))
        return rank

    def _reinfer(self, a: Analysis, rank: dict[str, int], seeds, replaced: dict[str, list[Issue]]) -> None:
        """Infer the ``seeds`` and, in topological order, the nodes downstream as far as shapes change."""
        g, st, order = self.graph, a.state, a.order
        port_shapes, outgoing = a.port_shapes, st.outgoing
        queue = [rank[n] for n in seeds if n in rank]
        queued = set(queue)  # (a node is queued by nodes before it in the order: never again once done)
        heapq.heapify(queue)
        while queue:
            node_id = order[heapq.heappop(queue)]
            before = port_shapes.get(node_id)
            replaced[node_id] = infer_node(g, a, st, node_id)
            if port_shapes.get(node_id) != before:  # the change goes on downstream
                for e in outgoing.get(node_id, ()):
                    position = rank.get(e.target)
                    if position is not None and position not in queued:
                        queued.add(position)
                        heapq.heappush(queue, position)

    def _rank_of(self, a: Analysis) -> dict[str, int]:
        """Each node's index in the topological order of ``a`` (the last analysis)."""
        if self._rank is None:
            self._rank = {n: i for i, n in enumerate(a.order)}
        return self._rank

    def _ports_rank(self, clean: bool) -> dict[str, int]:
        """The order a full analysis lists ports issues in: by the first edge into each node
        (of those that name two nodes, ``inference._connect``'s; ``clean``: all do)."""
        if self._edge_rank is None:
            nodes, edges = self.graph.nodes, self.graph.edges
            if clean:
                targets = dict.fromkeys([e.target for e in edges])
            else:
                targets = dict.fromkeys([e.target for e in edges
                                         if e.source in nodes and e.target in nodes and e.source != e.target])
            self._edge_rank = {n: i for i, n in enumerate(targets)}
        return self._edge_rank


def _type_of(state, node_id: str) -> str | None:
    """The type ``state``'s analysis analyzed ``node_id`` as (None: unknown then)."""
    spec = state.specs.get(node_id)
    return spec.type if spec is not None else None


def _rewire(g: Graph, log, incoming, outgoing, targets: set[str], sources: set[str]) -> bool:
    """Apply the edge edits in ``log`` to (copies of) the analysis's ``incoming`` and
    ``outgoing`` lists, kept as ``inference._connect`` makes them; the ends of every edge
    edited go into ``targets`` and ``sources``. Returns whether the order of ``incoming``'s
    keys (each node's first edge in the file) may have changed otherwise than at its end."""
    moved = False
    own_in: set[str] = set()  # the lists copied (the old analysis keeps its own)
    own_out: set[str] = set()
    rebuild_in: set[str] = set()
    rebuild_out: set[str] = set()
    for kind, *rest in log:
        if kind == "edge+":
            e, last = rest
            targets.add(e.target)
            sources.add(e.source)
            into = _own(incoming, e.target, own_in)
            into.append(e)
            if len(into) > 1 and into[-2].target_port > e.target_port:
                into.sort(key=_slot)
            _own(outgoing, e.source, own_out).append(e)
            if not last:  # inserted within the file: the lists' order among equals follows it
                rebuild_in.add(e.target)
                rebuild_out.add(e.source)
                moved = True
        elif kind == "edge-":
            e = rest[0]
            targets.add(e.target)
            sources.add(e.source)
            for held, key, owned in ((incoming, e.target, own_in), (outgoing, e.source, own_out)):
                edges = _own(held, key, owned)
                if e in edges:
                    edges.remove(e)
                if not edges:
                    del held[key]
                elif held is incoming:  # (its first edge in the file may have been this one)
                    moved = True
    if rebuild_in or rebuild_out:
        for n in rebuild_in:
            incoming.pop(n, None)
        for n in rebuild_out:
            outgoing.pop(n, None)
        for e in g.edges:
            if e.target in rebuild_in:
                incoming.setdefault(e.target, []).append(e)
            if e.source in rebuild_out:
                outgoing.setdefault(e.source, []).append(e)
        for n in rebuild_in:
            if n in incoming:
                incoming[n].sort(key=_slot)
    return moved


def _own(held: dict[str, list[Edge]], key: str, owned: set[str]) -> list[Edge]:
    """``held[key]`` as a list of this update's own (a copy, made once), created if absent."""
    edges = held.get(key)
    if key not in owned or edges is None:
        edges = held[key] = list(edges or ())
        owned.add(key)
    return edges


def _reorder(order: list[str], rank: dict[str, int], positions: dict[str, int], incoming, outgoing,
             gone: set[str], added: list[str], targets: set[str]):
    """The topological order ``analyze`` gives (Kahn's, the earliest node in the file first
    among those ready) after the edits, from the old ``order`` (which had no cycle): the
    removed nodes taken out (that changes no other node's place), then Kahn's algorithm run
    again from the first index where a node whose inputs changed can change the run: where it
    may no longer be ready, or where it may now be ready earlier and comes before the node
    the old run took. Returns ``(order, rank)``, or None where the edits made a cycle."""
    if gone:
        cut = min((rank[n] for n in gone if n in rank), default=len(order))
        order = [n for n in order if n not in gone]
        rank = dict(rank)
        for n in gone:
            rank.pop(n, None)
        for i in range(cut, len(order)):
            rank[order[i]] = i
    start = len(order)
    for v in targets:
        r = rank.get(v)
        if r is None:  # (a new node: placed after the old ones anyway)
            continue
        bound = None
        ready = 0  # the index from which all its inputs are placed
        for e in incoming.get(v, ()):
            before = rank.get(e.source)
            if before is None:  # fed by a new node: not ready before the new nodes are placed
                bound = r
                break
            ready = max(ready, before + 1)
        if bound is None:
            if ready > r:
                bound = r
            else:
                mine = positions[v]
                bound = next((i for i in range(ready, min(r, start)) if positions[order[i]] > mine), None)
        if bound is not None and bound < start:
            start = bound
    new = [n for n in added if n not in rank]
    if start == len(order) and not new:
        return order, rank
    tail = order[start:] + new
    waiting = set(tail)
    indegree: dict[str, int] = {}
    ready_now: list[tuple[int, str]] = []
    for n in tail:
        d = sum(1 for e in incoming.get(n, ()) if e.source in waiting)
        if d:
            indegree[n] = d
        else:
            ready_now.append((positions[n], n))
    heapq.heapify(ready_now)
    placed: list[str] = []
    while ready_now:
        n = heapq.heappop(ready_now)[1]
        placed.append(n)
        for e in outgoing.get(n, ()):
            left = indegree.get(e.target)
            if left is not None:
                if left == 1:
                    del indegree[e.target]
                    heapq.heappush(ready_now, (positions[e.target], e.target))
                else:
                    indegree[e.target] = left - 1
    if len(placed) < len(tail):
        return None
    if not gone:
        rank = dict(rank)
    for i, n in enumerate(placed, start):
        rank[n] = i
    return order[:start] + placed, rank


def _merge(segment: list[Issue], replaced: dict[str, list[Issue]], rank: dict[str, int]) -> list[Issue]:
    """``segment`` (issues listed node by node in ``rank``'s order) with the issues of the
    nodes in ``replaced`` put in their place."""
    by_node: dict[str | None, list[Issue]] = {}
    for issue in segment:
        by_node.setdefault(issue.node, []).append(issue)
    by_node.update(replaced)
    keys = sorted((k for k, v in by_node.items() if v), key=lambda k: rank.get(k, -1))
    return [i for k in keys for i in by_node[k]]
