"""A form for a section of settings declared as ``Param``s (the project's dataset and
training settings), built from the same field editors as the inspector."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from ..engine.params import Param
from .param_fields import MISSING, error_colours, make_field


class SettingsForm(QWidget):
    """Signal ``edited(name, value)`` after a valid user edit; invalid text is marked
    under its field and not reported."""

    edited = Signal(str, object)

    def __init__(self, fields: tuple[Param, ...], parent: QWidget | None = None, labels: dict[str, str] | None = None):
        super().__init__(parent)
        self.params = {p.name: p for p in fields}
        self.fields = {}
        self.rows: dict[str, tuple[QLabel, QWidget]] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        for row, p in enumerate(fields):
            field = make_field(p, lambda name=p.name: self._edited(name))
            self.fields[p.name] = field
            label = QLabel((labels or {}).get(p.name, p.title))
            label.setToolTip(field.editor.toolTip())
            label.setBuddy(field.editor)
            label.setMinimumHeight(field.row_height())
            grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(field.container, row, 1, Qt.AlignmentFlag.AlignTop)
            self.rows[p.name] = (label, field.container)
        grid.setColumnStretch(1, 1)

    def show_values(self, values: dict[str, Any]) -> None:
        """Display ``values`` without reporting edits (a field being typed in keeps its text
        when the value it shows is already equal)."""
        for name, field in self.fields.items():
            if field.sync(values.get(name, MISSING)):
                field.set_message("", None, error_colours(self.palette()))

    def set_row_visible(self, name: str, visible: bool) -> None:
        for widget in self.rows[name]:
            widget.setVisible(visible)

    def _edited(self, name: str) -> None:
        field = self.fields[name]
        try:
            value = field.value()
        except ValueError as e:
            field.set_message(str(e), "error", error_colours(self.palette()))
            return
        field.set_message("", None, error_colours(self.palette()))
        self.edited.emit(name, value)
