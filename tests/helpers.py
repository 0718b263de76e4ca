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



def example_with(tmp_path, example: str, node_id: str, **params):
    """A copy of the bundled ``example`` in ``tmp_path`` with ``params`` set on ``node_id``
    (a bad value makes a project with an error at that node)."""
    import json
    from pathlib import Path

    from app.engine.examples import example_path

    data = json.loads(example_path(example).read_text())
    for node in data["graph"]["nodes"]:
        if node["id"] == node_id:
            node["params"].update(params)
    path = Path(tmp_path) / f"{example}-edited.netcanvas.json"
    path.write_text(json.dumps(data))
    return path


def dark(widget) -> None:
    """Give ``widget`` a dark palette, as a dark desktop theme would."""
    from PySide6.QtGui import QColor, QPalette  # (the engine's tests use this module without Qt)

    pal = widget.palette()
    for role, colour in ((QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.Base, "#1e1e1e"),
                         (QPalette.ColorRole.Text, "#e0e0e0"), (QPalette.ColorRole.WindowText, "#e0e0e0")):
        pal.setColor(role, QColor(colour))
    widget.setPalette(pal)


def main_window(qtbot, tmp_path):
    """A shown main window with settings of its own under ``tmp_path``, closed after the test."""
    from PySide6.QtCore import QSettings

    from app.widgets.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings)
    # pytest-qt closes widgets before fixture teardown: drop unsaved changes first, or
    # closing would ask "save changes?" in a modal box nobody answers
    qtbot.addWidget(w, before_close_func=lambda widget: widget.doc.history.set_clean())
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    return w
