"""Where new layers land (never on top of another), and the system clipboard."""

from __future__ import annotations

import json

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QCursor, QGuiApplication

from app.engine.graph import Edge
from app.engine.session.clipboard import CLIPBOARD_KEY


def _overlapping(window, node_id: str) -> list[str]:
    rect = window.scene.nodes[node_id].sceneBoundingRect()
    return [other for other, item in window.scene.nodes.items()
            if other != node_id and item.sceneBoundingRect().intersects(rect)]


def test_a_layer_added_with_tab_over_a_layer_lands_in_free_space_beside_it(qtbot, lenet):
    window = lenet
    target = window.scene.nodes["conv2"]
    window.view.centerOn(target)
    where = window.view.mapFromScene(target.sceneBoundingRect().center())
    QCursor.setPos(window.view.viewport().mapToGlobal(where))  # the mouse over conv2
    window.view.setFocus()
    before = set(window.doc.graph.nodes)
    qtbot.keyClick(window.view, Qt.Key.Key_Tab)
    edit = window.view._quick_add
    assert edit is not None and edit.isVisible()
    qtbot.keyClicks(edit, "Dropout")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    (new,) = set(window.doc.graph.nodes) - before
    assert window.doc.graph.nodes[new].type == "Dropout"
    assert _overlapping(window, new) == []
    centre, asked = window.scene.nodes[new].sceneBoundingRect().center(), target.sceneBoundingRect().center()
    assert (centre - asked).manhattanLength() < 3 * target.sceneBoundingRect().width()  # near where asked


def test_layers_added_at_one_place_again_and_again_never_cover_each_other(lenet):
    window = lenet
    spot = window.scene.nodes["fc1"].sceneBoundingRect().center()
    added = [window.editor.add_layer("ReLU", spot) for _ in range(8)]
    for node_id in added + ["fc1", "relu3"]:
        assert _overlapping(window, node_id) == [], node_id
    window.scene.select_nodes(["conv1"])  # the palette's double-click: below conv1, though relu1 is there
    window.palette.layer_activated.emit("BatchNorm2d")
    (new,) = window.scene.selected_node_ids()
    assert _overlapping(window, new) == []
    assert any(e.source == "conv1" and e.target == new for e in window.doc.graph.edges)


def test_layers_added_far_out_where_the_canvas_shows_its_overview_never_cover_each_other(lenet):
    window = lenet
    window.view.zoom_by(0.05 / window.view.zoom)  # the overview: the node items are hidden
    assert not window.scene.nodes["fc1"].isVisible()
    spot = window.scene.nodes["fc1"].sceneBoundingRect().center()
    added = [window.editor.add_layer("ReLU", spot) for _ in range(3)]
    for node_id in added + ["fc1"]:
        assert _overlapping(window, node_id) == [], node_id


def test_a_free_spot_is_kept(lenet):
    far = lenet.scene.nodes_rect().bottomRight() + QPoint(500, 500)
    assert lenet.editor.free_spot(far) == far


def test_copy_puts_our_layers_on_the_system_clipboard_and_paste_reads_them_back(lenet):
    window = lenet
    window.scene.select_nodes(["conv1", "relu1"])
    assert window.editor.copy()
    text = QGuiApplication.clipboard().text()
    assert json.loads(text)[CLIPBOARD_KEY] == 1
    new = window.editor.paste()
    assert new == ["conv3", "relu5"] and set(window.scene.selected_node_ids()) == set(new)
    assert Edge("conv3", "relu5", 0) in window.doc.graph.edges
    x, y = window.doc.graph.nodes["conv1"].position
    assert window.doc.graph.nodes["conv3"].position == (x + 40, y + 40)
    window.scene.select_nodes([])
    assert not window.editor.copy() and QGuiApplication.clipboard().text() == text  # nothing selected: kept


def test_pasting_other_text_does_nothing_and_broken_layers_say_why(lenet):
    window = lenet
    steps = window.doc.history.count
    QGuiApplication.clipboard().setText("some notes, not layers")
    assert window.editor.paste() == []
    QGuiApplication.clipboard().setText(json.dumps({CLIPBOARD_KEY: 1, "nodes": [{"id": "a", "type": 3}]}))
    messages = []
    window.scene.message.connect(messages.append)
    assert window.editor.paste() == []
    assert window.doc.history.count == steps and len(window.doc.graph.nodes) == 13
    assert messages and messages[0].startswith("Cannot paste: the layers copied") and "type" in messages[0]
    assert window.statusBar().currentMessage() == messages[0]
