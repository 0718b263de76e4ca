"""The issues list: every error and warning of the latest analysis; a click selects the node."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QStyle, QTreeWidget, QTreeWidgetItem

from ..engine.inference import Analysis


class IssuesList(QTreeWidget):
    """Signal ``node_chosen(str)`` when the user clicks an issue tied to a node."""

    node_chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setHeaderLabels(["Node", "Problem"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setWordWrap(False)
        self.setColumnWidth(0, 150)
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)

    def sizeHint(self) -> QSize:
        return QSize(600, 110)

    def show_analysis(self, a: Analysis) -> None:
        self.clear()
        style = self.style()
        icons = {"error": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical),
                 "warning": style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)}
        ordered = sorted(a.issues, key=lambda i: (i.severity != "error",))
        for issue in ordered:
            where = issue.node or "graph"
            if issue.param:
                where += f".{issue.param}"
            item = QTreeWidgetItem([where, issue.message])
            item.setIcon(0, icons.get(issue.severity, icons["warning"]))
            item.setToolTip(1, issue.message)
            item.setData(0, Qt.ItemDataRole.UserRole, issue.node)
            self.addTopLevelItem(item)

    def _clicked(self, item: QTreeWidgetItem) -> None:
        node_id = item.data(0, Qt.ItemDataRole.UserRole)
        if node_id:
            self.node_chosen.emit(node_id)
