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

from PySide6.QtCore import QTimer

from ...engine.layout import LR, LR_LAYER_GAP, TB
from ..commands import MoveNodes
from .items import NODE_H, NODE_W

MARGIN = 40.0  # scene units around the graph when it is fitted
WIDE = 1.6  # a canvas this many times wider than tall is "much wider than tall"
BETTER = 1.3  # another layout must show this many times more of the graph to be chosen
MOST_NODES = 150  # larger graphs are never rearranged by themselves (they are not readable whole)


class Arrange(MoveNodes):
    """A layout that also sets the direction the ports face; an ``auto`` one (the view's own
    choice) takes in the automatic layouts after it (``extend``; QUndoStack never merges
    into its clean step), and an undo by the user turns the automatic choice off."""

    def __init__(self, scene, moves, old_direction: str, new_direction: str, auto: bool = False):
        text = ("Fit layout to the canvas" if auto else
                "Left-to-right layout" if new_direction == LR else "Top-to-bottom layout")
        super().__init__(scene.doc, moves, text)
        self.scene, self.old_direction, self.new_direction, self.auto = scene, old_direction, new_direction, auto
        self.drop_on_undo = False
        self.pushed_clean = False  # an automatic step pushed on a clean document: undone, it is clean again

    def extend(self, positions: dict, direction: str) -> bool:
        """Fold a later automatic layout into this one, the last step of the stack: one
        step from where the graph was before the first. Applied at once; False when that
        brings every node back where it was (then undo this step to drop it)."""
        for node_id, new in positions.items():
            first = self.moves[node_id][0] if node_id in self.moves else self.doc.graph.nodes[node_id].position
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
            self.setObsolete(True)  # QUndoStack deletes it: no step left to redo
        elif self.auto and self.pushed_clean:  # back where the document was clean, once the stack has moved
            stack = self.doc.undo_stack
            QTimer.singleShot(0, stack, lambda: stack.setClean() if stack.command(stack.index()) is self else None)


@dataclass
class Candidate:
    direction: str
    positions: dict[str, tuple[float, float]]
    zoom: float
    shown: float  # the share of the graph's area in view at that zoom


def judge(direction, positions, width: float, height: float, readable: float, most: float) -> Candidate:
    """The zoom fitting ``positions`` in a ``width`` x ``height`` viewport, never below
    ``readable`` nor above ``most``, and the share of the graph then in view."""
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    w = max(xs) - min(xs) + NODE_W + 2 * MARGIN
    h = max(ys) - min(ys) + NODE_H + 2 * MARGIN
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


def auto_arrange(scene, width: float, height: float, readable: float, most: float) -> bool:
    """Lay the graph out left to right (wrapped to the canvas width) when that shows much
    more of it at a readable zoom than the layout it has, and back again when the canvas
    grows tall (also while a training run locks editing: only positions change, and the
    only step it could let Undo take back is this one). Never for a drawing placed by hand
    (edges running backwards). True when the layout changed."""
    graph = scene.doc.graph
    if (not scene.auto_arrange or not graph.edges or len(graph.nodes) > MOST_NODES
            or not layered(graph, scene.direction) or width <= 0 or height <= 0):
        return False
    current = judge(scene.direction, {n: node.position for n, node in graph.nodes.items()}, width, height,
                    readable, most)
    if current.shown >= 1.0:
        return False  # all of it readable already
    options = []
    stack = scene.doc.undo_stack
    top = stack.command(stack.index() - 1) if stack.index() > 0 else None
    auto_top = top if isinstance(top, Arrange) and top.auto and stack.index() == stack.count() else None
    if auto_top is not None:
        original = {n: old for n, (old, _) in auto_top.moves.items() if old is not None}
        if len(original) == len(auto_top.moves):  # where the graph was before it was arranged
            positions = {n: node.position for n, node in graph.nodes.items()} | original
            options.append(judge(auto_top.old_direction, positions, width, height, readable, most))
    if width >= WIDE * height:
        options.append(judge(LR, scene.layout_positions(LR, wrap_for(width, readable)), width, height,
                             readable, most))
    best = max(options, key=lambda c: (c.shown, c.zoom), default=None)
    if best is None or best.shown < current.shown * BETTER:
        return False
    moves = {n: (graph.nodes[n].position, p) for n, p in best.positions.items() if graph.nodes[n].position != p}
    if not moves or (auto_top is None and stack.canRedo()):  # a push would throw the user's redo steps away
        return False
    clean = stack.isClean()
    scene.arranging = True
    try:
        if auto_top is not None:
            if not auto_top.extend(best.positions, best.direction):
                stack.undo()  # back to the start: the step goes
        else:
            step = Arrange(scene, moves, scene.direction, best.direction, auto=True)
            step.pushed_clean = clean
            stack.push(step)
    finally:
        scene.arranging = False
    if clean and not stack.isClean():  # the view fitting itself to the canvas is no unsaved change
        stack.setClean()
    return True
