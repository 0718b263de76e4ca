"""The canvas view: zoom, pan, fit, drops from the palette, and the Tab quick-add popup."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QKeySequence, QPainter
from PySide6.QtWidgets import QCompleter, QGraphicsView, QLineEdit

from ...engine.layers import CATALOGUE
from ..mime import LAYER_MIME
from .scene import CanvasScene

MIN_ZOOM, MAX_ZOOM = 0.05, 4.0


class CanvasView(QGraphicsView):
    """Signals: ``layer_dropped(type, scene_pos)`` when a palette layer is dropped or picked
    in the quick-add popup; ``zoom_changed(float)``."""

    layer_dropped = Signal(str, QPointF)
    zoom_changed = Signal(float)

    def __init__(self, scene: CanvasScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan_from: QPointF | None = None
        self._space = False
        self._quick_add: QLineEdit | None = None
        self._fitted = False  # keep the whole graph in view on resizes until the user zooms or pans

    # -- zoom and pan ------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        # far enough out to see everything, however large the graph
        lowest = min(MIN_ZOOM, self._fit_zoom() * 0.8)
        target = min(MAX_ZOOM, max(lowest, self.zoom * factor))
        factor = target / self.zoom
        if abs(factor - 1) > 1e-6:
            self.scale(factor, factor)
            self._fitted = False
            self._zoomed()

    def _fit_zoom(self) -> float:
        rect = self.scene().nodes_rect()
        view = self.viewport().rect()
        if rect.width() <= 0 or rect.height() <= 0:
            return MIN_ZOOM
        return min(view.width() / rect.width(), view.height() / rect.height())

    def _zoomed(self) -> None:
        self.scene().set_zoom(self.zoom)
        self.zoom_changed.emit(self.zoom)

    def fit(self) -> None:
        """Show every node (F)."""
        rect = self.scene().nodes_rect().adjusted(-40, -40, 40, 40)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom > 1.5:
            self.zoom_by(1.5 / self.zoom)
        self._fitted = True
        self._zoomed()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:  # docks opening or the window growing keep the graph in view
            self.fit()

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y()
        if delta and not (event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.zoom_by(1.0015 ** delta)
            event.accept()
        else:
            super().wheelEvent(event)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (self._space and event.button() == Qt.MouseButton.LeftButton):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan(delta.x(), delta.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def pan(self, dx: float, dy: float) -> None:
        self._fitted = False
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - int(dx))
        v.setValue(v.value() - int(dy))

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if event.key() == Qt.Key.Key_F and not event.modifiers():
            self.fit()
            return
        if event.matches(QKeySequence.StandardKey.ZoomIn) or (event.key() == Qt.Key.Key_Equal and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.zoom_by(1.25)
            return
        if event.matches(QKeySequence.StandardKey.ZoomOut):
            self.zoom_by(0.8)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            return
        super().keyReleaseEvent(event)

    def focusNextPrevChild(self, forward: bool) -> bool:
        # Tab belongs to the quick-add popup, as in node editors, not to focus traversal
        if forward and self.hasFocus():
            if not self.scene().read_only:
                self.open_quick_add()
            return True
        return super().focusNextPrevChild(forward)

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.scene().follow_palette()  # the system switched between light and dark
        super().changeEvent(event)

    def drawForeground(self, painter: QPainter, rect) -> None:
        if self.scene().nodes:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(self.scene().theme.dim_text)
        painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                         "Drag layers here from the palette, or press Tab to add one.\n"
                         "File > Examples holds ready-made networks.")
        painter.restore()

    # -- palette drops -----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME) and self.scene().read_only:
            self.scene().message.emit(self.scene()._read_only_reason)
            event.ignore()
            return
        if event.mimeData().hasFormat(LAYER_MIME):
            type_name = bytes(event.mimeData().data(LAYER_MIME)).decode("utf-8")
            if type_name in CATALOGUE:
                self.layer_dropped.emit(type_name, self.mapToScene(event.position().toPoint()))
                event.acceptProposedAction()
                return
        super().dropEvent(event)

    # -- quick add (Tab) ---------------------------------------------------------------------
    def open_quick_add(self) -> QLineEdit:
        """A search field at the mouse (or the view's centre) completing layer types; Enter
        adds the layer there."""
        if self._quick_add is not None:
            self._quick_add.deleteLater()
        where = self.mapFromGlobal(self.cursor().pos())
        if not self.viewport().rect().contains(where):
            where = self.viewport().rect().center()
        edit = QLineEdit(self.viewport())
        edit.setPlaceholderText("Add layer…")
        edit.setFixedWidth(220)
        completer = QCompleter(sorted(CATALOGUE), edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        edit.setCompleter(completer)
        edit.move(where)
        scene_pos = self.mapToScene(where)

        def accept(text: str | None = None) -> None:
            name = text or edit.text().strip()
            match = next((t for t in CATALOGUE if t.lower() == name.lower()), None)
            if match is None:
                options = [t for t in sorted(CATALOGUE) if name.lower() in t.lower()]
                match = options[0] if len(options) == 1 else None
            if match:
                self.layer_dropped.emit(match, scene_pos)
                close()

        def close() -> None:
            edit.hide()
            edit.deleteLater()
            self._quick_add = None
            self.setFocus()

        completer.activated.connect(accept)
        edit.returnPressed.connect(accept)
        edit.editingFinished.connect(lambda: None if edit.hasFocus() else close())
        edit.show()
        edit.setFocus()
        self._quick_add = edit
        return edit
