"""Validation and shape inference: what the canvas shows at every node, on every edit.

``analyze(graph)`` never raises for a bad graph; it returns an ``Analysis`` whose
``issues`` say what is wrong and where. It runs without torch.
"""

from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass, field
from typing import Any

from .errors import Issue, first_line
from .graph import Edge, Graph, id_problem
from .layers import get_spec
from .layers.spec import BLOCK_CATEGORY, BlockIssues
from .layers.helpers import count_problem, fmt, limits_problem
from .layers.spec import LayerSpec, ShapeError
from .params import show
from .resolve import resolve_cached as _resolve_cached, resolve_params, resolved_by_key

Shape = tuple[int, ...]

MAX_REPEAT = 1000  # copies of one node (``repeat``): each is a module with its own weights


@dataclass
class Analysis:
    """Per node: output shape (None where unknown: of output port 0 for a type with several
    outputs, whose every port's shape ``port_shapes`` holds) and trainable parameter count
    (all copies of a repeated node together); the issues found; the topological order; the
    Input nodes (in file order) and the output (the sink; the model's output is its port 0)."""

    shapes: dict[str, Shape | None] = field(default_factory=dict)
    port_shapes: dict[str, tuple[Shape, ...] | None] = field(default_factory=dict)
    param_counts: dict[str, int] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    output: str | None = None
    incoming: dict[str, list[Edge]] = field(default_factory=dict)
    # per block node: its inside for the shapes it receives (its first copy's, if repeated)
    expansions: dict[str, Any] = field(default_factory=dict)
    # what an incremental update starts from (incremental.py); not part of the result
    state: "AnalysisState | None" = field(default=None, repr=False, compare=False)
    # set by ``incremental.Analyzer``: the nodes whose facts here (shapes, count, parameters,
    # issues, inputs and outputs) may differ from the analysis it gave before, removed nodes
    # included; None: any may (a full analysis). A view redraws only these.
    changed: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(self.param_counts.values())

    def issues_for(self, node_id: str) -> list[Issue]:
        return [i for i in self.issues if i.node == node_id]

    def input_shapes(self, node_id: str) -> list[Shape | None]:
        """The shapes arriving at ``node_id``'s input slots, in slot order."""
        return [self.edge_shape(e) for e in self.incoming.get(node_id, [])]

    def edge_shape(self, e: Edge) -> Shape | None:
        """The shape an edge carries: output ``e.source_port`` of ``e.source``."""
        ports = self.port_shapes.get(e.source)
        return ports[e.source_port] if ports and e.source_port < len(ports) else None


# the passes of ``analyze``, in the order their issues are listed
P_NODES, P_EDGES, P_SLOTS, P_PORTS, P_OPTIONS, P_ORDER, P_ENDS, P_DTYPES, P_SHAPES = range(9)


@dataclass
class AnalysisState:
    """What ``analyze`` worked out on the way, kept for ``incremental.Analyzer``: each node's
    spec, the nodes whose parameters are valid, whose slots are fed right (before the ports
    check) and whose ``repeat`` can be carried out; the nodes fed from a port their source
    lacks; the outgoing edges; where each pass's issues start in ``issues``; per node of a
    catalogue type, the key of its parameters (``resolve.params_key``: what the memoised rules are
    looked up by; absent where the parameters cannot be a key); each node's position in the
    file order (increasing with it, perhaps with gaps: an update removes nodes) and the
    position the next node added takes; the nodes that feed nothing, in file order."""

    specs: dict[str, LayerSpec]
    param_ok: set[str]
    slots_ok: set[str]
    ports_bad: set[str]
    repeat_ok: set[str]
    outgoing: dict[str, list[Edge]]
    marks: list[int]
    keys: dict[str, Any] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    next_position: int = 0
    sinks: list[str] = field(default_factory=list)


# ``id_problem`` memoised (typed: the message quotes 1 and True differently)
_id_problem = functools.lru_cache(maxsize=16384, typed=True)(id_problem)


def analyze(graph: Graph) -> Analysis:
    """Check ``graph`` and infer every shape and parameter count it can."""
    a = Analysis()
    issues = a.issues
    specs: dict[str, LayerSpec] = {}
    keys: dict[str, Any] = {}
    param_ok: set[str] = set()
    params = a.params
    spec_of = graph.spec if len(graph.blocks) else get_spec
    for node in graph.nodes.values():
        node_id = node.id
        spec = spec_of(node.type)
        if spec is not None and spec.category != BLOCK_CATEGORY and _id_problem(node_id) is None:
            # (``check_node``, inlined for the usual node: it runs on every node)
            resolved, problems, key = _resolve_cached(spec, node.params)
            if problems:
                issues.extend(Issue(node_id, param, message) for param, message in problems)
            ok = not problems
        else:
            spec, resolved, found, ok, key = check_node(graph, node)
            issues.extend(found)
            if spec is None:
                continue
        specs[node_id] = spec
        params[node_id] = resolved
        if key is not None:
            keys[node_id] = key
        if ok:
            param_ok.add(node_id)
        if node.type == "Input":
            a.inputs.append(node_id)

    marks = [0]
    marks.append(len(issues))
    incoming, outgoing = _connect(graph, issues)
    a.incoming = incoming
    marks.append(len(issues))
    slots_ok = _check_slots(graph, specs, incoming, issues)
    marks.append(len(issues))
    ports_bad = _check_ports(graph, specs, a.params, param_ok, incoming, issues)
    marks.append(len(issues))
    repeat_ok = _check_options(graph, specs, incoming, issues)
    marks.append(len(issues))
    positions = {n: i for i, n in enumerate(graph.nodes)}
    a.order = _topological_order(graph, outgoing, incoming, issues, positions)
    marks.append(len(issues))
    sinks = [n for n in graph.nodes if n not in outgoing]
    _check_ends(graph, a, sinks, issues)
    marks.append(len(issues))
    _check_dtypes(graph, a, specs, outgoing, issues)
    marks.append(len(issues))
    state = a.state = AnalysisState(specs, param_ok, slots_ok, ports_bad, repeat_ok, outgoing, marks, keys,
                                    positions, len(positions), sinks)
    _infer_all(graph, a, state)
    return a


def _infer_all(graph: Graph, a: Analysis, state: AnalysisState) -> None:
    """``infer_node`` for every node in ``a.order``, its issues into ``a.issues``: the usual
    case inlined (a catalogue type whose inputs are known), as it runs on every node."""
    issues, specs, keys, incoming, nodes = a.issues, state.specs, state.keys, a.incoming, graph.nodes
    shapes, port_shapes, counts = a.shapes, a.port_shapes, a.param_counts
    ready = (state.param_ok & state.slots_ok & state.repeat_ok) - state.ports_bad
    for node_id in a.order:
        key = keys.get(node_id)
        if node_id not in ready or key is None or specs[node_id].category == BLOCK_CATEGORY:
            found = infer_node(graph, a, state, node_id)
            if found:
                issues.extend(found)
            continue
        in_shapes = []
        for e in incoming.get(node_id, ()):
            ports = port_shapes.get(e.source)
            if not ports or e.source_port >= len(ports):
                in_shapes = None
                break
            in_shapes.append(ports[e.source_port])
        if in_shapes is None:
            shapes[node_id] = port_shapes[node_id] = None
            counts[node_id] = 0
            continue
        ports, count, hints, error = _outcome_cached(specs[node_id].type, key, nodes[node_id].repeat,
                                                     tuple(in_shapes))
        if error is not None:
            shapes[node_id] = port_shapes[node_id] = None
            counts[node_id] = 0
            issues.append(Issue(node_id, *error))
            continue
        shapes[node_id], port_shapes[node_id], counts[node_id] = ports[0], ports, count
        if hints:
            issues.extend(Issue(node_id, param, message, "warning") for param, message in hints)


def check_node(graph: Graph, node) -> tuple[LayerSpec | None, dict[str, Any] | None, list[Issue], bool, Any]:
    """A node on its own: its spec (None for an unknown type), its parameters with defaults
    filled in, the issues of its id, its type and its parameters (in that order), whether
    its parameters are valid, and the key of its parameters (``AnalysisState.keys``; None
    for a block type or parameters that cannot be a key)."""
    node_id = node.id
    problem = _id_problem(node_id)
    found = [Issue(node_id, None, problem)] if problem else []
    spec = graph.spec(node.type)
    if spec is None:
        found.append(Issue(node_id, None, f"unknown layer type {node.type!r}"))
        return None, None, found, False, None
    if spec.category == BLOCK_CATEGORY:  # (its parameters are the file's, not the catalogue's)
        resolved, problems = resolve_params(spec, node.params)
        key = None
    else:
        resolved, problems, key = _resolve_cached(spec, node.params)
    if problems:
        found.extend(Issue(node_id, param, message) for param, message in problems)
    return spec, resolved, found, not problems, key


def infer_node(graph: Graph, a: Analysis, state: AnalysisState, node_id: str) -> list[Issue]:
    """Work out ``node_id``'s output shapes, parameter count and expansion into ``a`` from
    the shapes arriving at it; returns the issues found (shape errors, warnings)."""
    spec = state.specs.get(node_id)
    shapes, port_shapes = a.shapes, a.port_shapes
    shapes[node_id] = port_shapes[node_id] = None
    a.param_counts[node_id] = 0
    if a.expansions:
        a.expansions.pop(node_id, None)
    if (spec is None or node_id not in state.param_ok or node_id not in state.slots_ok
            or node_id in state.ports_bad or node_id not in state.repeat_ok):
        return []
    in_shapes = []
    for e in a.incoming.get(node_id, ()):  # (``Analysis.input_shapes``, inlined: it runs per node)
        ports = port_shapes.get(e.source)
        if not ports or e.source_port >= len(ports):
            return []
        in_shapes.append(ports[e.source_port])
    key = state.keys.get(node_id)
    if key is None or spec.category == BLOCK_CATEGORY:
        return _infer_uncached(graph, a, spec, node_id, in_shapes)
    ports, count, hints, error = _outcome_cached(spec.type, key, graph.nodes[node_id].repeat, tuple(in_shapes))
    if error is not None:
        return [Issue(node_id, *error)]
    shapes[node_id], port_shapes[node_id], a.param_counts[node_id] = ports[0], ports, count
    return [Issue(node_id, param, message, "warning") for param, message in hints] if hints else []


def _infer_uncached(graph: Graph, a: Analysis, spec: LayerSpec, node_id: str, in_shapes: list[Shape]) -> list[Issue]:
    """``infer_node`` for a block node or parameters that cannot be a key: the rules run."""
    p = a.params[node_id]
    if spec.category == BLOCK_CATEGORY:
        try:
            outcome = _outcome(spec, in_shapes, p, graph.nodes[node_id].repeat)
        except BlockIssues as e:  # (raised by the first copy: its issues, with their paths)
            return [i.inside(node_id) for i in e.issues]
    else:
        outcome = _outcome(spec, in_shapes, p, graph.nodes[node_id].repeat)
    ports, count, hints, error = outcome
    if error is not None:
        return [Issue(node_id, *error)]
    a.shapes[node_id], a.port_shapes[node_id], a.param_counts[node_id] = ports[0], ports, count
    found = [Issue(node_id, param, message, "warning") for param, message in hints]
    if spec.category == BLOCK_CATEGORY:
        inside = spec.expand(in_shapes, p)
        a.expansions[node_id] = inside
        found.extend(i.inside(node_id) for i in inside.issues)  # (warnings only: errors raised)
    return found


@functools.lru_cache(maxsize=16384)
def _outcome_cached(type_name: str, key, repeat: int, in_shapes: tuple[Shape, ...]):
    """``_outcome`` of a catalogue type, memoised: its rules are pure functions of the
    parameters, the repeat and the input shapes, and most nodes meet the same ones on
    every analysis. The rules get their own copy of the parameters."""
    return _outcome(get_spec(type_name), list(in_shapes), resolved_by_key(type_name, key), repeat)


def _outcome(spec: LayerSpec, in_shapes: list[Shape], p: dict[str, Any], repeat: int):
    """What a node's rules give: ``(port shapes, count, hints, None)``, or ``(None, 0, (),
    (param, message))`` for the error that stops it. Raises ``BlockIssues`` (a block type)."""
    try:
        ports, count, hints = _infer(spec, in_shapes, p, repeat)
    except BlockIssues:
        raise
    except ShapeError as e:
        return None, 0, (), (e.param, str(e))
    except (ArithmeticError, ValueError, LookupError, TypeError) as e:  # a rule that met sizes it cannot take
        return None, 0, (), (None, f"{UNCOMPUTABLE} ({type(e).__name__}: {first_line(e)})")
    problem = next(filter(None, map(limits_problem, ports)), None) or count_problem(count)
    if problem:
        return None, 0, (), (None, f"{spec.type} cannot be built: {problem}")
    return ports, count, tuple(hints), None


def _infer(spec: LayerSpec, in_shapes: list[Shape], p: dict[str, Any], repeat: int):
    """``(port shapes, count, hints)`` of a node, with ``repeat`` copies in a chain (each
    taking the previous copy's output). The chain's shapes reach a fixed point or a cycle
    within a few copies for any real layer; once one repeats, the rest is arithmetic."""
    hints = spec.hints(in_shapes, p) if spec.hints else []
    if repeat == 1:
        return spec.port_shapes(in_shapes, p), spec.count(in_shapes, p), hints
    inputs: list[Shape] = []  # the input of copy k
    counts: list[int] = []
    seen: dict[Shape, int] = {}
    shape = tuple(in_shapes[0])
    while len(inputs) < repeat and shape not in seen:
        k = len(inputs)
        seen[shape] = k
        inputs.append(shape)
        try:  # the shape rule first: it refuses what the count cannot take
            out = spec.output_shape([shape], p)
            counts.append(spec.count([shape], p))
        except ShapeError as e:
            if k == 0:
                raise
            raise ShapeError(f"copy {k} of {repeat} (repeat) receives {fmt(shape)} from copy {k - 1}: {e}",
                             e.param) from None
        problem = limits_problem(out)
        if problem:
            raise ShapeError(f"copy {k} of {repeat} (repeat) cannot be built: {problem}")
        shape = out
    if len(inputs) == repeat:
        return (shape,), sum(counts), hints
    start = seen[shape]  # copies start..k-1 repeat from here on, in a cycle
    cycle = len(inputs) - start
    full, rest = divmod(repeat - len(inputs), cycle)
    count = sum(counts) + full * sum(counts[start:]) + sum(counts[start:start + rest])
    return (inputs[start + rest] if rest else shape,), count, hints


# what a node says when its shape rule fails in a way the rule did not foresee; tests check
# that no input of the fuzzers reaches it
UNCOMPUTABLE = "the output shape cannot be computed from these sizes"


def _connect(graph: Graph, issues: list[Issue]):
    """Each node's incoming edges (by input slot; in file order within one) and outgoing
    edges (in file order); an edge naming no node or feeding its source is an issue."""
    incoming: dict[str, list[Edge]] = {}
    outgoing: dict[str, list[Edge]] = {}
    nodes = graph.nodes
    for e in graph.edges:
        source, target = e.source, e.target
        if source not in nodes or target not in nodes:
            missing = source if source not in nodes else target
            where = target if target in nodes else None
            issues.append(Issue(where, None, f"edge {source!r} -> {target!r} names no node {missing!r}"))
            continue
        if source == target:
            issues.append(Issue(target, None, "a node cannot feed itself"))
            continue
        into = incoming.get(target)
        if into is None:
            incoming[target] = [e]
        else:
            into.append(e)
        out = outgoing.get(source)
        if out is None:
            outgoing[source] = [e]
        else:
            out.append(e)
    for edges in incoming.values():
        if len(edges) > 1:
            edges.sort(key=_slot)
    return incoming, outgoing


def _slot(e: Edge) -> int:
    return e.target_port


def _check_slots(graph, specs, incoming, issues, nodes=None) -> set[str]:
    """Each input slot fed exactly once, slots 0..n-1 with n within the layer's arity (of
    ``nodes``, default all, in that order). Returns the nodes that pass."""
    ok: set[str] = set()
    for node_id in specs if nodes is None else nodes:
        spec = specs[node_id]
        edges = incoming.get(node_id)
        if not edges:  # (the usual cases first: no input, or one into slot 0)
            if spec.min_inputs <= 0:
                ok.add(node_id)
            else:
                issues.append(Issue(node_id, None,
                                    f"{spec.type} needs {spec.arity_text()}; nothing is connected to it"))
            continue
        if len(edges) == 1 and edges[0].target_port == 0:
            if spec.max_inputs == 0:
                issues.append(Issue(node_id, None, f"{spec.type} takes no inputs; received 1"))
            elif spec.min_inputs > 1 or (spec.max_inputs is not None and spec.max_inputs < 1):
                issues.append(Issue(node_id, None, f"{spec.type} needs {spec.arity_text()}; received 1"))
            else:
                ok.add(node_id)
            continue
        if _slots_fed(node_id, spec, edges, issues):
            ok.add(node_id)
    return ok


def _slots_fed(node_id, spec, edges, issues) -> bool:
    """``_check_slots`` for one node with its edges: whether they feed it right."""
    ports = [e.target_port for e in edges]
    bad = False
    seen: dict[int, str] = {}
    for e in edges:
        if e.target_port in seen:
            issues.append(Issue(node_id, None,
                f"input slot {e.target_port} is fed by both {seen[e.target_port]!r} and "
                f"{e.source!r}; an input slot takes exactly one edge"))
            bad = True
        seen[e.target_port] = e.source
    n = len(seen)
    if spec.max_inputs == 0 and n:
        issues.append(Issue(node_id, None, f"{spec.type} takes no inputs; received {n}"))
        bad = True
    elif n < spec.min_inputs or (spec.max_inputs is not None and n > spec.max_inputs):
        if n == 0:
            msg = f"{spec.type} needs {spec.arity_text()}; nothing is connected to it"
        else:
            msg = f"{spec.type} needs {spec.arity_text()}; received {n}"
        issues.append(Issue(node_id, None, msg))
        bad = True
    elif sorted(set(ports)) != list(range(n)):
        gap = next(i for i in range(n + 1) if i not in seen)
        issues.append(Issue(node_id, None, f"input slot {gap} is not connected"))
        bad = True
    return not bad


def _check_ports(graph, specs, params, param_ok, incoming, issues) -> set[str]:
    """The nodes fed from an output port that their source does not have (how many a node
    has depends on its type and, for Split, its parameters)."""
    bad: set[str] = set()
    for node_id, edges in incoming.items():
        for e in edges:
            spec = specs.get(e.source)
            if e.source_port == 0 or spec is None or e.source not in param_ok:
                continue
            n = len(spec.output_names(params[e.source]))
            if e.source_port >= n:
                outputs = f"{n} output" + ("s" if n > 1 else "")
                issues.append(Issue(node_id, None,
                    f"input slot {e.target_port} is fed from output {e.source_port} of {e.source!r}, "
                    f"a {spec.type} with {outputs} (ports 0 to {n - 1})"))
                bad.add(node_id)
    return bad


def _check_options(graph, specs, incoming, issues) -> set[str]:
    """The nodes whose ``repeat`` can be carried out: only a node with one input and one
    output repeats."""
    ok: set[str] = set()
    for node_id, spec in specs.items():
        repeat = graph.nodes[node_id].repeat
        if repeat != 1:
            if not (isinstance(repeat, int) and 1 <= repeat <= MAX_REPEAT):
                issues.append(Issue(node_id, None, f"repeat must be an integer from 1 to {MAX_REPEAT}; "
                                                   f"received {show(repeat)}"))
                continue
            if spec.max_inputs == 0 or spec.multi_output():
                issues.append(Issue(node_id, None, f"{spec.type} cannot repeat: only a node with one "
                                                   "input and one output can"))
                continue
            n = len(incoming.get(node_id, ()))
            if n > 1:
                issues.append(Issue(node_id, None, f"a repeated node takes one input (each copy feeds "
                                                   f"the next); received {n}"))
                continue
        ok.add(node_id)
    return ok


# the layers that only move values around: int64 token ids pass through them on their way
# to an Embedding; every other layer computes with float32 values
_INDEX_MOVERS = frozenset(("Reshape", "Flatten", "Unflatten", "Permute", "Transpose", "Select", "Split",
                           "Identity"))


def _check_dtypes(graph, a: Analysis, specs, outgoing, issues) -> None:
    """An int64 Input (token ids) must reach Embeddings only, through layers that move values."""
    for input_id in a.inputs:
        if a.params.get(input_id, {}).get("dtype", "float32") != "int64":
            continue
        stack, seen = [input_id], {input_id}
        while stack:
            for e in outgoing.get(stack.pop(), ()):
                spec = specs.get(e.target)
                if spec is None or spec.type == "Embedding" or e.target in seen:
                    continue
                if spec.type in _INDEX_MOVERS:
                    seen.add(e.target)
                    stack.append(e.target)
                    continue
                issues.append(Issue(input_id, "dtype",
                    f"an int64 Input holds token ids for an Embedding, but they reach {e.target!r} "
                    f"({spec.type}), which computes with float32 values; use dtype float32, or put an "
                    f"Embedding first"))


def _topological_order(graph, outgoing, incoming, issues, position: dict[str, int] | None = None) -> list[str]:
    """Kahn's algorithm; among nodes ready together, file order first (``position``: each
    node's index in ``graph.nodes``), so generated code and reports are stable."""
    if position is None:
        position = {n: i for i, n in enumerate(graph.nodes)}
    indegree = {n: len(edges) for n, edges in incoming.items()}
    ready = [position[n] for n in graph.nodes if n not in indegree]
    heapq.heapify(ready)
    names = list(graph.nodes)
    order: list[str] = []
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        current = names[pop(ready)]
        order.append(current)
        for e in outgoing.get(current, ()):
            left = indegree[e.target] - 1
            indegree[e.target] = left
            if not left:
                push(ready, position[e.target])
    if len(order) < len(graph.nodes):
        stuck = [n for n in graph.nodes if indegree.get(n, 0) > 0]
        cycle = _find_cycle(stuck, incoming, set(stuck))
        for n in cycle[:-1]:
            issues.append(Issue(n, None, "is part of a cycle: " + " -> ".join(cycle)))
        for n in stuck:
            if n not in cycle:
                issues.append(Issue(n, None, "is fed, directly or not, by a cycle"))
    return order


def _find_cycle(stuck, incoming, stuck_set) -> list[str]:
    """A cycle among the nodes Kahn's algorithm could not place, as [a, b, ..., a].
    Every such node has a predecessor among them, so walking backwards must loop."""
    current = stuck[0]
    path, index = [current], {current: 0}
    while True:
        prev = next(e.source for e in incoming.get(current, ()) if e.source in stuck_set)
        if prev in index:
            loop = path[index[prev]:] + [prev]
            return loop[::-1]
        index[prev] = len(path)
        path.append(prev)
        current = prev


def _check_ends(graph: Graph, a: Analysis, sinks: list[str], issues: list[Issue]) -> None:
    """The graph-wide checks: not empty, an Input, one output (``sinks``: the nodes that
    feed nothing, in file order); sets ``a.output``."""
    a.output = None
    if not graph.nodes:
        issues.append(Issue(None, None, "the graph is empty; add an Input layer to start"))
        return
    if not a.inputs:
        issues.append(Issue(None, None, "the graph has no Input layer; add one to feed it data"))
    if len(sinks) == 1:
        a.output = sinks[0]
    elif len(sinks) > 1:
        names = ", ".join(repr(s) for s in sinks)
        for s in sinks:
            issues.append(Issue(s, None,
                f"the graph has {len(sinks)} outputs ({names}); a model has exactly one: "
                "connect or delete the others"))


def describe_shape(shape: Shape | None) -> str:
    return "?" if shape is None else fmt(shape)


def ancestors(a: Analysis, node_id: str) -> set[str]:
    """``node_id`` and every node it depends on (through ``a.incoming``)."""
    seen, stack = {node_id}, [node_id]
    while stack:
        for e in a.incoming.get(stack.pop(), []):
            if e.source not in seen:
                seen.add(e.source)
                stack.append(e.source)
    return seen
