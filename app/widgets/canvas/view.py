"""The canvas view: zoom, pan, fit, drops from the palette (layers and library blocks), the
Tab quick-add popup, and the gestures that open a block (double-click, Enter), leave it
(Escape) and ask for a node's context menu."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPainter
from PySide6.QtWidgets import QCompleter, QGraphicsView, QLineEdit

from ...engine.layers import CATALOGUE
from ...engine.layout import LR
from ..blocks_ui import block_entry
from ..mime import layer_type
from .arrange import MARGIN, auto_arrange, wrap_for
from .items import READABLE_PX, SMALLEST_TEXT_PX, NodeItem
from .scene import CanvasScene

MIN_ZOOM, MAX_ZOOM = 0.05, 4.0
FIT_MOST = 1.5  # fitting a small graph never blows it up further than this
MIN_CANVAS_W, MIN_CANVAS_H = 400, 260  # with scroll bars: two rows of nodes at the readable zoom


class CanvasView(QGraphicsView):
    """Signals: ``layer_dropped(type, scene_pos)`` when a palette layer is dropped or picked
    in the quick-add popup; ``block_dropped(entry, scene_pos)`` when a library block (its
    entry's key, see ``blocks_ui``) is dropped; ``zoom_changed(float)``;
    ``node_activated(node_id)`` on a double-click on a node or Enter with one selected
    (a block opens); ``up_requested()`` on Escape (leave the open block);
    ``node_menu(node_id, global_pos)`` on a right-click ("" away from any node)."""

    layer_dropped = Signal(str, QPointF)
    block_dropped = Signal(str, QPointF)
    zoom_changed = Signal(float)
    node_activated = Signal(str)
    up_requested = Signal()
    node_menu = Signal(str, QPoint)

    def __init__(self, scene: CanvasScene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        # the grid is drawn once per zoom (and scrolled with the view): a live snapshot's
        # repaint of the glyphs then costs no background under them
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan_from: QPointF | None = None
        self._space = False
        self._quick_add: QLineEdit | None = None
        self._enter_taken = False  # the Enter that added a layer in the quick-add field
        self._fitted = False  # keep the whole graph in view on resizes until the user zooms or pans
        # a layout to suit the canvas waits until its size settles (a window being shown or
        # dragged larger passes through sizes that would each ask for another)
        self._arrange_timer = QTimer(self)
        self._arrange_timer.setSingleShot(True)
        self._arrange_timer.setInterval(150)
        self._arrange_timer.timeout.connect(self._size_settled)

    def minimumSizeHint(self) -> QSize:
        """Docks (and a restored dock layout) never squeeze the canvas below two rows of
        readable nodes: QMainWindow keeps its central widget at least this large."""
        return QSize(MIN_CANVAS_W, MIN_CANVAS_H)

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

    @staticmethod
    def readable_zoom() -> float:
        """The lowest zoom at which the nodes' smallest text is READABLE_PX high on screen."""
        return READABLE_PX / SMALLEST_TEXT_PX

    def text_pixel_size(self) -> float:
        """The height on screen, in pixels, of the smallest text a node shows."""
        return SMALLEST_TEXT_PX * self.zoom

    def fit(self, arrange: bool = True) -> None:
        """Show the graph as large as fits, but never smaller than reads (F): a graph that does
        not fit at the readable zoom is shown from its input, and the canvas scrolls. A short,
        wide canvas may first lay a chain out left to right (``auto_arrange``; not with
        ``arrange`` False)."""
        if arrange:
            self._arrange()
        view = self.viewport().rect()
        readable = self.readable_zoom()
        scene = self.scene()
        rect = scene.nodes_rect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
        if view.width() <= 0 or view.height() <= 0 or rect.isEmpty():
            return
        zoom = min(max(min(view.width() / rect.width(), view.height() / rect.height()), readable), FIT_MOST)
        self.resetTransform()
        self.scale(zoom, zoom)
        self.centerOn(self._fit_centre(rect, view.width() / zoom, view.height() / zoom))
        self._fitted = True
        self._zoomed()

    def _arrange(self) -> bool:
        """Lay the graph out to suit the canvas if that shows much more of it (arrange.py).
        True when it did."""
        scene = self.scene()
        # (the automatic layout reads the project's own graph: never inside an open block)
        if scene.arranging or not self.isVisible() or scene.doc.scope:
            return False
        layout = self.window().layout()  # docks just shown or resized: the canvas they leave
        if layout is not None:
            layout.activate()
        view = self.viewport().rect()
        if view.width() < 200 or view.height() < 100:
            return False
        return auto_arrange(scene, view.size(), self.readable_zoom(), FIT_MOST)

    def _size_settled(self) -> None:
        if self._fitted and self._arrange():
            self.fit(arrange=False)

    def _fit_centre(self, rect, seen_w: float, seen_h: float) -> QPointF:
        """The centre of the graph on each axis it fits along; where it does not, its start:
        the top (left, left to right) edge along the flow, the input node across it."""
        start = self._input_centre()
        lr = self.scene().direction == LR
        if rect.width() <= seen_w:
            x = rect.center().x()
        elif lr:
            x = rect.left() + seen_w / 2
        else:
            x = min(max(start.x(), rect.left() + seen_w / 2), rect.right() - seen_w / 2)
        if rect.height() <= seen_h:
            y = rect.center().y()
        elif lr:
            y = min(max(start.y(), rect.top() + seen_h / 2), rect.bottom() - seen_h / 2)
        else:
            y = rect.top() + seen_h / 2
        return QPointF(x, y)

    def _input_centre(self) -> QPointF:
        """The centre of the first input node (no incoming edges; the topmost, or leftmost
        left to right), or of the graph."""
        scene = self.scene()
        fed = {e.target for e in scene.edges}
        sources = [item for node_id, item in scene.nodes.items() if node_id not in fed] or list(scene.nodes.values())
        if not sources:
            return scene.nodes_rect().center()
        lr = scene.direction == LR
        first = min(sources, key=lambda i: (i.pos().x(), i.pos().y()) if lr else (i.pos().y(), i.pos().x()))
        return first.sceneBoundingRect().center()

    def arrange(self, direction: str) -> bool:
        """View > Auto Layout ("TB") / Left-to-right Layout ("LR"): lay the graph out, undoably,
        a left-to-right one wrapped into bands as wide as the canvas at the readable zoom;
        then fit. The choice is the user's: the view stops choosing for this document.
        False when nothing moved."""
        wrap = wrap_for(self.viewport().width(), self.readable_zoom()) if direction == LR else None
        changed = self.scene().apply_layout(direction, wrap)
        self.fit(arrange=False)
        return changed

    def fit_all(self) -> None:
        """Every node in view, however small that makes them (an overview)."""
        rect = self.scene().nodes_rect().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom > FIT_MOST:
            self.zoom_by(FIT_MOST / self.zoom)
        self._fitted = False
        self._zoomed()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:  # docks opening or the window growing keep the graph in view
            self.fit(arrange=False)
            self._arrange_timer.start()

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
        if event.key() == Qt.Key.Key_Escape and not event.modifiers():
            if self._quick_add is not None:  # (the quick-add field passes its Escape on): close it
                self._quick_add.hide()
                self._quick_add.deleteLater()
                self._quick_add = None
                self.setFocus()
                return
            if self.scene().doc.scope:
                self.up_requested.emit()
                return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            if self._enter_taken:  # the quick-add field's Enter, passed on by the line edit
                self._enter_taken = False
                return
            ids = self.scene().selected_node_ids()
            if len(ids) == 1:
                self.node_activated.emit(ids[0])
                return
        super().keyPressEvent(event)

    def node_at(self, pos: QPoint) -> str | None:
        """The id of the node under viewport position ``pos`` (its box or a port), or None."""
        for item in self.items(pos):
            while item is not None and not isinstance(item, NodeItem):
                item = item.parentItem()
            if isinstance(item, NodeItem):
                return item.node_id
        return None

    def mouseDoubleClickEvent(self, event) -> None:
        node_id = self.node_at(event.position().toPoint()) if event.button() == Qt.MouseButton.LeftButton else None
        if node_id is not None:
            self.node_activated.emit(node_id)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        self.node_menu.emit(self.node_at(event.pos()) or "", event.globalPos())
        event.accept()

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

    def paintEvent(self, event) -> None:
        facts = self.scene().facts
        if facts.pending:  # labels still waiting for their idle turn, now in view: theirs now
            facts.flush_area(self.mapToScene(self.viewport().rect()).boundingRect())
        super().paintEvent(event)

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
    @staticmethod
    def _carries(data) -> bool:
        return layer_type(data) is not None or block_entry(data) is not None

    def dragEnterEvent(self, event) -> None:
        if self._carries(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if self._carries(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        data = event.mimeData()
        type_name, entry = layer_type(data), block_entry(data)
        if (type_name is not None or entry is not None) and self.scene().read_only:
            self.scene().message.emit(self.scene()._read_only_reason)
            event.ignore()
            return
        where = self.mapToScene(event.position().toPoint())
        if type_name in CATALOGUE or (type_name is not None and type_name in self.scene().doc.graph.blocks):
            self.layer_dropped.emit(type_name, where)
            event.acceptProposedAction()
            return
        if entry is not None:
            self.block_dropped.emit(entry, where)
            event.acceptProposedAction()
            return
        super().dropEvent(event)

    # -- quick add (Tab) ---------------------------------------------------------------------
    def _forget_enter(self) -> None:
        self._enter_taken = False

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
        # the catalogue's types and the project's blocks
        names = sorted(CATALOGUE) + sorted(self.scene().doc.graph.blocks)
        completer = QCompleter(names, edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        edit.setCompleter(completer)
        edit.move(where)
        scene_pos = self.mapToScene(where)

        def accept(text: str | None = None) -> None:
            name = text or edit.text().strip()
            match = next((t for t in names if t.lower() == name.lower()), None)
            if match is None:
                options = [t for t in names if name.lower() in t.lower()]
                match = options[0] if len(options) == 1 else None
            if match:
                self.layer_dropped.emit(match, scene_pos)
                close()
                # QLineEdit leaves Return unaccepted (for dialogs' default buttons): it comes
                # on to the view, where it would open the block just added
                self._enter_taken = True
                QTimer.singleShot(0, self, self._forget_enter)

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
