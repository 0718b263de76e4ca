"""The main window: canvas in the middle, palette, inspector, issues and history docked
around it, menus and shortcuts as Qt users expect. It wires views to the document; the
work itself lives in the document, the commands, the scene and the editor."""

from __future__ import annotations

from pathlib import Path

import shiboken6
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QVBoxLayout, QWidget)

from ..engine.errors import NetCanvasError
from ..engine.counts import param_split
from ..engine.examples import list_examples
from ..engine.project import SUFFIX, Project, load_project
from ..engine.session.weights import init_weights_fit
from .block_actions import BlockActions
from .blocks_ui import BlockParamsEditor
from .canvas.arrange import Arrange
from .canvas.breadcrumb import Breadcrumb
from .canvas.scene import CanvasScene
from .canvas.view import CanvasView
from .document import Document
from .editing import Editor
from .exporting import Exporter
from .help import AboutDialog, GettingStartedDialog
from .history_view import HistoryView
from .inspector import Inspector
from .issues import IssuesList
from .palette import Palette
from .profiling import METRICS, Profiling
from .recovery import Autosaver, forget, pending_recoveries, recovery_dir
from .shortcuts import resolve as resolve_shortcuts
from .runs.sweep_dialog import SweepDialog
from .runs.view import RunsView, store_path_of
from .training.panel import TrainingPanel

MAX_RECENT = 8
FIRST_RUN_SIZES = {"palette": 200, "inspector": 300, "history": 300, "issues": 120, "training": 120, "runs": 120}
LAYOUT_VERSION = 3  # bumped when the docks change: an older saved layout gives way to the default
FILE_FILTER = f"NetCanvas projects (*{SUFFIX} *.json);;ONNX models (*.onnx);;All files (*)"
START_WEIGHTS_DELAY_MS = 150  # after the last edit, the status bar says how the start weights fit


class MainWindow(QMainWindow):
    def __init__(self, project: Project | None = None, settings: QSettings | None = None):
        super().__init__()
        self._state_text: str | None = None  # the status message of a state (training, an export)
        self.settings = settings or QSettings()
        self.doc = Document(project, self, scratch_dir=recovery_dir)
        self.scene = CanvasScene(self.doc, self)
        self.view = CanvasView(self.scene, self)
        self.editor = Editor(self.doc, self.scene)
        self.blocks = BlockActions(self)
        self.breadcrumb = Breadcrumb()
        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.breadcrumb)
        column.addWidget(self.view, 1)
        self.setCentralWidget(centre)
        self.palette = Palette(self)
        self.inspector = Inspector(self)
        self.inspector.spec_of = lambda type_name: self.doc.current_graph.spec(type_name)  # (blocks too)
        self.block_params = BlockParamsEditor()
        inspector_pane = QWidget()
        pane = QVBoxLayout(inspector_pane)
        pane.setContentsMargins(0, 0, 0, 0)
        pane.setSpacing(0)
        pane.addWidget(self.inspector, 1)
        pane.addWidget(self.block_params)
        pane.addStretch(0)  # (takes the room only while the inspector is hidden)
        self.issues = IssuesList(self)
        self.history = HistoryView(self.doc.history, self)
        self.training = TrainingPanel(self.doc, self)
        self.runs = RunsView(self.doc, self)
        self.runs.setMinimumSize(240, 140)  # its buttons' row would widen the window past the screen
        self._sweep: SweepDialog | None = None
        self._closing_after_training = False
        self._editing_locked = False  # a run trains this graph (see _lock_editing)
        # exports take the weights the panel holds (trained or loaded), else the project's
        self.exporter = Exporter(self, lambda: self.doc.project,
                                 lambda: self.doc.weights.file or self.doc.project.weights_path)
        self.exporter.busy_changed.connect(lambda busy: self._state_message("Exporting…" if busy else ""))
        self.profiling = Profiling(self, lambda: self.doc.project, lambda: self.doc.scope, self.scene.set_profile,
                                   lambda: self.doc.analysis)
        self.profiling.busy_changed.connect(lambda busy: self._state_message("Profiling…" if busy else ""))
        self._docks = {}
        self._dock("palette", "Layers", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("inspector", "Inspector", inspector_pane, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("history", "History", self.history, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("issues", "Issues", self.issues, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("training", "Training", self.training, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("runs", "Runs", self.runs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.params_label, self.errors_label, self.weights_label = QLabel(), QLabel(), QLabel()
        # how the start weights fit is worked out once the edits pause: it compiles the graph
        # (on torch's meta device: ~0.14 s for a ResNet-50), which no edit should wait for
        self._start_weights_timer = QTimer(self, singleShot=True, interval=START_WEIGHTS_DELAY_MS)
        self._start_weights_timer.timeout.connect(self._update_start_weights)
        self.statusBar().addPermanentWidget(self.weights_label)
        self.statusBar().addPermanentWidget(self.errors_label)
        self.statusBar().addPermanentWidget(self.params_label)
        self._build_actions()
        self._wire()
        self.palette.set_blocks(self.editor.library_entries())  # the built-in blocks and the user's
        self.autosaver = Autosaver(self.doc, parent=self)
        self.resize(1400, 880)
        self._restore_layout()
        self._show_analysis(self.doc.analysis)
        self._update_title()

    # -- construction ----------------------------------------------------------------------
    def _dock(self, name: str, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self._docks[name] = dock
        dock.visibilityChanged.connect(
            lambda visible, d=dock: None if visible or not shiboken6.isValid(self)  # hidden as the window goes
            else QTimer.singleShot(0, self, lambda: self._give_room_to_canvas(d)))
        return dock

    def _give_room_to_canvas(self, closed: QDockWidget) -> None:
        """A closed dock's room goes to the canvas, not to the dock that shared its tab or area."""
        if not closed.isHidden():  # tabbed away, not closed
            return
        area = self.dockWidgetArea(closed)
        rest = [(n, d) for n, d in self._docks.items()
                if d is not closed and d.isVisible() and not d.isFloating() and self.dockWidgetArea(d) == area]
        if rest:
            across = area in (Qt.DockWidgetArea.TopDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea)
            self.resizeDocks([d for _, d in rest], [FIRST_RUN_SIZES[n] for n, _ in rest],
                             Qt.Orientation.Vertical if across else Qt.Orientation.Horizontal)

    def _action(self, text: str, slot, tip: str = "") -> QAction:
        action = QAction(text, self)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        a = self.actions_by_name = {
            "new": self._action("&New", self.new_file),
            "open": self._action("&Open…", self.open_dialog),
            "save": self._action("&Save", self.save),
            "save_as": self._action("Save &As…", self.save_as),
            "quit": self._action("&Quit", self.close),
            "undo": self._action("&Undo", self.doc.history.undo),
            "redo": self._action("&Redo", self.doc.history.redo),
            "cut": self._action("Cu&t", self.editor.cut),
            "copy": self._action("&Copy", self.editor.copy),
            "paste": self._action("&Paste", self.editor.paste),
            "duplicate": self._action("&Duplicate", self.editor.duplicate),
            "delete": self._action("De&lete", self._delete_or_up),
            "select_all": self._action("Select &All", self.editor.select_all),
            "zoom_in": self._action("Zoom &In", lambda: self.view.zoom_by(1.25)),
            "zoom_out": self._action("Zoom &Out", lambda: self.view.zoom_by(0.8)),
            "fit": self._action("&Fit to Window", self.view.fit),
            "layout": self._action("Auto &Layout", lambda: self.view.arrange("TB"), "Arrange the layers top to bottom"),
            "layout_lr": self._action("Left-to-&Right Layout", lambda: self.view.arrange("LR"),
                                      "Arrange the layers left to right, in rows as wide as the canvas"),
            "about": self._action("&About NetCanvas", self.about),
            "getting_started": self._action("&Getting Started", self.getting_started,
                                            "A short illustrated walk-through"),
            "import_torch": self._action("&PyTorch Model…", self._import_torch,
                                         "Import a torch.nn.Module (MODULE:CALLABLE or a .py file, whose code "
                                         "runs), checked against it"),
            "export_onnx": self._action("&ONNX Model…", self.exporter.ask_onnx,
                                        "Export to ONNX, checked in onnxruntime"),
            "export_python": self._action(
                "&PyTorch Code…", self.exporter.ask_python,
                "A folder with model.py, the weights, the data and a torchrun-ready train.py"),
            "train": self._action("&Train", self.train, "Train the network on its dataset"),
            "stop": self._action("&Stop Training", self.training.stop),
            "profile": self._action("&Profile", self.profiling.start,
                                    "Time, memory and FLOPs of every layer, measured and shown on the canvas"),
            "clear_profile": self._action("&Clear Profile", self.profiling.clear, "Remove the profile from the canvas"),
            "live_nodes": self._action("Li&ve Nodes", self.set_live_nodes,
                                       "Show each layer's output for the chosen sample on the canvas while it "
                                       "trains"),
            "sweep": self._action("S&weep…", self.open_sweep,
                                  "Search training settings and node parameters with Optuna; each trial is a run"),
            "group": self._action("&Group into Block", self.editor.group_selection,
                                  "Make the selected layers one block node (a named sub-network)"),
            "ungroup": self._action("U&ngroup Block", self.editor.ungroup_selection,
                                    "Put the layers of the selected block node in its place"),
            "open_block": self._action("&Open Block", lambda: self.editor.open_block(),
                                       "Show the inside of the selected block node (or double-click it)"),
            "up_level": self._action("Leave Block", self.editor.go_up, "Back to the graph around the open block"),
            "save_block": self._action("Save Block to Li&brary…", self.blocks.save_to_library,
                                       "Keep the selected block's definition in your block library"),
            "freeze": self._action("Free&ze", lambda: self.editor.set_trainable(False),
                                   "Keep the selected layers' weights fixed while training (transfer learning)"),
            "unfreeze": self._action("Un&freeze", lambda: self.editor.set_trainable(True),
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
            self.view.addAction(a[name])
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addActions([a["new"], a["open"]])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.examples_menu = file_menu.addMenu("&Examples")
        for ex in list_examples():
            self.examples_menu.addAction(ex.title, lambda p=ex.path: self.open_file(p, example=True))
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
        for dock in self._docks.values():
            view.addAction(dock.toggleViewAction())
        run = menu.addMenu("&Run")
        run.addActions([a["train"], a["stop"]])
        run.addSeparator()
        run.addAction(a["sweep"])
        run.addSeparator()
        run.addActions([a["profile"], a["clear_profile"]])
        shows = run.addMenu("Profile &Measures")
        group = QActionGroup(self)
        for metric, title in METRICS.items():
            choice = shows.addAction(title, lambda m=metric: self.profiling.set_metric(m))
            choice.setCheckable(True)
            choice.setChecked(metric == self.profiling.metric)
            group.addAction(choice)
        help_menu = menu.addMenu("&Help")
        help_menu.addActions([a["getting_started"], a["about"]])
        bar = self.addToolBar("Main")
        bar.setObjectName("toolbar_main")
        bar.addActions([a["new"], a["open"], a["save"]])
        bar.addSeparator()
        bar.addActions([a["undo"], a["redo"]])
        bar.addSeparator()
        bar.addActions([a["fit"], a["layout"]])
        bar.addSeparator()
        bar.addAction(a["train"])
        self._fill_recent()

    def _wire(self) -> None:
        self.doc.analyzed.connect(self._show_analysis)
        self.doc.dirty_changed.connect(lambda _: self._update_title())
        self.doc.path_changed.connect(lambda _: self._update_title())
        self.scene.selectionChanged.connect(self._selection_changed)
        self.scene.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        # a message about the document ("Saved", "Cannot connect") is stale once it changes;
        # the message of a state comes back when a passing one (or a menu's tip) ends
        self.statusBar().messageChanged.connect(
            lambda text: None if text or not self._state_text else self.statusBar().showMessage(self._state_text))
        self.doc.analyzed.connect(self._drop_stale_message)
        self.doc.settings_changed.connect(self._drop_stale_message)
        # the weights a run starts from follow the training settings and the project's folder
        self.doc.settings_changed.connect(lambda _: self._start_weights_timer.start())
        self.doc.path_changed.connect(lambda _: self._start_weights_timer.start())
        self.view.layer_dropped.connect(lambda t, pos: self.editor.add_layer(t, pos))
        self.palette.layer_activated.connect(self._add_from_palette)
        self.inspector.params_edited.connect(self.editor.set_params)
        self.inspector.options_edited.connect(self.editor.set_options)
        self.block_params.params_edited.connect(self.blocks.set_block_params)
        self.view.node_activated.connect(self.blocks.node_activated)
        self.view.up_requested.connect(self.editor.go_up)
        self.view.node_menu.connect(self._show_node_menu)
        self.view.block_dropped.connect(self.blocks.add_library_block)
        self.palette.block_activated.connect(self.blocks.add_library_block)
        self.breadcrumb.scope_chosen.connect(self.blocks.choose_scope)
        self.doc.scope_changed.connect(self._scope_changed)
        self.doc.reset.connect(lambda: self._scope_changed(self.doc.scope))  # another project: at its top
        self.issues.node_chosen.connect(self.focus_node)
        self.issues.path_chosen.connect(self.focus_path)
        self.training.training_active.connect(self._lock_editing)
        self.training.start_weights_changed.connect(self._start_weights_timer.start)
        # the Runs view: the store beside the project's weights, read again after each run
        self.runs.set_store(store_path_of(self.doc))
        self.doc.path_changed.connect(lambda _: self.runs.set_store(store_path_of(self.doc)))
        self.doc.reset.connect(lambda: self.runs.set_store(store_path_of(self.doc)))
        self.training.runs_changed.connect(lambda: self.runs.set_store(store_path_of(self.doc)))
        self.training.training_active.connect(self.runs.set_editing_locked)
        self.runs.weights_chosen.connect(lambda path: self.training.adopt_weights(
            path, f"Weights of the chosen run loaded from {path.name}."))
        self.runs.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.doc.history.changed.connect(self._follow_history)
        # what the canvas shows of a run (live nodes, health badges) and of a profile
        self.training.insight_changed.connect(self.scene.set_insight)
        self.doc.analyzed.connect(self.profiling.graph_edited)
        self.doc.settings_changed.connect(self.profiling.settings_edited)
        self.doc.scope_changed.connect(lambda _s: self.profiling.refresh())
        self.profiling.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.profiling.failed.connect(lambda text: self.show_error("Cannot profile", text))
        self._follow_history()
        self._follow_selection()

    # -- reacting ----------------------------------------------------------------------------
    def _state_message(self, text: str) -> None:
        """A status message that lasts as long as the state it describes (training, an
        export): ``""`` when that state ends."""
        if text:
            self._state_text = text
            self.statusBar().showMessage(text)
        else:
            ended, self._state_text = self._state_text, None
            if self.statusBar().currentMessage() == ended:
                self.statusBar().clearMessage()

    def _drop_stale_message(self, *_args) -> None:
        bar = self.statusBar()
        if bar.currentMessage() and bar.currentMessage() != self._state_text:
            bar.clearMessage()

    def _show_analysis(self, a) -> None:
        errors = len(a.errors)
        # with errors, layers after them have no shape and no count: the count is of the rest
        uncounted = sum(1 for node_id in self.doc.graph.nodes if a.shapes.get(node_id) is None)
        trainable, frozen = param_split(self.doc.graph, a)
        frozen_text = f", {frozen:,} frozen" if frozen else ""
        if not uncounted:
            self.params_label.setText(f"{a.total_params:,} parameters{frozen_text}")
            self.params_label.setToolTip(f"Parameters of the whole network: {trainable:,} trainable, "
                                         f"{frozen:,} frozen (kept fixed while training)")
        else:
            self.params_label.setText(f"≥ {a.total_params:,} parameters{frozen_text}" if a.total_params
                                      else "– parameters")
            self.params_label.setToolTip(
                f"Parameters of the layers whose shapes are known ({frozen:,} of them frozen); {uncounted} layer"
                f"{'s' if uncounted > 1 else ''} cannot be counted until the errors are fixed")
        self._start_weights_timer.start()
        self.errors_label.setText("no errors" if not errors else f"{errors} error" + ("s" if errors > 1 else ""))
        self.errors_label.setStyleSheet("" if not errors else f"color: {self.scene.theme.error.name()}")
        self.issues.show_analysis(a)
        # the inspector shows the graph on the canvas: inside an open block, its analysis
        inside = self.doc.current_analysis
        node = self.selected_node()
        self.inspector.refresh(node, inside) if node else self.inspector.set_node(None, inside)
        self.blocks.show_block_params(node)

    def _update_start_weights(self) -> None:
        self._show_start_weights(self.doc.analysis)

    def _show_start_weights(self, a) -> None:
        """The status bar says how the weights that the next run starts from
        (``training.init_weights``, else the weights held unless the panel says "a fresh
        initialization") fit the graph as edited: which nodes keep them, which will be
        initialized."""
        start = self.doc.weights.start_file() if not self.doc.project.training.get("init_weights") else None
        fit = init_weights_fit(self.doc.project, a, start)
        if fit is None:
            self.weights_label.setText("")
            self.weights_label.setToolTip("")
            self.weights_label.setVisible(False)
            return
        self.weights_label.setVisible(True)
        if isinstance(fit, str):
            self.weights_label.setText("start weights missing")
            self.weights_label.setStyleSheet(f"color: {self.scene.theme.error.name()}")
            self.weights_label.setToolTip(fit)
            return
        self.weights_label.setStyleSheet("")
        name = Path(fit.source).name
        initialized = f", {len(fit.initialized)} initialized" if fit.initialized else ""
        self.weights_label.setText(f"from {name}: {len(fit.kept)} kept{initialized}")
        self.weights_label.setToolTip(f"The next run starts from {fit.source}: {fit.summary()}")

    def node_menu(self, node_id: str):
        """The canvas's context menu of ``node_id`` ("" away from nodes): the block actions'
        (``BlockActions.node_menu``), and Freeze / Unfreeze for a node."""
        menu = self.blocks.node_menu(node_id)
        if node_id:
            menu.addSeparator()
            menu.addActions([self.actions_by_name["freeze"], self.actions_by_name["unfreeze"]])
        return menu

    def _show_node_menu(self, node_id: str, where) -> None:
        if node_id and node_id not in self.scene.selected_node_ids():
            self.scene.select_nodes([node_id])
        menu = self.node_menu(node_id)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(where)

    def selected_node(self):
        """The one node selected on the canvas (in the graph shown), else None."""
        ids = self.scene.selected_node_ids()
        return self.doc.current_graph.nodes.get(ids[0]) if len(ids) == 1 else None

    def _selection_changed(self) -> None:
        node = self.selected_node()
        self.inspector.set_node(node, self.doc.current_analysis)
        self.blocks.show_block_params(node)
        if node is not None and not self.doc.scope:  # the training views follow the canvas
            self.training.activations.select_node(node.id)
            self.training.filters.select_layer(node.id)
        self._follow_selection()

    def _follow_selection(self) -> None:
        """The block actions are enabled for a block node (Group for any selection)."""
        node = self.selected_node()
        is_block = node is not None and node.type in self.doc.graph.blocks
        for name in ("ungroup", "open_block", "save_block"):
            self.actions_by_name[name].setEnabled(is_block and (name != "ungroup" or not self._editing_locked))
        self.actions_by_name["group"].setEnabled(not self._editing_locked)
        self.actions_by_name["up_level"].setEnabled(bool(self.doc.scope))

    def _delete_or_up(self) -> None:
        """Delete (Backspace) the selection; with nothing selected inside a block, go up."""
        if not self.scene.selected_node_ids() and not self.scene.selected_edges() and self.doc.scope:
            self.editor.go_up()
        else:
            self.editor.delete_selection()

    def _scope_changed(self, scope) -> None:
        """A block was opened or left (or another project opened): the breadcrumb, the
        inspector and the view follow."""
        self.breadcrumb.show_scope(self.doc.graph, scope)
        self.inspector.inside_block = bool(scope)
        self.view.fit(arrange=False)
        self._selection_changed()
        self._show_analysis(self.doc.analysis)

    def set_live_nodes(self, on: bool) -> None:
        """View > Live Nodes: each node shows its output for the chosen sample (the training
        panel then fetches snapshots even when no view of its own shows them)."""
        self.actions_by_name["live_nodes"].setChecked(on)
        self.scene.live_nodes = on
        self.training.live_nodes = on
        self.scene.update()

    def train(self) -> None:
        self._docks["training"].show()
        self._docks["training"].raise_()
        if self._docks["training"].height() < 360:
            self.resizeDocks([self._docks["training"]], [int(self.height() * 0.5)], Qt.Orientation.Vertical)
        self.training.start()

    _EDIT_ACTIONS = ("new", "open", "cut", "paste", "duplicate", "delete", "layout", "layout_lr", "group",
                     "ungroup", "freeze", "unfreeze")

    def _lock_editing(self, training: bool) -> None:
        """While a run trains this graph, the graph cannot change under it."""
        self._editing_locked = training
        self.scene.set_read_only(training, "Training is running: stop it to edit the network")
        # every way to change the graph or replace the project: the palette, the inspector,
        # the history view (a click there undoes), Open Recent and Examples
        for widget in (self.palette, self.inspector, self.block_params, self.history, self.recent_menu,
                       self.examples_menu):
            widget.setEnabled(not training)
        for name in self._EDIT_ACTIONS:
            self.actions_by_name[name].setEnabled(not training)
        self._follow_history()  # undo/redo: only the view's own layout while locked
        self._follow_selection()
        self.actions_by_name["train"].setEnabled(not training)
        self._state_message("Training… editing is locked until it stops." if training else "")

    def _follow_history(self) -> None:
        """Undo and Redo say what they would take back or apply again, and are enabled when
        there is such a step. While a run locks editing, only the view's own layout (an
        automatic ``Arrange``, the one step pushed then) may be taken back or applied again:
        the user's edits before it stay as the run trains them."""
        history = self.doc.history
        for name, able, step, text in (("undo", history.can_undo, history.index - 1, history.undo_text),
                                       ("redo", history.can_redo, history.index, history.redo_text)):
            if able and self._editing_locked:
                command = history.command(step)
                able = isinstance(command, Arrange) and command.auto
            action = self.actions_by_name[name]
            action.setEnabled(able)
            action.setText(f"&{name.capitalize()} {text}" if text else f"&{name.capitalize()}")

    def _add_from_palette(self, type_name: str) -> None:
        """Double-click / Enter in the palette: below the selected layer, fed by it."""
        ids = self.scene.selected_node_ids()
        if len(ids) == 1:
            self.editor.add_layer(type_name, self.scene.centre_after(ids[0]), connect_from=ids[0])
        else:
            self.editor.add_layer(type_name, self.view.mapToScene(self.view.viewport().rect().center()))

    def focus_node(self, node_id: str) -> None:
        if node_id not in self.scene.nodes and node_id in self.doc.graph.nodes:
            self.doc.set_scope(())  # an issue of the project's graph: back to its level
        if node_id in self.scene.nodes:
            self.scene.select_nodes([node_id])
            self.view.centerOn(self.scene.nodes[node_id])

    def focus_path(self, path: tuple) -> None:
        """Open the blocks along ``path`` (block node ids, outermost first, then the layer
        inside the last one) and select that layer: where an issue inside a block lies."""
        self.doc.set_scope(path[:-1])
        if self.doc.scope == tuple(path[:-1]) and path[-1] in self.scene.nodes:
            self.scene.select_nodes([path[-1]])
            self.view.centerOn(self.scene.nodes[path[-1]])

    def _update_title(self) -> None:
        path = self.doc.project.path
        name = path.name if path else "Untitled"
        self.setWindowTitle(f"{name}[*] — {self.doc.project.name} — NetCanvas")
        self.setWindowModified(self.doc.dirty)

    # -- files -------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Show ``project`` (the document lays out nodes that have no position)."""
        self.doc.set_project(project)
        self._project_replaced()

    def _project_replaced(self) -> None:
        """Another project is open: the previous one's recovery copy goes, the view fits."""
        self.autosaver.discard()
        self.view.fit()
        self._update_title()

    def new_file(self) -> None:
        if self.maybe_save():
            self.set_project(Project(name="Untitled"))

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = str(Path(self.doc.project.path).parent) if self.doc.project.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, FILE_FILTER)
        if path:
            self.open_file(path, ask=False)

    def open_file(self, path, example: bool = False, ask: bool = True) -> bool:
        """Open a project file; a file that fails to load shows the engine's message and
        leaves the current document as it was. Examples open as untitled copies."""
        if self.training.session.running:
            self.show_error("Training is running", "Stop the training before opening another project.")
            return False
        if ask and not self.maybe_save():
            return False
        if str(path).lower().endswith(".onnx"):
            return self._import_onnx(Path(path))
        try:
            project = load_project(path)
        except NetCanvasError as e:
            self.show_error("Cannot open the file", str(e))
            return False
        if example:
            project.path = None
        self.set_project(project)
        if not example:
            self._remember(str(Path(path).resolve()))
        self.statusBar().showMessage(f"Opened {project.name}", 4000)
        return True

    def _import_torch(self) -> None:
        # imported here: the PyTorch importer loads torch.fx and torch.export, a second more at every start
        from .torch_import_dialog import open_torch_import
        open_torch_import(self)

    def _import_onnx(self, path: Path) -> bool:
        """An ONNX model becomes an unsaved project; its weights wait in the recovery folder
        until the first save puts them beside the project file."""
        # imported here: the importer loads onnx, which would lengthen every start of the editor
        from ..engine.importers.onnx_import import import_onnx

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            result = import_onnx(path)
            weights = self.doc.model.adopt_import(result.project, result.state, result.weights_metadata())
        except (NetCanvasError, OSError) as e:
            self.show_error("Cannot import the ONNX model", str(e))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._project_replaced()
        self.training.adopt_weights(weights, f"Weights imported from {path.name}; saving the project keeps them "
                                             "beside it.")
        self._remember(str(path.resolve()))
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        self.statusBar().showMessage(f"Imported {path.name}: {len(result.project.graph.nodes)} layers{notes}", 8000)
        return True

    def save(self) -> bool:
        if self.doc.project.path is None:
            return self.save_as()
        return self._save_to(self.doc.project.path)

    def save_as(self) -> bool:
        start = str(self.doc.project.path or Path.home() / ("network" + SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".json"):
            path += SUFFIX
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            self.doc.save(path)
        except (OSError, NetCanvasError) as e:
            self.show_error("Cannot save", f"{path}: {e}")
            return False
        self.autosaver.discard()
        self._remember(str(Path(path).resolve()))
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False when the user cancels."""
        if not self.doc.dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.doc.project.name!r}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def show_error(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.last_error = message
        box.open()
        self._error_box = box

    def offer_recoveries(self) -> None:
        for rec in pending_recoveries():
            answer = QMessageBox.question(
                self, "Recover unsaved work",
                f"NetCanvas closed unexpectedly while {rec.name!r} had unsaved changes"
                + (f" ({rec.original})" if rec.original else "") + ". Recover them?")
            if answer == QMessageBox.StandardButton.Yes:
                try:
                    weights = self.doc.model.recover(rec)
                except NetCanvasError as e:
                    self.show_error("Cannot recover", str(e))
                    continue
                self._project_replaced()
                if weights is not None:
                    self.training.adopt_weights(weights, "Trained weights recovered.")
            forget(rec)
            break

    def _remember(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent_files", [path] + recent[: MAX_RECENT - 1])
        self._fill_recent()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            self.recent_menu.addAction(path, lambda p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    # -- window ------------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        """The layout of the last session, or the first-run one. Docks are tabified only for
        the latter: tabifying before restoreState leaves stray tab bars on the window."""
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and self.restoreState(state, LAYOUT_VERSION):
            return
        self._first_show = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if getattr(self, "_first_show", False):  # first run: the canvas gets the room
            self._first_show = False
            # tabified once the window has its size: done before, the dock layout keeps a
            # stale second tab bar over the inspector
            self.tabifyDockWidget(self._docks["issues"], self._docks["training"])
            self.tabifyDockWidget(self._docks["training"], self._docks["runs"])
            self._docks["issues"].raise_()
            self.tabifyDockWidget(self._docks["inspector"], self._docks["history"])
            self._docks["inspector"].raise_()
            self.resizeDocks([self._docks["issues"]], [FIRST_RUN_SIZES["issues"]], Qt.Orientation.Vertical)
            self.resizeDocks([self._docks["palette"], self._docks["inspector"]],
                             [FIRST_RUN_SIZES["palette"], FIRST_RUN_SIZES["inspector"]],
                             Qt.Orientation.Horizontal)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training.session.running and not self._closing_after_training:
            answer = QMessageBox.question(
                self, "Training is running",
                "Stop the training and close? It stops after the current minibatch. The weights "
                "trained so far are kept, without replacing trained weights already in place.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes)
            event.ignore()
            if answer == QMessageBox.StandardButton.Yes:  # close once the run has ended
                self._closing_after_training = True
                self.training.ask_before_replacing = False  # nobody is left to answer: keep those in place
                once = Qt.ConnectionType.SingleShotConnection
                self.training.session.finished.connect(lambda _e: QTimer.singleShot(0, self.close), once)
                self.training.session.failed.connect(lambda _m: QTimer.singleShot(0, self.close), once)
                self.training.stop()
            return
        if self.exporter.busy:
            self.exporter.task.wait(120)  # an export half-written helps nobody
        if not self.maybe_save():  # cancelled: the window stays, as it was before the close
            self._closing_after_training = False
            self.training.ask_before_replacing = True
            event.ignore()
            return
        if self._sweep is not None and shiboken6.isValid(self._sweep):
            self._sweep.reject()  # ends a sweep in progress
        self.training.shutdown()
        self.profiling.cancel()  # its child process measures a graph nobody will see
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.autosaver.discard()
        event.accept()

    def open_sweep(self) -> None:
        """The Sweep dialog for the open project (unsaved changes included); its trials are
        runs in the project's store, listed in the Runs view as they finish."""
        if self._sweep is not None and shiboken6.isValid(self._sweep) and self._sweep.isVisible():
            self._sweep.raise_()
            self._sweep.activateWindow()
            return
        try:
            target = self.doc.weights.run_target()
        except OSError as e:
            QMessageBox.warning(self, "Sweep", f"The weights folder cannot be prepared: {e}")
            return
        self._sweep = SweepDialog(self.doc.project, target, dirty=lambda: self.doc.dirty, parent=self)
        self._sweep.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._sweep.runner.trial.connect(lambda _t: self.runs.set_store(store_path_of(self.doc)))
        self._sweep.runner.ended.connect(lambda _m: self.runs.set_store(store_path_of(self.doc)))
        self._sweep.show()

    def about(self) -> None:
        dialog = AboutDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exec()

    def getting_started(self) -> None:
        if getattr(self, "_help", None) is None:  # one, not modal: read it while trying the steps
            self._help = GettingStartedDialog(self)
        self._help.show()
        self._help.raise_()
