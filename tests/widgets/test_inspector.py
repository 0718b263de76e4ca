"""The inspector form (app/widgets/inspector.py), driven through real key and mouse events.

A small stand-in for the window applies each ``params_edited`` to the graph and refreshes
the inspector, as the real editor does through its command history.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette, QTextDocument
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QSpinBox

from app.engine.graph import Graph, Node
from app.engine.inference import analyze
from app.engine.layers import get_spec
from app.engine.params import Param
from app.widgets.inspector import HINT, Inspector
from app.widgets.param_fields import parse_text
from tests.helpers import chain, shown

SHOTS = Path("/tmp/widgets-shots")


class Window:
    """Applies edits to the model and refreshes the inspector; records what was edited."""

    def __init__(self, graph: Graph, inspector: Inspector, apply: bool = True):
        self.graph, self.inspector, self.edits = graph, inspector, []
        inspector.params_edited.connect(self.edited)
        self.apply = apply

    def edited(self, node_id: str, params: dict) -> None:
        self.edits.append((node_id, params))
        if self.apply:
            self.graph.set_params(node_id, params)
            self.refresh(node_id)

    def refresh(self, node_id: str) -> None:
        self.inspector.refresh(self.graph.node(node_id), analyze(self.graph))

    def values(self, name: str) -> list:
        return [params[name] for _, params in self.edits]


@pytest.fixture
def inspector(qtbot):
    widget = shown(qtbot, Inspector(), 360, 560)
    widget.activateWindow()
    return widget


def lenet_graph(**conv) -> Graph:
    params = {"out_channels": 6, "kernel_size": 5, **conv}
    return chain(("input", "Input", {"shape": [1, 28, 28]}), ("conv1", "Conv2d", params))


def show(inspector: Inspector, graph: Graph, node_id: str, apply: bool = True) -> Window:
    inspector.set_node(graph.node(node_id), analyze(graph))
    return Window(graph, inspector, apply)


def plain(rich: str) -> str:
    """What a rich-text label reads as."""
    doc = QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


def retype(qtbot, editor, text: str) -> None:
    """Select what the field holds and type ``text`` over it, as a user would."""
    editor.setFocus()
    (editor.lineEdit() if isinstance(editor, QSpinBox) else editor).selectAll()
    qtbot.keyClicks(editor, text)


def test_header_shows_id_type_doc_shape_and_count(inspector):
    g = lenet_graph()
    show(inspector, g, "conv1")
    assert "conv1" in inspector.title.text() and "Conv2d" in inspector.title.text()
    assert inspector.doc.text() == get_spec("Conv2d").doc
    assert inspector.doc.wordWrap()
    assert inspector.summary.text() == "Output [6, 24, 24] · 156 parameters"
    assert inspector.node_issues.isHidden()
    assert inspector.hint.isHidden()
    assert inspector.node_id() == "conv1"
    # one row per parameter, each editor of its kind, its tooltip the doc and what it takes
    kinds = {"out_channels": QSpinBox, "kernel_size": QLineEdit, "padding": QLineEdit,
             "groups": QSpinBox, "bias": QCheckBox}
    for name, cls in kinds.items():
        assert isinstance(inspector.field(name), cls)
    assert inspector.field("kernel_size").text() == "5"
    assert inspector.field("stride").text() == "1"  # the default, shown
    assert inspector.field("bias").isChecked()
    assert inspector.findChild(QLineEdit, "param_kernel_size") is inspector.field("kernel_size")
    tip = inspector.field("kernel_size").toolTip()
    assert "Filter size" in tip and "an integer >= 1 or a list of two such integers" in tip


def test_output_unknown_without_analysis(inspector):
    g = lenet_graph()
    inspector.set_node(g.node("conv1"), None)
    assert inspector.summary.text() == "Output ?"


def test_typing_kernel_size_emits_int_then_pair(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    field = inspector.field("kernel_size")
    with qtbot.waitSignal(inspector.params_edited) as blocker:
        retype(qtbot, field, "3")
    assert blocker.args == ["conv1", {"out_channels": 6, "kernel_size": 3}]
    qtbot.keyClicks(field, ", 5")
    assert window.values("kernel_size") == [3, [3, 5]]  # "3," and "3, " were not sent
    assert g.node("conv1").params["kernel_size"] == [3, 5]
    # the refresh after each edit left the field as typed, focused, cursor at the end
    assert field.text() == "3, 5" and field.cursorPosition() == 4
    assert field.hasFocus()
    assert inspector.summary.text() == "Output [6, 26, 24] · 96 parameters"
    assert inspector.message_label("kernel_size").isHidden()


def test_bracketed_pair_and_spaces_accepted(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    retype(qtbot, inspector.field("stride"), "[2, 1]")
    assert window.values("stride")[-1] == [2, 1]


def test_invalid_text_is_marked_and_not_sent(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    field, message = inspector.field("kernel_size"), inspector.message_label("kernel_size")
    with qtbot.assertNotEmitted(inspector.params_edited):
        retype(qtbot, field, "0")
    assert field.property("invalid") is True
    assert not message.isHidden()
    assert message.text() == "expected an integer >= 1 or a list of two such integers, received 0"
    assert g.node("conv1").params["kernel_size"] == 5  # the model is untouched
    retype(qtbot, field, "3, ")  # "3" is sent on the way
    with qtbot.assertNotEmitted(inspector.params_edited):
        qtbot.keyClicks(field, "x")
    assert 'received [3, "x"]' in message.text()
    retype(qtbot, field, "4")
    assert window.values("kernel_size") == [3, 4]
    assert field.property("invalid") is False and message.isHidden()


def test_edit_the_window_does_not_apply_is_taken_back(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1", apply=False)
    field = inspector.field("kernel_size")
    retype(qtbot, field, "3")
    assert window.values("kernel_size") == [3]
    window.refresh("conv1")  # the model still says 5: the field shows the model
    assert field.text() == "5"


@pytest.mark.parametrize("kind, text, value", [
    ("int_or_pair", "5", 5), ("int_or_pair", "5, 3", [5, 3]), ("int_or_pair", "[5, 3]", [5, 3]),
    ("int_or_pair", " 5 3 ", [5, 3]), ("padding", "same", "same"), ("padding", "2,1", [2, 1]),
    ("shape", "1, 28, 28", [1, 28, 28]), ("shape", "784", [784]), ("scale", "2", 2),
    ("scale", "2, 1.5", [2, 1.5]), ("float", "1e-5", 1e-05), ("float", "3", 3.0),
    ("string", " relu ", "relu"), ("column", "3", 3), ("column", "label", "label"),
])
def test_parse_text(kind, text, value):
    got = parse_text(Param("p", kind, default=None), text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("kind, text, message", [
    ("int_or_pair", "3,", 'received [3, ""]'), ("int_or_pair", "[5]", "received [5]"),
    ("shape", "0, 2", "received [0, 2]"), ("float", "nan", "received NaN"),
    ("int_or_pair", "", "expected an integer or a list of two such integers"),
])
def test_parse_text_refuses(kind, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_text(Param("p", kind, default=None), text)


def test_nullable_stride_shows_none_and_clears_to_null(qtbot, inspector):
    g = chain(("input", "Input", {"shape": [1, 28, 28]}), ("pool", "MaxPool2d", {"kernel_size": 2}))
    window = show(inspector, g, "pool")
    field = inspector.field("stride")
    assert field.text() == "" and field.placeholderText() == "none"
    retype(qtbot, field, "2")
    qtbot.keyClick(field, Qt.Key.Key_Backspace)
    assert window.values("stride") == [2, None]
    assert inspector.summary.text() == "Output [1, 14, 14] · 0 parameters"
    assert field.property("invalid") is False


def test_padding_same(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    retype(qtbot, inspector.field("padding"), "same")
    assert window.values("padding") == ["same"]
    assert inspector.summary.text() == "Output [6, 28, 28] · 156 parameters"


def test_float_field_takes_scientific_notation(qtbot, inspector):
    g = chain(("input", "Input", {"shape": [3, 8, 8]}), ("bn", "BatchNorm2d", {}))
    window = show(inspector, g, "bn")
    field = inspector.field("eps")
    assert isinstance(field, QLineEdit) and field.text() == "1e-05"
    retype(qtbot, field, "1e-3")
    assert window.values("eps") == [1.0, 0.001]  # as typed: "1", then "1e-3"
    with qtbot.assertNotEmitted(inspector.params_edited):
        retype(qtbot, field, "abc")
    assert inspector.message_label("eps").text().endswith('received "abc"')
    retype(qtbot, field, "1e-5")
    assert window.edits[-1] == ("bn", {"eps": 1e-05})  # equal to the default, still explicit
    assert type(window.edits[-1][1]["eps"]) is float


def test_checkbox_toggle_emits_bias_false(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    box = inspector.field("bias")
    with qtbot.waitSignal(inspector.params_edited) as blocker:
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=box.rect().center())
    assert blocker.args[1]["bias"] is False
    assert not box.isChecked()
    assert inspector.summary.text() == "Output [6, 24, 24] · 150 parameters"
    assert window.values("bias") == [False]


def test_combo_change_emits(qtbot, inspector):
    g = chain(("input", "Input", {"shape": [3, 8, 8]}), ("up", "Upsample", {}))
    window = show(inspector, g, "up")
    combo = inspector.field("mode")
    assert isinstance(combo, QComboBox) and combo.currentText() == "nearest"
    with qtbot.waitSignal(inspector.params_edited) as blocker:
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert blocker.args == ["up", {"mode": "linear"}]
    assert combo.currentText() == "linear"
    assert window.values("mode") == ["linear"]


def test_spin_box_emits_as_typed(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    spin = inspector.field("out_channels")
    assert spin.minimum() == 0 and spin.specialValueText().strip() == ""  # 0: not set
    retype(qtbot, spin, "16")
    assert window.values("out_channels") == [1, 16]
    assert inspector.summary.text() == "Output [16, 24, 24] · 416 parameters"


def test_required_params_without_value_show_empty(inspector):
    g = chain(("input", "Input", {"shape": [1, 28, 28]}), ("conv1", "Conv2d", {}))
    show(inspector, g, "conv1")
    assert inspector.field("kernel_size").text() == ""
    assert inspector.field("out_channels").text().strip() == ""
    assert "needs kernel_size" in inspector.message_label("kernel_size").text()
    assert "needs out_channels" in inspector.message_label("out_channels").text()
    assert inspector.field("kernel_size").property("invalid") is True


def test_refresh_after_external_change_updates_without_emitting(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    form = inspector.scroll.widget()
    with qtbot.assertNotEmitted(inspector.params_edited):
        g.set_params("conv1", {"out_channels": 8, "kernel_size": [7, 3], "bias": False,
                               "padding": "same"})
        window.refresh("conv1")
    assert inspector.scroll.widget() is form  # not rebuilt
    assert inspector.field("kernel_size").text() == "7, 3"
    assert inspector.field("out_channels").value() == 8
    assert not inspector.field("bias").isChecked()
    assert inspector.field("padding").text() == "same"
    assert inspector.summary.text() == "Output [8, 28, 28] · 168 parameters"
    g.set_params("conv1", {"out_channels": 8, "kernel_size": 5})  # undo: back to defaults
    window.refresh("conv1")
    assert inspector.field("padding").text() == "0" and inspector.field("bias").isChecked()


def test_refresh_keeps_what_is_being_typed(qtbot, inspector):
    g = lenet_graph()
    window = show(inspector, g, "conv1")
    field = inspector.field("kernel_size")
    retype(qtbot, field, "3,")  # "3" was applied; "3," is invalid for now
    assert g.node("conv1").params["kernel_size"] == 3
    field.setCursorPosition(1)
    g.set_params("conv1", {"out_channels": 12, "kernel_size": 3})  # another field changes
    window.refresh("conv1")
    assert field.text() == "3," and field.cursorPosition() == 1 and field.hasFocus()
    assert field.property("invalid") is True
    assert inspector.field("out_channels").value() == 12
    g.set_params("conv1", {"out_channels": 12, "kernel_size": 7})  # this one changes: shown
    window.refresh("conv1")
    assert field.text() == "7" and field.property("invalid") is False


def test_issue_for_a_param_shows_under_it_and_others_in_header(inspector):
    g = lenet_graph(groups=4)
    show(inspector, g, "conv1")
    message = inspector.message_label("groups")
    assert not message.isHidden()
    assert "groups 4 must divide" in message.text()
    assert inspector.field("groups").property("invalid") is True
    assert inspector.summary.text() == "Output ?"
    lone = Graph()
    lone.add_node(Node("conv9", "Conv2d", {"out_channels": 4, "kernel_size": 3}))
    show(inspector, lone, "conv9")
    assert not inspector.node_issues.isHidden()
    assert "Conv2d needs 1 input; nothing is connected to it" in plain(inspector.node_issues.text())
    assert all(inspector.message_label(p.name).isHidden() for p in get_spec("Conv2d").params)


def test_layer_without_params_and_unknown_type(inspector):
    g = chain(("input", "Input", {"shape": [4]}), ("act", "ReLU", {}), ("odd", "Nope", {"x": 1}))
    show(inspector, g, "act")
    assert inspector.summary.text() == "Output [4] · 0 parameters"
    assert "no parameters" in inspector.scroll.widget().findChild(QLabel).text()
    show(inspector, g, "odd")
    assert "Nope" in inspector.title.text() and inspector.doc.isHidden()
    assert "unknown layer type 'Nope'" in plain(inspector.node_issues.text())
    assert inspector.scroll.widget().findChild(QLabel) is None


def test_set_node_none_shows_hint(inspector):
    g = lenet_graph()
    show(inspector, g, "conv1")
    inspector.set_node(None, None)
    assert not inspector.hint.isHidden()
    assert inspector.hint.text() == HINT == "Select a layer to edit its parameters"
    assert inspector.page.isHidden()
    assert inspector.node_id() is None


def test_selecting_another_node_rebuilds(inspector):
    g = chain(("input", "Input", {"shape": [1, 28, 28]}), ("fc", "Flatten", {}),
              ("out", "Linear", {"out_features": 10}))
    window = show(inspector, g, "out")
    assert inspector.field("out_features").value() == 10
    window.refresh("input")  # refresh with another node falls back to set_node
    assert inspector.node_id() == "input"
    assert inspector.field("shape").text() == "1, 28, 28"
    show(inspector, g, "fc")
    assert inspector.summary.text() == "Output [784] · 0 parameters"


def dark_palette(base: QPalette) -> QPalette:
    dark = QPalette(base)
    for role, colour in ((QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.Base, "#1e1e1e"),
                         (QPalette.ColorRole.WindowText, "#e0e0e0"), (QPalette.ColorRole.Text, "#e0e0e0"),
                         (QPalette.ColorRole.Button, "#353535"), (QPalette.ColorRole.ButtonText, "#e0e0e0")):
        dark.setColor(role, QColor(colour))
    return dark


@pytest.fixture
def dark_system(qapp):
    """The system switching to a dark palette while the app runs."""
    light = QPalette(qapp.palette())

    def switch() -> None:
        qapp.setPalette(dark_palette(light))
        qapp.processEvents()  # widgets hear of it through posted events

    yield switch
    qapp.setPalette(light)
    qapp.processEvents()


def test_follows_the_system_palette_and_keeps_errors_readable(qtbot, inspector, dark_system):
    g = lenet_graph()
    show(inspector, g, "conv1")
    retype(qtbot, inspector.field("kernel_size"), "0")
    message = inspector.message_label("kernel_size")
    text_role, window_role = QPalette.ColorRole.WindowText, QPalette.ColorRole.Window
    light_red = message.palette().color(text_role)
    assert light_red.red() > 2 * light_red.green()
    dark_system()
    for widget in (inspector.field("stride"), inspector.field("out_channels"), inspector.doc,
                   inspector.field("kernel_size"), message):
        assert widget.palette().color(window_role).name() == "#2b2b2b"
    dark_red = message.palette().color(text_role)
    assert dark_red.red() > 2 * dark_red.green()
    assert dark_red.lightness() > light_red.lightness()  # a lighter red on a dark window
    assert inspector.field("kernel_size").property("invalid") is True


def test_screenshots(qtbot, inspector, dark_system):
    SHOTS.mkdir(parents=True, exist_ok=True)
    g = lenet_graph()
    show(inspector, g, "conv1")
    retype(qtbot, inspector.field("kernel_size"), "0")
    assert inspector.grab().save(str(SHOTS / "inspector_conv2d_error.png"))
    show(inspector, lenet_graph(groups=4), "conv1")
    assert inspector.grab().save(str(SHOTS / "inspector_conv2d_issue.png"))
    dark_system()
    lone = lenet_graph(groups=4)
    lone.remove_node("input")
    show(inspector, lone, "conv1")
    retype(qtbot, inspector.field("kernel_size"), "0")
    assert inspector.grab().save(str(SHOTS / "inspector_conv2d_dark.png"))
    inspector.set_node(None, None)
    qtbot.waitUntil(lambda: inspector.hint.height() > inspector.height() // 2)  # laid out again
    assert inspector.grab().save(str(SHOTS / "inspector_empty_dark.png"))
