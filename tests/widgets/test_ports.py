"""Ports of nodes with several inputs or outputs on the canvas (named, with the shape on
each), edges from output port k, repeated and frozen nodes, through real events."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from app.engine.graph import Edge, Graph, Node
from app.engine.project import Project
from app.engine.session.commands import SetParams
from app.engine.session.option_commands import SetOptions
from app.widgets.canvas.items import NODE_H, NODE_W


def attention_graph() -> Graph:
    """x -> LSTM (sequence, hidden); MHA(query=LSTM.sequence, key=x, value=x) -> its weights
    feed the head; the hidden state is free for a test to connect."""
    g = Graph()
    for n in [Node("x", "Input", {"shape": [10, 16]}, (0, 0)), Node("lstm", "LSTM", {"hidden_size": 16}, (0, 150)),
              Node("mha", "MultiheadAttention", {"num_heads": 2}, (0, 320)),
              Node("flat", "Flatten", {}, (0, 480)), Node("fc", "Linear", {"out_features": 3}, (300, 480))]:
        g.add_node(n)
    for e in [Edge("x", "lstm"), Edge("lstm", "mha"), Edge("x", "mha", 1), Edge("x", "mha", 2),
              Edge("mha", "flat", 0, 1)]:
        g.add_edge(e)
    return g


def open_graph(window, g: Graph) -> None:
    window.set_project(Project(g, "ports"))


def drag(qtbot, window, start: QPointF, end: QPointF, steps: int = 6) -> None:
    view = window.view
    viewport = view.viewport()
    a, b = view.mapFromScene(start), view.mapFromScene(end)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(viewport, a + (b - a) * i / steps)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=b)


def pill_texts(item) -> list[str]:
    return [" ".join(text for text, _ in pill.lines) for pill in item._pills]


def test_named_ports_show_their_names_and_shapes(window):
    open_graph(window, attention_graph())
    mha, lstm = window.scene.nodes["mha"], window.scene.nodes["lstm"]
    assert [mha.port_name(False, k) for k in range(3)] == ["query", "key", "value"]
    assert [mha.port_name(True, k) for k in range(2)] == ["output", "weights"]
    assert [lstm.port_name(True, k) for k in range(2)] == ["sequence", "hidden"]
    texts = pill_texts(mha)
    assert len(texts) == 5
    for name in ("query", "key", "value", "output"):
        assert any(t.startswith(name) and "[10, 16]" in t for t in texts), texts
    assert any(t.startswith("weights") and "[10, 10]" in t for t in texts), texts  # unconnected: still its shape
    assert any(t.startswith("hidden") and "[16]" in t for t in pill_texts(lstm))
    assert lstm.outputs[1].tooltip() == "output 1: hidden [16]"
    # labels outside the box, inputs above and outputs below, apart from each other
    rects = [p.rect for p in mha._pills]
    assert all(r.bottom() < 0 or r.top() > NODE_H for r in rects)
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    assert all(mha.boundingRect().contains(r) for r in rects)


def test_edges_leave_from_their_output_port(window):
    open_graph(window, attention_graph())
    scene = window.scene
    mha = scene.nodes["mha"]
    assert mha.output_pos(1) != mha.output_pos(0)
    weights = scene.edges[Edge("mha", "flat", 0, 1)]
    assert weights.path().pointAtPercent(0) == mha.output_pos(1)
    assert weights.label.text() == ""  # the port's label says the shape; the edge does not repeat it


def test_dragging_from_output_port_1_connects_source_port_1_undoably(qtbot, window):
    g = attention_graph()
    g.add_node(Node("hid", "Linear", {"out_features": 4}, (300, 320)))
    open_graph(window, g)
    scene, lstm = window.scene, window.scene.nodes["lstm"]
    window.view.centerOn(lstm.sceneBoundingRect().center())
    drag(qtbot, window, lstm.output_pos(1), scene.nodes["hid"].input_pos(0))
    assert Edge("lstm", "hid", 0, 1) in window.doc.graph.edges
    assert window.doc.analysis.shapes["hid"] == (4,)  # the hidden state [16], not the sequence
    assert scene.edges[Edge("lstm", "hid", 0, 1)].path().pointAtPercent(0) == lstm.output_pos(1)
    window.doc.history.undo()
    assert not [e for e in window.doc.graph.edges if e.target == "hid"]


def test_split_shows_one_port_per_part_and_follows_its_sizes(window):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [16]}, (0, 0)))
    g.add_node(Node("split", "Split", {"sizes": [4, 4, 8]}, (0, 150)))
    g.add_edge(Edge("x", "split"))
    open_graph(window, g)
    item = window.scene.nodes["split"]
    assert [item.port_name(True, k) for k in range(len(item.outputs))] == ["part 0", "part 1", "part 2"]
    assert any("part 2" in t and "[8]" in t for t in pill_texts(item))
    window.doc.push(SetParams(window.doc.model, "split", {"sizes": [8, 8]}))
    assert len(item.outputs) == 2
    window.doc.history.undo()
    assert len(item.outputs) == 3


def test_one_port_nodes_look_as_before(window):
    open_graph(window, attention_graph())
    flat = window.scene.nodes["flat"]
    assert flat._pills == [] and flat.labels_side(False) == "" and flat.labels_side(True) == ""
    assert flat.output_port.pos() == QPointF(NODE_W / 2, NODE_H) and flat.inputs[0].pos() == QPointF(NODE_W / 2, 0)
    r = 6.0 + 3
    assert flat.boundingRect() == flat.shape().boundingRect() == flat.boundingRect().__class__(-r, -r, NODE_W + 2 * r,
                                                                                              NODE_H + 2 * r)


def test_merge_slots_are_numbered_and_keep_their_edge_labels(window):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [4]}, (0, 0)))
    g.add_node(Node("a", "ReLU", {}, (0, 150)))
    g.add_node(Node("add", "Add", {}, (0, 300)))
    for e in [Edge("x", "a"), Edge("a", "add"), Edge("x", "add", 1)]:
        g.add_edge(e)
    open_graph(window, g)
    add = window.scene.nodes["add"]
    assert pill_texts(add) == ["0", "1", "2"]  # two connected slots and the free one
    assert window.scene.edges[Edge("x", "add", 1)].label.text() == "[4]"


def test_new_shapes_on_a_merges_slots_relabel_nothing_but_reach_its_hovered_port(window, monkeypatch):
    """A merge's slots are labeled by number, so the shapes that change on them (an edit that
    breaks an Add changes a hundred merges' inputs) lay none of its labels out again; the
    slot the mouse is on still says its new shape."""
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [4]}, (0, 0)))
    g.add_node(Node("a", "Linear", {"out_features": 4}, (0, 150)))
    g.add_node(Node("add", "Add", {}, (0, 300)))
    for e in [Edge("x", "a"), Edge("a", "add"), Edge("x", "add", 1)]:
        g.add_edge(e)
    open_graph(window, g)
    add = window.scene.nodes["add"]
    slot = add.inputs[0]
    slot.hoverEnterEvent(None)
    assert slot.toolTip() == "input 0 [4]" and slot.tooltip() == "input 0 [4]"
    laid_out = []
    monkeypatch.setattr(type(add), "_layout_extras", lambda item: laid_out.append(item.node_id))
    window.doc.push(SetParams(window.doc.model, "a", {"out_features": 6}))
    assert add.input_shapes[0] == "[6]" and add.severity == "error"
    assert slot.toolTip() == "input 0 [6]"  # hovered: written at once
    assert add.inputs[1].toolTip() == "" and add.inputs[1].tooltip() == "input 1 [4]"  # the others: when hovered
    assert laid_out == []
    monkeypatch.undo()
    mha = attention_graph()
    open_graph(window, mha)
    item = window.scene.nodes["mha"]
    window.doc.push(SetParams(window.doc.model, "lstm", {"hidden_size": 8}))
    assert any(t.startswith("query") and "[10, 8]" in t for t in pill_texts(item))  # named slots: relabeled


def test_layout_keeps_port_labels_of_neighbouring_layers_apart(window):
    open_graph(window, attention_graph())
    scene = window.scene
    scene.apply_layout("TB")
    lstm, mha = scene.nodes["lstm"], scene.nodes["mha"]
    below, above = lstm.label_rects(), [r for r in mha.label_rects() if r.bottom() <= mha.box().top()]
    assert len(below) == 2 and len(above) == 3
    assert not any(a.intersects(b) for a in below for b in above)


def render(window, node_id: str) -> QImage:
    """The scene around the node's box, 20 units more on each side."""
    rect = window.scene.nodes[node_id].box().adjusted(-20, -20, 20, 20)
    image = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    window.scene.render(painter, image.rect().toRectF(), rect)
    painter.end()
    return image


def test_repeated_node_is_a_stack_with_its_count_and_a_frozen_one_is_marked(window):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [10, 16]}, (0, 0)))
    g.add_node(Node("enc", "TransformerEncoderLayer", {"nhead": 2}, (0, 150)))
    g.add_edge(Edge("x", "enc"))
    open_graph(window, g)
    scene = window.scene
    item = scene.nodes["enc"]
    plain_rect, plain_fill, plain_image = item.boundingRect(), item.fill(), render(window, "enc")
    window.doc.push(SetOptions(window.doc.model, "enc", repeat=12))
    assert item.repeat_text() == "×12" and "Repeated ×12" in item.tooltip()
    assert item.boundingRect().top() < plain_rect.top() and item.boundingRect().right() > plain_rect.right()
    image = render(window, "enc")
    # the cards behind show above the box's right part (where no edge runs)
    assert all(image.pixelColor(x, 20 - 3) != plain_image.pixelColor(x, 20 - 3) for x in range(170, 210))
    window.doc.push(SetOptions(window.doc.model, "enc", trainable=False))
    assert item.fill() != plain_fill and "Frozen" in item.tooltip()
    window.doc.history.undo()
    window.doc.history.undo()
    assert item.repeat == 1 and item.trainable and item.fill() == plain_fill


def test_the_tooltip_of_the_node_under_the_mouse_follows_an_edit(window, qtbot):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [4]}, (0, 0)))
    g.add_node(Node("a", "Linear", {"out_features": 4}, (0, 150)))
    g.add_edge(Edge("x", "a"))
    open_graph(window, g)
    item, view = window.scene.nodes["a"], window.view
    view.centerOn(item)
    qtbot.mouseMove(view.viewport(), view.mapFromScene(item.box().center()))
    qtbot.waitUntil(lambda: "[4]" in item.toolTip())
    window.doc.push(SetParams(window.doc.model, "a", {"out_features": 7}))
    assert "[7]" in item.toolTip()  # rewritten while the mouse is on it
    qtbot.mouseMove(view.viewport(), view.mapFromScene(item.box().center() + QPointF(0, 400)))
    qtbot.waitUntil(lambda: not item._hovered)
    window.doc.push(SetParams(window.doc.model, "a", {"out_features": 9}))
    assert "[7]" in item.toolTip()  # (left as it was: written again when the mouse comes back)
