"""The layer palette: every catalogue type under its category, searchable, draggable.

Double-click or Enter on a layer announces ``layer_activated(type_name)`` (the window adds
it to the canvas); dragging a layer carries ``LAYER_MIME`` with the type name to the canvas.
The palette reads the catalogue and holds nothing else.
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
from .mime import LAYER_MIME

TYPE_ROLE = Qt.ItemDataRole.UserRole
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


def _matches(spec: LayerSpec, terms: list[str]) -> bool:
    haystack = f"{spec.type}\n{spec.category}\n{spec.doc}".lower()
    return all(term in haystack for term in terms)


class LayerTree(QTreeWidget):
    """The tree of categories and layers; dragging a layer item carries its type name."""

    layer_activated = Signal(str)

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
        return [LAYER_MIME]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData | None:
        names = [i.data(0, TYPE_ROLE) for i in items if i.data(0, TYPE_ROLE)]
        return mime_data_for(names[0]) if names else None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        item = self.currentItem()
        if event.key() in ENTER_KEYS and item is not None and item.data(0, TYPE_ROLE):
            self.layer_activated.emit(item.data(0, TYPE_ROLE))
            event.accept()
            return
        super().keyPressEvent(event)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, TYPE_ROLE):
            self.layer_activated.emit(item.data(0, TYPE_ROLE))


class Palette(QWidget):
    """Search box above the layer tree. Signal ``layer_activated(type_name)``."""

    layer_activated = Signal(str)

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
            top = QTreeWidgetItem(self.tree, [category])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)  # not selectable, not draggable
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            top.setSizeHint(0, row)
            for spec in specs:
                item = QTreeWidgetItem(top, [spec.type])
                item.setData(0, TYPE_ROLE, spec.type)
                item.setSizeHint(0, row)
                item.setToolTip(0, tooltip_for(spec))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
        self.tree.expandAll()

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
                if not item.isHidden() and not item.parent().isHidden()]

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
                ok = _matches(CATALOGUE[item.data(0, TYPE_ROLE)], terms)
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
                if first is not None:
                    self.layer_activated.emit(first.data(0, TYPE_ROLE))
                return True
            if key == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
        return super().eventFilter(obj, event)
