"""Blocks: named sub-graphs with parameters, used as layer types (format version 2).

A block definition (``graph.Block``) becomes a ``LayerSpec`` (``block_spec``) so that the
analysis, ``repeat``, the compiler and the exporters treat a block node like any layer. A
node of a block type is *expanded* for the shapes arriving at it and its parameters: the
block's graph with every ``"$name"`` replaced by the node's value for ``name`` and its
k-th Input given the shape on input slot k, then analyzed like a project's graph
(``Expansion``). Its output shape is that of the block's sink; its parameter count the
sum of the nodes inside; its issues are reported on the block node with the path inside
(``layer1_0/conv1: ...``). Expansions are memoised per block on (input shapes, parameters):
ResNet-50's sixteen bottlenecks need eight. ``build`` compiles an expansion into a
``torch.fx.GraphModule`` whose class is named after the block, so every node of the block
is a submodule of its own with the block's nodes inside (weights
``layer1_0.conv1.weight``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import Issue
from .graph import Block, Blocks, Graph, Node
from .inference import Analysis, analyze
from .resolve import freeze
from .layers.spec import BLOCK_CATEGORY, BlockIssues, LayerSpec
from .params import Param, show

Shape = tuple[int, ...]

REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\Z")
# expansions kept per block (distinct input shapes and parameters of its nodes)
_CACHE_SIZE = 256


def reference(value: Any) -> str | None:
    """The block parameter that ``value`` refers to (``"$width"`` -> ``"width"``), or None
    for any other value: only a whole string value refers."""
    if isinstance(value, str):
        m = REFERENCE.match(value)
        if m:
            return m.group(1)
    return None


def undeclared_references(block: Block) -> list[tuple[str, str, str]]:
    """``(node id, parameter, name)`` for each ``"$name"`` inside ``block`` that the
    block does not declare."""
    found = []
    for node in block.graph.nodes.values():
        for param, value in node.params.items():
            name = reference(value)
            if name is not None and name not in block.params:
                found.append((node.id, param, name))
    return found


def reference_problem(block: Block, name: str) -> str:
    declared = ", ".join(block.params) or "none"
    return f"refers to \"${name}\", which block {block.name} does not declare (it declares: {declared})"


@dataclass
class Expansion:
    """A block node's inside for one set of input shapes and parameters: the block's graph
    with the values substituted and the Input shapes set, and its analysis."""

    graph: Graph
    analysis: Analysis
    issues: list[Issue] = field(default_factory=list)  # the analysis's, plus undeclared references

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


@dataclass(frozen=True)
class BlockSpec(LayerSpec):
    """The declaration of a block type; ``block`` is its definition, ``expand`` gives the
    expansion for input shapes and (resolved) parameters."""

    block: Block | None = None
    expand: Any = None


def block_spec(block: Block, blocks: Blocks) -> BlockSpec:
    """The layer declaration of ``block`` (one of ``blocks``)."""
    cache: dict[tuple, Expansion] = {}
    inputs = block.inputs()

    def expand(shapes: list[Shape], p: dict[str, Any]) -> Expansion:
        try:
            key = (tuple(map(tuple, shapes)), freeze(p))
        except (TypeError, RecursionError):
            key = None
        found = cache.get(key) if key is not None else None
        if found is None:
            found = _expand(block, blocks, inputs, shapes, p)
            if key is not None:
                if len(cache) >= _CACHE_SIZE:
                    cache.pop(next(iter(cache)))
                cache[key] = found
        return found

    def expanded(shapes: list[Shape], p: dict[str, Any]) -> Expansion:
        found = expand(shapes, p)
        if found.errors:
            raise BlockIssues(found.errors)
        return found

    def infer(shapes, p):
        a = expanded(shapes, p).analysis
        return a.shapes[a.output]

    def count(shapes, p):
        return expanded(shapes, p).analysis.total_params

    def build(shapes, p):
        from .compiler import compile_graph  # (torch: the analysis runs without it)
        found = expanded(shapes, p)
        return compile_graph(found.graph, found.analysis, class_name=block.name)

    params = tuple(Param(name, "any", default, f"Block parameter (default {show(default)}).", key=True)
                   for name, default in block.params.items())
    n = len(inputs)
    return BlockSpec(
        block.name, BLOCK_CATEGORY, f"Block {block.name}: {len(block.graph.nodes) - n} layers inside.",
        params, infer, build, count, min_inputs=n, max_inputs=n,
        input_names=tuple(inputs) if n > 1 else None, since=2, block=block, expand=expand)


def _expand(block: Block, blocks: Blocks, inputs: list[str], shapes: list[Shape],
            p: dict[str, Any]) -> Expansion:
    if block.name in blocks.expanding:
        chain = blocks.expanding[blocks.expanding.index(block.name):] + [block.name]
        issue = Issue(None, None, "a block cannot use itself: " + " -> ".join(chain))
        return Expansion(Graph(blocks), Analysis(issues=[issue]), [issue])
    g = Graph(blocks)
    for node in block.graph.nodes.values():
        if node.type == "Input":
            k = inputs.index(node.id)
            params = {"shape": list(shapes[k])} if k < len(shapes) else {}
        else:
            params = {name: _substitute(value, p) for name, value in node.params.items()}
        g.nodes[node.id] = Node(node.id, node.type, params, None, node.repeat, node.trainable)
    g.edges = list(block.graph.edges)
    blocks.expanding.append(block.name)
    try:
        a = analyze(g)
    finally:
        blocks.expanding.pop()
    issues = [Issue(node_id, param, reference_problem(block, name))
              for node_id, param, name in undeclared_references(block)]
    return Expansion(g, a, issues + a.issues)


def _substitute(value: Any, p: dict[str, Any]) -> Any:
    name = reference(value)
    return p[name] if name is not None and name in p else value


def is_block(spec: LayerSpec | None) -> bool:
    return spec is not None and spec.category == BLOCK_CATEGORY
