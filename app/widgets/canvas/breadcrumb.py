"""The bar above the canvas that says which block is open: ``Project › layer1_0
(Bottleneck) › conv_a (SE)``; each crumb but the last is a button that goes back there."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

ROOT_TEXT = "Project"
SEPARATOR = "›"


def crumbs(graph, scope: tuple[str, ...]) -> list[str]:
    """The texts of the crumbs for ``scope`` in the project graph ``graph``: "Project",
    then ``node_id (BlockName)`` for each block node opened."""
    texts, g = [ROOT_TEXT], graph
    for node_id in scope:
        node = g.nodes.get(node_id)
        block = graph.blocks.get(node.type) if node is not None else None
        if block is None:
            break
        texts.append(f"{node_id} ({node.type})")
        g = block.graph
    return texts


class Breadcrumb(QFrame):
    """Shown while a block is open. Signal ``scope_chosen(tuple)``: the scope of the crumb
    clicked (``()`` for the project)."""

    scope_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("breadcrumb")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(6, 2, 6, 2)
        self._layout.setSpacing(2)
        self.buttons: list[QToolButton] = []
        self.hint = QLabel("Esc: up one level · edits here change every node of the block")
        self.hint.setEnabled(False)  # the muted text colour
        self.scope: tuple[str, ...] = ()
        self.setVisible(False)

    def show_scope(self, graph, scope: tuple[str, ...]) -> None:
        """Show the crumbs of ``scope`` (hidden at the project's level)."""
        self.scope = tuple(scope)
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget()
            if widget is not None and widget is not self.hint:
                widget.deleteLater()
        self.buttons = []
        texts = crumbs(graph, self.scope)
        for k, text in enumerate(texts):
            if k:
                self._layout.addWidget(QLabel(SEPARATOR))
            button = QToolButton()
            button.setText(text)
            button.setAutoRaise(True)
            button.setObjectName(f"crumb_{k}")
            last = k == len(texts) - 1
            if last:
                font = button.font()
                font.setBold(True)
                button.setFont(font)
                button.setToolTip("The block shown: edits change its definition")
            else:
                button.setToolTip("Back to " + ("the project" if k == 0 else text))
                button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda _=False, s=self.scope[:k]: self.scope_chosen.emit(s))
            self._layout.addWidget(button)
            self.buttons.append(button)
        self._layout.addStretch(1)
        self._layout.addWidget(self.hint)
        self.setVisible(len(texts) > 1)

    def texts(self) -> list[str]:
        return [b.text() for b in self.buttons]
