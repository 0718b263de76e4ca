"""The issues list: every error and warning of the latest analysis; a click selects the node."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QStyle, QTreeWidget, QTreeWidgetItem

from ..engine.inference import Analysis


class IssuesList(QTreeWidget):
    """Signal ``node_chosen(str)`` when the user clicks an issue tied to a node, and
    ``path_chosen(tuple)`` with the ids from the outside in when it lies inside a block node
    (``("layer1", "conv1")``)."""

    node_chosen = Signal(str)
    path_chosen = Signal(object)

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
            where = "/".join((issue.node or "graph", *issue.path))
            if issue.param:
                where += f".{issue.param}"
            item = QTreeWidgetItem([where, issue.message])
            item.setIcon(0, icons.get(issue.severity, icons["warning"]))
            item.setToolTip(1, issue.message)
            item.setData(0, Qt.ItemDataRole.UserRole, (issue.node, *issue.path) if issue.node else None)
            self.addTopLevelItem(item)

    def _clicked(self, item: QTreeWidgetItem) -> None:
        path = item.data(0, Qt.ItemDataRole.UserRole)
        if path:
            self.node_chosen.emit(path[0])
            if len(path) > 1:
                self.path_chosen.emit(tuple(path))
