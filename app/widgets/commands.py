"""Every user edit is an undoable command acting on the graph model (DESIGN rule 3).

Commands change only the engine's ``Graph``; the canvas and the inspector follow its
signals. Each command keeps what it needs to undo itself exactly.
"""

from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand

from ..engine.graph import Edge, Node
from .document import Document

_MERGE_PARAMS = 1001
_MERGE_SETTINGS = 1002


class AddItems(QUndoCommand):
    """Add nodes and edges (a dropped layer, a paste, a duplicate)."""

    def __init__(self, doc: Document, nodes: list[Node], edges: list[Edge] = (), text: str = ""):
        super().__init__(text or (f"Add {nodes[0].type}" if len(nodes) == 1 else f"Add {len(nodes)} layers"))
        self.doc, self.nodes, self.edges = doc, [copy.deepcopy(n) for n in nodes], list(edges)

    def redo(self) -> None:
        with self.doc.batch():
            for n in self.nodes:
                self.doc.graph.add_node(copy.deepcopy(n))
            for e in self.edges:
                self.doc.graph.add_edge(e, check=False)

    def undo(self) -> None:
        with self.doc.batch():
            for n in reversed(self.nodes):
                self.doc.graph.remove_node(n.id)


class RemoveItems(QUndoCommand):
    """Delete nodes (with every edge touching them) and edges."""

    def __init__(self, doc: Document, node_ids: list[str], edges: list[Edge] = (), text: str = "Delete"):
        super().__init__(text)
        g = doc.graph
        self.doc = doc
        self.nodes = [copy.deepcopy(g.nodes[i]) for i in g.nodes if i in set(node_ids)]
        ids = {n.id for n in self.nodes}
        touching = [e for e in g.edges if e.source in ids or e.target in ids]
        self.edges = touching + [e for e in edges if e not in touching]
        # where each removed node stood in file order, so undo restores the same file
        order = list(g.nodes)
        self.positions = {n.id: order.index(n.id) for n in self.nodes}

    def redo(self) -> None:
        with self.doc.batch():
            for e in self.edges:
                if e in self.doc.graph.edges:
                    self.doc.graph.remove_edge(e)
            for n in self.nodes:
                self.doc.graph.remove_node(n.id)

    def undo(self) -> None:
        g = self.doc.graph
        with self.doc.batch():
            for n in self.nodes:
                g.add_node(copy.deepcopy(n))
            _restore_order(g, self.positions)
            for e in self.edges:
                g.add_edge(e, check=False)


def _restore_order(graph, positions: dict[str, int]) -> None:
    order = [i for i in graph.nodes if i not in positions]
    for node_id, index in sorted(positions.items(), key=lambda kv: kv[1]):
        order.insert(min(index, len(order)), node_id)
    graph.nodes = {i: graph.nodes[i] for i in order}


class Connect(QUndoCommand):
    def __init__(self, doc: Document, edge: Edge):
        super().__init__(f"Connect {edge.source} to {edge.target}")
        self.doc, self.edge = doc, edge

    def redo(self) -> None:
        self.doc.graph.add_edge(self.edge, check=False)

    def undo(self) -> None:
        self.doc.graph.remove_edge(self.edge)


class MoveNodes(QUndoCommand):
    """Move nodes to new positions (a drag, or an automatic layout)."""

    def __init__(self, doc: Document, moves: dict[str, tuple[tuple[float, float] | None, tuple[float, float]]],
                 text: str = ""):
        super().__init__(text or (f"Move {next(iter(moves))}" if len(moves) == 1 else f"Move {len(moves)} layers"))
        self.doc, self.moves = doc, moves

    def redo(self) -> None:
        with self.doc.batch():
            for node_id, (_, new) in self.moves.items():
                self.doc.graph.move_node(node_id, new)

    def undo(self) -> None:
        with self.doc.batch():
            for node_id, (old, _) in self.moves.items():
                node = self.doc.graph.nodes[node_id]
                if old is None:
                    node.position = None
                    self.doc.graph.node_moved.emit(node)
                    self.doc.graph.changed.emit()
                else:
                    self.doc.graph.move_node(node_id, old)


class SetParams(QUndoCommand):
    """Change a node's parameters. Successive edits of one field merge into one step, so
    typing "128" is undone at once rather than digit by digit."""

    def __init__(self, doc: Document, node_id: str, params: dict):
        super().__init__(f"Edit {node_id}")
        self.doc, self.node_id = doc, node_id
        self.old = copy.deepcopy(doc.graph.nodes[node_id].params)
        self.new = copy.deepcopy(params)
        self.changed_keys = {k for k in set(self.old) | set(self.new) if self.old.get(k) != self.new.get(k)}

    def id(self) -> int:
        return _MERGE_PARAMS

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetParams) or other.node_id != self.node_id:
            return False
        if other.changed_keys != self.changed_keys:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc.graph.set_params(self.node_id, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.doc.graph.set_params(self.node_id, copy.deepcopy(self.old))


class SetSetting(QUndoCommand):
    """Change one dataset or training setting; successive edits of one setting merge."""

    def __init__(self, doc: Document, section: str, name: str, value):
        super().__init__(f"Set {section} {name}")
        self.doc, self.section, self.name = doc, section, name
        self.old = copy.deepcopy(getattr(doc.project, section))
        self.new = {**self.old, name: copy.deepcopy(value)}

    def id(self) -> int:
        return _MERGE_SETTINGS

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetSetting) or (other.section, other.name) != (self.section, self.name):
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.doc.set_section(self.section, copy.deepcopy(self.new))

    def undo(self) -> None:
        self.doc.set_section(self.section, copy.deepcopy(self.old))
