"""The undoable command for a node's options (``repeat``, ``trainable``), which are not
parameters of its layer type and change through ``Graph.set_options`` (DESIGN rule 3)."""

from __future__ import annotations

from ..graph import Graph
from .document import Document
from .history import Command


class SetOptions(Command):
    """Set a node's ``repeat`` and/or ``trainable`` (None: leave it). Successive edits of the
    same option of one node merge into one step, so typing "12" in the repeat field is
    undone at once rather than digit by digit. ``graph``: the graph inside an open block
    (default: the project's), as for the commands of ``commands.py``."""

    def __init__(self, doc: Document, node_id: str, repeat: int | None = None, trainable: bool | None = None,
                 graph: Graph | None = None):
        self.graph = graph if graph is not None else doc.graph
        node = self.graph.nodes[node_id]
        self.doc, self.node_id = doc, node_id
        self.old = (node.repeat, node.trainable)
        self.new = (node.repeat if repeat is None else repeat, node.trainable if trainable is None else trainable)
        self.changed = tuple(name for name, a, b in zip(("repeat", "trainable"), self.old, self.new) if a != b)
        self.obsolete = not self.changed  # (the history then neither applies nor keeps it)
        if self.changed == ("trainable",):
            self.text = f"{'Unfreeze' if self.new[1] else 'Freeze'} {node_id}"
        else:
            self.text = f"Repeat {node_id} ×{self.new[0]}" if self.changed == ("repeat",) else f"Edit {node_id}"

    def merge(self, other: Command) -> bool:
        if (not isinstance(other, SetOptions) or other.node_id != self.node_id or other.graph is not self.graph
                or other.changed != self.changed):
            return False
        if self.changed != ("repeat",):  # toggling a check box twice is two steps
            return False
        self.new = other.new
        self.text = other.text
        self.obsolete = self.new == self.old  # typed back to what it was: no step at all
        return True

    def redo(self) -> None:
        self.graph.set_options(self.node_id, repeat=self.new[0], trainable=self.new[1])

    def undo(self) -> None:
        self.graph.set_options(self.node_id, repeat=self.old[0], trainable=self.old[1])


class SetTrainable(Command):
    """Freeze (``trainable`` False) or unfreeze several nodes in one undo step: the
    selection's Freeze / Unfreeze. Nodes already so (and ids the graph lacks) are left
    alone; with none left the command is obsolete (the history neither applies nor keeps
    it). ``graph``: the graph inside an open block (default: the project's)."""

    def __init__(self, doc: Document, node_ids, trainable: bool, graph: Graph | None = None):
        self.graph = graph if graph is not None else doc.graph
        self.doc, self.trainable = doc, bool(trainable)
        self.node_ids = [i for i in dict.fromkeys(node_ids)
                         if i in self.graph.nodes and self.graph.nodes[i].trainable != self.trainable]
        self.obsolete = not self.node_ids
        verb = "Unfreeze" if self.trainable else "Freeze"
        what = self.node_ids[0] if len(self.node_ids) == 1 else f"{len(self.node_ids)} nodes"
        self.text = f"{verb} {what}"

    def redo(self) -> None:
        for node_id in self.node_ids:
            self.graph.set_options(node_id, trainable=self.trainable)

    def undo(self) -> None:
        for node_id in reversed(self.node_ids):
            self.graph.set_options(node_id, trainable=not self.trainable)
