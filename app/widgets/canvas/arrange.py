"""Laying the canvas out to fit it: the undoable layout command, and the choice the view
makes by itself of a left-to-right layout when the canvas is much wider than tall.

A 15-layer chain drawn top to bottom in a short, wide canvas (the Training panel open)
shows three or four layers at a readable zoom; wrapped left to right into bands it shows
nearly all of them. The automatic choice is one undoable step that later automatic choices
merge into, so giving the room back (closing the panel) returns the original positions and
leaves the document as clean as it was; undoing it by hand tells the view to stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize

from ...engine.layout import LR, LR_LAYER_GAP, TB
from ...engine.session.commands import MoveNodes
from .items import NODE_H, NODE_W, NodeItem

MARGIN = 40.0  # scene units around the graph when it is fitted
WIDE = 1.6  # a canvas this many times wider than tall is "much wider than tall"
BETTER = 1.3  # another layout must show this many times more of the graph to be chosen
MOST_NODES = 150  # larger graphs are never rearranged by themselves (they are not readable whole)
LABEL_CLEAR = 16.0  # between the port labels at the two ends of a short edge, after a layout


class Arrange(MoveNodes):
    """A layout that also sets the direction the ports face; an ``auto`` one (the view's own
    choice) takes in the automatic layouts after it (``extend``; the history never merges
    into its clean step), and an undo by the user turns the automatic choice off."""

    def __init__(self, scene, moves, old_direction: str, new_direction: str, auto: bool = False):
        text = ("Fit layout to the canvas" if auto else
                "Left-to-right layout" if new_direction == LR else "Top-to-bottom layout")
        super().__init__(scene.doc.model, moves, text, graph=scene.doc.current_graph)
        self.scene, self.old_direction, self.new_direction, self.auto = scene, old_direction, new_direction, auto
        self.drop_on_undo = False
        self.pushed_clean = False  # an automatic step pushed on a clean document: undone, it is clean again

    def extend(self, positions: dict, direction: str) -> bool:
        """Fold a later automatic layout into this one, the last step of the stack: one
        step from where the graph was before the first. Applied at once; False when that
        brings every node back where it was (then undo this step to drop it)."""
        for node_id, new in positions.items():
            first = self.moves[node_id][0] if node_id in self.moves else self.graph.nodes[node_id].position
            self.moves[node_id] = (first, new)
        self.new_direction = direction
        if all(old == new for old, new in self.moves.values()) and direction == self.old_direction:
            self.drop_on_undo = True
            return False
        self.redo()
        return True

    def redo(self) -> None:
        self.scene.set_direction(self.new_direction)
        super().redo()
        self.scene.moves_settled()

    def undo(self) -> None:
        if self.auto and not self.scene.arranging:
            self.scene.auto_arrange = False  # the user undid it: leave the layout alone
        self.scene.set_direction(self.old_direction)
        super().undo()
        self.scene.moves_settled()
        if self.drop_on_undo:
            self.obsolete = True  # the history drops it: no step left to redo
        elif self.auto and self.pushed_clean:  # back where the document was clean
            history = self.doc.history

            def clean_again() -> None:  # once the history's index has moved below this step
                history.changed.disconnect(clean_again)
                if history.can_redo and history.command(history.index) is self:
                    history.set_clean()

            history.changed.connect(clean_again)


@dataclass
class Candidate:
    direction: str
    positions: dict[str, tuple[float, float]]
    zoom: float
    shown: float  # the share of the graph's area in view at that zoom


def graph_box(positions: dict[str, tuple[float, float]]) -> QRectF:
    """The scene rectangle the nodes at ``positions`` cover, with ``MARGIN`` around it (one
    node's box at the origin when there are none)."""
    box = QRectF()
    for x, y in positions.values() or [(0.0, 0.0)]:
        box = box.united(QRectF(x, y, NODE_W, NODE_H))
    return box.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)


def judge(direction, positions, viewport: QSize, readable: float, most: float) -> Candidate:
    """The zoom fitting ``positions`` in a viewport of ``viewport`` pixels, never below
    ``readable`` nor above ``most``, and the share of the graph then in view."""
    width, height = viewport.width(), viewport.height()
    box = graph_box(positions)
    w, h = box.width(), box.height()
    zoom = min(max(min(width / w, height / h), readable), most)
    shown = min(1.0, width / (zoom * w)) * min(1.0, height / (zoom * h))
    return Candidate(direction, positions, zoom, shown)


def wrap_for(width: float, zoom: float) -> int:
    """How many layers side by side a left-to-right layout fits in ``width`` screen pixels at
    ``zoom``."""
    return max(1, int((width / zoom - 2 * MARGIN - NODE_W) // LR_LAYER_GAP) + 1)


def layered(graph, direction: str) -> bool:
    """Every edge runs forward in ``direction`` (down, or right or on to a later band): a
    layout, not a drawing placed by hand that an automatic layout would spoil."""
    for e in graph.edges:
        a, b = graph.nodes[e.source].position, graph.nodes[e.target].position
        if a is None or b is None:
            return False
        forward = (b[1] > a[1]) if direction == TB else (b[0] > a[0] or b[1] > a[1] + NODE_H)
        if not forward:
            return False
    return True


def auto_arrange(scene, viewport: QSize, readable: float, most: float) -> bool:
    """Lay the graph out left to right (wrapped to the canvas width) when that shows much
    more of it at a readable zoom than the layout it has, and back again when the canvas
    grows tall (also while a training run locks editing: only positions change, and the
    only step it could let Undo take back is this one). Never for a drawing placed by hand
    (edges running backwards). True when the layout changed."""
    graph = scene.doc.graph
    if (not scene.auto_arrange or not graph.edges or len(graph.nodes) > MOST_NODES
            or not layered(graph, scene.direction) or viewport.isEmpty()):
        return False
    current = judge(scene.direction, {n: node.position for n, node in graph.nodes.items()}, viewport,
                    readable, most)
    if current.shown >= 1.0:
        return False  # all of it readable already
    options = []
    history = scene.doc.history
    top = history.command(history.index - 1) if history.index > 0 else None
    auto_top = top if isinstance(top, Arrange) and top.auto and not history.can_redo else None
    if auto_top is not None:
        original = {n: old for n, (old, _) in auto_top.moves.items() if old is not None}
        if len(original) == len(auto_top.moves):  # where the graph was before it was arranged
            positions = {n: node.position for n, node in graph.nodes.items()} | original
            options.append(judge(auto_top.old_direction, positions, viewport, readable, most))
    if viewport.width() >= WIDE * viewport.height():
        options.append(judge(LR, scene.layout_positions(LR, wrap_for(viewport.width(), readable)), viewport,
                             readable, most))
    best = max(options, key=lambda c: (c.shown, c.zoom), default=None)
    if best is None or best.shown < current.shown * BETTER:
        return False
    moves = {n: (graph.nodes[n].position, p) for n, p in best.positions.items() if graph.nodes[n].position != p}
    if not moves or (auto_top is None and history.can_redo):  # a push would throw the user's redo steps away
        return False
    clean = history.is_clean
    scene.arranging = True
    try:
        if auto_top is not None:
            if not auto_top.extend(best.positions, best.direction):
                history.undo()  # back to the start: the step goes
        else:
            step = Arrange(scene, moves, scene.direction, best.direction, auto=True)
            step.pushed_clean = clean
            scene.doc.push(step)
    finally:
        scene.arranging = False
    if clean and not history.is_clean:  # the view fitting itself to the canvas is no unsaved change
        history.set_clean()
    return True


def room_for_port_labels(positions: dict[str, tuple[float, float]], nodes: dict[str, NodeItem],
                         direction: str) -> dict[str, tuple[float, float]]:
    """``positions`` with the layers moved apart where the labels of the ports on both
    sides of a gap (outputs above it, inputs below, or left and right of it) would
    otherwise meet; the edges keep ``LABEL_CLEAR`` between them."""
    axis, size = (0, NODE_W) if direction == LR else (1, NODE_H)
    levels = sorted({p[axis] for p in positions.values()})
    if len(levels) < 2:
        return positions
    reach: dict[float, list[float]] = {level: [0.0, 0.0] for level in levels}  # inputs, outputs
    for node_id, p in positions.items():
        item = nodes.get(node_id)
        if item is not None:
            room = reach[p[axis]]
            room[0] = max(room[0], item.label_reach(False, direction))
            room[1] = max(room[1], item.label_reach(True, direction))
    shift, shifts = 0.0, {levels[0]: 0.0}
    for above, below in zip(levels, levels[1:]):
        gap = below - above - size
        shift += max(0.0, reach[above][1] + reach[below][0] + LABEL_CLEAR - gap)
        shifts[below] = shift
    if not shift:
        return positions
    moved = {}
    for node_id, p in positions.items():
        q = list(p)
        q[axis] += shifts[p[axis]]
        moved[node_id] = (q[0], q[1])
    return moved
