"""The main window's actions, menus and toolbar (``build_actions``): each action named in
``window.actions_by_name``, its shortcuts from ``shortcuts.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup

from ..engine.examples import list_examples
from .profiling import METRICS
from .shortcuts import resolve as resolve_shortcuts

if TYPE_CHECKING:
    from .main_window import MainWindow


def _action(w: MainWindow, text: str, slot, tip: str = "") -> QAction:
    action = QAction(text, w)
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    return action


def build_actions(w: MainWindow) -> None:
    """Make ``w.actions_by_name`` and put the actions in the menus (``w.recent_menu`` and
    ``w.examples_menu`` among them) and the toolbar. Needs ``w``'s docks and views built."""
    a = w.actions_by_name = {
        "new": _action(w, "&New", w.new_file),
        "open": _action(w, "&Open…", w.open_dialog),
        "save": _action(w, "&Save", w.save),
        "save_as": _action(w, "Save &As…", w.save_as),
        "quit": _action(w, "&Quit", w.close),
        "undo": _action(w, "&Undo", w.doc.history.undo),
        "redo": _action(w, "&Redo", w.doc.history.redo),
        "cut": _action(w, "Cu&t", w.editor.cut),
        "copy": _action(w, "&Copy", w.editor.copy),
        "paste": _action(w, "&Paste", w.editor.paste),
        "duplicate": _action(w, "&Duplicate", w.editor.duplicate),
        "delete": _action(w, "De&lete", w._delete_or_up),
        "select_all": _action(w, "Select &All", w.editor.select_all),
        "zoom_in": _action(w, "Zoom &In", lambda: w.view.zoom_by(1.25)),
        "zoom_out": _action(w, "Zoom &Out", lambda: w.view.zoom_by(0.8)),
        "fit": _action(w, "&Fit to Window", w.view.fit),
        "layout": _action(w, "Auto &Layout", lambda: w.view.arrange("TB"), "Arrange the layers top to bottom"),
        "layout_lr": _action(w, "Left-to-&Right Layout", lambda: w.view.arrange("LR"),
                                  "Arrange the layers left to right, in rows as wide as the canvas"),
        "about": _action(w, "&About NetCanvas", w.about),
        "getting_started": _action(w, "&Getting Started", w.getting_started,
                                        "A short illustrated walk-through"),
        "import_torch": _action(w, "&PyTorch Model…", w._import_torch,
                                     "Import a torch.nn.Module (MODULE:CALLABLE or a .py file, whose code "
                                     "runs), checked against it"),
        "export_onnx": _action(w, "&ONNX Model…", w.exporter.ask_onnx,
                                    "Export to ONNX, checked in onnxruntime"),
        "export_python": _action(w, 
            "&PyTorch Code…", w.exporter.ask_python,
            "A folder with model.py, the weights, the data and a torchrun-ready train.py"),
        "train": _action(w, "&Train", w.train, "Train the network on its dataset"),
        "stop": _action(w, "&Stop Training", w.training.stop),
        "profile": _action(w, "&Profile", w.profiling.start,
                                "Time, memory and FLOPs of every layer, measured and shown on the canvas"),
        "clear_profile": _action(w, "&Clear Profile", w.profiling.clear, "Remove the profile from the canvas"),
        "live_nodes": _action(w, "Li&ve Nodes", w.set_live_nodes,
                                   "Show each layer's output for the chosen sample on the canvas while it "
                                   "trains"),
        "sweep": _action(w, "S&weep…", w.open_sweep,
                              "Search training settings and node parameters with Optuna; each trial is a run"),
        "group": _action(w, "&Group into Block", w.editor.group_selection,
                              "Make the selected layers one block node (a named sub-network)"),
        "ungroup": _action(w, "U&ngroup Block", w.editor.ungroup_selection,
                                "Put the layers of the selected block node in its place"),
        "open_block": _action(w, "&Open Block", lambda: w.editor.open_block(),
                                   "Show the inside of the selected block node (or double-click it)"),
        "up_level": _action(w, "Leave Block", w.editor.go_up, "Back to the graph around the open block"),
        "save_block": _action(w, "Save Block to Li&brary…", w.blocks.save_to_library,
                                   "Keep the selected block's definition in your block library"),
        "freeze": _action(w, "Free&ze", lambda: w.editor.set_trainable(False),
                               "Keep the selected layers' weights fixed while training (transfer learning)"),
        "unfreeze": _action(w, "Un&freeze", lambda: w.editor.set_trainable(True),
                                 "Train the selected layers' weights again"),
    }
    for name, sequences in resolve_shortcuts().items():  # each key bound once (shortcuts.py)
        a[name].setShortcuts(sequences)
    # the toolbar's buttons keep their width as the menu's "Undo Edit conv1" changes
    a["undo"].setIconText("Undo")
    a["redo"].setIconText("Redo")
    for action in a.values():
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    # keys that also mean something while typing in a field act only on the canvas
    for name in ("delete", "fit", "cut", "copy", "paste", "select_all"):
        a[name].setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        w.view.addAction(a[name])
    menu = w.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addActions([a["new"], a["open"]])
    w.recent_menu = file_menu.addMenu("Open &Recent")
    w.examples_menu = file_menu.addMenu("&Examples")
    for ex in list_examples():
        w.examples_menu.addAction(ex.title, lambda p=ex.path: w.open_file(p, example=True))
    file_menu.addSeparator()
    file_menu.addActions([a["save"], a["save_as"]])
    import_menu = file_menu.addMenu("&Import")
    import_menu.addAction(a["import_torch"])
    export_menu = file_menu.addMenu("E&xport")
    export_menu.addActions([a["export_onnx"], a["export_python"]])
    file_menu.addSeparator()
    file_menu.addAction(a["quit"])
    edit = menu.addMenu("&Edit")
    edit.addActions([a["undo"], a["redo"]])
    edit.addSeparator()
    edit.addActions([a["cut"], a["copy"], a["paste"], a["duplicate"], a["delete"]])
    edit.addSeparator()
    edit.addAction(a["select_all"])
    edit.addSeparator()
    edit.addActions([a["group"], a["ungroup"], a["open_block"], a["up_level"], a["save_block"]])
    edit.addSeparator()
    edit.addActions([a["freeze"], a["unfreeze"]])
    view = menu.addMenu("&View")
    view.addActions([a["zoom_in"], a["zoom_out"], a["fit"], a["layout"], a["layout_lr"]])
    view.addSeparator()
    a["live_nodes"].setCheckable(True)
    view.addAction(a["live_nodes"])
    view.addSeparator()
    for dock in w._docks.values():
        view.addAction(dock.toggleViewAction())
    run = menu.addMenu("&Run")
    run.addActions([a["train"], a["stop"]])
    run.addSeparator()
    run.addAction(a["sweep"])
    run.addSeparator()
    run.addActions([a["profile"], a["clear_profile"]])
    shows = run.addMenu("Profile &Measures")
    group = QActionGroup(w)
    for metric, title in METRICS.items():
        choice = shows.addAction(title, lambda m=metric: w.profiling.set_metric(m))
        choice.setCheckable(True)
        choice.setChecked(metric == w.profiling.metric)
        group.addAction(choice)
    help_menu = menu.addMenu("&Help")
    help_menu.addActions([a["getting_started"], a["about"]])
    bar = w.addToolBar("Main")
    bar.setObjectName("toolbar_main")
    bar.addActions([a["new"], a["open"], a["save"]])
    bar.addSeparator()
    bar.addActions([a["undo"], a["redo"]])
    bar.addSeparator()
    bar.addActions([a["fit"], a["layout"]])
    bar.addSeparator()
    bar.addAction(a["train"])
    w._fill_recent()
