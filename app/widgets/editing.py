"""Edit operations on the canvas selection, each pushed as one undoable command. They act
on the graph the canvas shows (``doc.current_graph``): inside an open block, an edit changes
the block's definition, so every node of the block follows."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QApplication

from ..engine.block_library import LibraryEntry, insert_entry, list_library, load_entry, save_entry
from ..engine.errors import ProjectError
from ..engine.graph import Block, Edge, Node
from ..engine.layout import layered_layout
from ..engine.session.block_commands import AddBlocks, BlockEditError, GroupIntoBlock, Ungroup
from ..engine.session.clipboard import (PASTE_OFFSET, ClipboardError, Clipping, clipping, new_node_params,
                                        parse_clipboard, paste_command, to_text)
from ..engine.session.commands import AddItems, MoveNodes, RemoveItems, SetParams
from ..engine.session.option_commands import SetOptions, SetTrainable
from .blocks_ui import user_blocks_folder
from .canvas.items import NODE_H, NODE_W
from .canvas.scene import CanvasScene
from .document import Document


class Editor:
    """The edit menu's operations, on a document shown in a scene."""

    def __init__(self, doc: Document, scene: CanvasScene):
        self.doc, self.scene = doc, scene

    @property
    def graph(self):
        """The graph shown and edited: the project's, or the inside of the open block."""
        return self.doc.current_graph

    def add_layer(self, type_name: str, pos: QPointF | None = None, connect_from: str | None = None) -> str:
        """Add a layer centred at ``pos`` or, where that would cover a layer, at the nearest
        free place (below it first); with ``connect_from``, fed by that node. Returns its id."""
        prefix = {"Input": "input", "Linear": "fc"}.get(type_name, type_name.lower())
        node_id = self.graph.unique_id(prefix)
        pos = self.free_spot(pos if pos is not None else QPointF(0, 0))
        # a block of the project starts from its declared defaults (no explicit values)
        params = {} if type_name in self.graph.blocks else new_node_params(type_name)
        node = Node(node_id, type_name, params,
                    (round(pos.x() - NODE_W / 2, 1), round(pos.y() - NODE_H / 2, 1)))
        edges = []
        if connect_from and connect_from in self.graph.nodes and self.graph.spec(type_name).max_inputs != 0:
            edges.append(Edge(connect_from, node_id, 0))
        self.doc.push(AddItems(self.doc.model, [node], edges, graph=self.graph))
        self.scene.select_nodes([node_id])
        return node_id

    GAP = 24.0  # the least room between a new layer and the others

    def free_spot(self, centre: QPointF) -> QPointF:
        """``centre``, or the nearest centre near it where a new layer covers no other (nor
        comes closer than ``GAP`` to one): below it first, then beside it, else under all."""
        scene, gap = self.scene, self.GAP

        def free(c: QPointF) -> bool:
            # the scene's index finds the few nodes near the spot (a list of every node's
            # rectangle cost more than the rest of an add on a 2,000-node graph)
            near = QRectF(c.x() - NODE_W / 2 - gap, c.y() - NODE_H / 2 - gap, NODE_W + 2 * gap, NODE_H + 2 * gap)
            return not scene.nodes_near(near)

        if free(centre):
            return centre
        dx, dy = NODE_W + self.GAP, (NODE_H + self.GAP) / 2
        steps = sorted(((i, j) for i in range(-3, 4) for j in range(-6, 25)),
                       key=lambda ij: abs(ij[0]) * 2.5 + (ij[1] if ij[1] >= 0 else -2 * ij[1]))
        for i, j in steps:
            c = QPointF(centre.x() + i * dx, centre.y() + j * dy)
            if free(c):
                return c
        bottom = max(item.sceneBoundingRect().bottom() for item in scene.nodes.values())
        return QPointF(centre.x(), bottom + NODE_H / 2 + 2 * gap)

    def delete_selection(self) -> None:
        nodes, edges = self.scene.selected_node_ids(), self.scene.selected_edges()
        if nodes or edges:
            what = f"Delete {len(nodes) + len(edges)} items" if len(nodes) + len(edges) > 1 else "Delete"
            self.doc.push(RemoveItems(self.doc.model, nodes, edges, what, graph=self.graph))

    def copy(self) -> bool:
        """Put the selected layers (and the edges among them) on the system clipboard;
        False when none is selected."""
        ids = self.scene.selected_node_ids()
        if not ids:
            return False
        QApplication.clipboard().setText(to_text(clipping(self.graph, ids)))
        return True

    def cut(self) -> None:
        if self.copy():
            self.delete_selection()

    def paste(self, offset: float = PASTE_OFFSET) -> list[str]:
        """Paste the layers on the clipboard (and the edges among them) with fresh ids,
        ``offset`` right of and below where they were. Returns their ids (none for other text;
        text of ours that cannot be pasted says why on the status bar)."""
        try:
            clip = parse_clipboard(QApplication.clipboard().text())
        except ClipboardError as e:
            self.scene.message.emit(f"Cannot paste: {e}")
            return []
        return self._insert(clip, offset) if clip is not None else []

    def duplicate(self) -> list[str]:
        """Copies of the selected layers and the edges among them, beside them. Returns their ids."""
        return self._insert(clipping(self.graph, self.scene.selected_node_ids()), PASTE_OFFSET)

    def _insert(self, clip: Clipping, offset: float) -> list[str]:
        command = paste_command(self.doc.model, clip, offset, graph=self.graph)
        if command is None:
            return []
        self.doc.push(command)
        ids = [n.id for n in (command.then if isinstance(command, AddBlocks) else command).nodes]
        self.scene.select_nodes(ids)
        return ids

    def select_all(self) -> None:
        for item in self.scene.nodes.values():
            item.setSelected(True)
        for item in self.scene.edges.values():
            item.setSelected(True)

    def auto_layout(self) -> None:
        positions = layered_layout(self.graph)
        moves = {i: (self.graph.nodes[i].position, p) for i, p in positions.items()
                 if self.graph.nodes[i].position != p}
        if moves:
            self.doc.push(MoveNodes(self.doc.model, moves, "Layout", graph=self.graph))

    def set_params(self, node_id: str, params: dict) -> None:
        if node_id in self.graph.nodes and self.graph.nodes[node_id].params != params:
            self.doc.push(SetParams(self.doc.model, node_id, params, graph=self.graph))

    def set_options(self, node_id: str, options: dict) -> None:
        """A node's ``repeat`` / ``trainable`` (``{"repeat": 12}``) from the inspector."""
        if node_id in self.graph.nodes:
            self.doc.push(SetOptions(self.doc.model, node_id, graph=self.graph, **options))

    def set_trainable(self, trainable: bool) -> list[str]:
        """Freeze (``trainable`` False) or unfreeze the selected layers that have parameters,
        in one undo step. Returns the ids changed (none, with a message on the status bar,
        when no selected layer has parameters or all are already so)."""
        ids = self.scene.selected_node_ids()
        counts = self.doc.current_analysis.param_counts
        weighted = [i for i in ids if counts.get(i, 0) > 0]
        verb = "unfreeze" if trainable else "freeze"
        if not weighted:
            self.scene.message.emit(f"Nothing to {verb}: select layers with parameters (Conv2d, Linear, ...)"
                                    if ids else f"Select the layers to {verb}")
            return []
        command = SetTrainable(self.doc.model, weighted, trainable, graph=self.graph)
        if command.obsolete:
            self.scene.message.emit(f"The selected layers are already {'trainable' if trainable else 'frozen'}")
            return []
        self.doc.push(command)
        return list(command.node_ids)

    # -- blocks ----------------------------------------------------------------------------
    def group_selection(self, name: str | None = None) -> str | None:
        """Group the selected layers into a new block (Ctrl+G); the block node takes their
        place and is selected. Returns its id, or None when they cannot be grouped (the
        status bar says why)."""
        try:
            command = GroupIntoBlock(self.doc.model, self.scene.selected_node_ids(), name, graph=self.graph)
        except BlockEditError as e:
            self.scene.message.emit(f"Cannot group into a block: {e}")
            return None
        self.doc.push(command)
        self.scene.select_nodes([command.plan.node.id])
        return command.plan.node.id

    def ungroup_selection(self) -> list[str]:
        """Replace the selected block node by the layers inside it (Ctrl+Shift+G), which are
        then selected. Returns their ids (none, with a message, when it cannot)."""
        blocks = [i for i in self.scene.selected_node_ids() if self._is_block_node(i)]
        if len(blocks) != 1:
            self.scene.message.emit("Select one block node to ungroup" if not blocks
                                    else "Select one block node at a time to ungroup")
            return []
        try:
            command = Ungroup(self.doc.model, blocks[0], graph=self.graph)
        except BlockEditError as e:
            self.scene.message.emit(f"Cannot ungroup: {e}")
            return []
        self.doc.push(command)
        ids = [n.id for n in command.plan.nodes]
        self.scene.select_nodes(ids)
        return ids

    def open_block(self, node_id: str | None = None) -> bool:
        """Show the inside of block node ``node_id`` (default: the one selected node) on the
        canvas (double-click, Enter). False, with a message, for a node that is no block."""
        if node_id is None:
            ids = self.scene.selected_node_ids()
            node_id = ids[0] if len(ids) == 1 else None
        if node_id is None or not self._is_block_node(node_id):
            if node_id is not None:
                self.scene.message.emit(f"{node_id} is a layer, not a block: there is nothing inside to open")
            return False
        self.doc.open_block(node_id)
        return True

    def go_up(self) -> bool:
        """Leave the open block for the graph around it (Escape, Backspace with nothing
        selected), where the block node is then selected. False at the project's level."""
        scope = self.doc.scope
        if not scope:
            return False
        self.doc.set_scope(scope[:-1])
        self.scene.select_nodes([scope[-1]])
        return True

    # -- the block library ---------------------------------------------------------------
    def library_entries(self) -> list[LibraryEntry]:
        """The library's entries: the built-in ones, then the user's (``user_blocks_folder``)."""
        try:
            return list_library([user_blocks_folder()])
        except (ImportError, OSError):  # no built-in folder in this installation: the user's alone
            return list_library([user_blocks_folder()], builtin=False)

    def add_library_block(self, key: str, pos: QPointF | None = None, connect_from: str | None = None) -> str | None:
        """Add a node of the library block in file ``key`` at ``pos`` (or the nearest free
        place), with connect_from as for ``add_layer``; the block's definition and the
        blocks it uses are copied into the project, unless it has blocks of those names (a
        project's block is its own), in the same undo step. Returns the node's id, or None
        when the file cannot be used (the status bar says why)."""
        try:
            entry = load_entry(key)
            trial = self.doc.graph.blocks.copy()  # insert_entry checks (a block using itself) and copies
            names = insert_entry(trial, entry)
        except ProjectError as e:
            self.scene.message.emit(f"Cannot add the block: {e}")
            return None
        blocks = [Block(n, trial[n].params, trial[n].graph.copy(self.doc.graph.blocks)) for n in names]
        graph = self.graph
        node_id = graph.unique_id(entry.name.rstrip("0123456789").lower() or "block")
        pos = self.free_spot(pos if pos is not None else QPointF(0, 0))
        node = Node(node_id, entry.name, {}, (round(pos.x() - NODE_W / 2, 1), round(pos.y() - NODE_H / 2, 1)))
        edges = [Edge(connect_from, node_id, 0)] if connect_from and connect_from in graph.nodes else []
        add = AddItems(self.doc.model, [node], edges, f"Add block {entry.name}", graph=graph)
        self.doc.push(AddBlocks(self.doc.model, blocks, add) if blocks else add)
        self.scene.select_nodes([node_id])
        return node_id

    def save_block_to_library(self, name: str, folder=None, node_id: str | None = None):
        """Write block ``name`` (and the blocks it uses) to the user's library folder (or
        ``folder``), with the shapes coming into ``node_id`` as its example input shapes.
        Returns the file written, or None (the status bar says why)."""
        shapes = None
        if node_id is not None and node_id in self.graph.nodes:
            a = self.doc.current_analysis
            incoming = [a.edge_shape(e) for e in self.graph.incoming(node_id)]
            spec = self.graph.spec(name)
            if incoming and all(s is not None for s in incoming) and spec is not None \
                    and len(incoming) == spec.max_inputs:
                shapes = [list(s) for s in incoming]
        block = self.doc.graph.blocks.get(name)
        layers = sum(1 for n in block.graph.nodes.values() if n.type != "Input") if block else 0
        try:
            return save_entry(self.doc.graph.blocks, name, folder if folder is not None else user_blocks_folder(),
                              doc=f"Saved from project {self.doc.project.name!r}: {layers} layers.",
                              input_shapes=shapes)
        except (ProjectError, OSError) as e:
            self.scene.message.emit(f"Cannot save block {name} to the library: {e}")
            return None

    def _is_block_node(self, node_id: str) -> bool:
        node = self.graph.nodes.get(node_id)
        return node is not None and node.type in self.graph.blocks
