"""Every user edit is an undoable command acting on the open project (DESIGN rule 3).

Commands change the model only through ``Graph`` and ``Document`` methods that announce
the change; views follow those events. Each command keeps what it needs to undo itself
exactly, down to the order the project file lists its nodes in. A graph command acts on
the project's graph, or on ``graph``: the graph inside a block open in the editor (an edit
there changes the block's definition, so every node of the block follows).
"""

from __future__ import annotations

import copy

from ..graph import Edge, Graph, Node
from .document import Document
from .history import Command

Position = tuple[float, float]


class AddItems(Command):
    """Add nodes and edges (a dropped layer, a paste, a duplicate)."""

    def __init__(self, doc: Document, nodes: list[Node], edges: list[Edge] = (), text: str = "",
                 graph: Graph | None = None):
        self.text = text or (f"Add {nodes[0].type}" if len(nodes) == 1 else f"Add {len(nodes)} layers")
        self.doc, self.nodes, self.edges = doc, [copy.deepcopy(n) for n in nodes], list(edges)
        self.graph = graph if graph is not None else doc.graph

    def redo(self) -> None:
        with self.doc.batch():
            for n in self.nodes:
                self.graph.add_node(copy.deepcopy(n))
            for e in self.edges:
                self.graph.add_edge(e, check=False)

    def undo(self) -> None:
        with self.doc.batch():
            for n in reversed(self.nodes):
                self.graph.remove_node(n.id)


class RemoveItems(Command):
    """Delete nodes (with every edge touching them) and edges."""

    def __init__(self, doc: Document, node_ids: list[str], edges: list[Edge] = (), text: str = "Delete",
                 graph: Graph | None = None):
        self.text = text
        g = self.graph = graph if graph is not None else doc.graph
        self.doc = doc
        wanted = set(node_ids)
        self.nodes = [copy.deepcopy(n) for i, n in g.nodes.items() if i in wanted]
        ids = {n.id for n in self.nodes}
        touching = [e for e in g.edges if e.source in ids or e.target in ids]
        self.edges = touching + [e for e in edges if e not in touching]
        # the file's order of nodes and of edges, which undo restores
        self.order = list(g.nodes)
        self.edge_slots = sorted(((g.edges.index(e), e) for e in self.edges if e in g.edges), key=lambda s: s[0])

    def redo(self) -> None:
        with self.doc.batch():
            for e in self.edges:
                if e in self.graph.edges:
                    self.graph.remove_edge(e)
            for n in self.nodes:
                self.graph.remove_node(n.id)

    def undo(self) -> None:
        g = self.graph
        with self.doc.batch():
            for n in self.nodes:
                g.add_node(copy.deepcopy(n))
            if list(g.nodes) != self.order:
                g.reorder(self.order)
            for index, e in self.edge_slots:  # ascending: the edges before each are in place
                g.add_edge(e, check=False, index=index)


class Connect(Command):
    """Feed input slot ``edge.target_port`` of ``edge.target`` from ``edge.source``."""

    def __init__(self, doc: Document, edge: Edge, graph: Graph | None = None):
        self.text = f"Connect {edge.source} to {edge.target}"
        self.doc, self.edge = doc, edge
        self.graph = graph if graph is not None else doc.graph

    def redo(self) -> None:
        self.graph.add_edge(self.edge, check=False)

    def undo(self) -> None:
        self.graph.remove_edge(self.edge)


class MoveNodes(Command):
    """Move nodes to new positions (a drag, or an automatic layout). ``moves``: node id ->
    (old position or None when it had none, new position)."""

    def __init__(self, doc: Document, moves: dict[str, tuple[Position | None, Position]], text: str = "",
                 graph: Graph | None = None):
        self.text = text or (f"Move {next(iter(moves))}" if len(moves) == 1 else f"Move {len(moves)} layers")
        self.doc, self.moves = doc, moves
        self.graph = graph if graph is not None else doc.graph

    def redo(self) -> None:
        with self.doc.batch():
            for node_id, (_, new) in self.moves.items():
                self.graph.move_node(node_id, new)

    def undo(self) -> None:
        with self.doc.batch():
            for node_id, (old, _) in self.moves.items():
                self.graph.move_node(node_id, old)


class SetParams(Command):
    """Change a node's parameters. Successive edits of the same fields of one node merge
    into one step, so typing "128" is undone at once rather than digit by digit."""

    def __init__(self, doc: Document, node_id: str, params: dict, graph: Graph | None = None):
        self.text = f"Edit {node_id}"
        self.doc, self.node_id = doc, node_id
        self.graph = graph if graph is not None else doc.graph
        self.old = copy.deepcopy(self.graph.nodes[node_id].params)
        self.new = copy.deepcopy(params)
        self.changed_keys = {k for k in set(self.old) | set(self.new) if self.old.get(k) != self.new.get(k)}

    def merge(self, other: Command) -> bool:
        if not isinstance(other, SetParams) or other.node_id != self.node_id or other.graph is not self.graph:
            return False
        if other.changed_keys != self.changed_keys:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.graph.set_params(self.node_id, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.graph.set_params(self.node_id, copy.deepcopy(self.old))


class SetSetting(Command):
    """Change one dataset or training setting; successive edits of one setting merge."""

    def __init__(self, doc: Document, section: str, name: str, value):
        self.text = f"Set {section} {name}"
        self.doc, self.section, self.name = doc, section, name
        self.old = copy.deepcopy(getattr(doc.project, section))
        self.new = {**self.old, name: copy.deepcopy(value)}

    def merge(self, other: Command) -> bool:
        if not isinstance(other, SetSetting) or (other.section, other.name) != (self.section, self.name):
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc.set_section(self.section, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.doc.set_section(self.section, copy.deepcopy(self.old))
