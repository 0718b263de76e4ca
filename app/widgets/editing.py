"""Edit operations on the canvas selection, each pushed as one undoable command."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication

from ..engine.graph import Edge, Node
from ..engine.layers import get_spec
from ..engine.layout import layered_layout
from ..engine.session.clipboard import (PASTE_OFFSET, ClipboardError, Clipping, clipping, new_node_params,
                                        parse_clipboard, paste_command, to_text)
from ..engine.session.commands import AddItems, MoveNodes, RemoveItems, SetParams
from .canvas.items import NODE_H, NODE_W
from .canvas.scene import CanvasScene
from .document import Document


class Editor:
    """The edit menu's operations, on a document shown in a scene."""

    def __init__(self, doc: Document, scene: CanvasScene):
        self.doc, self.scene = doc, scene

    @property
    def graph(self):
        return self.doc.graph

    def add_layer(self, type_name: str, pos: QPointF | None = None, connect_from: str | None = None) -> str:
        """Add a layer centred at ``pos`` or, where that would cover a layer, at the nearest
        free place (below it first); with ``connect_from``, fed by that node. Returns its id."""
        prefix = {"Input": "input", "Linear": "fc"}.get(type_name, type_name.lower())
        node_id = self.graph.unique_id(prefix)
        pos = self.free_spot(pos if pos is not None else QPointF(0, 0))
        node = Node(node_id, type_name, new_node_params(type_name),
                    (round(pos.x() - NODE_W / 2, 1), round(pos.y() - NODE_H / 2, 1)))
        edges = []
        if connect_from and connect_from in self.graph.nodes and get_spec(type_name).max_inputs != 0:
            edges.append(Edge(connect_from, node_id, 0))
        self.doc.push(AddItems(self.doc.model, [node], edges))
        self.scene.select_nodes([node_id])
        return node_id

    GAP = 24.0  # the least room between a new layer and the others

    def free_spot(self, centre: QPointF) -> QPointF:
        """``centre``, or the nearest centre near it where a new layer covers no other (nor
        comes closer than ``GAP`` to one): below it first, then beside it, else under all."""
        taken = [item.sceneBoundingRect().adjusted(-self.GAP, -self.GAP, self.GAP, self.GAP)
                 for item in self.scene.nodes.values()]

        def free(c: QPointF) -> bool:
            rect = QRectF(c.x() - NODE_W / 2, c.y() - NODE_H / 2, NODE_W, NODE_H)
            return not any(rect.intersects(t) for t in taken)

        if free(centre):
            return centre
        dx, dy = NODE_W + self.GAP, (NODE_H + self.GAP) / 2
        steps = sorted(((i, j) for i in range(-3, 4) for j in range(-6, 25)),
                       key=lambda ij: abs(ij[0]) * 2.5 + (ij[1] if ij[1] >= 0 else -2 * ij[1]))
        for i, j in steps:
            c = QPointF(centre.x() + i * dx, centre.y() + j * dy)
            if free(c):
                return c
        bottom = max(t.bottom() for t in taken)
        return QPointF(centre.x(), bottom + NODE_H / 2 + self.GAP)

    def delete_selection(self) -> None:
        nodes, edges = self.scene.selected_node_ids(), self.scene.selected_edges()
        if nodes or edges:
            what = f"Delete {len(nodes) + len(edges)} items" if len(nodes) + len(edges) > 1 else "Delete"
            self.doc.push(RemoveItems(self.doc.model, nodes, edges, what))

    def copy(self) -> bool:
        """Put the selected layers (and the edges among them) on the system clipboard;
        False when none is selected."""
        ids = self.scene.selected_node_ids()
        if not ids:
            return False
        QApplication.clipboard().setText(to_text(clipping(self.graph, ids)))
        return True

    def cut(self) -> None:
        if self.copy():
            self.delete_selection()

    def paste(self, offset: float = PASTE_OFFSET) -> list[str]:
        """Paste the layers on the clipboard (and the edges among them) with fresh ids,
        ``offset`` right of and below where they were. Returns their ids (none for other text;
        text of ours that cannot be pasted says why on the status bar)."""
        try:
            clip = parse_clipboard(QApplication.clipboard().text())
        except ClipboardError as e:
            self.scene.message.emit(f"Cannot paste: {e}")
            return []
        return self._insert(clip, offset) if clip is not None else []

    def duplicate(self) -> list[str]:
        """Copies of the selected layers and the edges among them, beside them. Returns their ids."""
        return self._insert(clipping(self.graph, self.scene.selected_node_ids()), PASTE_OFFSET)

    def _insert(self, clip: Clipping, offset: float) -> list[str]:
        command = paste_command(self.doc.model, clip, offset)
        if command is None:
            return []
        self.doc.push(command)
        ids = [n.id for n in command.nodes]
        self.scene.select_nodes(ids)
        return ids

    def select_all(self) -> None:
        for item in self.scene.nodes.values():
            item.setSelected(True)
        for item in self.scene.edges.values():
            item.setSelected(True)

    def auto_layout(self) -> None:
        positions = layered_layout(self.graph)
        moves = {i: (self.graph.nodes[i].position, p) for i, p in positions.items()
                 if self.graph.nodes[i].position != p}
        if moves:
            self.doc.push(MoveNodes(self.doc.model, moves, "Layout"))

    def set_params(self, node_id: str, params: dict) -> None:
        if node_id in self.graph.nodes and self.graph.nodes[node_id].params != params:
            self.doc.push(SetParams(self.doc.model, node_id, params))
