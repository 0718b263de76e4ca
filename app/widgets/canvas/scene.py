"""The canvas scene: one item per node and per edge of the document's graph.

It follows the graph's signals (never keeping a second copy of the truth) and turns mouse
gestures into undoable commands: dragging nodes, and dragging from an output port to an
input port to connect them. It shows the graph the document has open
(``doc.current_graph``: the project's, or the inside of a block, with the shapes the
opened node receives) and is rebuilt when that changes (``scope_changed``).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPainterPath, QPen, QTransform
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsScene

from ...engine.graph import Edge, Node
from ...engine.inference import Analysis
from ...engine.layout import LR, TB, infer_direction, layered_layout
from ...engine.session.commands import Connect, MoveNodes
from ..document import Document
from .arrange import Arrange, room_for_port_labels
from .edges import EdgeItem, temp_pen
from .facts import Facts
from .items import DETAIL_PX, LABEL_PX, NODE_H, NODE_W, NodeItem
from .overlays import GroupRegion, Heat, Insight, health_flags, make_glyph, profile_marks
from .ports import PortItem
from .routing import edge_path
from .theme import current_theme

GRID = 24
OVERVIEW_BELOW = 0.12  # zoom under which the graph is drawn as two paths, not items (text is unreadable)


class CanvasScene(QGraphicsScene):
    """Signals: ``message(str)`` for refusals and hints the status bar shows."""

    message = Signal(str)

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.theme = current_theme()
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        self._touching: dict[str, set[Edge]] = {}  # node id -> its edges, for O(degree) updates
        # a connection being dragged: its source node, the line drawn, the source's output port
        self._connecting: tuple[NodeItem, QGraphicsPathItem, int] | None = None
        self._hover_port: PortItem | None = None
        self._press_positions: dict[str, tuple[float, float] | None] = {}
        self._syncing = False
        self.read_only = False
        self.facts = Facts(self)  # writes each analysis onto the items
        self._zoom = 1.0
        self._overview: list[QGraphicsPathItem] = []
        self._labels_visible = True
        self._overview_timer = QTimer(self)
        self._overview_timer.setSingleShot(True)
        self._overview_timer.setInterval(0)
        self._overview_timer.timeout.connect(self._refresh_overview)
        self.direction = TB  # where ports sit and edges run: "TB" top to bottom, "LR" left to right
        self.auto_arrange = True  # the view may lay a chain out left to right to fit the canvas
        self.arranging = False  # the view is laying the graph out by itself
        self._moved: set[str] = set()
        self._direction_timer = QTimer(self)
        self._direction_timer.setSingleShot(True)
        self._direction_timer.setInterval(0)
        self._direction_timer.timeout.connect(self._follow_moves)
        doc.reset.connect(self._project_reset)
        doc.scope_changed.connect(self.rebuild)
        doc.analyzed.connect(lambda _a: self.show_analysis(self.doc.current_analysis))
        self._graph = None
        self._placed: dict[str, tuple[float, float]] = {}  # while rebuilding: where unplaced nodes go
        # overlays (set_insight, set_profile): what was given, kept to draw again after a rebuild
        self._insight: Insight | None = None
        self._live_nodes = False
        self._heat: dict[str, Heat] = {}
        self._regions: list[GroupRegion] = []
        self._region_of: dict[str, list[GroupRegion]] = {}  # node id -> the regions it is in
        self._profile_groups = []
        self.rebuild()

    # -- following the model -------------------------------------------------------------
    def rebuild(self, *_args) -> None:
        """Drop every item and build them again from the graph the document has open."""
        if self._graph is not None:
            for signal, slot in self._connections():
                signal.disconnect(slot)
        self._connecting = None
        self.clear()
        self.nodes.clear()
        self.edges.clear()
        self._touching.clear()
        self.facts.reset()
        self._overview = []
        self._graph = self.doc.current_graph
        self.direction = infer_direction(self._graph)
        self.auto_arrange = True
        self._moved.clear()
        for signal, slot in self._connections():
            signal.connect(slot)
        # a block's layers from a file may have no positions (the document places the
        # project's own at load): shown where a layered layout puts them, until moved
        unplaced = any(n.position is None for n in self._graph.nodes.values())
        self._placed = layered_layout(self._graph, direction=self.direction) if unplaced else {}
        for node in self._graph.nodes.values():
            self._add_node(node)
        self._placed = {}
        for edge in self._graph.edges:
            self._add_edge(edge, update=False)
        for node_id in self.nodes:
            self._update_slots(node_id, route=False)
        for item in self.edges.values():  # each edge once, now that every port is in place
            self._route(item)
        self.show_analysis(self.doc.current_analysis)
        self._regions, self._region_of = [], {}  # (clear() removed them)
        self._apply_insight()
        self._apply_profile()
        self._grow_scene_rect()
        self._apply_detail(force=True)

    def _project_reset(self) -> None:
        # another project: a snapshot or a profile of the last one names other nodes
        self._insight, self._heat, self._profile_groups = None, {}, []
        self.rebuild()

    def _connections(self):
        g = self._graph
        return [(g.node_added, self._add_node), (g.node_removed, self._remove_node),
                (g.edge_added, self._add_edge), (g.edge_removed, self._remove_edge),
                (g.node_moved, self._node_moved)]

    def set_read_only(self, on: bool, reason: str = "") -> None:
        """Lock editing by mouse (a training run uses the graph); selection still works."""
        self.read_only, self._read_only_reason = on, reason
        for item in self.nodes.values():
            item.setFlag(NodeItem.GraphicsItemFlag.ItemIsMovable, not on)

    def _add_node(self, node: Node) -> None:
        item = NodeItem(node, self.theme, self._graph.spec)
        item.set_direction(self.direction)
        if self.read_only:
            item.setFlag(NodeItem.GraphicsItemFlag.ItemIsMovable, False)
        self._syncing = True
        item.setPos(*(node.position or self._placed.get(node.id) or self._free_spot()))
        self._syncing = False
        self.addItem(item)
        self.nodes[node.id] = item
        self._touching.setdefault(node.id, set())
        if self._overview:
            item.setVisible(False)
            self._overview_stale()

    def _free_spot(self) -> tuple[float, float]:
        if not self.nodes:
            return (0.0, 0.0)
        if self.direction == LR:
            right = max(i.pos().x() for i in self.nodes.values())
            return (right + NODE_W + 70, 0.0)
        bottom = max(i.pos().y() for i in self.nodes.values())
        return (0.0, bottom + NODE_H + 50)

    def _remove_node(self, node: Node) -> None:
        for region in self._region_of.pop(node.id, ()):
            region.ids = [i for i in region.ids if i != node.id]
            self._follow_region(region)
        item = self.nodes.pop(node.id, None)
        self._touching.pop(node.id, None)
        self.facts.forget(node.id)
        if item is not None:
            self.removeItem(item)
        self._overview_stale()

    def _add_edge(self, edge: Edge, update: bool = True) -> None:
        if edge.source not in self.nodes or edge.target not in self.nodes or edge in self.edges:
            return
        item = EdgeItem(edge, self.theme)
        item.label.setVisible(self._labels_visible)
        if self._overview:
            item.setVisible(False)
        self.addItem(item)
        self.edges[edge] = item
        self._touching[edge.source].add(edge)
        self._touching[edge.target].add(edge)
        if update:
            self._update_slots(edge.target)

    def _remove_edge(self, edge: Edge) -> None:
        item = self.edges.pop(edge, None)
        if item is not None:
            self.removeItem(item)
        for end in (edge.source, edge.target):
            self._touching.get(end, set()).discard(edge)
        if edge.target in self.nodes:
            self._update_slots(edge.target)

    def _update_slots(self, node_id: str, route: bool = True) -> None:
        """Variadic nodes (Add, Concat) show their connected slots plus one free one."""
        incoming = [e for e in self._touching[node_id] if e.target == node_id]
        self.nodes[node_id].update_slots(max((e.target_port for e in incoming), default=-1))
        if route:
            for e in self._touching[node_id]:
                self._route(self.edges[e])
        self._overview_stale()

    def _node_moved(self, node: Node) -> None:
        item = self.nodes.get(node.id)
        if item is None or node.position is None:
            return
        if (item.pos().x(), item.pos().y()) != node.position:
            self._syncing = True
            item.setPos(*node.position)
            self._syncing = False
            self.node_item_moved(item)
            self._overview_stale()
            self._moved.add(node.id)
            self._direction_timer.start()

    def node_item_moved(self, item: NodeItem) -> None:
        """Keep the edges of a node glued to it while it moves (model or mouse)."""
        for e in self._touching.get(item.node_id, ()):
            self._route(self.edges[e])
        for region in self._region_of.get(item.node_id, ()):
            self._follow_region(region)

    def _route(self, item: EdgeItem) -> None:
        e = item.edge
        source, target = self.nodes[e.source], self.nodes[e.target]
        avoid = source.label_rects() + target.label_rects()
        item.route(source.output_pos(e.source_port), target.input_pos(e.target_port), self.direction,
                   source.box(), target.box(), avoid)

    # -- overlays: live nodes, health, profile (overlays.py) --------------------------------
    @property
    def live_nodes(self) -> bool:
        """Whether the nodes draw their live glyphs (View > Live nodes); health badges show
        whenever the insight has health, either way."""
        return self._live_nodes

    @live_nodes.setter
    def live_nodes(self, on: bool) -> None:
        if bool(on) != self._live_nodes:
            self._live_nodes = bool(on)
            self._apply_insight()

    def set_insight(self, insight: Insight | None) -> None:
        """Show a training snapshot on the nodes (the training panel's ``CanvasInsight``, or
        any object with its attributes): with ``live_nodes``, each node's output as a glyph;
        health flags as badges. None clears both."""
        self._insight = insight
        self._apply_insight()

    def _at_top_level(self) -> bool:
        # insight and profiles name the project's own nodes: inside a block the ids are others
        return not self.doc.scope

    def _apply_insight(self) -> None:
        insight = self._insight if self._at_top_level() else None
        activations = getattr(insight, "activations", None) or {}
        health = getattr(insight, "health", None)
        output = getattr(insight, "output_node", None)
        names = getattr(insight, "class_names", None) or ()
        live = self._live_nodes and insight is not None
        for node_id, item in self.nodes.items():
            item.set_flags(health_flags(health, node_id))
            item.set_glyph(make_glyph(activations.get(node_id), node_id == output, names) if live else None)

    def set_profile(self, profile: dict | None, metric: str = "time") -> None:
        """Tint the nodes by their share of ``metric`` ("time", "memory" or "flops") in
        ``profile`` (the ``netcanvas profile --json`` dict) and write the figure on them; a
        fused group (a row with ``"group": [ids]``) gets one region behind its nodes. None
        clears it. Raises ``ValueError`` for an unknown metric or a profile of another shape."""
        if profile is None:
            self._heat, self._profile_groups = {}, []
        else:
            self._heat, self._profile_groups = profile_marks(profile, metric)
        self._apply_profile()

    def _apply_profile(self) -> None:
        for region in self._regions:
            self.removeItem(region)
        self._regions, self._region_of = [], {}
        heat = self._heat if self._at_top_level() else {}
        for node_id, item in self.nodes.items():
            item.set_heat(heat.get(node_id))
        if not self._at_top_level():
            return
        for group in self._profile_groups:
            ids = [i for i in group.ids if i in self.nodes]
            if len(ids) < 2:
                continue
            region = GroupRegion(ids, group.heat, self.theme)
            self.addItem(region)
            self._follow_region(region)
            self._regions.append(region)
            for i in ids:
                self._region_of.setdefault(i, []).append(region)

    def _follow_region(self, region: GroupRegion) -> None:
        region.follow([self.nodes[i].box() for i in region.ids if i in self.nodes])

    # -- direction and layout ------------------------------------------------------------------
    def set_direction(self, direction: str) -> None:
        """Ports on the top and bottom of the nodes and edges running down ("TB"), or on the
        left and right with edges running to the right ("LR")."""
        if direction == self.direction:
            return
        self.direction = direction
        for item in self.nodes.values():
            item.set_direction(direction)
        for item in self.edges.values():
            self._route(item)
        for region in self._regions:
            self._follow_region(region)
        self._overview_stale()

    def _follow_moves(self) -> None:
        """After a burst of moves that rearranged most of the graph (a layout, an undo of
        one), the ports follow the direction the graph now reads in; a drag of a few nodes
        never flips them."""
        moved, self._moved = self._moved, set()
        if len(moved) * 2 > len(self.nodes):
            self.set_direction(infer_direction(self._graph))

    def centre_after(self, node_id: str) -> QPointF:
        """Where a layer fed by ``node_id`` goes: below it, or to its right left to right."""
        centre = self.nodes[node_id].sceneBoundingRect().center()
        return centre + (QPointF(NODE_W + 70, 0) if self.direction == LR else QPointF(0, NODE_H + 50))

    def moves_settled(self) -> None:
        """The moves so far set the direction themselves (a layout command): nothing to infer."""
        self._moved.clear()

    def layout_positions(self, direction: str, wrap: int | None = None) -> dict[str, tuple[float, float]]:
        """Where a layered layout in ``direction`` puts every node, its first layer where the
        graph's top-left corner is now."""
        self.facts.flush()  # (the ports' labels make room between the layers)
        positions = room_for_port_labels(layered_layout(self._graph, direction=direction, wrap=wrap),
                                         self.nodes, direction)
        if not positions:
            return positions
        left = min(x for x, _ in positions.values())
        top = min(y for _, y in positions.values())
        current = [n.position for n in self._graph.nodes.values() if n.position is not None]
        x0 = min((p[0] for p in current), default=0.0)
        y0 = min((p[1] for p in current), default=0.0)
        return {n: (round(x - left + x0, 1), round(y - top + y0, 1)) for n, (x, y) in positions.items()}

    def apply_layout(self, direction: str | None = None, wrap: int | None = None) -> bool:
        """Lay the graph out in ``direction`` (default: the current one), undoably (View >
        Auto Layout, Left-to-right Layout). The user's choice: the view no longer changes
        the direction by itself for this document. False when nothing moved."""
        direction = direction or self.direction
        self.auto_arrange = False
        positions = self.layout_positions(direction, wrap)
        moves = {i: (self._graph.nodes[i].position, p) for i, p in positions.items()
                 if self._graph.nodes[i].position != p}
        if not moves:
            self.set_direction(direction)
            return False
        step = Arrange(self, moves, self.direction, direction)
        self.doc.push(step)
        return True

    def show_analysis(self, a: Analysis) -> None:
        """Write shapes, parameter counts and errors onto the nodes and edges (facts.py: only
        those the analysis may have changed; far from the views, in idle time)."""
        self.facts.show(a)

    def _grow_scene_rect(self) -> None:
        rect = self.nodes_rect().adjusted(-2000, -2000, 2000, 2000)
        self.setSceneRect(rect.united(self.sceneRect()) if not self.sceneRect().isEmpty() else rect)

    # -- drawing -----------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, self.theme.background)
        scale = painter.worldTransform().m11()
        if scale < 0.5:
            return
        left = int(rect.left()) - int(rect.left()) % GRID
        top = int(rect.top()) - int(rect.top()) % GRID
        lines = [QLineF(x, rect.top(), x, rect.bottom()) for x in range(left, math.ceil(rect.right()), GRID)]
        lines += [QLineF(rect.left(), y, rect.right(), y) for y in range(top, math.ceil(rect.bottom()), GRID)]
        # one call, without antialiasing: a hairline grid gains nothing from it, and a
        # drawLine per line, antialiased, was most of a repaint of a small graph
        antialiased = painter.testRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(QPen(self.theme.grid, 0))
        painter.drawLines(lines)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, antialiased)

    # -- gestures ----------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        item = self.itemAt(event.scenePos(), self.views()[0].transform() if self.views() else QTransform())
        if event.button() == Qt.MouseButton.LeftButton and isinstance(item, PortItem) and item.output:
            if self.read_only:
                self.message.emit(self._read_only_reason)
                event.accept()
                return
            path = QGraphicsPathItem()
            path.setPen(temp_pen(self.theme))
            path.setZValue(5)
            self.addItem(path)
            self._connecting = (item.node_item, path, item.index)
            event.accept()
            return
        super().mousePressEvent(event)
        self._press_positions = {i.node_id: self._graph.nodes[i.node_id].position
                                 for i in self.selectedItems() if isinstance(i, NodeItem)}

    def mouseMoveEvent(self, event) -> None:
        if self._connecting is None and self._press_positions and event.buttons() & Qt.MouseButton.LeftButton:
            super().mouseMoveEvent(event)
            for node_id in self._press_positions:  # edges follow the dragged nodes
                if node_id in self.nodes:
                    self.node_item_moved(self.nodes[node_id])
            return
        if self._connecting is not None:
            source, path, source_port = self._connecting
            end = event.scenePos()
            port = self._input_port_at(end)
            if self._hover_port is not port:
                if self._hover_port is not None:
                    self._hover_port.set_hovered(False)
                self._hover_port = port
                if port is not None:
                    port.set_hovered(True)
            path.setPath(edge_path(source.output_pos(source_port), port.scenePos() if port else end, self.direction,
                                   source.box(), port.node_item.box() if port else None))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._connecting is not None:
            source, path, source_port = self._connecting
            self._connecting = None
            self.removeItem(path)
            if self._hover_port is not None:
                self._hover_port.set_hovered(False)
                self._hover_port = None
            self.connect_at(source.node_id, event.scenePos(), source_port)
            event.accept()
            return
        super().mouseReleaseEvent(event)
        self._commit_moves()

    def _input_port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, PortItem) and not item.output:
                return item
            if isinstance(item, NodeItem):  # over a node: its first free input slot
                return self._first_free_port(item)
        return None

    def _first_free_port(self, item: NodeItem) -> PortItem | None:
        used = {e.target_port for e in self._touching[item.node_id] if e.target == item.node_id}
        for port in item.inputs:
            if port.index not in used:
                return port
        return item.inputs[0] if item.inputs else None

    def connect_at(self, source: str, pos: QPointF, source_port: int = 0) -> bool:
        """Connect output ``source_port`` of ``source`` to the input slot at ``pos`` (a port,
        or a node's first free slot); a refused connection says why through ``message``.
        True when connected."""
        port = self._input_port_at(pos)
        if port is None:
            return False
        target = port.node_item.node_id
        if not port.node_item.inputs:
            self.message.emit(f"{target!r} takes no inputs")
            return False
        problem = self._graph.connection_problem(source, target, port.index, source_port)
        if problem:
            self.message.emit(f"Cannot connect: {problem}")
            return False
        self.doc.push(Connect(self.doc.model, Edge(source, target, port.index, source_port), graph=self._graph))
        return True

    def _commit_moves(self) -> None:
        moves = {}
        for node_id, old in self._press_positions.items():
            item = self.nodes.get(node_id)
            if item is None:
                continue
            new = (round(item.pos().x(), 1), round(item.pos().y(), 1))
            if old is None or (abs(old[0] - new[0]) > 0.01 or abs(old[1] - new[1]) > 0.01):
                moves[node_id] = (old, new)
        self._press_positions = {}
        if moves:
            self.doc.push(MoveNodes(self.doc.model, moves, graph=self._graph))
            self._grow_scene_rect()

    def follow_palette(self) -> None:
        theme = current_theme()
        if theme == self.theme:
            return
        self.theme = theme
        for item in self.nodes.values():
            item.theme = theme
            item.update()
            item.update_glyph()  # the glyph's own cached picture is in the old colours
        for item in self.edges.values():
            item.set_theme(theme)
        for region in self._regions:
            region.theme = theme
            region.update()
        self._refresh_overview()
        self.invalidate(self.sceneRect(), QGraphicsScene.SceneLayer.BackgroundLayer)  # the views' cached grid
        self.update()

    # -- level of detail -------------------------------------------------------------------
    def set_zoom(self, zoom: float) -> None:
        """The view's zoom: far out, draw the graph as two paths instead of thousands of
        items, which repaint far faster when the whole of a large graph is in view."""
        self._zoom = zoom
        self._apply_detail()

    def _apply_detail(self, force: bool = False) -> None:
        overview = self._zoom < OVERVIEW_BELOW and len(self.nodes) > 0
        if overview != bool(self._overview) or force:
            for item in (*self.nodes.values(), *self.edges.values()):
                item.setVisible(not overview)
            for item in self._overview:
                self.removeItem(item)
            self._overview = self._build_overview() if overview else []
        labels = LABEL_PX * self._zoom >= DETAIL_PX  # big enough on screen to read at all
        if labels != self._labels_visible or force:
            self._labels_visible = labels
            for item in self.edges.values():
                item.label.setVisible(labels)

    @property
    def in_overview(self) -> bool:
        """Whether the graph is drawn as two paths (far out), its items hidden."""
        return bool(self._overview)

    def _build_overview(self) -> list[QGraphicsPathItem]:
        boxes, lines = QPainterPath(), QPainterPath()
        for item in self.nodes.values():
            boxes.addRect(item.sceneBoundingRect().adjusted(9, 9, -9, -9))
        for e in self.edges:
            a, b = self.nodes[e.source].output_pos(e.source_port), self.nodes[e.target].input_pos(e.target_port)
            lines.moveTo(a)
            lines.lineTo(b)
        edge_item = QGraphicsPathItem(lines)
        edge_item.setPen(QPen(self.theme.edge, 0))
        box_item = QGraphicsPathItem(boxes)
        box_item.setPen(QPen(self.theme.node_border, 0))
        box_item.setBrush(self.theme.node)
        for item in (edge_item, box_item):
            self.addItem(item)
        return [edge_item, box_item]

    def _overview_stale(self) -> None:
        """Rebuild the overview once the current burst of changes is over (a layout moves
        every node: one rebuild, not one per node)."""
        if self._overview and not self._overview_timer.isActive():
            self._overview_timer.start()

    def _refresh_overview(self) -> None:
        if self._overview:
            for item in self._overview:
                self.removeItem(item)
            self._overview = self._build_overview()

    def nodes_near(self, rect: QRectF) -> list[NodeItem]:
        """The nodes whose boxes meet ``rect`` (scene coordinates): found through the scene's
        index, or, in the overview (its items hidden, which the index leaves out), one by one."""
        if self._overview:
            return [item for item in self.nodes.values() if item.sceneBoundingRect().intersects(rect)]
        return [item for item in self.items(rect, Qt.ItemSelectionMode.IntersectsItemBoundingRect)
                if isinstance(item, NodeItem) and item.sceneBoundingRect().intersects(rect)]

    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def select_nodes(self, ids) -> None:
        self.clearSelection()
        for node_id in ids:
            if node_id in self.nodes:
                self.nodes[node_id].setSelected(True)

    def nodes_rect(self) -> QRectF:
        rect = QRectF()
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect if not rect.isNull() else QRectF(-NODE_W, -NODE_H, NODE_W * 3, NODE_H * 3)
