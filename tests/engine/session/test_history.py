"""The command history without a screen: QUndoStack's semantics (push runs the command,
merging except into the clean step, obsolete steps dropped, the clean index)."""

from __future__ import annotations

import pytest

from app.engine.session.history import Command, History


class Append(Command):
    """Appends ``value`` to ``log``; merges with another Append of the same ``key``."""

    def __init__(self, log: list, value, key=None):
        self.log, self.value, self.key = log, value, key
        self.values = [value]
        self.text = f"append {value}"

    def redo(self) -> None:
        self.log.extend(self.values)

    def undo(self) -> None:
        del self.log[len(self.log) - len(self.values):]

    def merge(self, other: Command) -> bool:
        if not isinstance(other, Append) or self.key is None or other.key != self.key:
            return False
        self.values += other.values
        return True


class Recorder:
    def __init__(self, history: History):
        self.events: list = []
        history.changed.connect(lambda: self.events.append("changed"))
        history.clean_changed.connect(lambda clean: self.events.append(("clean", clean)))


def test_push_applies_the_command_and_undo_redo_walk_the_steps():
    log, h = [], History()
    h.push(Append(log, 1))
    h.push(Append(log, 2))
    assert log == [1, 2] and (h.index, h.count) == (2, 2)
    assert h.undo_text == "append 2" and h.redo_text == "" and h.can_undo and not h.can_redo
    h.undo()
    assert log == [1] and h.index == 1 and h.redo_text == "append 2" and h.undo_text == "append 1"
    h.redo()
    assert log == [1, 2] and h.index == 2
    h.undo()
    h.undo()
    h.undo()  # nothing left: no change
    assert log == [] and h.index == 0 and not h.can_undo and h.undo_text == ""
    h.redo()
    h.redo()
    h.redo()
    assert log == [1, 2] and h.index == 2


def test_pushing_drops_the_steps_that_could_have_been_redone():
    log, h = [], History()
    for v in (1, 2, 3):
        h.push(Append(log, v))
    h.undo()
    h.undo()
    h.push(Append(log, 4))
    assert log == [1, 4] and h.count == 2 and [h.command(i).value for i in range(2)] == [1, 4]
    assert not h.can_redo


def test_successive_commands_merge_into_the_top_step():
    log, h = [], History()
    h.push(Append(log, 1, key="a"))
    h.push(Append(log, 2, key="a"))
    h.push(Append(log, 3, key="b"))
    assert log == [1, 2, 3] and h.count == 2
    h.undo()
    h.undo()
    assert log == [] and h.index == 0


def test_nothing_merges_into_the_clean_step():
    """A save splits a run of typing: undo goes back to the saved text first."""
    log, h = [], History()
    h.push(Append(log, 1, key="a"))
    h.set_clean()
    h.push(Append(log, 2, key="a"))
    h.push(Append(log, 3, key="a"))
    assert h.count == 2 and h.clean_index == 1
    h.undo()
    assert log == [1] and h.is_clean


def test_the_clean_index_follows_undo_redo_and_says_when_it_flips():
    log, h = [], History()
    rec = Recorder(h)
    assert h.is_clean and h.clean_index == 0
    h.push(Append(log, 1))
    assert rec.events == ["changed", ("clean", False)] and not h.is_clean
    rec.events.clear()
    h.set_clean()
    assert rec.events == ["changed", ("clean", True)] and h.clean_index == 1
    rec.events.clear()
    h.undo()
    assert rec.events == ["changed", ("clean", False)]
    rec.events.clear()
    h.redo()
    assert rec.events == ["changed", ("clean", True)]
    rec.events.clear()
    h.set_clean()  # already clean: no flip
    assert rec.events == ["changed"]


def test_reset_clean_leaves_no_clean_index():
    log, h = [], History()
    h.push(Append(log, 1))
    h.set_clean()
    rec = Recorder(h)
    h.reset_clean()
    assert h.clean_index is None and not h.is_clean
    assert rec.events == ["changed", ("clean", False)]
    h.undo()
    h.redo()
    assert not h.is_clean


def test_dropping_the_clean_step_leaves_no_clean_index():
    log, h = [], History()
    h.push(Append(log, 1))
    h.push(Append(log, 2))
    h.set_clean()
    h.undo()
    h.undo()
    h.push(Append(log, 3))
    assert h.clean_index is None and not h.is_clean


def test_clear_forgets_every_step_and_is_clean():
    log, h = [], History()
    h.push(Append(log, 1))
    rec = Recorder(h)
    h.clear()
    assert (h.count, h.index, h.clean_index) == (0, 0, 0) and h.is_clean and log == [1]
    assert rec.events == ["changed", ("clean", True)]


class Vanishing(Append):
    """Turns obsolete when undone (an automatic step that brings nothing back)."""

    def undo(self) -> None:
        super().undo()
        self.obsolete = True


def test_a_step_that_turns_obsolete_on_undo_is_dropped():
    log, h = [], History()
    h.push(Append(log, 1))
    h.push(Vanishing(log, 2))
    h.undo()
    assert log == [1] and h.count == 1 and h.index == 1 and not h.can_redo


def test_dropping_an_obsolete_step_below_the_clean_index_resets_it():
    log, h = [], History()
    h.push(Vanishing(log, 1))
    h.set_clean()
    h.undo()
    assert h.count == 0 and h.clean_index is None and not h.is_clean


def test_an_obsolete_command_is_not_pushed_and_a_merge_that_cancels_drops_the_step():
    log, h = [], History()
    gone = Append(log, 1)
    gone.obsolete = True
    h.push(gone)
    assert log == [] and h.count == 0

    class Cancelling(Append):
        def merge(self, other):
            self.obsolete = True
            return True

    h.push(Cancelling(log, 2))
    h.push(Append(log, 3))
    assert h.count == 0 and h.index == 0


def test_set_index_undoes_and_redoes_up_to_a_step():
    log, h = [], History()
    for v in (1, 2, 3):
        h.push(Append(log, v))
    rec = Recorder(h)
    h.set_index(0)
    assert log == [] and h.index == 0 and rec.events == ["changed", ("clean", True)]
    h.set_index(2)
    assert log == [1, 2] and h.index == 2
    h.set_index(99)  # clamped
    assert log == [1, 2, 3] and h.index == 3
    h.set_index(-5)
    assert log == [] and h.index == 0


def test_command_refuses_an_index_outside_the_history():
    h = History()
    h.push(Append([], 1))
    assert h.command(0).value == 1
    with pytest.raises(IndexError, match="1 steps; received step 1"):
        h.command(1)


def test_a_listener_of_changed_may_set_the_clean_index():
    """The editor's automatic layout, undone, marks the document clean again from a
    ``changed`` listener: clean before and after, so ``clean_changed`` says nothing."""
    log, h = [], History()
    h.push(Append(log, 1))
    h.set_clean()
    seen = []
    h.clean_changed.connect(seen.append)

    def clean_again():
        h.changed.disconnect(clean_again)
        h.set_clean()

    h.changed.connect(clean_again)
    h.undo()
    assert h.is_clean and h.clean_index == 0 and seen == []
