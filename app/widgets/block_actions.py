"""The main window's block operations beyond one edit: the context menu of a node, a
library block picked in the palette or dropped on the canvas, "Save Block to Library", and
which block's declared parameters the inspector pane shows (``BlockParamsEditor``)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QMenu, QMessageBox

from ..engine.block_library import SUFFIX as LIBRARY_SUFFIX
from ..engine.session.block_commands import SetBlockParams
from .blocks_ui import user_blocks_folder


class BlockActions:
    """Acts for ``window`` (a ``MainWindow``: its document, scene, view, editor, palette,
    inspector, block parameters form and actions)."""

    def __init__(self, window):
        self.window = window
        self.doc = window.doc

    def open_block_name(self) -> str | None:
        """The name of the block open on the canvas (None at the project's level)."""
        g, name = self.doc.graph, None
        for node_id in self.doc.scope:
            name = g.nodes[node_id].type
            g = self.doc.graph.blocks[name].graph
        return name

    def show_block_params(self, node) -> None:
        """The declared parameters of the selected block node's block, else of the open
        block when nothing is selected, else none."""
        w, blocks = self.window, self.doc.graph.blocks
        name = node.type if node is not None and node.type in blocks else None
        if node is None and self.doc.scope:
            name = self.open_block_name()
        w.block_params.set_block(name, blocks[name].params if name is not None else {})
        # inside a block with nothing selected, the block's own parameters take the pane
        w.inspector.setVisible(node is not None or not self.doc.scope)

    def set_block_params(self, name: str, params: dict) -> None:
        if name in self.doc.graph.blocks and self.doc.graph.blocks[name].params != params:
            self.doc.push(SetBlockParams(self.doc.model, name, params))

    def node_activated(self, node_id: str) -> None:
        """A double-click (or Enter) on a node: a block opens; a layer is the inspector's."""
        node = self.doc.current_graph.nodes.get(node_id)
        if node is not None and node.type in self.doc.graph.blocks:
            self.window.editor.open_block(node_id)

    def choose_scope(self, scope: tuple) -> None:
        """A crumb was clicked: show that level, with the block node we came from selected."""
        left = self.doc.scope[len(scope)] if len(scope) < len(self.doc.scope) else None
        self.doc.set_scope(scope)
        if left is not None:
            self.window.scene.select_nodes([left])

    def node_menu(self, node_id: str) -> QMenu:
        """The context menu of node ``node_id`` ("" for the canvas away from nodes)."""
        a = self.window.actions_by_name
        menu = QMenu(self.window)
        node = self.doc.current_graph.nodes.get(node_id)
        if node is not None and node.type in self.doc.graph.blocks:
            menu.addActions([a["open_block"], a["ungroup"], a["save_block"]])
            menu.addSeparator()
        if node is not None:
            menu.addActions([a["group"], a["cut"], a["copy"], a["duplicate"], a["delete"]])
        else:
            menu.addActions([a["paste"], a["select_all"]])
        if self.doc.scope:
            menu.addSeparator()
            menu.addAction(a["up_level"])
        return menu

    def show_node_menu(self, node_id: str, where: QPoint) -> None:
        scene = self.window.scene
        if node_id and node_id not in scene.selected_node_ids():
            scene.select_nodes([node_id])
        menu = self.node_menu(node_id)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(where)

    def add_library_block(self, key: str, pos: QPointF | None = None) -> None:
        """A library block picked in the palette (below the selected layer, fed by it) or
        dropped on the canvas (at ``pos``)."""
        w = self.window
        ids = w.scene.selected_node_ids()
        if pos is None and len(ids) == 1:
            w.editor.add_library_block(key, w.scene.centre_after(ids[0]), connect_from=ids[0])
        else:
            w.editor.add_library_block(key, pos if pos is not None else
                                       w.view.mapToScene(w.view.viewport().rect().center()))

    def save_to_library(self) -> None:
        """Save Block to Library: the selected block node's block into the user's folder
        (asking before replacing an entry of that name); the palette then lists it."""
        w = self.window
        node = w.selected_node()
        if node is None or node.type not in self.doc.graph.blocks:
            w.statusBar().showMessage("Select a block node to save its block to the library", 6000)
            return
        target = user_blocks_folder() / (node.type + LIBRARY_SUFFIX)
        if target.exists() and QMessageBox.question(
                w, "Replace the block?", f"Your library already has a block {node.type} ({target}). Replace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel) != QMessageBox.StandardButton.Yes:
            return
        path = w.editor.save_block_to_library(node.type, node_id=node.id)
        if path is not None:
            w.palette.set_blocks(w.editor.library_entries())
            w.statusBar().showMessage(f"Saved block {node.type} to {path}", 6000)
