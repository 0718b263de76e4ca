"""The main window: canvas in the middle, palette, inspector, issues and history docked
around it, menus and shortcuts as Qt users expect. It wires views to the document; the
work itself lives in the document, the commands, the scene and the editor.

Its parts: window_menus.py (actions, menus, toolbar), window_files.py (open, save, recover),
window_status.py (the status bar), window_runs.py (the Runs view and the Sweep dialog, built
when first used); what the first paint does not need waits for it (first_paint.py)."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from ..engine.project import Project
from .block_actions import BlockActions
from .blocks_ui import BlockParamsEditor
from .canvas.arrange import Arrange
from .canvas.breadcrumb import Breadcrumb
from .canvas.scene import CanvasScene
from .canvas.view import CanvasView
from .document import Document
from .editing import Editor
from .exporting import Exporter
from .first_paint import FirstPaint
from .help import AboutDialog, GettingStartedDialog
from .history_view import HistoryView
from .inspector import Inspector
from .issues import IssuesList
from .palette import Palette
from .profiling import Profiling
from .recovery import Autosaver, recovery_dir
from .threads import settle_garbage, thaw_garbage
from .training.panel import TrainingPanel
from .window_files import WindowFiles
from .window_menus import build_actions
from .window_runs import WindowRuns
from .window_status import WindowStatus

FIRST_RUN_SIZES = {"palette": 200, "inspector": 300, "history": 300, "issues": 120, "training": 120, "runs": 120}
LAYOUT_VERSION = 3  # bumped when the docks change: an older saved layout gives way to the default


class MainWindow(WindowFiles, WindowStatus, WindowRuns, QMainWindow):
    def __init__(self, project: Project | None = None, settings: QSettings | None = None):
        super().__init__()
        # what the first paint does not need waits for it (first_paint.py)
        self.first_paint = FirstPaint(self)
        self.first_paint.after(settle_garbage)  # what the window built lives as long as it (threads.py)
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
        self.training.wait_for(self.first_paint)  # torch (the data's loader, the devices) after the first paint
        runs_holder = self._prepare_runs()  # the Runs view (``runs``) is built when first shown
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
        self._dock("runs", "Runs", runs_holder, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._build_status()
        build_actions(self)
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
        self._follow_runs()  # the Runs view: the store beside the project's weights
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
                self.training.session.finished.connect(lambda _e: QTimer.singleShot(0, self, self.close), once)
                self.training.session.failed.connect(lambda _m: QTimer.singleShot(0, self, self.close), once)
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
        thaw_garbage()  # its cycles may have been frozen with it (threads.py)
        event.accept()

    def about(self) -> None:
        dialog = AboutDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.exec()

    def getting_started(self) -> None:
        if getattr(self, "_help", None) is None:  # one, not modal: read it while trying the steps
            self._help = GettingStartedDialog(self)
        self._help.show()
        self._help.raise_()
