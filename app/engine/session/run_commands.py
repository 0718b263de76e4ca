"""The undoable command that brings a recorded run back into the editor (issue 18): the
run's graph (with its block definitions), training settings and dataset settings replace
the open project's, as one step of the history (DESIGN rule 3).

The graph is changed in place through its announcing methods (the canvas, the inspector and
the document's analysis follow the graph object they hold); undo puts back the graph as it
was, down to the order the file lists its nodes and edges in.
"""

from __future__ import annotations

import copy
from typing import Any

from ..graph import Block, Graph, Node
from ..layout import layered_layout
from ..project import Project, parse_project
from .document import Document
from .history import Command


def run_project(record: Any) -> Project:
    """The project a run trained (``record.project``, the ``project_to_dict`` written when it
    started), parsed and checked like a file. Raises ``ProjectError`` naming the run when the
    stored project cannot be read."""
    return parse_project(record.project, source=f"run {record.id}")


class _Snapshot:
    """Everything RestoreRun replaces: block definitions, nodes and edges in file order, and
    the dataset and training settings. Holds copies, never the live objects."""

    def __init__(self, graph: Graph, dataset: dict, training: dict):
        self.blocks = [Block(b.name, copy.deepcopy(b.params), b.graph.copy(graph.blocks))
                       for b in graph.blocks.values()]
        self.nodes = [copy.deepcopy(n) for n in graph.nodes.values()]
        self.edges = list(graph.edges)
        self.dataset = copy.deepcopy(dataset)
        self.training = copy.deepcopy(training)


class RestoreRun(Command):
    """Replace the open project's graph, training and dataset settings with those of a
    recorded run (a ``RunRecord`` from the run store), as one undo step. The project's name,
    file and editor state stay. Raises ``ProjectError`` (from ``run_project``) when the run's
    stored project cannot be read; nothing changes then."""

    def __init__(self, doc: Document, record: Any):
        self.doc = doc
        self.run_id = record.id
        self.text = f"Restore run {record.id}"
        restored = run_project(record)
        if any(n.position is None for n in restored.graph.nodes.values()):  # as opening a file places them
            for node_id, position in layered_layout(restored.graph).items():
                if restored.graph.nodes[node_id].position is None:
                    restored.graph.move_node(node_id, position)
        self.old = _Snapshot(doc.graph, doc.project.dataset, doc.project.training)
        self.new = _Snapshot(restored.graph, restored.dataset, restored.training)

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def _apply(self, state: _Snapshot) -> None:
        doc, g = self.doc, self.doc.graph
        if doc.scope:  # the block open in the editor may not survive the change
            doc.set_scope(())
        with doc.batch():
            for edge in list(g.edges):
                g.remove_edge(edge)
            for node_id in list(g.nodes):
                g.remove_node(node_id)
            for name in list(g.blocks):
                g.blocks.remove(name)
            for block in state.blocks:  # fresh copies: undo and redo never share live graphs
                g.blocks.add(Block(block.name, copy.deepcopy(block.params), block.graph.copy(g.blocks)))
            for node in state.nodes:
                g.add_node(Node(node.id, node.type, copy.deepcopy(node.params), node.position,
                                node.repeat, node.trainable))
            for edge in state.edges:
                g.add_edge(edge, check=False)
        for section in ("dataset", "training"):
            if getattr(doc.project, section) != getattr(state, section):
                doc.set_section(section, copy.deepcopy(getattr(state, section)))
