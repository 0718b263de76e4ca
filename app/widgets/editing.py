"""Edit operations on the canvas selection, each pushed as one undoable command."""

from __future__ import annotations

import json

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication

from ..engine.graph import Edge, Node
from ..engine.layers import get_spec
from ..engine.layout import layered_layout
from .canvas.items import NODE_H, NODE_W
from ..engine.session.commands import AddItems, MoveNodes, RemoveItems, SetParams
from .canvas.scene import CanvasScene
from .document import Document

CLIPBOARD_KEY = "netcanvas-layers"

# values a new node starts with for the parameters it must be given
STARTING_VALUES = {"shape": [1, 28, 28], "out_features": 10, "out_channels": 8, "kernel_size": 3,
                   "output_size": 1, "hidden_size": 32, "num_embeddings": 100, "embedding_dim": 16}


def new_node_params(type_name: str) -> dict:
    spec = get_spec(type_name)
    params = {}
    for p in spec.params:
        if p.required:
            params[p.name] = [-1] if (type_name, p.name) == ("Reshape", "shape") else STARTING_VALUES[p.name]
    return params


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
        ids = set(self.scene.selected_node_ids())
        if not ids:
            return False
        nodes = [{"id": n.id, "type": n.type, "params": n.params, "position": list(n.position or (0, 0))}
                 for n in self.graph.nodes.values() if n.id in ids]
        edges = [{"source": e.source, "target": e.target, "target_port": e.target_port}
                 for e in self.graph.edges if e.source in ids and e.target in ids]
        # plain text, not a QMimeData of our own: PySide and the clipboard would both own it
        # and free it twice at exit; the marker key tells our JSON from any other text
        QApplication.clipboard().setText(json.dumps({CLIPBOARD_KEY: 1, "nodes": nodes, "edges": edges}))
        return True

    def cut(self) -> None:
        if self.copy():
            self.delete_selection()

    def paste(self, offset: float = 40.0) -> list[str]:
        """Paste copied layers (and the edges among them) with fresh ids, offset a little."""
        try:
            data = json.loads(QApplication.clipboard().text())
            if not isinstance(data, dict) or data.get(CLIPBOARD_KEY) != 1:
                return []
            return self._insert(data, offset)
        except (ValueError, KeyError, TypeError, AttributeError):
            return []

    def duplicate(self) -> list[str]:
        ids = set(self.scene.selected_node_ids())
        nodes = [{"id": n.id, "type": n.type, "params": n.params, "position": list(n.position or (0, 0))}
                 for n in self.graph.nodes.values() if n.id in ids]
        edges = [{"source": e.source, "target": e.target, "target_port": e.target_port}
                 for e in self.graph.edges if e.source in ids and e.target in ids]
        return self._insert({"nodes": nodes, "edges": edges}, 40.0) if nodes else []

    def _insert(self, data: dict, offset: float) -> list[str]:
        renamed: dict[str, str] = {}
        nodes = []
        taken = set(self.graph.nodes)
        for raw in data["nodes"]:
            if get_spec(raw["type"]) is None:
                continue
            base = raw["id"].rstrip("0123456789") or "node"
            new_id = self.graph.unique_id(base)
            while new_id in taken:
                new_id = new_id + "_"
            taken.add(new_id)
            renamed[raw["id"]] = new_id
            x, y = raw.get("position") or (0, 0)
            nodes.append(Node(new_id, raw["type"], dict(raw.get("params", {})), (x + offset, y + offset)))
        edges = [Edge(renamed[e["source"]], renamed[e["target"]], int(e.get("target_port", 0)))
                 for e in data.get("edges", []) if e["source"] in renamed and e["target"] in renamed]
        if nodes:
            self.doc.push(AddItems(self.doc.model, nodes, edges, f"Paste {len(nodes)} layers"))
            self.scene.select_nodes([n.id for n in nodes])
        return [n.id for n in nodes]

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
