"""Small builders shared by the tests."""

from __future__ import annotations

import os

from app.engine.graph import Edge, Graph, Node


def chain(*layers: tuple) -> Graph:
    """A graph of layers connected in a row: chain(("input", "Input", {"shape": [2]}), ...)."""
    g = Graph()
    for node_id, type_name, *params in layers:
        g.add_node(Node(node_id, type_name, dict(params[0]) if params else {}))
    ids = list(g.nodes)
    for a, b in zip(ids, ids[1:]):
        g.add_edge(Edge(a, b))
    return g


def shown(qtbot, widget, width: int, height: int):
    """``widget`` at ``width`` x ``height`` on screen (offscreen), closed after the test."""
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def gone(pid: int) -> bool:
    """No process, not even a zombie, has this id (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def without_metadata(path, out=None):
    """A copy of the ONNX file ``path`` without the project NetCanvas records in it, so that
    it imports as its ops say (as a file from another tool would). Returns its path."""
    import onnx  # (here: most tests that use these helpers need no ONNX)

    from app.engine.importers.onnx_project import PROJECT_KEY, WEIGHTS_KEY
    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in (PROJECT_KEY, WEIGHTS_KEY)]
    del model.metadata_props[:]
    for key, value in kept:
        model.metadata_props.add(key=key, value=value)
    out = out or path.with_name(path.stem + "-plain.onnx")
    onnx.save(model, str(out))
    return out

