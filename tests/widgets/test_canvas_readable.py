"""The canvas stays readable at the default window size with a panel open: fit never
shrinks text below READABLE_PX on screen, it scrolls instead, and a short, wide canvas
lays a chain out left to right (issue 14, item 5)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt

from app.engine.examples import example_path
from app.engine.graph import Edge, Graph, Node
from app.engine.project import Project
from app.widgets.canvas.items import NODE_H, NODE_W, TEXT_PX, NodeItem

DEFAULT_SIZE = (1400, 880)


def settle(qtbot, ms: int = 400) -> None:
    qtbot.wait(ms)  # the layout of the docks, then the view's arrangement once its size settled


def at_default_size(qtbot, window, example: str = "lenet5"):
    window.resize(*DEFAULT_SIZE)
    settle(qtbot)
    assert window.open_file(example_path(example), example=True, ask=False)
    settle(qtbot)
    return window


def open_dock(qtbot, window, name: str) -> None:
    """As Run > Train does: the dock shown, raised, and given half the window's height."""
    dock = window._docks[name]
    dock.show()
    dock.raise_()
    window.resizeDocks([dock], [int(window.height() * 0.5)], Qt.Orientation.Vertical)
    settle(qtbot)


def dark_text_pixels(window, item: NodeItem) -> int:
    """Pixels of text drawn inside a node's box on screen (past its colour strip, inside
    its border): an empty box has none."""
    view = window.view
    image = view.viewport().grab().toImage()
    box = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    inner = QRect(box.left() + int(20 * view.zoom), box.top() + int(12 * view.zoom),
                  box.width() - int(40 * view.zoom), box.height() - int(24 * view.zoom))
    inner = inner.intersected(image.rect())
    dark = 0
    for x in range(inner.left(), inner.right(), 1):
        for y in range(inner.top(), inner.bottom(), 1):
            if image.pixelColor(x, y).lightness() < 110:
                dark += 1
    return dark


@pytest.mark.parametrize("dock", ["training", "issues"])
@pytest.mark.parametrize("example", ["lenet5", "three_conv"])
def test_a_13_node_example_reads_at_the_default_size_with_a_panel_open(qtbot, window, dock, example):
    at_default_size(qtbot, window, example)
    open_dock(qtbot, window, dock)
    view = window.view
    assert view.viewport().height() < 420  # the short canvas the issue saw (~300 px)
    view.fit()
    assert view.text_pixel_size() >= 9.0
    assert TEXT_PX * view.transform().m11() >= 9.0
    shown = [i for i in window.scene.nodes.values()
             if view.viewport().rect().contains(view.mapFromScene(i.sceneBoundingRect()).boundingRect())]
    assert len(shown) >= 8, len(shown)  # most of the graph at once, left to right
    for item in shown:
        assert item.detail(view.zoom) == "text"
        assert dark_text_pixels(window, item) > 40, item.node_id  # type, id and shape are drawn


def test_the_canvas_reads_on_a_later_start_with_the_training_dock_restored(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from app.widgets.main_window import MainWindow

    settings = QSettings(str(tmp_path / "later.ini"), QSettings.Format.IniFormat)
    first = MainWindow(settings=settings)
    qtbot.addWidget(first, before_close_func=lambda w: w.doc.history.set_clean())
    first.show()
    qtbot.waitExposed(first)
    open_dock(qtbot, first, "training")
    first.close()  # saves the layout with the big training dock
    later = MainWindow(settings=settings)
    qtbot.addWidget(later, before_close_func=lambda w: w.doc.history.set_clean())
    assert later.open_file(example_path("lenet5"), example=True, ask=False)
    later.show()
    qtbot.waitExposed(later)
    settle(qtbot)
    view = later.view
    assert view.viewport().height() < 420
    assert view.text_pixel_size() >= 9.0
    assert later.scene.nodes["input"].detail(view.zoom) == "text"
    assert not later.doc.dirty  # fitting the view to the canvas is no unsaved change


def test_fit_scrolls_from_the_input_instead_of_shrinking_text(qtbot, window):
    at_default_size(qtbot, window, "resnet")  # 21 nodes: they never fit at a readable size
    view = window.view
    window.scene.auto_arrange = False  # top to bottom, as the file has it
    view.fit()
    assert window.scene.direction == "TB"
    assert view.zoom == pytest.approx(view.readable_zoom())
    assert view.text_pixel_size() == pytest.approx(9.0)
    assert view.verticalScrollBar().maximum() > view.verticalScrollBar().minimum()
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(window.scene.nodes["input"].sceneBoundingRect())  # it starts at the input
    assert not seen.contains(window.scene.nodes["fc"].sceneBoundingRect())  # and scrolls to the end
    view.ensureVisible(window.scene.nodes["fc"])  # the rest is a scroll away
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(window.scene.nodes["fc"].sceneBoundingRect())


def test_a_small_graph_is_fitted_whole_and_not_blown_up(qtbot, window):
    at_default_size(qtbot, window, "xor")
    view = window.view
    view.fit()
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.contains(window.scene.nodes_rect())
    assert view.readable_zoom() <= view.zoom <= 1.5
    assert window.scene.direction == "TB"  # it fits: nothing to rearrange


def test_the_level_of_detail_follows_the_text_size_on_screen(window):
    item = next(iter(window.scene.nodes.values()), None) or NodeItem(Node("x", "ReLU", {}), window.scene.theme)
    assert item.detail(1.0) == "text"
    assert item.detail(0.45) == "text"  # 5.4 px: small but there (the old threshold hid it at 0.35 zoom)
    assert item.detail(0.3) == "type"  # 3.6 px lines are a smear: the type name, large
    assert item.detail(0.02) == "box"


def test_a_short_wide_canvas_lays_a_chain_out_left_to_right_and_back(qtbot, window):
    at_default_size(qtbot, window)
    scene, stack = window.scene, window.doc.history
    before = {i: n.position for i, n in window.doc.graph.nodes.items()}
    assert scene.direction == "TB" and stack.count == 0
    open_dock(qtbot, window, "training")
    view = window.view
    assert view.viewport().width() >= 1.6 * view.viewport().height()
    assert scene.direction == "LR"
    pos = {i: n.position for i, n in window.doc.graph.nodes.items()}
    first_band = [i for i in ("input", "conv1", "relu1") if pos[i][1] == pos["input"][1]]
    assert first_band == ["input", "conv1", "relu1"]
    assert pos["input"][0] < pos["conv1"][0] < pos["relu1"][0]
    conv1 = scene.nodes["conv1"]  # ports on the sides, edges from right to left side
    assert conv1.output_port.pos().x() == NODE_W and conv1.inputs[0].pos().x() == 0
    path = scene.edges[Edge("input", "conv1", 0)].path()
    assert path.pointAtPercent(0).x() < path.pointAtPercent(1).x()
    assert path.pointAtPercent(0) == scene.nodes["input"].output_pos()
    assert not window.doc.dirty and stack.can_undo  # undoable, yet no unsaved change
    window._docks["training"].hide()
    settle(qtbot)
    assert scene.direction == "LR"  # 870 x 600 px: left to right still shows more (all of it)
    window.resize(1000, 1300)  # a tall canvas: the original layout returns
    settle(qtbot)
    assert view.viewport().height() > view.viewport().width()
    assert scene.direction == "TB"
    assert {i: n.position for i, n in window.doc.graph.nodes.items()} == before
    assert stack.count == 0 and not window.doc.dirty


def test_undoing_the_automatic_layout_stops_it(qtbot, window):
    at_default_size(qtbot, window)
    before = {i: n.position for i, n in window.doc.graph.nodes.items()}
    open_dock(qtbot, window, "training")
    assert window.scene.direction == "LR"
    window.doc.history.undo()
    assert window.scene.direction == "TB"
    assert {i: n.position for i, n in window.doc.graph.nodes.items()} == before
    window.view.fit()
    settle(qtbot)
    assert window.scene.direction == "TB" and not window.scene.auto_arrange
    assert window.view.text_pixel_size() >= 9.0  # still readable: it scrolls


def test_undoing_the_automatic_layout_of_a_clean_document_leaves_it_clean(qtbot, window):
    at_default_size(qtbot, window)
    assert window.doc.history.is_clean
    open_dock(qtbot, window, "training")
    assert window.scene.direction == "LR" and window.doc.history.is_clean
    dirty = []
    window.doc.dirty_changed.connect(dirty.append)
    window.doc.history.undo()
    assert window.doc.history.is_clean and dirty == []  # at once, never dirty on the way
    settle(qtbot, 100)
    assert window.doc.history.is_clean and not window.isWindowModified()
    window.doc.history.redo()  # the layout again, as a step of its own: a change to save
    assert window.doc.dirty


def test_the_automatic_layout_never_throws_the_users_redo_steps_away(qtbot, window):
    at_default_size(qtbot, window)
    window.editor.set_params("conv1", {"out_channels": 8, "kernel_size": 5})
    window.doc.history.undo()
    assert window.doc.history.can_redo
    open_dock(qtbot, window, "training")
    assert window.doc.history.can_redo and window.scene.direction == "TB"
    window.doc.history.redo()
    assert window.doc.graph.nodes["conv1"].params["out_channels"] == 8


def test_a_drawing_placed_by_hand_is_not_rearranged(qtbot, window):
    g = Graph()
    for i, (t, p) in enumerate([("Input", (0, 900)), ("ReLU", (0, 450)), ("Tanh", (0, 0))]):
        g.add_node(Node(f"n{i}", t, {"shape": [2]} if t == "Input" else {}, p))
    g.add_edge(Edge("n0", "n1"))
    g.add_edge(Edge("n1", "n2"))  # upwards: placed so on purpose
    window.set_project(Project(g, "by hand"))
    window.resize(*DEFAULT_SIZE)
    open_dock(qtbot, window, "training")
    window.view.fit()
    settle(qtbot)
    assert {i: n.position for i, n in window.doc.graph.nodes.items()} == \
        {"n0": (0.0, 900.0), "n1": (0.0, 450.0), "n2": (0.0, 0.0)}


def test_left_to_right_layout_on_request_is_undoable(window):
    g = Graph()
    for i, t in enumerate(["Input", "ReLU", "Tanh"]):
        g.add_node(Node(f"n{i}", t, {"shape": [2]} if t == "Input" else {}, (0, 100 * i)))
    g.add_edge(Edge("n0", "n1"))
    g.add_edge(Edge("n1", "n2"))
    window.set_project(Project(g, "test"))
    scene = window.scene
    before = {i: n.position for i, n in window.doc.graph.nodes.items()}
    assert scene.apply_layout("LR")
    xs = [window.doc.graph.nodes[f"n{i}"].position[0] for i in range(3)]
    ys = {window.doc.graph.nodes[f"n{i}"].position[1] for i in range(3)}
    assert xs == sorted(xs) and len(set(xs)) == 3 and len(ys) == 1
    assert scene.direction == "LR" and not scene.auto_arrange  # the user's choice stays
    assert window.doc.history.undo_text == "Left-to-right layout" and window.doc.dirty
    window.doc.history.undo()
    assert {i: n.position for i, n in window.doc.graph.nodes.items()} == before
    assert scene.direction == "TB"
    window.doc.history.redo()
    assert scene.direction == "LR"
    # a node added without a place goes to the right of the others, where the flow continues
    assert scene._free_spot()[0] > max(x for x in xs)


def test_a_dock_cannot_squeeze_the_canvas_below_two_readable_rows(qtbot, window):
    at_default_size(qtbot, window)
    dock = window._docks["training"]
    dock.show()
    window.resizeDocks([dock], [window.height()], Qt.Orientation.Vertical)  # as a saved layout may ask
    settle(qtbot)
    view = window.view
    assert view.height() >= 260 and view.width() >= 400
    view.fit()
    assert view.text_pixel_size() >= 9.0
    shown = [i for i in window.scene.nodes.values()
             if view.viewport().rect().contains(view.mapFromScene(i.sceneBoundingRect()).boundingRect())]
    assert len(shown) >= 4, len(shown)  # two rows of a left-to-right layout, or four layers down


def test_ports_follow_a_top_to_bottom_layout_after_a_left_to_right_one(qtbot, window):
    at_default_size(qtbot, window, "mlp")
    scene = window.scene
    assert scene.apply_layout("LR") and scene.direction == "LR"
    window.actions_by_name["layout"].trigger()  # Auto Layout: top to bottom
    qtbot.waitUntil(lambda: scene.direction == "TB", timeout=2000)
    item = next(i for i in scene.nodes.values() if i.inputs)
    assert item.inputs[0].pos().y() == 0 and item.output_port.pos().y() == NODE_H  # top and bottom again
    # a drag of one node never flips them
    node_id = next(iter(scene.nodes))
    x, y = window.doc.graph.nodes[node_id].position
    window.doc.graph.move_node(node_id, (x + 2000, y))
    qtbot.wait(50)
    assert scene.direction == "TB"


def test_edge_labels_show_at_the_readable_zoom_and_hide_when_they_would_be_a_smear(qtbot, window):
    at_default_size(qtbot, window)
    open_dock(qtbot, window, "training")
    window.view.fit()
    labels = [e.label for e in window.scene.edges.values()]
    assert all(label.isVisible() for label in labels)
    assert labels[0].font().pixelSize() * window.view.zoom >= 9.0
    window.scene.set_zoom(0.3)
    assert not any(label.isVisible() for label in labels)


def test_left_to_right_from_the_view_wraps_to_the_canvas_and_fits_readably(qtbot, window):
    at_default_size(qtbot, window)  # 870 x 600 px: top to bottom by itself
    view, scene = window.view, window.scene
    assert scene.direction == "TB"
    assert view.arrange("LR")
    assert scene.direction == "LR" and not scene.auto_arrange
    pos = {i: n.position for i, n in window.doc.graph.nodes.items()}
    assert len({y for _, y in pos.values()}) >= 2  # wrapped into bands, not one long row
    assert view.text_pixel_size() >= 9.0
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert all(seen.contains(i.sceneBoundingRect()) for i in scene.nodes.values())  # all 13, readable
    window.doc.history.undo()
    assert scene.direction == "TB"


def test_the_place_after_a_layer_follows_the_direction(window):
    g = Graph()
    g.add_node(Node("a", "Input", {"shape": [2]}, (0, 0)))
    window.set_project(Project(g, "one"))
    scene = window.scene
    centre = scene.nodes["a"].sceneBoundingRect().center()
    below = scene.centre_after("a")
    assert below.x() == centre.x() and below.y() > centre.y() + 66
    scene.set_direction("LR")
    right = scene.centre_after("a")
    assert right.y() == centre.y() and right.x() > centre.x() + NODE_W


def test_a_saved_layout_that_squeezed_the_canvas_is_restored_with_room_for_it(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings, QSize

    from app.widgets.canvas.view import CanvasView
    from app.widgets.main_window import MainWindow

    settings = QSettings(str(tmp_path / "squeezed.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(CanvasView, "minimumSizeHint", lambda self: QSize(40, 40))  # as before the fix
    old = MainWindow(settings=settings)
    qtbot.addWidget(old, before_close_func=lambda w: w.doc.history.set_clean())
    old.resize(*DEFAULT_SIZE)
    old.show()
    qtbot.waitExposed(old)
    dock = old._docks["training"]
    dock.show()
    old.resizeDocks([dock], [old.height()], Qt.Orientation.Vertical)
    settle(qtbot)
    assert old.view.height() < 200  # the layout a user of the old version saved
    old.close()
    monkeypatch.undo()
    later = MainWindow(settings=settings)
    qtbot.addWidget(later, before_close_func=lambda w: w.doc.history.set_clean())
    later.resize(*DEFAULT_SIZE)
    later.show()
    qtbot.waitExposed(later)
    settle(qtbot)
    assert later.view.height() >= 260
