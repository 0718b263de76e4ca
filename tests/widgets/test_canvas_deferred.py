"""An edit that changes more than ``DEFER_AT`` nodes and edges writes the ones on screen at
once and the rest in idle slices (canvas/facts.py): what is in view is right at once, what
comes into view is written before it is painted, and in the end the canvas equals a fresh
one."""

from __future__ import annotations

from app.engine.graph import Edge, Graph, Node
from app.engine.project import Project
from app.widgets.canvas import facts as facts_module
from app.widgets.canvas.scene import CanvasScene
from tests.widgets.test_canvas_partial import shown

CHAIN = 300


def long_graph() -> Graph:
    """x -> a -> add(a, x) -> l1 -> ... -> l300, top to bottom: widening ``a`` breaks the Add
    and turns every shape below it unknown."""
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [4]}, (0, 0)))
    g.add_node(Node("a", "Linear", {"out_features": 4}, (0, 150)))
    g.add_node(Node("add", "Add", {}, (0, 300)))
    for e in (Edge("x", "a"), Edge("a", "add"), Edge("x", "add", 1)):
        g.add_edge(e)
    previous = "add"
    for k in range(1, CHAIN + 1):
        g.add_node(Node(f"l{k}", "ReLU" if k % 2 else "Linear", {} if k % 2 else {"out_features": 4},
                        (0, 300 + 150 * k)))
        g.add_edge(Edge(previous, f"l{k}"))
        previous = f"l{k}"
    return g


def on_screen(window) -> set[str]:
    view = window.view
    return {i.node_id for i in window.scene.nodes_near(view.mapToScene(view.viewport().rect()).boundingRect())}


def open_at_top(window) -> None:
    window.set_project(Project(long_graph(), "long"))
    window.view.zoom_by(1 / window.view.zoom)  # zoom 1: a handful of nodes in view
    window.view.centerOn(window.scene.nodes["add"])
    window.view.viewport().repaint()
    facts = window.scene.facts
    while facts.pending:
        facts._slice()


def test_a_large_edit_writes_the_view_first_and_the_rest_in_idle_slices(window, qtbot):
    open_at_top(window)
    scene, doc, facts = window.scene, window.doc, window.scene.facts
    window.editor.set_params("a", {"out_features": 6})
    assert doc.analysis.changed is not None and not doc.analysis.ok
    seen = on_screen(window)
    assert {"add", "l1"} <= seen
    assert scene.nodes["add"].severity == "error" and scene.nodes["l1"].shape_text == "→ ?"
    assert f"l{CHAIN}" in facts.pending_nodes and scene.nodes[f"l{CHAIN}"].shape_text != "→ ?"  # not yet
    assert not seen & facts.pending_nodes
    slices = facts.slices
    qtbot.waitUntil(lambda: not facts.pending, timeout=5000)
    assert facts.slices - slices >= 2  # in several turns of the event loop, not one
    assert shown(scene) == shown(CanvasScene(doc))


def test_what_comes_into_view_is_written_before_it_is_painted(window):
    open_at_top(window)
    scene, view, facts = window.scene, window.view, window.scene.facts
    window.editor.set_params("a", {"out_features": 6})
    facts._timer.stop()  # no idle turn: only the paint writes
    far = f"l{CHAIN // 2}"
    view.centerOn(scene.nodes[far])
    assert far in facts.pending_nodes
    view.viewport().repaint()
    assert scene.nodes[far].shape_text == "→ ?"
    assert not on_screen(window) & facts.pending_nodes
    into_far = next(e for e in scene.edges if e.target == far)
    assert into_far not in facts.pending_edges and scene.edges[into_far].label.text() == "?"
    assert facts.pending  # the rest still waits
    window.doc.history.undo()  # an edit before the rest was written: the latest analysis wins
    facts.flush()
    assert shown(scene) == shown(CanvasScene(window.doc))
    assert "[4]" in scene.nodes[far].shape_text


def test_a_layout_writes_everything_first(window, monkeypatch):
    open_at_top(window)
    scene, facts = window.scene, window.scene.facts
    window.editor.set_params("a", {"out_features": 6})
    facts._timer.stop()
    assert facts.pending
    scene.layout_positions("TB")
    assert not facts.pending


def test_small_edits_and_hidden_views_write_at_once(window, monkeypatch):
    open_at_top(window)
    facts = window.scene.facts
    monkeypatch.setattr(facts_module, "DEFER_AT", 10_000)
    window.editor.set_params("a", {"out_features": 6})
    assert not facts.pending
    window.doc.history.undo()
    monkeypatch.undo()
    window.hide()
    window.editor.set_params("a", {"out_features": 6})
    assert not facts.pending and window.scene.nodes[f"l{CHAIN}"].shape_text == "→ ?"


def test_far_out_the_hidden_items_wait_until_they_can_be_read(window):
    open_at_top(window)
    scene, view, facts = window.scene, window.view, window.scene.facts
    view.zoom_by(0.05 / view.zoom)
    assert scene.in_overview  # two paths draw the graph: no node's text is shown
    window.editor.set_params("a", {"out_features": 6})
    facts._timer.stop()
    assert {"add", "l1"} <= facts.pending_nodes
    view.zoom_by(1 / view.zoom)
    view.centerOn(scene.nodes["add"])
    view.viewport().repaint()
    assert not scene.in_overview and scene.nodes["add"].severity == "error"
    assert scene.nodes["l1"].shape_text == "→ ?"


def test_opening_a_large_graph_writes_what_is_in_view_first(window, qtbot):
    window.set_project(Project(long_graph(), "long"))  # the view shows its top, where (0, 0) is
    scene, facts = window.scene, window.scene.facts
    assert f"l{CHAIN}" in facts.pending_nodes  # (an edge's empty label at 0, 0 does not pull it in)
    window.view.viewport().repaint()
    assert not on_screen(window) & facts.pending_nodes
    qtbot.waitUntil(lambda: not facts.pending, timeout=5000)
    assert shown(scene) == shown(CanvasScene(window.doc))
