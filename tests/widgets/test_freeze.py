"""Freeze / Unfreeze on the selection (Edit menu, the canvas's context menu), the frozen
count on the status bar, and how the weights a run starts from fit the edited graph."""

from __future__ import annotations

import json
import shutil

import torch

from app.engine.compiler import compile_graph
from app.engine.examples import example_path
from app.engine.project import load_project
from app.engine.weights import save_weights


def action_texts(menu) -> list[str]:
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_freeze_from_the_edit_menu_is_one_step_and_the_status_bar_counts_it(qtbot, lenet):
    w = lenet
    assert w.params_label.text() == "44,426 parameters"
    edit = next(m for m in (a.menu() for a in w.menuBar().actions()) if m and m.title() == "&Edit")
    assert {"Free&ze", "Un&freeze"} <= set(action_texts(edit))
    w.scene.select_nodes(["conv1", "relu1", "conv2", "fc1"])
    w.actions_by_name["freeze"].trigger()
    g = w.doc.graph
    assert [g.nodes[i].trainable for i in ("conv1", "relu1", "conv2", "fc1", "fc2")] == [False, True, False, False, True]
    frozen = 156 + 2416 + 30840  # conv1, conv2, fc1; ReLU has nothing to freeze and stays as it was
    assert w.params_label.text() == f"44,426 parameters, {frozen:,} frozen"
    assert "trainable" in w.params_label.toolTip() and f"{44426 - frozen:,} trainable" in w.params_label.toolTip()
    assert w.scene.nodes["conv1"].trainable is False  # drawn frozen (the snowflake)
    assert w.actions_by_name["undo"].text() == "&Undo Freeze 3 nodes"
    w.actions_by_name["undo"].trigger()
    assert all(n.trainable for n in g.nodes.values()) and w.params_label.text() == "44,426 parameters"
    assert w.scene.nodes["conv1"].trainable is True


def test_the_context_menu_unfreezes_and_nothing_to_freeze_says_why(qtbot, lenet):
    w = lenet
    w.scene.select_nodes(["conv1", "fc2"])
    w.editor.set_trainable(False)
    menu = w.node_menu("conv1")
    assert action_texts(menu)[-2:] == ["Free&ze", "Un&freeze"]
    assert "Free&ze" not in action_texts(w.node_menu(""))  # the canvas away from nodes
    menu.actions()[-1].trigger()
    assert w.doc.graph.nodes["conv1"].trainable and w.doc.graph.nodes["fc2"].trainable
    with qtbot.waitSignal(w.scene.message) as said:
        w.scene.select_nodes(["relu1", "pool1"])
        w.actions_by_name["freeze"].trigger()
    assert said.args[0].startswith("Nothing to freeze: select layers with parameters")
    assert w.doc.history.undo_text == "Unfreeze 2 nodes"


def test_the_status_bar_says_which_nodes_keep_the_start_weights_after_an_edit(qtbot, window, tmp_path):
    w = window
    for name in ("transfer_base", "transfer"):
        shutil.copy(example_path(name), tmp_path / f"{name}.netcanvas.json")
    assert w.open_file(tmp_path / "transfer.netcanvas.json", ask=False)
    qtbot.waitUntil(lambda: w.weights_label.text() == "start weights missing")
    assert "transfer_base.safetensors: does not exist" in w.weights_label.toolTip()
    torch.manual_seed(0)
    save_weights(compile_graph(load_project(tmp_path / "transfer_base.netcanvas.json").graph),
                 tmp_path / "transfer_base.safetensors")
    # (no file watcher: the label follows the next edit)
    w.editor.set_params("fc2", {"out_features": 64})  # fc2 and the new head change shape
    qtbot.waitUntil(lambda: w.weights_label.text() == "from transfer_base.safetensors: 3 kept, 2 initialized")
    assert "fc2: 'fc2.weight' is [84, 120] in the file, [64, 120] now" in w.weights_label.toolTip()
    w.doc.history.undo()
    qtbot.waitUntil(lambda: w.weights_label.text() == "from transfer_base.safetensors: 4 kept, 1 initialized")
    assert "1 node (head) initialized" in w.weights_label.toolTip()
    data = json.loads((tmp_path / "transfer.netcanvas.json").read_text())
    assert data["training"]["init_weights"] == "transfer_base.safetensors"
