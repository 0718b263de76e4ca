"""Blocks in the editor: group (Ctrl+G), ungroup, open a block (double-click, Enter) with
the breadcrumb back (a crumb, Escape), edits inside that every node of the block follows,
the inspector's block fields, the block's declared parameters, and the block palette."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLineEdit

from app.engine.block_library import load_entry
from app.engine.graph import Edge
from app.engine.project import Project, dumps_project, parse_project
from app.engine.session.block_commands import SetBlockParams
from app.widgets.blocks_ui import BLOCKS_DIR_ENV, block_mime_data
from app.widgets.param_fields import format_any, parse_any


def _node(i, t, p=None, pos=None, **extra):
    return {"id": i, "type": t, **({"params": p} if p else {}), **({"position": list(pos)} if pos else {}), **extra}


def _edge(a, b, port=0):
    return {"source": a, "target": b, **({"target_port": port} if port else {})}


def resnet_with_blocks():
    """input -> stem -> layer1_0, layer1_1 (BasicBlock, x2) -> pool -> flatten -> fc."""
    conv = {"out_channels": "$planes", "kernel_size": 3, "padding": 1, "bias": False}
    basic = {"params": {"planes": 8},
             "graph": {"nodes": [_node("x", "Input", None, (0, 0)), _node("conv1", "Conv2d", conv, (0, 100)),
                                 _node("bn1", "BatchNorm2d", None, (0, 200)), _node("relu1", "ReLU", None, (0, 300)),
                                 _node("conv2", "Conv2d", conv, (0, 400)), _node("add", "Add", None, (100, 500))],
                       "edges": [_edge("x", "conv1"), _edge("conv1", "bn1"), _edge("bn1", "relu1"),
                                 _edge("relu1", "conv2"), _edge("conv2", "add"), _edge("x", "add", 1)]}}
    nodes = [_node("input", "Input", {"shape": [1, 8, 8]}, (0, 0)),
             _node("stem", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}, (0, 100)),
             _node("layer1_0", "BasicBlock", {"planes": 8}, (0, 200)),
             _node("layer1_1", "BasicBlock", None, (0, 300), repeat=2),
             _node("pool", "AdaptiveAvgPool2d", {"output_size": 1}, (0, 400)),
             _node("flatten", "Flatten", None, (0, 500)), _node("fc", "Linear", {"out_features": 3}, (0, 600))]
    ids = [n["id"] for n in nodes]
    return parse_project({"format": "netcanvas", "version": 2, "name": "blocks", "blocks": {"BasicBlock": basic},
                          "graph": {"nodes": nodes, "edges": [_edge(a, b) for a, b in zip(ids, ids[1:])]}})


@pytest.fixture
def resnet(window):
    window.set_project(resnet_with_blocks())
    assert window.doc.analysis.ok, window.doc.analysis.issues
    return window


def _double_click(qtbot, window, node_id):
    item = window.scene.nodes[node_id]
    window.view.centerOn(item)
    qtbot.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton,
                      pos=window.view.mapFromScene(item.sceneBoundingRect().center()))


def test_ctrl_g_groups_the_selection_into_a_block_node_and_undo_takes_it_back(qtbot, lenet):
    window = lenet
    before = dumps_project(window.doc.project)
    window.scene.select_nodes(["conv1", "relu1"])
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    g = window.doc.graph
    (new,) = window.scene.selected_node_ids()
    assert g.nodes[new].type == "Block1" and "Block1" in g.blocks and {"conv1", "relu1"}.isdisjoint(g.nodes)
    assert window.doc.analysis.ok and window.scene.nodes[new].is_block
    window.doc.history.undo()
    assert dumps_project(window.doc.project) == before


def test_what_cannot_be_grouped_says_why_on_the_status_bar(qtbot, lenet):
    window = lenet
    steps = window.doc.history.count
    window.scene.select_nodes(["input", "conv1"])
    window.actions_by_name["group"].trigger()
    assert window.doc.history.count == steps
    assert window.statusBar().currentMessage().startswith("Cannot group into a block: the model's Input layers")
    window.scene.select_nodes([])
    window.actions_by_name["group"].trigger()
    assert "select the layers" in window.statusBar().currentMessage()


def test_ungroup_puts_the_layers_back_as_one_step(qtbot, resnet):
    window = resnet
    before = dumps_project(window.doc.project)
    window.scene.select_nodes(["layer1_0"])
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    g = window.doc.graph
    assert "layer1_0" not in g.nodes and {"conv1", "bn1", "add"} <= set(g.nodes)
    assert g.nodes["conv1"].params["out_channels"] == 8  # the node's value written in
    assert set(window.scene.selected_node_ids()) >= {"conv1", "add"} and window.doc.analysis.ok
    window.doc.history.undo()
    assert dumps_project(window.doc.project) == before
    window.scene.select_nodes(["stem"])
    window.actions_by_name["ungroup"].trigger()  # (disabled for a layer: nothing happens)
    assert "layer1_0" in window.doc.graph.nodes


def test_double_click_opens_a_block_the_breadcrumb_and_escape_go_back(qtbot, resnet):
    window = resnet
    _double_click(qtbot, window, "layer1_0")
    assert window.doc.scope == ("layer1_0",)
    assert set(window.scene.nodes) == {"x", "conv1", "bn1", "relu1", "conv2", "add"}
    assert window.breadcrumb.isVisible() and window.breadcrumb.texts() == ["Project", "layer1_0 (BasicBlock)"]
    # the shapes inside are those the opened node receives
    assert window.doc.current_analysis.shapes["conv1"] == (8, 8, 8)
    assert "[8, 8, 8]" in window.scene.nodes["conv1"].shape_text
    qtbot.mouseClick(window.breadcrumb.buttons[0], Qt.MouseButton.LeftButton)
    assert window.doc.scope == () and window.scene.selected_node_ids() == ["layer1_0"]
    assert not window.breadcrumb.isVisible() and "stem" in window.scene.nodes
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Return)  # Enter opens the selected block
    assert window.doc.scope == ("layer1_0",)
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert window.doc.scope == () and window.scene.selected_node_ids() == ["layer1_0"]
    _double_click(qtbot, window, "stem")  # a layer: nothing to open
    assert window.doc.scope == ()


def test_edits_inside_a_block_change_every_node_of_it_with_undo(qtbot, resnet):
    window = resnet
    before = dumps_project(window.doc.project)
    counts = dict(window.doc.analysis.param_counts)
    window.doc.open_block("layer1_0")
    window.scene.select_nodes(["bn1"])
    window.palette.layer_activated.emit("Dropout")  # below bn1, fed by it
    (drop,) = window.scene.selected_node_ids()
    block = window.doc.graph.blocks["BasicBlock"]
    assert block.graph.nodes[drop].type == "Dropout" and drop not in window.doc.graph.nodes
    assert Edge("bn1", drop, 0) in block.graph.edges
    assert any(i.node == "layer1_0" and i.path == (drop,) for i in window.doc.analysis.errors)  # two sinks
    window.editor.delete_selection()
    window.scene.select_nodes(["conv2"])
    window.editor.delete_selection()
    window.scene.connect_at("relu1", window.scene.nodes["add"].input_pos(0))
    assert Edge("relu1", "add", 0) in block.graph.edges
    a = window.doc.analysis
    assert a.ok, a.issues
    # both nodes of the block lost conv2's weights
    for node_id in ("layer1_0", "layer1_1"):
        assert a.param_counts[node_id] < counts[node_id]
    while window.doc.history.can_undo:
        window.doc.history.undo()
    assert dumps_project(window.doc.project) == before and window.doc.scope == ("layer1_0",)
    assert set(window.scene.nodes) == {"x", "conv1", "bn1", "relu1", "conv2", "add"}


def test_tab_adds_a_block_of_the_project_by_name(qtbot, resnet):
    window = resnet
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Tab)
    qtbot.keyClicks(window.view._quick_add, "basicblock")
    qtbot.keyClick(window.view._quick_add, Qt.Key.Key_Return)
    (new,) = window.scene.selected_node_ids()
    assert window.doc.graph.nodes[new].type == "BasicBlock" and window.doc.graph.nodes[new].params == {}
    window.doc.open_block("layer1_0")  # inside a block, Escape in the field closes it and stays inside
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Tab)
    edit = window.view._quick_add
    qtbot.keyClick(edit, Qt.Key.Key_Escape)
    assert window.view._quick_add is None and window.doc.scope == ("layer1_0",)


def test_a_second_input_inside_a_block_gives_its_nodes_a_second_slot(qtbot, resnet):
    window = resnet
    assert len(window.scene.nodes["layer1_1"].inputs) == 1
    window.doc.open_block("layer1_0")
    window.editor.add_layer("Input")
    window.doc.set_scope(())
    item = window.scene.nodes["layer1_1"]
    assert len(item.inputs) == 2 and item.input_names == ("x", "input1")
    window.doc.history.undo()
    assert len(window.scene.nodes["layer1_1"].inputs) == 1


def test_dragging_a_layer_inside_a_block_moves_it_in_the_definition(qtbot, resnet):
    window = resnet
    window.doc.open_block("layer1_0")
    node = window.doc.graph.blocks["BasicBlock"].graph.nodes["relu1"]
    before = node.position
    item = window.scene.nodes["relu1"]
    window.view.centerOn(item)
    start = window.view.mapFromScene(item.sceneBoundingRect().center())
    viewport = window.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    for k in range(1, 5):
        qtbot.mouseMove(viewport, start + QPoint(20 * k, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=start + QPoint(80, 0))
    assert node.position[0] > before[0] + 40 and window.doc.graph.nodes["layer1_0"].position == (0.0, 200.0)
    window.doc.history.undo()
    assert node.position == before


def test_backspace_with_nothing_selected_goes_up_and_deletes_a_selection(qtbot, resnet):
    window = resnet
    window.doc.open_block("layer1_0")
    window.scene.select_nodes(["bn1"])
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Backspace)
    assert "bn1" not in window.doc.graph.blocks["BasicBlock"].graph.nodes and window.doc.scope == ("layer1_0",)
    window.scene.select_nodes([])
    qtbot.keyClick(window.view, Qt.Key.Key_Backspace)
    assert window.doc.scope == ()


def test_paste_inside_a_block_goes_into_its_definition(qtbot, resnet):
    window = resnet
    window.doc.open_block("layer1_0")
    window.scene.select_nodes(["relu1"])
    assert window.editor.copy()
    (new,) = window.editor.paste()
    assert new in window.doc.graph.blocks["BasicBlock"].graph.nodes and new in window.scene.nodes
    window.doc.history.undo()
    assert new not in window.doc.graph.blocks["BasicBlock"].graph.nodes and new not in window.scene.nodes
    window.doc.set_scope(())
    window.scene.select_nodes(["layer1_0"])
    window.editor.copy()
    (pasted,) = window.editor.paste()
    assert window.doc.graph.nodes[pasted].type == "BasicBlock"


def test_the_inspector_edits_a_block_nodes_parameters_as_json_values(qtbot, resnet):
    window = resnet
    window.scene.select_nodes(["layer1_1"])
    field = window.inspector.field("planes")
    assert isinstance(field, QLineEdit) and field.text() == "8"  # the block's default
    field.clear()
    qtbot.keyClicks(field, "4")
    assert window.doc.graph.nodes["layer1_1"].params == {"planes": 4}
    # 4 channels cannot be added to the 8 coming in: the error inside shows with the node
    assert "Add needs inputs that broadcast" in window.inspector.node_issues.text()
    field.clear()
    qtbot.keyClicks(field, "[3, 3]")
    assert window.doc.graph.nodes["layer1_1"].params == {"planes": [3, 3]}
    window.doc.history.undo()
    assert window.doc.graph.nodes["layer1_1"].params == {}
    assert window.inspector.option_field("repeat").value() == 2


def test_typing_in_a_nested_block_nodes_field_keeps_the_field(qtbot, resnet):
    """Inside a block, a node of another block: each keystroke changes the outer block's
    definition (its declarations are made again), yet the field typed in stays."""
    window = resnet
    window.doc.open_block("layer1_0")
    window.scene.select_nodes(["bn1", "relu1"])
    inner = window.editor.group_selection(name="Inner")
    window.doc.history.push(SetBlockParams(window.doc.model, "Inner", {"eps": 1e-5}))
    window.scene.select_nodes([inner])
    field = window.inspector.field("eps")
    field.setFocus()
    field.clear()
    qtbot.keyClicks(field, "0.001")
    assert window.inspector.field("eps") is field
    assert window.doc.graph.blocks["BasicBlock"].graph.nodes[inner].params == {"eps": 0.001}


def test_inside_a_block_a_field_takes_a_reference_to_a_block_parameter(qtbot, resnet):
    window = resnet
    window.doc.open_block("layer1_0")
    window.scene.select_nodes(["conv1"])
    field = window.inspector.field("out_channels")
    assert field.text() == "$planes"
    field.clear()
    qtbot.keyClicks(field, "$width")
    block = window.doc.graph.blocks["BasicBlock"]
    assert block.graph.nodes["conv1"].params["out_channels"] == "$width"
    assert any("$width" in i.message for i in window.doc.analysis.errors)  # not declared
    field.clear()
    qtbot.keyClicks(field, "16")
    assert block.graph.nodes["conv1"].params["out_channels"] == 16


def test_repeat_and_trainable_inside_a_block_change_the_definition_with_undo(qtbot, resnet):
    window = resnet
    window.doc.open_block("layer1_0")
    window.scene.select_nodes(["relu1"])
    window.inspector.option_field("trainable").click()
    block = window.doc.graph.blocks["BasicBlock"]
    assert block.graph.nodes["relu1"].trainable is False and window.scene.nodes["relu1"].trainable is False
    window.inspector.option_field("repeat").setValue(3)
    assert block.graph.nodes["relu1"].repeat == 3 and window.scene.nodes["relu1"].repeat_text() == "×3"
    window.doc.history.undo()
    window.doc.history.undo()
    assert (block.graph.nodes["relu1"].repeat, block.graph.nodes["relu1"].trainable) == (1, True)


def test_the_block_parameters_form_declares_adds_and_removes_with_undo(qtbot, resnet):
    window = resnet
    form = window.block_params
    window.scene.select_nodes(["layer1_0"])
    assert form.isVisible() and form.block_name == "BasicBlock" and form.table.rowCount() == 1
    form.add_button.click()
    block = window.doc.graph.blocks["BasicBlock"]
    assert block.params == {"planes": 8, "p1": 1} and form.table.rowCount() == 2
    form.table.item(1, 0).setText("width")
    assert block.params == {"planes": 8, "width": 1}
    form.table.item(1, 1).setText("[2, 2]")
    assert block.params == {"planes": 8, "width": [2, 2]}
    form.table.item(1, 0).setText("9 lives")
    assert block.params == {"planes": 8, "width": [2, 2]} and "identifier" in form.message.text()
    form.table.item(1, 0).setText("width")
    form.table.selectRow(1)
    form.remove_button.click()
    assert block.params == {"planes": 8}
    while window.doc.history.can_undo:
        window.doc.history.undo()
    assert block.params == {"planes": 8}
    window.doc.open_block("layer1_0")  # inside, nothing selected: the open block's form
    window.scene.select_nodes([])
    assert form.isVisible() and form.block_name == "BasicBlock"
    window.scene.select_nodes(["conv1"])
    assert not form.isVisible()


def test_a_node_menu_offers_the_block_entries(resnet):
    window = resnet
    texts = [a.text() for a in window.blocks.node_menu("layer1_0").actions()]
    assert {"&Open Block", "U&ngroup Block", "Save Block to Li&brary…"} <= set(texts)
    texts = [a.text() for a in window.blocks.node_menu("stem").actions()]
    assert "&Open Block" not in texts and "&Group into Block" in texts


def test_block_nodes_look_distinct_and_say_what_is_inside(resnet):
    item = resnet.scene.nodes["layer1_1"]
    assert item.is_block and item.repeat_text() == "×2"
    assert item.summary == "5 layers · planes 8"
    assert not resnet.scene.nodes["stem"].is_block


@pytest.mark.parametrize("text, value", [("64", 64), ("[3, 3]", [3, 3]), ("3, 3", [3, 3]), ("true", True),
                                         ("False", False), ("same", "same"), ('"64"', "64"), ("null", None),
                                         ("0.5", 0.5)])
def test_any_values_read_as_typed_and_show_back_the_same(text, value):
    assert parse_any(text) == value and type(parse_any(text)) is type(value)
    assert parse_any(format_any(value)) == value


def test_a_broken_list_is_refused():
    with pytest.raises(ValueError):
        parse_any("[1, x")
    with pytest.raises(ValueError):
        parse_any("  ")
    assert json.loads(format_any({"a": [1]})) == {"a": [1]}


def _drop(window, mime, at: QPoint) -> None:
    viewport = window.view.viewport()
    actions, buttons, mods = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    for event in (QDragEnterEvent(at, actions, mime, buttons, mods), QDragMoveEvent(at, actions, mime, buttons, mods),
                  QDropEvent(QPointF(at), actions, mime, buttons, mods)):
        QApplication.sendEvent(viewport, event)


def test_a_block_saved_to_the_library_is_offered_and_dropped_into_another_project(qtbot, resnet, tmp_path,
                                                                                   monkeypatch):
    window = resnet
    monkeypatch.setenv(BLOCKS_DIR_ENV, str(tmp_path / "mine"))
    window.scene.select_nodes(["layer1_0"])
    window.actions_by_name["save_block"].trigger()
    path = tmp_path / "mine" / "BasicBlock.json"
    entry = load_entry(path)
    assert entry.name == "BasicBlock" and entry.input_shapes == [[8, 8, 8]] and not entry.builtin
    assert str(path) in window.palette.visible_blocks()
    window.palette.search.setText("basic")
    assert str(path) in window.palette.visible_blocks() and window.palette.visible_layers() == []
    window.palette.search.clear()
    # another project: the drop copies the definition and adds a node, as one step
    window.set_project(Project(name="other"))
    window.editor.add_layer("Input")
    steps = window.doc.history.count
    _drop(window, block_mime_data(str(path)), window.view.viewport().rect().center())
    g = window.doc.graph
    (node_id,) = window.scene.selected_node_ids()
    assert g.nodes[node_id].type == "BasicBlock" and "BasicBlock" in g.blocks
    assert window.doc.history.count == steps + 1 and window.scene.nodes[node_id].is_block
    window.doc.history.undo()
    assert "BasicBlock" not in g.blocks and node_id not in g.nodes
    # picked in the palette: below the selected layer, fed by it
    window.scene.select_nodes(["input1"])
    window.palette.block_activated.emit(str(path))
    (node_id,) = window.scene.selected_node_ids()
    assert Edge("input1", node_id) in g.edges


def test_a_library_file_that_cannot_be_read_is_listed_and_a_drop_of_it_says_why(qtbot, window, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv(BLOCKS_DIR_ENV, str(tmp_path))
    (tmp_path / "Broken.json").write_text("{not json")
    window.palette.set_blocks(window.editor.library_entries())
    item = next(i for i in window.palette.layer_items() if i.text(0).startswith("Broken"))
    assert "cannot be read" in item.text(0) and not item.flags() & Qt.ItemFlag.ItemIsDragEnabled
    steps = window.doc.history.count
    window.view.block_dropped.emit(str(tmp_path / "Broken.json"), QPointF(0, 0))
    assert window.doc.history.count == steps
    assert window.statusBar().currentMessage().startswith("Cannot add the block:")


def test_a_built_in_block_picked_in_the_palette_brings_its_definitions_in_one_step(qtbot, resnet):
    window = resnet
    window.palette.search.setText("squeeze excitation")
    (key,) = window.palette.visible_blocks()
    before = dumps_project(window.doc.project)
    window.scene.select_nodes(["stem"])
    qtbot.keyClick(window.palette.search, Qt.Key.Key_Return)  # Enter adds the first match
    (node_id,) = window.scene.selected_node_ids()
    g = window.doc.graph
    assert g.nodes[node_id].type == "SqueezeExcitation" and "SqueezeExcitation" in g.blocks
    assert Edge("stem", node_id) in g.edges
    assert window.doc.analysis.issues_for(node_id)  # its defaults are for 64 channels, stem gives 8
    for name, text in (("channels", "8"), ("squeeze", "2")):
        field = window.inspector.field(name)
        field.clear()
        qtbot.keyClicks(field, text)
    assert g.nodes[node_id].params == {"channels": 8, "squeeze": 2}
    assert window.doc.analysis.shapes[node_id] == (8, 8, 8)
    assert [i.message for i in window.doc.analysis.issues_for(node_id)] == [
        f"the graph has 2 outputs ('fc', '{node_id}'); a model has exactly one: connect or delete the others"]
    for _ in range(3):
        window.doc.history.undo()
    assert dumps_project(window.doc.project) == before
