"""The undoable block operations: group layers into a block, ungroup a block node, declare
a block's parameters, add block definitions (from the library or a paste).

``plan_group`` and ``plan_ungroup`` work out the change without touching anything and raise
``BlockEditError`` with a sentence for the user when it cannot be made; the commands then
carry it out through the graph's and the blocks' announcing methods (DESIGN rule 3).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..blocks import reference
from ..graph import Block, Edge, Graph, Node
from ..layers import get_spec
from .commands import AddItems, RemoveItems
from .document import Document
from .history import Command


class BlockEditError(ValueError):
    """A block operation that cannot be carried out; the message says why."""


@dataclass
class GroupPlan:
    """What grouping does: ``block`` is the new definition, ``node`` the block node that
    takes the selection's place, ``edges`` the edges that connect it."""

    node_ids: list[str]
    block: Block
    node: Node
    edges: list[Edge]


def free_block_name(graph: Graph, stem: str = "Block") -> str:
    """A block name not taken by a block of ``graph`` nor by a catalogue type."""
    n = 1
    while f"{stem}{n}" in graph.blocks or get_spec(f"{stem}{n}") is not None:
        n += 1
    return f"{stem}{n}"


def plan_group(graph: Graph, node_ids, name: str | None = None) -> GroupPlan:
    """How the nodes ``node_ids`` of ``graph`` become one block node. Every value coming
    into the selection becomes one of the block's Inputs (in the order the edges are
    listed); at most one value may leave it, from the first output of a node, and that
    node is the block's output. Raises ``BlockEditError``."""
    chosen = [i for i in graph.nodes if i in set(node_ids)]
    if not chosen:
        raise BlockEditError("select the layers to group into a block first")
    inputs = [i for i in chosen if graph.nodes[i].type == "Input"]
    if inputs:
        raise BlockEditError(f"the model's Input layers stay outside a block; leave {', '.join(inputs)} "
                             "out of the selection")
    inside = set(chosen)
    values_in: list[tuple[str, int]] = []  # (source, source_port) coming in, in edge order
    leaving: list[Edge] = []
    for e in graph.edges:
        if e.target in inside and e.source not in inside and (e.source, e.source_port) not in values_in:
            values_in.append((e.source, e.source_port))
        if e.source in inside and e.target not in inside:
            leaving.append(e)
    values_out = sorted({(e.source, e.source_port) for e in leaving})
    if len(values_out) > 1:
        raise BlockEditError("a block has one output, but " + " and ".join(
            f"{s}" + (f" (output {p})" if p else "") for s, p in values_out)
            + " send values out of the selection; select fewer layers, or more")
    if not values_in:
        raise BlockEditError("nothing comes into the selected layers; a block needs an input")
    sinks = [i for i in chosen if not any(e.source == i and e.target in inside for e in graph.edges)]
    output = values_out[0][0] if values_out else (sinks[0] if len(sinks) == 1 else None)
    if output is None or sinks != [output]:
        raise BlockEditError("a block has one output: inside the selection, only the layer whose value "
                             f"leaves it may feed nothing else; here {', '.join(sinks)} feed nothing")
    if values_out and values_out[0][1] != 0:
        raise BlockEditError(f"the value leaving the selection is output {values_out[0][1]} of {output}; a "
                             "block's output is the first output of its last layer")
    name = name or free_block_name(graph)
    inner = Graph()
    input_ids = _input_ids(len(values_in), set(chosen))
    top = min((graph.nodes[i].position or (0.0, 0.0))[1] for i in chosen)
    xs = [(graph.nodes[i].position or (0.0, 0.0))[0] for i in chosen]
    for k, input_id in enumerate(input_ids):
        inner.nodes[input_id] = Node(input_id, "Input", {}, (min(xs) + 180.0 * k, top - 120.0))
    for i in chosen:
        inner.nodes[i] = copy.deepcopy(graph.nodes[i])
    for e in graph.edges:
        if e.target in inside:
            if e.source in inside:
                inner.edges.append(e)
            else:
                k = values_in.index((e.source, e.source_port))
                inner.edges.append(Edge(input_ids[k], e.target, e.target_port))
    block = Block(name, {}, inner)
    positions = [graph.nodes[i].position or (0.0, 0.0) for i in chosen]
    centre = (sum(p[0] for p in positions) / len(positions), sum(p[1] for p in positions) / len(positions))
    node = Node(graph.unique_id(name.rstrip("0123456789").lower() or "block"), name, {}, centre)
    edges = [Edge(s, node.id, k, p) for k, (s, p) in enumerate(values_in)]
    edges += [Edge(node.id, e.target, e.target_port) for e in leaving]
    return GroupPlan(chosen, block, node, edges)


def _input_ids(n: int, taken: set[str]) -> list[str]:
    ids = []
    for k in range(n):
        candidate = "x" if n == 1 else f"x{k + 1}"
        while candidate in taken or candidate in ids:
            candidate += "_"
        ids.append(candidate)
    return ids


class GroupIntoBlock(Command):
    """Replace the selected nodes by one node of a new block holding them (Ctrl+G)."""

    def __init__(self, doc: Document, node_ids, name: str | None = None, graph: Graph | None = None):
        self.doc = doc
        self.graph = graph if graph is not None else doc.graph
        self.plan = plan_group(self.graph, node_ids, name)
        self.text = f"Group {len(self.plan.node_ids)} layers into {self.plan.block.name}"
        self.remove = RemoveItems(doc, self.plan.node_ids, graph=self.graph)
        self.add = AddItems(doc, [self.plan.node], self.plan.edges, graph=self.graph)

    def redo(self) -> None:
        with self.doc.batch():
            self.remove.redo()
            self.graph.blocks.add(self.plan.block)
            self.add.redo()

    def undo(self) -> None:
        with self.doc.batch():
            self.add.undo()
            self.graph.blocks.remove(self.plan.block.name)
            self.remove.undo()


@dataclass
class UngroupPlan:
    node_id: str
    nodes: list[Node]
    edges: list[Edge]
    drop_definition: bool


def plan_ungroup(graph: Graph, node_id: str, params: dict | None = None) -> UngroupPlan:
    """How block node ``node_id`` is replaced by the layers inside it, with the node's
    parameter values (``params``: resolved; by default the declared defaults overlaid with
    the node's own) written in. Inner ids that the graph uses are prefixed with the node's
    id. Raises ``BlockEditError``."""
    node = graph.nodes.get(node_id)
    block = graph.blocks.get(node.type) if node is not None else None
    if block is None:
        raise BlockEditError(f"{node_id} is not a block node; only a block can be ungrouped")
    if node.repeat != 1:
        raise BlockEditError(f"{node_id} repeats {node.repeat} times; set repeat to 1 before ungrouping it")
    values = {**block.params, **node.params} if params is None else params
    inputs = block.inputs()
    taken = set(graph.nodes) - {node_id}
    renamed: dict[str, str] = {}
    for inner_id in block.graph.nodes:
        if inner_id in inputs:
            continue
        new_id = inner_id if inner_id not in taken else f"{node_id}_{inner_id}"
        n = 2
        while new_id in taken:
            new_id = f"{node_id}_{inner_id}{n}"
            n += 1
        taken.add(new_id)
        renamed[inner_id] = new_id
    placed = [block.graph.nodes[i].position or (0.0, 0.0) for i in renamed]
    cx = sum(p[0] for p in placed) / len(placed) if placed else 0.0
    cy = sum(p[1] for p in placed) / len(placed) if placed else 0.0
    ox, oy = node.position or (0.0, 0.0)
    nodes = []
    for inner_id, new_id in renamed.items():
        inner = block.graph.nodes[inner_id]
        own = {k: (values.get(reference(v), v) if reference(v) is not None else copy.deepcopy(v))
               for k, v in inner.params.items()}
        x, y = inner.position or (0.0, 0.0)
        nodes.append(Node(new_id, inner.type, own, (ox + x - cx, oy + y - cy), inner.repeat,
                          inner.trainable and node.trainable))
    feeding = {e.target_port: e for e in graph.edges if e.target == node_id}
    edges = []
    sink = next((i for i in renamed if not any(e.source == i for e in block.graph.edges)), None)
    for e in block.graph.edges:
        if e.source in inputs:
            outer = feeding.get(inputs.index(e.source))
            if outer is not None:
                edges.append(Edge(outer.source, renamed[e.target], e.target_port, outer.source_port))
        else:
            edges.append(Edge(renamed[e.source], renamed[e.target], e.target_port, e.source_port))
    if sink is not None:
        edges += [Edge(renamed[sink], e.target, e.target_port) for e in graph.edges if e.source == node_id]
    users = [n for n in graph.nodes.values() if n.type == block.name and n.id != node_id]
    users += [n for b in graph.blocks.values() for n in b.graph.nodes.values() if n.type == block.name]
    return UngroupPlan(node_id, nodes, edges, not users)


class Ungroup(Command):
    """Replace a block node by the layers inside it; the definition goes too when no other
    node uses it."""

    def __init__(self, doc: Document, node_id: str, graph: Graph | None = None, params: dict | None = None):
        self.doc = doc
        self.graph = graph if graph is not None else doc.graph
        self.name = self.graph.nodes[node_id].type if node_id in self.graph.nodes else ""
        self.plan = plan_ungroup(self.graph, node_id, params)
        self.block = self.graph.blocks[self.name]
        self.text = f"Ungroup {node_id}"
        self.remove = RemoveItems(doc, [node_id], graph=self.graph)
        self.add = AddItems(doc, self.plan.nodes, self.plan.edges, graph=self.graph)

    def redo(self) -> None:
        with self.doc.batch():
            self.remove.redo()
            if self.plan.drop_definition:
                self.graph.blocks.remove(self.name)
            self.add.redo()

    def undo(self) -> None:
        with self.doc.batch():
            self.add.undo()
            if self.plan.drop_definition:
                self.graph.blocks.add(self.block)
            self.remove.undo()


class SetBlockParams(Command):
    """Declare a block's parameters (names and defaults)."""

    def __init__(self, doc: Document, name: str, params: dict, graph: Graph | None = None):
        self.doc = doc
        self.blocks = (graph if graph is not None else doc.graph).blocks
        self.name = name
        self.old = copy.deepcopy(self.blocks[name].params)
        self.new = copy.deepcopy(params)
        self.text = f"Edit the parameters of block {name}"

    def redo(self) -> None:
        self.blocks.set_params(self.name, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.blocks.set_params(self.name, copy.deepcopy(self.old))


class AddBlocks(Command):
    """Add block definitions, and then ``then`` (the nodes that use them: a library block
    dropped on the canvas, a paste), as one step."""

    def __init__(self, doc: Document, blocks: list[Block], then: Command | None = None, text: str = ""):
        self.doc, self.blocks, self.then = doc, list(blocks), then
        self.text = text or (then.text if then is not None else f"Add block {blocks[0].name}")

    def redo(self) -> None:
        with self.doc.batch():
            for block in self.blocks:
                self.doc.graph.blocks.add(block)
            if self.then is not None:
                self.then.redo()

    def undo(self) -> None:
        with self.doc.batch():
            if self.then is not None:
                self.then.undo()
            for block in reversed(self.blocks):
                self.doc.graph.blocks.remove(block.name)
