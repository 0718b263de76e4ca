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
    lacks; the outgoing edges; where each pass's issues start in ``issues``."""

    specs: dict[str, LayerSpec]
    param_ok: set[str]
    slots_ok: set[str]
    ports_bad: set[str]
    repeat_ok: set[str]
    outgoing: dict[str, list[Edge]]
    marks: list[int]


def resolve_params(spec: LayerSpec, given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """The node's parameters with defaults filled in, and the problems found:
    unknown names, missing required ones, and values the schema refuses."""
    problems: list[tuple[str | None, str]] = []
    if not isinstance(given, dict):
        return {}, [(None, f"params must be an object; received {show(given)}")]
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in spec.param_index:
            known = ", ".join(spec.param_index) or "none"
            problems.append((name, f"{spec.type} has no parameter {name!r} (it has: {known})"))
    for p in spec.params:
        if p.name in given:
            try:
                resolved[p.name] = p.check(given[p.name])
            except ValueError as e:
                problems.append((p.name, str(e)))
        elif p.required:
            problems.append((p.name, f"{spec.type} needs {p.name} ({p.expected()})"))
        else:
            resolved[p.name] = p.default
    return resolved, problems


def _resolve_cached(spec: LayerSpec, given) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """``resolve_params``, memoised on the parameters' content (the editor re-analyzes the
    whole graph on every edit, and most nodes' parameters did not change). Every call gets
    its own copy of the resolved values."""
    try:
        resolved, nested, problems = _resolve_frozen(spec.type, _freeze(given))
    except (TypeError, RecursionError):  # a value that cannot be a key (unhashable, nested too deep)
        return resolve_params(spec, given)
    return _thaw(resolved) if nested else dict(resolved), list(problems)


@functools.lru_cache(maxsize=8192)
def _resolve_frozen(type_name: str, frozen) -> tuple[Any, bool, tuple]:
    """The resolved parameters (frozen where they hold lists or dicts, which every caller
    must get a copy of; else as a dict of plain values), whether they do, and the problems."""
    resolved, problems = resolve_params(get_spec(type_name), _thaw(frozen))
    nested = any(type(v) not in _SCALARS for v in resolved.values())
    return (_freeze(resolved) if nested else resolved), nested, tuple(problems)


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _freeze(value):
    """``value`` as a hashable key that keeps types apart (True == 1 in Python, not here)
    and keeps dict order (the problems are listed in it). Raises ``TypeError`` for a value
    that cannot be hashed."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if isinstance(value, dict):
        return dict, tuple([(k, _freeze(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return kind, tuple([_freeze(v) for v in value])
    hash(value)
    return kind, value


def _thaw(frozen):
    """A fresh ``value`` from ``_freeze(value)``."""
    kind, content = frozen
    if kind is dict:
        return {k: _thaw(v) for k, v in content}
    if kind is list or kind is tuple:
        return kind([_thaw(v) for v in content])
    return content


def analyze(graph: Graph) -> Analysis:
    """Check ``graph`` and infer every shape and parameter count it can."""
    a = Analysis()
    issues = a.issues
    specs: dict[str, LayerSpec] = {}
    param_ok: set[str] = set()
    for node in graph.nodes.values():
        spec, resolved, found, ok = check_node(graph, node)
        issues.extend(found)
        if spec is None:
            continue
        specs[node.id] = spec
        a.params[node.id] = resolved
        if ok:
            param_ok.add(node.id)
        if node.type == "Input":
            a.inputs.append(node.id)

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
    a.order = _topological_order(graph, outgoing, incoming, issues)
    marks.append(len(issues))
    _check_ends(graph, a, outgoing, issues)
    marks.append(len(issues))
    _check_dtypes(graph, a, specs, outgoing, issues)
    marks.append(len(issues))
    state = a.state = AnalysisState(specs, param_ok, slots_ok, ports_bad, repeat_ok, outgoing, marks)
    for node_id in a.order:
        issues.extend(infer_node(graph, a, state, node_id))
    return a


def check_node(graph: Graph, node) -> tuple[LayerSpec | None, dict[str, Any] | None, list[Issue], bool]:
    """A node on its own: its spec (None for an unknown type), its parameters with defaults
    filled in, the issues of its id, its type and its parameters (in that order), and
    whether its parameters are valid."""
    found = [Issue(node.id, None, problem)] if (problem := id_problem(node.id)) else []
    spec = graph.spec(node.type)
    if spec is None:
        found.append(Issue(node.id, None, f"unknown layer type {node.type!r}"))
        return None, None, found, False
    if spec.category == BLOCK_CATEGORY:  # (its parameters are the file's, not the catalogue's)
        resolved, problems = resolve_params(spec, node.params)
    else:
        resolved, problems = _resolve_cached(spec, node.params)
    found.extend(Issue(node.id, param, message) for param, message in problems)
    return spec, resolved, found, not problems


def infer_node(graph: Graph, a: Analysis, state: AnalysisState, node_id: str) -> list[Issue]:
    """Work out ``node_id``'s output shapes, parameter count and expansion into ``a`` from
    the shapes arriving at it; returns the issues found (shape errors, warnings)."""
    spec = state.specs.get(node_id)
    a.shapes[node_id] = a.port_shapes[node_id] = None
    a.param_counts[node_id] = 0
    a.expansions.pop(node_id, None)
    if (spec is None or node_id not in state.param_ok or node_id not in state.slots_ok
            or node_id in state.ports_bad or node_id not in state.repeat_ok):
        return []
    in_shapes = a.input_shapes(node_id)
    if any(s is None for s in in_shapes):
        return []
    p = a.params[node_id]
    try:
        ports, count, hints = _infer(spec, in_shapes, p, graph.nodes[node_id].repeat)
    except BlockIssues as e:  # (raised by the first copy: its issues, with their paths)
        return [i.inside(node_id) for i in e.issues]
    except ShapeError as e:
        return [Issue(node_id, e.param, str(e))]
    except (ArithmeticError, ValueError, LookupError, TypeError) as e:  # a rule that met sizes it cannot take
        return [Issue(node_id, None, f"{UNCOMPUTABLE} ({type(e).__name__}: {first_line(e)})")]
    problem = next(filter(None, map(limits_problem, ports)), None) or count_problem(count)
    if problem:
        return [Issue(node_id, None, f"{spec.type} cannot be built: {problem}")]
    a.shapes[node_id], a.port_shapes[node_id], a.param_counts[node_id] = ports[0], ports, count
    found = [Issue(node_id, param, message, "warning") for param, message in hints]
    if spec.category == BLOCK_CATEGORY:
        inside = spec.expand(in_shapes, p)
        a.expansions[node_id] = inside
        found.extend(i.inside(node_id) for i in inside.issues)  # (warnings only: errors raised)
    return found


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
    incoming: dict[str, list[Edge]] = {}
    outgoing: dict[str, list[Edge]] = {}
    nodes = graph.nodes
    for e in graph.edges:
        if e.source not in nodes or e.target not in nodes:
            missing = e.source if e.source not in nodes else e.target
            where = e.target if e.target in nodes else None
            issues.append(Issue(where, None, f"edge {e.source!r} -> {e.target!r} names no node {missing!r}"))
            continue
        if e.source == e.target:
            issues.append(Issue(e.target, None, "a node cannot feed itself"))
            continue
        incoming.setdefault(e.target, []).append(e)
        outgoing.setdefault(e.source, []).append(e)
    for edges in incoming.values():
        edges.sort(key=lambda e: e.target_port)
    return incoming, outgoing


def _check_slots(graph, specs, incoming, issues) -> set[str]:
    """Each input slot fed exactly once, slots 0..n-1 with n within the layer's arity."""
    ok: set[str] = set()
    for node_id, spec in specs.items():
        edges = incoming.get(node_id, [])
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
        if not bad:
            ok.add(node_id)
    return ok


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


def _topological_order(graph, outgoing, incoming, issues) -> list[str]:
    """Kahn's algorithm; among nodes ready together, file order first, so generated code
    and reports are stable."""
    position = {n: i for i, n in enumerate(graph.nodes)}
    indegree = {n: len(incoming.get(n, ())) for n in graph.nodes}
    ready = [position[n] for n in graph.nodes if indegree[n] == 0]
    heapq.heapify(ready)
    names = list(graph.nodes)
    order: list[str] = []
    while ready:
        current = names[heapq.heappop(ready)]
        order.append(current)
        for e in outgoing.get(current, ()):
            indegree[e.target] -= 1
            if indegree[e.target] == 0:
                heapq.heappush(ready, position[e.target])
    if len(order) < len(graph.nodes):
        stuck = [n for n in graph.nodes if indegree[n] > 0]
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


def _check_ends(graph: Graph, a: Analysis, outgoing, issues: list[Issue]) -> None:
    if not graph.nodes:
        issues.append(Issue(None, None, "the graph is empty; add an Input layer to start"))
        return
    if not a.inputs:
        issues.append(Issue(None, None, "the graph has no Input layer; add one to feed it data"))
    sinks = [n for n in graph.nodes if not outgoing.get(n)]
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
