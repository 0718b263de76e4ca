"""The History dock: the steps of the engine's command history, the project as it was
opened first. The current step is selected, the saved one carries a save icon, and a click
on a step undoes or redoes up to it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QStyle, QWidget

from ..engine.session.history import Command, History

OPENED = "<opened>"  # the first line: the project before any step
SAVED_TIP = "Saved: the project's file holds the network as it was at this step"


class HistoryView(QListWidget):
    """Follows ``history`` (a row per step after the ``OPENED`` one); a click sets its index."""

    def __init__(self, history: History, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        side = self.fontMetrics().height()
        self.setIconSize(QSize(side, side))  # a mark the size of a letter, rows as tall as text
        self._clean_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton)
        blank = QPixmap(side, side)
        blank.fill(Qt.GlobalColor.transparent)
        self._no_icon = QIcon(blank)  # keeps every row's text where the marked one's is
        self._shown: list[Command] = []  # the steps the rows show, in order
        self._clean_row: int | None = None  # the row showing the clean icon
        self._history = history
        self.currentRowChanged.connect(self._row_chosen)
        history.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Bring the rows, the selection and the clean mark in line with the history."""
        h = self._history
        steps = [h.command(i) for i in range(h.count)]
        same = next((i for i, (a, b) in enumerate(zip(self._shown, steps)) if a is not b),
                    min(len(self._shown), len(steps)))
        self.blockSignals(True)
        try:
            if self.count() == 0:
                self.addItem(QListWidgetItem(self._no_icon, OPENED))
            while self.count() > same + 1:
                self.takeItem(self.count() - 1)
            for step in steps[same:]:
                self.addItem(QListWidgetItem(self._no_icon, step.text))
            self._shown = steps
            clean = h.clean_index
            if self._clean_row is not None and self._clean_row != clean and self._clean_row < self.count():
                self._mark(self.item(self._clean_row), False)
            if clean is not None:
                self._mark(self.item(clean), True)
            self._clean_row = clean
            self.setCurrentRow(h.index)
        finally:
            self.blockSignals(False)
        self.scrollToItem(self.currentItem())

    def _mark(self, item: QListWidgetItem, clean: bool) -> None:
        item.setIcon(self._clean_icon if clean else self._no_icon)
        item.setToolTip(SAVED_TIP if clean else "")

    def _row_chosen(self, row: int) -> None:
        if row >= 0 and row != self._history.index:
            self._history.set_index(row)
