"""The layer palette: every catalogue type under its category, then a **Blocks** section
(the library's blocks: built-in and the user's own), searchable, draggable.

Double-click or Enter on a layer announces ``layer_activated(type_name)`` (the window adds
it to the canvas); dragging a layer carries ``LAYER_MIME`` with the type name to the canvas.
A block announces ``block_activated(key)`` and drags ``BLOCK_MIME`` with its entry's key
(the library file it comes from). The palette reads the catalogue and the entries it is
given (``set_blocks``) and holds nothing else.
"""

from __future__ import annotations

import html
from typing import Sequence

from PySide6.QtCore import QEvent, QMimeData, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ..engine.layers import CATALOGUE, CATEGORIES
from ..engine.layers.spec import LayerSpec
from ..engine.params import show
from .blocks_ui import block_mime_data
from .mime import LAYER_MIME

TYPE_ROLE = Qt.ItemDataRole.UserRole
BLOCK_ROLE = Qt.ItemDataRole.UserRole + 1  # a library block's key
TEXT_ROLE = Qt.ItemDataRole.UserRole + 2  # what the search looks in
BLOCKS_CATEGORY = "Blocks"
ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


def mime_data_for(type_name: str) -> QMimeData:
    """The drag payload for a layer type: ``LAYER_MIME`` holding the name as utf-8 bytes."""
    data = QMimeData()
    data.setData(LAYER_MIME, type_name.encode("utf-8"))
    return data


def tooltip_for(spec: LayerSpec) -> str:
    """Rich-text tooltip: the layer's doc, its arity, and its parameters with defaults."""
    esc = html.escape
    parts = [f"<b>{esc(spec.type)}</b> <i>({esc(spec.arity_text())})</i>",
             f"<p style='margin-top:4px'>{esc(spec.doc)}</p>"]
    if spec.params:
        rows = []
        for p in spec.params:
            default = "required" if p.required else ("none" if p.default is None else show(p.default))
            rows.append(f"<li><b>{esc(p.name)}</b> = {esc(default)}"
                        + (f" — {esc(p.doc)}" if p.doc else "") + "</li>")
        parts.append("<ul style='margin-left:-20px'>" + "".join(rows) + "</ul>")
    else:
        parts.append("<p><i>No parameters.</i></p>")
    return "<qt>" + "".join(parts) + "</qt>"


def _matches(haystack: str, terms: list[str]) -> bool:
    return all(term in haystack for term in terms)


def search_text(spec: LayerSpec) -> str:
    return f"{spec.type}\n{spec.category}\n{spec.doc}".lower()


def block_tooltip(entry) -> str:
    """Rich-text tooltip of a library entry: its name, where it comes from, its doc (or why
    it cannot be read)."""
    esc = html.escape
    where = "built-in" if entry.builtin else f"your library: {entry.path}"
    if entry.error:
        return f"<qt><b>{esc(entry.name)}</b> <i>({esc(where)})</i><p>Cannot be read: {esc(entry.error)}</p></qt>"
    return (f"<qt><b>{esc(entry.name)}</b> <i>(block, {esc(where)})</i>"
            + (f"<p style='margin-top:4px'>{esc(entry.doc)}</p>" if entry.doc else "")
            + "<p>Drop it on the canvas: its definition is copied into the project.</p></qt>")


class LayerTree(QTreeWidget):
    """The tree of categories and layers; dragging a layer item carries its type name."""

    layer_activated = Signal(str)
    block_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setColumnCount(1)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSupportedDragActions(Qt.DropAction.CopyAction)  # the palette keeps its layers
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setExpandsOnDoubleClick(True)  # categories; layers have no children
        self.itemDoubleClicked.connect(self._double_clicked)

    def mimeTypes(self) -> list[str]:
        # what drops onto the tree would accept (none: it only drags); a block's drag
        # payload is ``mimeData``'s, with BLOCK_MIME
        return [LAYER_MIME]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData | None:
        for item in items:
            if item.data(0, TYPE_ROLE):
                return mime_data_for(item.data(0, TYPE_ROLE))
            if item.data(0, BLOCK_ROLE):
                return block_mime_data(item.data(0, BLOCK_ROLE))
        return None

    def activate(self, item: QTreeWidgetItem | None) -> bool:
        """Announce ``item``'s layer or block; False for a category."""
        if item is not None and item.data(0, TYPE_ROLE):
            self.layer_activated.emit(item.data(0, TYPE_ROLE))
            return True
        if item is not None and item.data(0, BLOCK_ROLE):
            self.block_activated.emit(item.data(0, BLOCK_ROLE))
            return True
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in ENTER_KEYS and self.activate(self.currentItem()):
            event.accept()
            return
        super().keyPressEvent(event)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        self.activate(item)


class Palette(QWidget):
    """Search box above the layer tree. Signals ``layer_activated(type_name)`` and
    ``block_activated(key)``."""

    layer_activated = Signal(str)
    block_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("palette")
        self.search = QLineEdit()
        self.search.setObjectName("palette_search")
        self.search.setPlaceholderText("Search layers")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter by name, category or description. "
                               "Down moves to the list; Enter adds the first match.")
        self.tree = LayerTree()
        self.tree.setObjectName("palette_tree")
        self.tree.layer_activated.connect(self.layer_activated)
        self.tree.block_activated.connect(self.block_activated)
        self.blocks_item: QTreeWidgetItem | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)

        self._populate()
        self.search.textChanged.connect(self.filter)
        self.search.installEventFilter(self)

    def _populate(self) -> None:
        by_category: dict[str, list[LayerSpec]] = {c: [] for c in CATEGORIES}
        for spec in CATALOGUE.values():
            by_category.setdefault(spec.category, []).append(spec)
        row = QSize(0, self.tree.fontMetrics().height() + 6)  # room to aim a drag
        for category, specs in by_category.items():
            if not specs:
                continue
            top = self._category(category)
            for spec in specs:
                item = QTreeWidgetItem(top, [spec.type])
                item.setData(0, TYPE_ROLE, spec.type)
                item.setData(0, TEXT_ROLE, search_text(spec))
                item.setSizeHint(0, row)
                item.setToolTip(0, tooltip_for(spec))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
        self.tree.expandAll()

    def _category(self, name: str) -> QTreeWidgetItem:
        top = QTreeWidgetItem(self.tree, [name])
        top.setFlags(Qt.ItemFlag.ItemIsEnabled)  # not selectable, not draggable
        font = top.font(0)
        font.setBold(True)
        top.setFont(0, font)
        top.setSizeHint(0, QSize(0, self.tree.fontMetrics().height() + 6))
        return top

    def set_blocks(self, entries) -> None:
        """Show the library's blocks (``block_library.LibraryEntry``: ``name``, ``path``,
        ``doc``, ``builtin``, ``error``) in the Blocks section, built-in ones first; no
        section when there are none. An entry that could not be loaded is listed greyed,
        its error as the tooltip."""
        if self.blocks_item is not None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self.blocks_item))
            self.blocks_item = None
        entries = sorted(entries, key=lambda e: (not e.builtin, e.name.lower()))
        if not entries:
            return
        top = self.blocks_item = self._category(BLOCKS_CATEGORY)
        row = QSize(0, self.tree.fontMetrics().height() + 6)
        for entry in entries:
            item = QTreeWidgetItem(top, [entry.name + ("" if entry.builtin else "  (yours)")])
            item.setData(0, TEXT_ROLE, f"{entry.name}\n{BLOCKS_CATEGORY}\nblock\n{entry.doc}".lower())
            item.setSizeHint(0, row)
            item.setToolTip(0, block_tooltip(entry))
            if entry.error:  # shown, so that a broken file in the folder is not a mystery
                item.setText(0, f"{entry.name} (cannot be read)")
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                continue
            item.setData(0, BLOCK_ROLE, str(entry.path))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
        top.setExpanded(True)
        self.filter(self.search.text())

    # -- queries ----------------------------------------------------------------------
    @staticmethod
    def mime_data_for(type_name: str) -> QMimeData:
        """The payload a drag of ``type_name`` carries (for drops simulated in tests)."""
        return mime_data_for(type_name)

    def categories(self) -> list[QTreeWidgetItem]:
        return [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]

    def layer_items(self) -> list[QTreeWidgetItem]:
        return [cat.child(j) for cat in self.categories() for j in range(cat.childCount())]

    def visible_layers(self) -> list[str]:
        """Type names not hidden by the search, in display order."""
        return [item.data(0, TYPE_ROLE) for item in self.layer_items()
                if item.data(0, TYPE_ROLE) and not item.isHidden() and not item.parent().isHidden()]

    def visible_blocks(self) -> list[str]:
        """Keys of the library blocks not hidden by the search, in display order."""
        return [item.data(0, BLOCK_ROLE) for item in self.layer_items()
                if item.data(0, BLOCK_ROLE) and not item.isHidden() and not item.parent().isHidden()]

    def first_visible_item(self) -> QTreeWidgetItem | None:
        return next((i for i in self.layer_items()
                     if not i.isHidden() and not i.parent().isHidden()), None)

    # -- behaviour --------------------------------------------------------------------
    def filter(self, text: str) -> None:
        """Show the layers whose name, category or doc contain every word of ``text``
        (case-insensitive); hide empty categories and expand the others."""
        terms = text.lower().split()
        for cat in self.categories():
            shown = 0
            for j in range(cat.childCount()):
                item = cat.child(j)
                ok = _matches(item.data(0, TEXT_ROLE) or "", terms)
                item.setHidden(not ok)
                shown += ok
            cat.setHidden(shown == 0)
            if shown:
                cat.setExpanded(True)
        current = self.tree.currentItem()
        if current is not None and (current.isHidden() or current.parent().isHidden()):
            self.tree.setCurrentItem(None)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            first = self.first_visible_item()
            if key == Qt.Key.Key_Down and first is not None:
                self.tree.setCurrentItem(first)
                self.tree.setFocus(Qt.FocusReason.TabFocusReason)
                return True
            if key in ENTER_KEYS:
                self.tree.activate(first)
                return True
            if key == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
        return super().eventFilter(obj, event)
