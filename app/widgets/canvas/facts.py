"""What the analysis says, written onto the canvas's nodes and edges: shapes, parameter
counts, errors and the ports' labels.

An edit of one layer in 2,000 rewrites that layer: an incremental analysis names the nodes
whose results may differ (``Analysis.changed``) and only those and their edges are visited.
An edit that changes a thousand of them (a broken Add turns half a graph's shapes unknown)
writes the ones on screen at once and the rest in idle slices of at most ``SLICE_S``, so the
editor answers within a frame; whatever comes into view before its turn is written before it
is painted (``CanvasView.paintEvent`` calls ``flush_area``), and whatever reads the items as a
whole (a layout) calls ``flush`` first.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, Qt, QTimer

from ...engine.graph import Edge, Node
from ...engine.inference import Analysis, describe_shape
from ...engine.summary import key_summary
from .edges import EdgeItem
from .items import NodeItem

DEFER_AT = 400  # nodes and edges one analysis changes, above which those off screen wait
SLICE_S = 0.006  # the longest an idle slice writes before giving the event loop its turn
BATCH = 12  # items written between two looks at the clock (each takes 10-40 µs)
MARGIN = 0.5  # what counts as on screen: the views' visible areas, half as large again each side


class Facts:
    """The scene's writer of analyses (one per ``CanvasScene``: ``scene.facts``)."""

    def __init__(self, scene):
        self.scene = scene
        self._shown: dict[str, tuple] = {}  # what each node shows, to skip unchanged ones
        self.last: Analysis | None = None  # the analysis shown: Analysis.changed is relative to it
        self.pending_nodes: set[str] = set()  # written from ``last`` in idle time
        self.pending_edges: set[Edge] = set()
        self._issues: tuple[Analysis | None, dict] = (None, {})
        self._timer = QTimer(scene)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._slice)
        self.slices = 0  # idle slices run so far (for benches and tests)

    @property
    def pending(self) -> bool:
        return bool(self.pending_nodes or self.pending_edges)

    def reset(self) -> None:
        """The scene was rebuilt: nothing shown, nothing waiting."""
        self._shown.clear()
        self.last = None
        self.pending_nodes.clear()
        self.pending_edges.clear()
        self._issues = (None, {})
        self._timer.stop()

    def forget(self, node_id: str) -> None:
        self._shown.pop(node_id, None)
        self.pending_nodes.discard(node_id)

    # -- showing an analysis ------------------------------------------------------------------
    def show(self, a: Analysis) -> None:
        """Write ``a`` onto the nodes it may have changed (every node after a full analysis)
        and their edges; far from the views, above ``DEFER_AT`` of them, in idle slices."""
        previous, self.last = self.last, a
        if a is previous:  # a move: nothing analyzed changed
            return
        scene = self.scene
        changed = getattr(a, "changed", None)
        partial = changed is not None and previous is not None and not scene.doc.scope
        ids = [n for n in changed if n in scene.nodes] if partial else list(scene.nodes)
        edges = {e for n in ids for e in scene._touching.get(n, ())} if partial else set(scene.edges)
        area = self._views_area() if len(ids) + len(edges) > DEFER_AT else None
        if area is not None:
            near_nodes, near_edges = self._items_in(area)
            self.pending_nodes.update(n for n in ids if n not in near_nodes)
            self.pending_edges.update(e for e in edges if e not in near_edges)
            ids = [n for n in ids if n in near_nodes]
            edges = [e for e in edges if e in near_edges]
        self._write_nodes(ids)
        self._write_edges(edges)
        if self.pending:
            self._timer.start()

    def flush(self) -> None:
        """Write everything still waiting (before reading the items as a whole)."""
        if self.pending:
            self._timer.stop()
            self._write_nodes(list(self.pending_nodes))
            self._write_edges(list(self.pending_edges))

    def flush_area(self, rect: QRectF) -> None:
        """Write what waits within ``rect`` (scene coordinates): it is about to be painted."""
        if self.pending:
            nodes, edges = self._items_in(rect)
            self._write_nodes([n for n in self.pending_nodes if n in nodes])
            self._write_edges([e for e in self.pending_edges if e in edges])

    def _slice(self) -> None:
        self.slices += 1
        deadline = time.perf_counter() + SLICE_S
        for pending, write in ((self.pending_nodes, self._write_nodes), (self.pending_edges, self._write_edges)):
            while pending and time.perf_counter() < deadline:
                write([pending.pop() for _ in range(min(BATCH, len(pending)))])
        if self.pending:
            self._timer.start()

    def _views_area(self) -> QRectF | None:
        """What the scene's views show, with a margin; None without a view on screen (then
        everything is written at once)."""
        area = QRectF()
        for view in self.scene.views():
            if view.isVisible():
                seen = view.mapToScene(view.viewport().rect()).boundingRect()
                dx, dy = seen.width() * MARGIN, seen.height() * MARGIN
                area = area.united(seen.adjusted(-dx, -dy, dx, dy))
        return area if not area.isEmpty() else None

    def _items_in(self, rect: QRectF) -> tuple[set[str], set[Edge]]:
        """The nodes and edges with something in ``rect`` (an edge: its path or its label);
        none in the overview, where the items are hidden and two paths draw the graph."""
        if self.scene.in_overview:
            return set(), set()
        nodes = {item.node_id for item in self.scene.nodes_near(rect)}
        edges = set()
        for item in self.scene.items(rect, Qt.ItemSelectionMode.IntersectsItemBoundingRect):
            parent = item.parentItem()
            if isinstance(parent, EdgeItem):  # its label, where it has one (an empty one sits at 0, 0)
                if not parent.label.text():
                    continue
                item = parent
            if isinstance(item, EdgeItem):
                edges.add(item.edge)
        return nodes, edges

    def _issues_by_node(self, a: Analysis) -> dict[str | None, list]:
        if self._issues[0] is not a:
            by_node: dict[str | None, list] = {}
            for issue in a.issues:
                by_node.setdefault(issue.node, []).append(issue)
            self._issues = (a, by_node)
        return self._issues[1]

    # -- writing ------------------------------------------------------------------------------
    def _write_nodes(self, ids) -> None:
        a, scene = self.last, self.scene
        if a is None:
            return
        graph = scene._graph
        by_node = self._issues_by_node(a)
        for node_id in ids:
            self.pending_nodes.discard(node_id)
            item = scene.nodes.get(node_id)
            if item is None:
                continue
            node = graph.nodes[node_id]
            shape = a.shapes.get(node_id)
            count = a.param_counts.get(node_id, 0)
            issues = by_node.get(node_id, ())
            params = a.params.get(node_id, node.params)
            ports = self._port_facts(a, node, item, params)
            # a block's declaration is rebuilt when its definition changes (inputs, parameters)
            spec = graph.spec(node.type) if item.is_block else None
            facts = (shape, count, tuple(issues), node.type, node.repeat, node.trainable, ports, spec)
            previous = self._shown.get(node_id)
            if previous is not None and previous[0] == facts and previous[1] == params:
                continue
            self._shown[node_id] = (facts, params)
            if spec is not None and item.follow_spec():
                scene._update_slots(node_id)
            item.set_options(node.repeat, node.trainable)
            if ports is not None:
                before = len(item.outputs)
                item.set_ports(*ports)
                if len(item.outputs) != before:  # edges from the ports that moved follow them
                    scene.node_item_moved(item)
                    scene._overview_stale()
            shape_text = f"→ {describe_shape(shape)}" + (f" · {count:,} params" if count else "")
            errors = [i for i in issues if i.severity == "error"]
            shown = errors or issues
            problem = "; ".join((f"{i.param}: " if i.param else "") + i.message for i in shown)
            severity = "error" if errors else ("warning" if issues else "")
            item.set_info(key_summary(node, params, graph.spec(node.type)), shape_text, problem, severity)

    def _write_edges(self, edges) -> None:
        a, scene = self.last, self.scene
        if a is None:
            return
        pending_nodes = self.pending_nodes
        texts: dict[tuple[str, int], str] = {}
        for e in edges:
            self.pending_edges.discard(e)
            item = scene.edges.get(e)
            if item is None:
                continue
            if pending_nodes and (e.source in pending_nodes or e.target in pending_nodes):
                self._write_nodes([n for n in (e.source, e.target) if n in pending_nodes])  # its ports first
            if (scene.nodes[e.source].labels_side(True) == "full"
                    or scene.nodes[e.target].labels_side(False) == "full"):
                item.set_label("")  # the port's label at its end says the shape
                continue
            text = texts.get((e.source, e.source_port))
            if text is None:
                text = texts[(e.source, e.source_port)] = describe_shape(a.edge_shape(e))
            item.set_label(text)

    def _port_facts(self, a: Analysis, node: Node, item: NodeItem,
                    params: dict) -> tuple[tuple[str, ...], list[str], list[str]] | None:
        """For a node with several inputs or outputs: the names of its output ports and the
        shapes (text) on its input slots and output ports; None for a node of one of each
        (which shows no port labels: computed for the few nodes that need them)."""
        spec = self.scene._graph.spec(node.type)
        if spec is None or (len(item.inputs) < 2 and not spec.multi_output()):
            return None
        port_shapes = a.port_shapes.get(node.id) or ()
        try:
            names = tuple(spec.output_names(params))
        except (KeyError, TypeError, ValueError):  # parameters the analysis refused (Split's sizes)
            names = tuple(f"output {k}" for k in range(len(port_shapes))) or ("output",)
        touching = self.scene._touching[node.id]
        used = max((e.source_port for e in touching if e.source == node.id), default=0)
        names += tuple(f"output {k}" for k in range(len(names), used + 1))  # fed from a port it lacks
        inputs = [""] * len(item.inputs)
        for e in touching:
            if e.target == node.id and e.target_port < len(inputs):
                shape = a.edge_shape(e)
                inputs[e.target_port] = describe_shape(shape) if shape is not None else ""
        outputs = [describe_shape(s) for s in port_shapes] if len(port_shapes) > 1 else (
            [describe_shape(port_shapes[0])] if port_shapes else [])
        return names, inputs, outputs
