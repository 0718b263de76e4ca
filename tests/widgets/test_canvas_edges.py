"""An edge never runs through the node it connects: wherever the user puts the two nodes,
in either direction of the layout, the path goes around their boxes, and its shape label
stays off them (issue 14, item 7)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPathStroker

from app.engine.graph import Edge, Graph, Node
from app.engine.project import Project
from app.widgets.canvas.items import NODE_H, NODE_W
from app.widgets.canvas.routing import edge_path
from app.widgets.canvas.scene import CanvasScene
from app.widgets.document import Document

INSET = 2.0  # the boxes shrunk by a couple of pixels: a path may touch a box's border at its port
CLEARANCE = 4.0  # nodes closer than this (or overlapping) leave no room to pass between them
OFFSETS_X = range(-620, 621, 31)  # ~3 node widths either side, steps that hit small gaps too
OFFSETS_Y = range(-338, 339, 13)  # ~5 node heights either side


def graph_with(target_type: str, port: int) -> Graph:
    """Node ``a`` feeds slot ``port`` of ``b``; other inputs of ``b`` come from far away."""
    g = Graph()
    g.add_node(Node("a", "Input", {"shape": [4]}, (0.0, 0.0)))
    g.add_node(Node("b", target_type, {}, (0.0, 200.0)))
    for i in range(port):
        g.add_node(Node(f"far{i}", "Input", {"shape": [4]}, (-3000.0, -3000.0 * (i + 1))))
        g.add_edge(Edge(f"far{i}", "b", i), check=False)
    g.add_edge(Edge("a", "b", port), check=False)
    return g


def box(item) -> QRectF:
    return QRectF(item.pos().x(), item.pos().y(), NODE_W, NODE_H)


def boxes_apart(a: QRectF, b: QRectF) -> bool:
    return (b.left() >= a.right() + CLEARANCE or a.left() >= b.right() + CLEARANCE
            or b.top() >= a.bottom() + CLEARANCE or a.top() >= b.bottom() + CLEARANCE)


def crossed_boxes(path, boxes: dict[str, QRectF]) -> list[str]:
    """The boxes whose inside (shrunk by INSET) the drawn line passes through."""
    stroker = QPainterPathStroker()
    stroker.setWidth(1.0)
    line = stroker.createStroke(path)
    return [name for name, rect in boxes.items() if line.intersects(rect.adjusted(INSET, INSET, -INSET, -INSET))]


def placements(scene: CanvasScene, doc: Document):
    """Every grid offset of ``b`` from ``a`` with the two boxes apart: the edge item, both boxes."""
    a = scene.nodes["a"]
    for dx in OFFSETS_X:
        for dy in OFFSETS_Y:
            doc.graph.move_node("b", (float(dx), float(dy)))
            boxes = {"source": box(a), "target": box(scene.nodes["b"])}
            if boxes_apart(boxes["source"], boxes["target"]):
                yield (dx, dy), scene.edges[next(e for e in scene.edges if e.source == "a")], boxes


@pytest.mark.parametrize("direction", ["TB", "LR"])
@pytest.mark.parametrize("target_type, port", [("Linear", 0), ("Add", 1), ("Concat", 4)])
def test_an_edge_never_runs_through_its_own_nodes(qapp, direction, target_type, port):
    doc = Document(Project(graph_with(target_type, port), "edges"))
    scene = CanvasScene(doc)
    scene.set_direction(direction)
    a, b = scene.nodes["a"], scene.nodes["b"]
    assert len(b.inputs) == (1 if target_type == "Linear" else port + 2)  # variadic: ports off the middle
    failed, tried = [], 0
    for offset, item, boxes in placements(scene, doc):
        tried += 1
        path = item.path()
        assert path.pointAtPercent(0) == a.output_pos() and path.pointAtPercent(1) == b.input_pos(port)
        crossed = crossed_boxes(path, boxes)
        if crossed:
            failed.append((offset, crossed))
    assert tried > 1000
    assert not failed, f"{len(failed)} of {tried} placements cross a node, e.g. {failed[:12]}"
    assert scene.direction == direction  # moving a node by the model kept the direction


@pytest.mark.parametrize("direction", ["TB", "LR"])
def test_the_shape_label_stays_off_both_nodes_when_there_is_room(qapp, direction):
    doc = Document(Project(graph_with("Linear", 0), "labels"))
    scene = CanvasScene(doc)
    scene.set_direction(direction)
    item = scene.edges[Edge("a", "b", 0)]
    item.set_label("[16, 28, 28]")
    width, height = item.label.boundingRect().width(), item.label.boundingRect().height()
    covering = []
    for offset, item, boxes in placements(scene, doc):
        source, target = boxes["source"], boxes["target"]
        room = max(target.left() - source.right(), source.left() - target.right(),
                   target.top() - source.bottom(), source.top() - target.bottom())
        if room < width + 2 * height:
            continue  # nodes this close leave no room for the text between them
        label = item.label.sceneBoundingRect()
        if label.intersects(source) or label.intersects(target):
            covering.append(offset)
    assert not covering, f"the label covers a node at offsets {covering[:12]} ({len(covering)} in all)"


@pytest.mark.parametrize("direction", ["TB", "LR"])
def test_a_path_drawn_without_boxes_assumes_nodes_around_its_ends(direction):
    """The temporary line of a port drag has no target node yet: the boxes follow from the ports."""
    start = QPointF(NODE_W / 2, NODE_H) if direction == "TB" else QPointF(NODE_W, NODE_H / 2)
    source = QRectF(0, 0, NODE_W, NODE_H)
    for end in (QPointF(-300, -200), QPointF(NODE_W / 2, -120), QPointF(500, 10), QPointF(40, 300)):
        path = edge_path(start, end, direction)
        assert path.pointAtPercent(0) == start and path.pointAtPercent(1) == end
        assert not crossed_boxes(path, {"source": source})


def test_the_label_of_a_skip_connection_sits_outside_its_bow(qapp):
    """A residual block drawn top to bottom: the skip edge bows left of the column, and its
    label goes on the outer side of the bow, not over the column of nodes."""
    g = Graph()
    g.add_node(Node("n0", "Input", {"shape": [16, 28, 28]}, (0.0, 0.0)))
    for i, t in enumerate(["ReLU", "Tanh", "ReLU", "Tanh"], start=1):
        g.add_node(Node(f"n{i}", t, {}, (0.0, 110.0 * i)))
        g.add_edge(Edge(f"n{i - 1}", f"n{i}"), check=False)
    g.add_node(Node("add", "Add", {}, (0.0, 550.0)))
    g.add_edge(Edge("n4", "add", 0), check=False)
    g.add_edge(Edge("n0", "add", 1), check=False)
    doc = Document(Project(g, "residual"))
    scene = CanvasScene(doc)
    assert scene.direction == "TB"
    skip = scene.edges[Edge("n0", "add", 1)]
    assert skip.label.text()  # the shape it carries
    label = skip.label.sceneBoundingRect()
    column = [box(item) for item in scene.nodes.values()]
    assert not any(label.intersects(b) for b in column), label
    assert label.right() < min(b.left() for b in column)  # left of the column, beside the bow


def test_the_line_dragged_from_a_port_follows_a_left_to_right_layout(qtbot, window):
    """While a connection is dragged, its line leaves the output on the right side and goes
    around the source towards a point behind it, as the edge it becomes will."""
    g = Graph()
    g.add_node(Node("input", "Input", {"shape": [4]}, (0.0, 0.0)))
    g.add_node(Node("fc", "Linear", {"out_features": 3}, (-400.0, 0.0)))
    window.set_project(Project(g, "drag"))
    scene, view = window.scene, window.view
    scene.set_direction("LR")
    source = scene.nodes["input"]
    start = source.output_pos()
    viewport = view.viewport()
    view.centerOn(start)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=view.mapFromScene(start))
    for end in (QPointF(start.x() - NODE_W - 120, start.y() + 10), QPointF(start.x() - NODE_W - 300, start.y() - 20)):
        qtbot.mouseMove(viewport, view.mapFromScene(end))
        assert scene._connecting is not None
        line = scene._connecting[1].path()
        assert line.pointAtPercent(0) == start
        assert line.pointAtPercent(0.02).x() > start.x()  # out of the right side, not the bottom
        assert not crossed_boxes(line, {"source": box(source)})
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=view.mapFromScene(start))
