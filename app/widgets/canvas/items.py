"""Graphics items of the canvas: a node (its ports: ports.py; edges: edges.py; the marks
drawn on a node: marks.py; the line of key parameters: engine/summary.py).

Items draw what the model and the latest analysis say; they never hold the truth.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyle

from ...engine.graph import Node
from ...engine.layers import get_spec
from ...engine.layers.spec import BLOCK_CATEGORY
from .overlays import (BADGE_W, GLYPH_RECT, Glyph, GlyphItem, Heat, glyph_footprint, glyph_rect_far, health_tooltip,
                       heat_fill, paint_badge)
from .marks import BLOCK_GLYPH_W, blend, block_glyph, snowflake
from .ports import PORT_R, Pill, PortItem
from .routing import NODE_H, NODE_W
from .theme import Theme

# text sizes in scene units (pixels at zoom 1): what a node says must stay readable when the
# view is zoomed out to fit a graph, so levels of detail follow the text's size on screen
TITLE_PX, TEXT_PX, LABEL_PX = 13, 12, 12
READABLE_PX = 9.0  # the smallest text on screen that reads without effort
DETAIL_PX = 5.0  # below this on screen a line of text is a smear: draw the type name alone
TYPE_MIN_PX = 6.0  # ... and below this even a large type name is not worth drawing
PORT_PX = 11  # a port's label: name and shape
SMALLEST_TEXT_PX = min(TEXT_PX, LABEL_PX)  # (port labels, a little smaller, are secondary)
PILL_PAD = 4.0  # text to the edge of a port's label
PILL_LR_W = 110.0  # the widest a port's label gets left to right (a layout makes room for two)
STACK = 5.0  # a repeated node: each card behind it this far up and to the right
FROZEN_LIGHT, FROZEN_DARK = QColor(40, 120, 200), QColor(130, 190, 245)  # the snowflake of a frozen node


def node_font(pixels: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(max(1, round(pixels)))
    font.setBold(bold)
    return font


@lru_cache(maxsize=4096)
def _title_width(text: str, pixels: int) -> float:
    return QFontMetricsF(node_font(pixels, bold=True)).horizontalAdvance(text)


@lru_cache(maxsize=1)
def _port_metrics() -> QFontMetricsF:
    return QFontMetricsF(node_font(PORT_PX))


def _glyph_room(glyph: Glyph) -> tuple:
    """What of a glyph the node's own text makes room for: where it is drawn."""
    return (glyph_footprint(glyph, GLYPH_RECT).getRect(), glyph_footprint(glyph, glyph_rect_far(True)).getRect())


class NodeItem(QGraphicsItem):
    """A layer: type and id, key parameters, output shape and parameter count; red with
    the message as tooltip when the analysis found an error. A node with several inputs or
    outputs labels each port (its name and the shape on it); a repeated node is drawn as a
    stack with ``×12`` on it; a frozen one (``trainable: false``) has a muted fill and a
    snowflake."""

    def __init__(self, node: Node, theme: Theme, lookup=get_spec):
        super().__init__()
        self.node, self.theme = node, theme
        self.node_id = node.id
        self._lookup = lookup  # type name -> declaration: the graph's (its blocks), else the catalogue's
        spec = lookup(node.type)
        self.category = spec.category if spec else "?"
        self.is_block = self.category == BLOCK_CATEGORY
        self.input_names: tuple[str, ...] | None = spec.input_names if spec else None
        self.summary, self.shape_text, self.problem, self.severity = "", "", "", ""
        self.repeat, self.trainable = 1, True
        self.inputs: list[PortItem] = []
        self.outputs: list[PortItem] = [PortItem(self, True)]
        self.output_names: tuple[str, ...] = ("output",)
        self.input_shapes: list[str] = []  # the shape on each input slot, as text ("" unknown)
        self.output_shapes: list[str] = []  # ... on each output port
        self._pills: list[Pill] = []
        self._extent = QRectF()  # the bounding rectangle, cached (see _layout_extras)
        self.direction = "TB"  # "LR": inputs on the left side, the outputs on the right
        # overlays (overlays.py), None / empty while off: paint skips them at no cost
        self.glyph: Glyph | None = None  # the live output for the sample shown
        self._glyph_item: GlyphItem | None = None  # draws it (made with the first glyph)
        self.flags: list[tuple[str, str]] = []  # health flags: (title, explanation)
        self.heat: Heat | None = None  # the node's place in a profile
        self._hovered = False  # (isUnderMouse asks the views: 4 µs, a thousand nodes an edit)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.set_input_count(self._slots_wanted(0))

    @property
    def output_port(self) -> PortItem:
        """Output port 0 (the only one of most types)."""
        return self.outputs[0]

    def follow_spec(self) -> bool:
        """Read the node's declaration again (a block's changes with its definition: its
        inputs); True when its input slots may have changed (the scene updates them)."""
        spec = self._lookup(self.node.type)
        names = spec.input_names if spec else None
        changed = names != self.input_names or (spec is not None and spec.max_inputs is not None
                                                and len(self.inputs) != spec.max_inputs)
        self.input_names = names
        if changed:
            self._layout_extras()
        self.update()
        return changed

    def _slots_wanted(self, connected: int) -> int:
        spec = self._lookup(self.node.type)
        if spec is None:
            return max(1, connected)
        if spec.max_inputs is None:  # variadic: the connected slots plus one free
            return max(spec.min_inputs, connected + 1)
        return spec.max_inputs

    def _set_count(self, ports: list[PortItem], n: int, output: bool) -> None:
        self.update()
        while len(ports) < n:
            ports.append(PortItem(self, output, len(ports)))
        while len(ports) > n:
            port = ports.pop()
            port.setParentItem(None)
            if port.scene():
                port.scene().removeItem(port)
        self._place_ports()

    def set_input_count(self, n: int) -> None:
        self._set_count(self.inputs, n, False)

    def set_output_count(self, n: int) -> None:
        """Show ``n`` output ports (at least one)."""
        if max(1, n) != len(self.outputs):
            self._set_count(self.outputs, max(1, n), True)

    def set_direction(self, direction: str) -> None:
        """Ports on the top and bottom sides ("TB") or on the left and right ("LR")."""
        if direction != self.direction:
            self.direction = direction
            self._place_ports()
            self.update()

    def _place_ports(self) -> None:
        """Each port at the middle of its share of its side (one port: the side's middle)."""
        lr = self.direction == "LR"
        for ports, far in ((self.inputs, 0.0), (self.outputs, NODE_W if lr else NODE_H)):
            n = len(ports)
            for i, port in enumerate(ports):
                if lr:
                    port.setPos(far, NODE_H * (i + 0.5) / n)
                else:
                    port.setPos(NODE_W * (i + 0.5) / n, far)
        self._layout_extras()

    def update_slots(self, highest_connected: int) -> None:
        wanted = self._slots_wanted(highest_connected + 1)
        if wanted != len(self.inputs):
            self.set_input_count(wanted)

    def input_pos(self, port: int) -> QPointF:
        if port < len(self.inputs):
            return self.inputs[port].scenePos()
        return self.mapToScene(QPointF(0, NODE_H / 2) if self.direction == "LR" else QPointF(NODE_W / 2, 0))

    def output_pos(self, port: int = 0) -> QPointF:
        """Where output ``port`` is (a port the node does not show: port 0's place)."""
        return self.outputs[port if 0 <= port < len(self.outputs) else 0].scenePos()

    def box(self) -> QRectF:
        """The node's box in the scene, ports aside: what its edges keep out of."""
        return self.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H))

    def set_info(self, summary: str, shape_text: str, problem: str, severity: str) -> None:
        if (summary, shape_text, problem, severity) == (self.summary, self.shape_text, self.problem, self.severity):
            return
        self.summary, self.shape_text, self.problem, self.severity = summary, shape_text, problem, severity
        self._refresh_tooltip()
        self.update()

    def set_options(self, repeat, trainable) -> None:
        """Draw ``repeat`` copies (a stack above 1) and ``trainable`` (False: frozen)."""
        repeat = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) else 1
        if (repeat, trainable is not False) != (self.repeat, self.trainable):
            self.repeat, self.trainable = repeat, trainable is not False
            self._layout_extras()
            self._refresh_tooltip()
            self.update()

    def set_glyph(self, glyph: Glyph | None) -> None:
        """Show ``glyph`` (a live output) in the node; None removes it. The glyph is drawn
        by a child item: the node itself repaints only when the room its text has changes
        (a glyph comes or goes, or an image of another aspect ratio)."""
        if glyph is self.glyph:
            return
        old, self.glyph = self.glyph, glyph
        if self._glyph_item is None:
            self._glyph_item = GlyphItem(self)
        self._glyph_item.setVisible(glyph is not None)
        self._glyph_item.update()
        if old is None or glyph is None or _glyph_room(old) != _glyph_room(glyph):
            self.update()

    def update_glyph(self) -> None:
        """Draw the glyph again (its item keeps a cached picture: after a change of theme)."""
        if self._glyph_item is not None:
            self._glyph_item.update()

    def set_flags(self, flags: list[tuple[str, str]]) -> None:
        """Health flags, (title, explanation) each: a warning badge, and a tooltip section."""
        if flags != self.flags:
            self.flags = list(flags)
            self._refresh_tooltip()
            self.update()
            self.update_glyph()  # far out, the glyph's item draws the badge over the glyph

    def set_heat(self, heat: Heat | None) -> None:
        """The node's profile share (a tint) and figure; None clears them."""
        if heat != self.heat:
            self.heat = heat
            self._refresh_tooltip()
            self.update()

    def _refresh_tooltip(self) -> None:
        if self._hovered:
            self.setToolTip(self.tooltip())

    def set_ports(self, output_names: tuple[str, ...], input_shapes: list[str], output_shapes: list[str]) -> None:
        """The names of the output ports (their number) and the shapes (text, "" where
        unknown) on each input slot and output port, for the ports' labels."""
        names = tuple(output_names)
        if (names, input_shapes, output_shapes) == (self.output_names, self.input_shapes, self.output_shapes):
            return
        # a merge's slots are labeled by number: the shapes on them change its ports'
        # tooltips, not its labels (an edit that breaks an Add changes 100 merges' inputs)
        relabel = names != self.output_names or (
            output_shapes != self.output_shapes and self.labels_side(True) == "full") or (
            input_shapes != self.input_shapes and self.labels_side(False) == "full")
        self.output_names, self.input_shapes, self.output_shapes = names, input_shapes, output_shapes
        count = len(self.outputs)
        self.set_output_count(len(names))
        if relabel and count == len(self.outputs):  # (a new count laid them out already)
            self._layout_extras()
        elif not relabel:
            for port in self.inputs + self.outputs:
                if port.hovered:
                    port.setToolTip(port.tooltip())
        self.update()

    # -- port labels ---------------------------------------------------------------------
    def port_name(self, output: bool, index: int) -> str:
        """What port ``index`` is called: the type's name for it, or its number (a merge's
        slots)."""
        if output:
            return self.output_names[index] if index < len(self.output_names) else f"output {index}"
        names = self.input_names or ()
        return names[index] if index < len(names) else str(index)

    def port_shape(self, output: bool, index: int) -> str:
        shapes = self.output_shapes if output else self.input_shapes
        return shapes[index] if index < len(shapes) else ""

    def labels_side(self, output: bool) -> str:
        """How a side's ports are labeled: "" (one port: as a plain node), "number" (a merge's
        slots: the number alone, the shape is on the edge), or "full" (name and shape, which
        the edges attached there then leave off)."""
        ports = self.outputs if output else self.inputs
        if len(ports) < 2:
            return ""
        return "full" if output or self.input_names else "number"

    def label_reach(self, output: bool, direction: str) -> float:
        """How far the labels of the inputs (or outputs) stick out of the box in a layout in
        ``direction`` (at most: two lines top to bottom, the widest left to right); 0 without."""
        mode = self.labels_side(output)
        if not mode:
            return 0.0
        line_h = _port_metrics().height()
        if direction == "LR":
            return PORT_R + 3 + (PILL_LR_W if mode == "full" else 2 * line_h)  # (numbers: 1 or 2 digits)
        if mode == "number":  # the edges into a merge's slots keep their shape labels: room for one
            return PORT_R + 2 + line_h + 2 + LABEL_PX + 4
        return PORT_R + 2 + 2 * line_h + 2

    def label_rects(self) -> list[QRectF]:
        """The ports' labels in the scene (what the labels of its edges keep off)."""
        return [self.mapRectToScene(pill.rect) for pill in self._pills]

    def port_tooltip(self, output: bool, index: int) -> str:
        name, shape = self.port_name(output, index), self.port_shape(output, index)
        text = f"{'output' if output else 'input'} {index}" + ("" if name == str(index) else f": {name}")
        return text + (f" {shape}" if shape else "")

    def _layout_extras(self) -> None:
        """Place the ports' labels and grow the bounding rectangle around them and the stack."""
        self.prepareGeometryChange()
        self._pills = []
        for output, ports in ((False, self.inputs), (True, self.outputs)):
            mode = self.labels_side(output)
            if mode:  # (most nodes have none: no font metrics built for them)
                self._pills += self._side_pills(output, ports, mode, _port_metrics())
            for port in ports:
                if port.hovered:  # (the others write theirs when the mouse comes)
                    port.setToolTip(port.tooltip())
        r = PORT_R + 3
        rect = QRectF(-r, -r, NODE_W + 2 * r, NODE_H + 2 * r)
        if self.repeat > 1:
            rect = rect.united(QRectF(0, 0, NODE_W, NODE_H).translated(2 * STACK, -2 * STACK))
        for pill in self._pills:
            rect = rect.united(pill.rect.adjusted(-1, -1, 1, 1))
        self._extent = rect

    def _side_pills(self, output: bool, ports: list[PortItem], mode: str, metrics: QFontMetricsF) -> list[Pill]:
        """One label per port of a side, outside the box: top to bottom centred on the port,
        left to right beside it. On one line when every label of the side fits its room
        (its share of the side; left to right, ``PILL_LR_W``), else on two (name, shape)
        where the ports are far enough apart for that, else elided."""
        lr = self.direction == "LR"
        texts = [(self.port_name(output, p.index), "" if mode == "number" else self.port_shape(output, p.index))
                 for p in ports]
        room = (PILL_LR_W if lr else NODE_W / len(ports) - 6) - 2 * PILL_PAD
        line_h = metrics.height()
        one_line = (all(metrics.horizontalAdvance(f"{n}  {s}".strip()) <= room for n, s in texts)
                    or (lr and NODE_H / len(ports) < 2 * line_h + 4))
        pills = []
        for port, (name, shape) in zip(ports, texts):
            if one_line:
                joined = metrics.elidedText(f"{name}  {shape}".strip(), Qt.TextElideMode.ElideRight, room)
                lines = [(joined, False)]
            else:
                lines = [(metrics.elidedText(name, Qt.TextElideMode.ElideRight, room), False)]
                if shape:
                    lines.append((metrics.elidedText(shape, Qt.TextElideMode.ElideRight, room), True))
            w = max(metrics.horizontalAdvance(t) for t, _ in lines) + 2 * PILL_PAD
            h = line_h * len(lines) + 2
            x, y = port.pos().x(), port.pos().y()
            if lr:
                left = x - PORT_R - 3 - w if not output else x + PORT_R + 3
                rect = QRectF(left, y - h / 2, w, h)
            else:
                top = y - PORT_R - 2 - h if not output else y + PORT_R + 2
                rect = QRectF(x - w / 2, top, w, h)
            pills.append(Pill(rect, lines))
        return pills

    # -- showing -------------------------------------------------------------------------
    def tooltip(self) -> str:
        tip = f"<b>{self.node.type}</b> {self.node_id}<br>{escape(self.shape_text, quote=False)}"
        if self.is_block:
            tip += "<br>A block: double-click (or Enter) to open it; Ctrl+Shift+G ungroups it"
        if self.repeat > 1:
            tip += (f"<br>Repeated ×{self.repeat}: a chain of {self.repeat} copies, each with its own "
                    "weights, each taking the previous one's output")
        if not self.trainable:
            tip += ("<br>❄ Frozen (trainable: false): training leaves its weights and normalization "
                    "statistics as they are")
        if self.problem:
            tip += f"<br><span style='color:{self.theme.error.name()}'>{escape(self.problem, quote=False)}</span>"
        if self.heat is not None:
            tip += f"<br>{escape(self.heat.detail, quote=False)}"
        return tip + health_tooltip(self.flags, self.theme.warning)

    def hoverEnterEvent(self, event) -> None:
        # built when shown: an edit that changes 1,000 nodes must not build 1,000 tooltips
        self._hovered = True
        self.setToolTip(self.tooltip())
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self._hovered = False
        super().hoverLeaveEvent(event)

    def boundingRect(self) -> QRectF:
        return QRectF(self._extent)

    def shape(self) -> QPainterPath:
        # the box and its ports: what a click selects (not the labels and the stack around it)
        r = PORT_R + 3
        path = QPainterPath()
        path.addRect(QRectF(-r, -r, NODE_W + 2 * r, NODE_H + 2 * r))
        return path

    def fill(self) -> QColor:
        """The box's colour: the theme's, muted (a cold tint) when the node is frozen, a
        little of the category's colour for a block."""
        if self.trainable and self.is_block:
            base = blend(self.theme.node, self.theme.category(self.category), 0.08)
        elif self.trainable:
            base = self.theme.node
        else:
            base = QColor(44, 52, 64) if self.theme.dark else QColor(231, 237, 245)
        return base if self.heat is None else heat_fill(base, self.theme, self.heat.share)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        t = self.theme
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(0, 0, NODE_W, NODE_H)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        border = t.error if self.severity == "error" else t.warning if self.severity == "warning" else t.node_border
        if self.repeat > 1:  # two cards behind it: a stack of copies
            painter.setPen(QPen(t.node_border, 1.2))
            painter.setBrush(self.fill())
            for k in (2, 1):
                painter.drawRoundedRect(rect.translated(k * STACK, -k * STACK), 7, 7)
        pen = QPen(t.selection if selected else border, 2.5 if (selected or self.severity) else 1.2)
        painter.setPen(pen)
        painter.setBrush(self.fill())
        painter.drawRoundedRect(rect, 7, 7)
        if self.is_block:  # a double border: a box with a network inside
            painter.setPen(QPen(t.category(self.category), 1.2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(3.5, 3.5, -3.5, -3.5), 5, 5)
        strip = QPainterPath()
        strip.addRoundedRect(QRectF(0, 0, 7, NODE_H), 3, 3)
        painter.fillPath(strip, t.category(self.category))
        for port in (*self.inputs, *self.outputs):
            r = PORT_R + (2 if port.hovered else 0)
            painter.setPen(QPen(t.node, 2))
            painter.setBrush(t.selection if port.hovered else t.port)
            painter.drawEllipse(port.pos(), r, r)
        scale = option.levelOfDetailFromTransform(painter.worldTransform())
        detail = self.detail(scale)
        if detail == "text":
            self._paint_text(painter)
            self._paint_pills(painter)
        elif detail == "type":  # far out: the type name alone, as large as the box allows
            self._paint_far(painter, scale)
        if detail != "text" and self.glyph is None:  # (else the glyph's item draws it, over the glyph)
            self.paint_far_badge(painter, scale)

    def paint_far_badge(self, painter: QPainter, scale: float) -> None:
        """The warning badge, larger than at full detail: a warning stays in sight however far out."""
        if self.flags:
            side = min(max(BADGE_W, 14.0 / max(scale, 1e-6)), NODE_H * 0.6)
            paint_badge(painter, QRectF(NODE_W - 4 - side, 4, side, side * 0.9), self.theme)

    def _paint_far(self, painter: QPainter, scale: float) -> None:
        """The type name as large as the box allows, with the glyph beside it (the right half)
        or the profile's share under it."""
        t = self.theme
        room = QRectF(12, 0, NODE_W - 16, NODE_H)
        if self.glyph is not None:  # (drawn by the glyph's item)
            room.setRight(glyph_footprint(self.glyph, glyph_rect_far(True)).left() - 2)
        figure = self.heat.short if self.heat is not None else ""
        pixels = self._type_only_pixels(scale, room.width(), 0.4 if figure else 0.55)
        font = node_font(pixels, bold=True)
        painter.setFont(font)
        painter.setPen(t.error if self.severity == "error" else t.text)
        text = QFontMetricsF(font).elidedText(self.node.type, Qt.TextElideMode.ElideRight, room.width() - 6)
        if figure:  # the type above, the share below it
            painter.drawText(QRectF(room.left(), 0, room.width(), NODE_H / 2 + 2),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, text)
            painter.drawText(QRectF(room.left(), NODE_H / 2 + 2, room.width(), NODE_H / 2 - 2),
                             Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, figure)
        else:
            painter.drawText(room, Qt.AlignmentFlag.AlignCenter, text)

    def detail(self, scale: float) -> str:
        """What the node shows at ``scale`` screen pixels per scene unit, decided by the size
        its text would have on screen: "text" (every line), "type" (the type name alone,
        drawn larger) or "box"."""
        if TEXT_PX * scale >= DETAIL_PX:
            return "text"
        return "type" if self._type_only_pixels(scale) * scale >= TYPE_MIN_PX else "box"

    def _type_only_pixels(self, scale: float, room: float = NODE_W - 16, height: float = 0.55) -> float:
        """The type name's size (scene units) when drawn alone: readable on screen if the
        box allows (``height`` of it at most), and never wider than ``room``."""
        scale = max(scale, 1e-6)
        pixels = min(READABLE_PX / scale, NODE_H * height)
        width = _title_width(self.node.type, round(pixels))
        if width > room - 6:  # a long name: smaller, down to the least that reads (then elided)
            pixels = max(pixels * (room - 6) / width, min(pixels, TYPE_MIN_PX / scale))
            if _title_width(self.node.type, round(pixels)) > room - 6:  # (the font's size is a whole pixel)
                pixels = max(pixels - 1, min(pixels, TYPE_MIN_PX / scale))
        return pixels

    def repeat_text(self) -> str:
        """``×12`` for a node repeated 12 times; "" for one copy."""
        return f"×{self.repeat}" if self.repeat > 1 else ""

    def _paint_marks(self, painter: QPainter) -> float:
        """The health badge, the repeat badge and the frozen snowflake at the title's right
        end; returns the width they take."""
        right = NODE_W - 6
        if self.flags:
            paint_badge(painter, QRectF(right - BADGE_W, 5, BADGE_W, BADGE_W * 0.9), self.theme)
            right -= BADGE_W + 4
        badge = self.repeat_text()
        if badge:
            font = node_font(TEXT_PX, bold=True)
            w = QFontMetricsF(font).horizontalAdvance(badge) + 10
            box = QRectF(right - w, 5, w, 18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self.theme.category(self.category))
            painter.drawRoundedRect(box, 9, 9)
            painter.setFont(font)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)
            right -= w + 4
        if not self.trainable:
            snowflake(painter, QPointF(right - 8, 14), 7.5, FROZEN_DARK if self.theme.dark else FROZEN_LIGHT)
            right -= 20
        return NODE_W - 6 - right

    def _paint_text(self, painter: QPainter) -> None:
        t = self.theme
        marks = self._paint_marks(painter)
        title = node_font(TITLE_PX, bold=True)
        painter.setFont(title)
        painter.setPen(t.text)
        metrics = QFontMetricsF(title)
        left = 15.0
        if self.is_block:
            block_glyph(painter, QPointF(left, 8), t.category(self.category))
            left += BLOCK_GLYPH_W
        type_text = metrics.elidedText(self.node.type, Qt.TextElideMode.ElideRight, NODE_W - 7 - left - marks)
        painter.drawText(QPointF(left, 19), type_text)
        id_font = node_font(TITLE_PX)
        painter.setFont(id_font)
        painter.setPen(t.dim_text)
        x = left + metrics.horizontalAdvance(type_text) + 8
        if x < NODE_W - 20 - marks:
            room = NODE_W - x - 6 - marks
            painter.drawText(QRectF(x, 5, room, 18), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             QFontMetricsF(id_font).elidedText(self.node_id, Qt.TextElideMode.ElideRight, room))
        small = node_font(TEXT_PX)
        sm = QFontMetricsF(small)
        # a glyph takes the column at the right: the two lines stop short of it
        room = (glyph_footprint(self.glyph, GLYPH_RECT).left() - 6 - 15) if self.glyph is not None else NODE_W - 22
        if self.heat is not None and self.heat.figure:  # the profile's figure replaces the key parameters
            figure_font = node_font(TEXT_PX, bold=True)
            painter.setFont(figure_font)
            painter.setPen(t.text)
            painter.drawText(QPointF(15, 38), QFontMetricsF(figure_font).elidedText(
                self.heat.figure, Qt.TextElideMode.ElideRight, room))
        else:
            painter.setFont(small)
            painter.setPen(t.text)
            painter.drawText(QPointF(15, 38), sm.elidedText(self.summary, Qt.TextElideMode.ElideRight, room))
        painter.setFont(small)
        painter.setPen(t.error if self.severity == "error" else t.dim_text)
        bottom = self.problem if self.severity == "error" else self.shape_text
        painter.drawText(QPointF(15, 57), sm.elidedText(bottom, Qt.TextElideMode.ElideRight, room))

    def _paint_pills(self, painter: QPainter) -> None:
        if not self._pills:
            return
        t = self.theme
        font = node_font(PORT_PX)
        painter.setFont(font)
        line_h = QFontMetricsF(font).height()
        for pill in self._pills:
            painter.setPen(QPen(t.node_border, 1))
            painter.setBrush(t.label_background)
            painter.drawRoundedRect(pill.rect, 4, 4)
            y = pill.rect.top() + 1
            for text, dim in pill.lines:
                painter.setPen(t.dim_text if dim else t.text)
                painter.drawText(QRectF(pill.rect.left(), y, pill.rect.width(), line_h),
                                 Qt.AlignmentFlag.AlignCenter, text)
                y += line_h
