"""The inspector's rows for a node's options, ``repeat`` and ``trainable``, driven by key
and mouse events, turned into undoable ``SetOptions`` commands as the window does."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QSpinBox

from app.engine.graph import Edge, Graph, Node
from app.engine.inference import MAX_REPEAT
from app.engine.project import Project
from app.engine.session.document import Document
from app.engine.session.option_commands import SetOptions
from app.widgets.inspector import Inspector


def editor(qtbot, node_id: str = "enc") -> tuple[Document, Inspector]:
    """A document with x -> enc (TransformerEncoderLayer) -> mha (MultiheadAttention), and
    an inspector showing ``node_id`` whose option edits become commands (and refresh it)."""
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [10, 16]}))
    g.add_node(Node("enc", "TransformerEncoderLayer", {"nhead": 2}))
    g.add_node(Node("mha", "MultiheadAttention", {"num_heads": 2}))
    g.add_edge(Edge("x", "enc"))
    g.add_edge(Edge("enc", "mha"))
    doc = Document(Project(g, "options"))
    inspector = Inspector()
    qtbot.addWidget(inspector)

    def edited(edited_id: str, options: dict) -> None:
        doc.push(SetOptions(doc, edited_id, **options))

    inspector.options_edited.connect(edited)
    doc.analyzed.connect(lambda a: inspector.refresh(doc.graph.nodes[node_id], a))
    inspector.set_node(doc.graph.nodes[node_id], doc.analysis)
    inspector.show()
    return doc, inspector


def test_repeat_spin_box_sets_repeat_in_one_undoable_step(qtbot):
    doc, inspector = editor(qtbot)
    spin = inspector.option_field("repeat")
    assert isinstance(spin, QSpinBox)
    assert (spin.minimum(), spin.maximum(), spin.value()) == (1, MAX_REPEAT, 1)
    one = doc.analysis.param_counts["enc"]
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(spin, "12")
    assert doc.graph.nodes["enc"].repeat == 12
    assert doc.analysis.param_counts["enc"] == 12 * one
    doc.undo()  # "1", then "12": one step
    assert doc.graph.nodes["enc"].repeat == 1 and spin.value() == 1
    doc.redo()
    assert spin.value() == 12


def test_trainable_check_box_freezes_and_undo_thaws(qtbot):
    doc, inspector = editor(qtbot)
    box = inspector.option_field("trainable")
    assert isinstance(box, QCheckBox) and box.isChecked()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert doc.graph.nodes["enc"].trainable is False
    assert doc.history.undo_text == "Freeze enc"
    doc.undo()
    assert doc.graph.nodes["enc"].trainable is True and box.isChecked()


def test_only_types_that_can_repeat_get_the_repeat_field(qtbot):
    _, inspector = editor(qtbot, "mha")  # two outputs: it cannot repeat
    assert inspector.option_field("repeat") is None
    assert isinstance(inspector.option_field("trainable"), QCheckBox)
    _, inspector = editor(qtbot, "x")  # an Input has neither option
    assert inspector.option_field("repeat") is None and inspector.option_field("trainable") is None


def test_set_options_merges_typing_and_drops_a_step_that_changes_nothing():
    g = Graph()
    g.add_node(Node("fc", "Linear", {"out_features": 3}))
    doc = Document(Project(g, "merge"))
    doc.push(SetOptions(doc, "fc", repeat=1))  # no change: no step
    assert not doc.history.can_undo
    for value in (12, 1):  # typed "12", then back to "1"
        doc.push(SetOptions(doc, "fc", repeat=value))
    assert g.nodes["fc"].repeat == 1 and not doc.history.can_undo
    doc.push(SetOptions(doc, "fc", trainable=False))
    doc.push(SetOptions(doc, "fc", trainable=True))
    doc.undo()  # toggling twice is two steps
    assert g.nodes["fc"].trainable is False
