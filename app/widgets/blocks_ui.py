"""The editor's pieces for blocks that are not the canvas: the drag payload of a library
block, the user's library folder, and the form that declares a block's parameters
(name = default rows, add, remove)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QStandardPaths, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSizePolicy,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..engine.graph import ID_PATTERN
from .param_fields import format_any, parse_any

BLOCK_MIME = "application/x-netcanvas-block"  # utf-8 key of a library entry (its file), palette -> canvas
MAX_ROWS_SHOWN = 6  # the parameter table's height in rows
BLOCKS_DIR_ENV = "NETCANVAS_BLOCKS_DIR"  # the user's block folder, instead of the standard one (tests)


def block_mime_data(key: str) -> QMimeData:
    """The drag payload of library entry ``key``."""
    data = QMimeData()
    data.setData(BLOCK_MIME, key.encode("utf-8"))
    return data


def block_entry(data: QMimeData) -> str | None:
    """The library entry key a drag carries, or None when it carries no block."""
    if not data.hasFormat(BLOCK_MIME):
        return None
    return bytes(data.data(BLOCK_MIME)).decode("utf-8", errors="replace")


def user_blocks_folder() -> Path:
    """Where "Save block to library" writes: ``$NETCANVAS_BLOCKS_DIR`` when set, else the
    application's data folder / "blocks" (not created here)."""
    override = os.environ.get(BLOCKS_DIR_ENV)
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base) / "blocks"


# -- the block's own parameters ------------------------------------------------------------
class BlockParamsEditor(QWidget):
    """The declared parameters of one block, as rows ``name | default`` with Add and
    Remove. A valid edit announces ``params_edited(block_name, params)`` with the complete
    new declaration (for ``SetBlockParams``); a name that is no identifier, or taken twice,
    is marked in ``message`` and not announced."""

    params_edited = Signal(str, object)  # (object: a dict would pass as a QVariantMap, sorted by name)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("block_params")
        self.block_name: str | None = None
        self._params: dict[str, Any] = {}
        self._filling = False
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("block_params_table")
        self.table.setHorizontalHeaderLabels(["Parameter", "Default"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.itemChanged.connect(self._item_changed)
        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Declare another parameter; refer to it inside the block as \"$name\"")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected parameter (values referring to it become errors)")
        self.add_button.clicked.connect(self.add_param)
        self.remove_button.clicked.connect(self.remove_selected)
        self.message = QLabel()
        self.message.setObjectName("block_params_message")
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        # as tall as its rows: the room left over goes to the inspector above or stays empty below
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.set_block(None, {})

    def set_block(self, name: str | None, params: dict[str, Any]) -> None:
        """Show the declaration of block ``name`` (None: hide). Rows already showing these
        values are left alone, so an edit in progress keeps its place."""
        self.setVisible(name is not None)
        if name == self.block_name and params == self._params:
            return
        self.block_name, self._params = name, dict(params)
        if name is None:
            return
        self.title.setText(f"<b>Block {name}</b>: parameters and defaults (inside it, "
                           "<code>$name</code> takes a node's value)")
        self._filling = True
        try:
            self.table.setRowCount(len(params))
            for row, (key, value) in enumerate(params.items()):
                self.table.setItem(row, 0, QTableWidgetItem(key))
                self.table.setItem(row, 1, QTableWidgetItem(format_any(value)))
        finally:
            self._filling = False
        # as tall as its rows (a few; more scroll), under the inspector's own form
        shown = min(max(len(params), 1), MAX_ROWS_SHOWN)
        row = self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + shown * row
                                  + 2 * self.table.frameWidth())
        self._say("")

    def add_param(self) -> None:
        """Declare a new parameter ``p1`` (the first free name) with default 1."""
        if self.block_name is None:
            return
        n = 1
        while f"p{n}" in self._params:
            n += 1
        self.params_edited.emit(self.block_name, {**self._params, f"p{n}": 1})

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        if self.block_name is None or not rows:
            self._say("Select the parameter to remove first")
            return
        names = list(self._params)
        self.params_edited.emit(self.block_name, {k: v for k, v in self._params.items()
                                                  if names.index(k) not in rows})

    def _item_changed(self, _item: QTableWidgetItem) -> None:
        if self._filling or self.block_name is None:
            return
        params: dict[str, Any] = {}
        for row in range(self.table.rowCount()):
            name_item, value_item = self.table.item(row, 0), self.table.item(row, 1)
            name = name_item.text().strip() if name_item else ""
            if not ID_PATTERN.match(name):
                self._say(f"row {row + 1}: a parameter's name is a Python identifier (letters, digits and _); "
                          f"received {name!r}")
                return
            if name in params:
                self._say(f"row {row + 1}: {name} is declared twice")
                return
            try:
                params[name] = parse_any(value_item.text() if value_item else "")
            except ValueError as e:
                self._say(f"{name}: {e}")
                return
        self._say("")
        if params != self._params or list(params) != list(self._params):
            self.params_edited.emit(self.block_name, params)

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #c62828" if text else "")
        self.message.setVisible(bool(text))
