"""The canvas writes an incremental analysis onto the nodes it names only (Analysis.changed):
after every kind of edit, what each node and edge shows equals a canvas built afresh."""

from __future__ import annotations

import random

from PySide6.QtCore import QPointF

from app.engine.examples import load_example
from app.engine.graph import Edge
from app.engine.session.commands import Connect, RemoveItems
from app.widgets.canvas.scene import CanvasScene


def shown(scene: CanvasScene) -> tuple[dict, dict]:
    nodes = {i: (it.summary, it.shape_text, it.problem, it.severity, tuple(it.input_shapes), tuple(it.output_shapes))
             for i, it in scene.nodes.items()}
    edges = {(e.source, e.target, e.target_port): it._label_text for e, it in scene.edges.items()}
    return nodes, edges


def test_every_edit_leaves_the_canvas_as_a_fresh_one_shows_it(window):
    window.set_project(load_example("resnet"))
    doc, editor, rng = window.doc, window.editor, random.Random(3)
    convs = sorted(i for i, n in doc.graph.nodes.items() if n.type == "Conv2d")
    edits = [
        lambda: editor.set_params(convs[1], {**doc.graph.nodes[convs[1]].params, "out_channels": 24}),  # breaks an Add
        lambda: doc.history.undo(),
        lambda: editor.add_layer("ReLU", QPointF(900, 900), connect_from=convs[0]),
        lambda: doc.push(RemoveItems(doc.model, [convs[2]], graph=doc.graph)),
        lambda: doc.history.undo(),
        lambda: doc.push(RemoveItems(doc.model, [], [doc.graph.edges[rng.randrange(len(doc.graph.edges))]],
                                     graph=doc.graph)),
        lambda: doc.history.undo(),
        lambda: doc.push(Connect(doc.model, Edge(convs[0], convs[-1], 0), graph=doc.graph)),  # a second feed: an error
        lambda: doc.history.undo(),
    ]
    partial = 0
    for edit in edits:
        edit()
        partial += doc.analysis.changed is not None
        fresh = CanvasScene(doc)
        assert shown(window.scene) == shown(fresh)
    assert partial >= len(edits) - 2  # the edits were incremental: the partial path was taken


def test_an_edit_of_one_layer_rewrites_that_layer_not_the_others(window, monkeypatch):
    window.set_project(load_example("resnet"))
    scene, doc = window.scene, window.doc
    written: list[str] = []
    for node_id, item in scene.nodes.items():
        original = item.set_info
        monkeypatch.setattr(item, "set_info", lambda *a, _o=original, _i=node_id: (written.append(_i), _o(*a))[1])
    last = next(i for i in reversed(list(doc.graph.nodes)) if doc.graph.nodes[i].type == "Linear")
    window.editor.set_params(last, {**doc.graph.nodes[last].params, "out_features": 7})
    assert doc.analysis.changed is not None
    assert written == [last]
    assert "7" in scene.nodes[last].shape_text
