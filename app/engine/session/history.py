"""The command history of the open project: undo, redo, merging, and a clean index that
says whether the project differs from its file (DESIGN rule 3).

The semantics are those of Qt's ``QUndoStack``, which the editor used before the history
moved into the engine: ``push`` runs the command; a command merges into the step on top
unless that step is the clean one (so a save splits a run of typing into two steps); a
command that turns ``obsolete`` is dropped from the history; pushing drops the steps that
could have been redone.
"""

from __future__ import annotations

from ..signals import Signal


class Command:
    """One undoable edit. Subclasses change the model in ``redo`` and put it back exactly
    in ``undo``. Setting ``obsolete`` (in ``undo`` or ``redo``) has the history drop the step."""

    text: str = ""
    obsolete: bool = False

    def redo(self) -> None:
        """Apply the edit (also its first application, on ``History.push``)."""

    def undo(self) -> None:
        """Put the model back as it was before ``redo``."""

    def merge(self, other: "Command") -> bool:
        """Fold ``other``, pushed (and already applied) after this one, into this step.
        Returns True when merged (``other`` is then dropped), False to keep two steps."""
        return False


class History:
    """A list of commands and an index: the steps below the index are applied.

    Signals: ``changed()`` after any push, undo, redo, set_index, clear or change of the
    clean index; ``clean_changed(clean)`` when ``is_clean`` flips."""

    def __init__(self) -> None:
        self._steps: list[Command] = []
        self._index = 0
        self._clean: int | None = 0
        self._said_clean = True  # the state clean_changed last reported
        self.changed = Signal()
        self.clean_changed = Signal()

    # -- state -------------------------------------------------------------------------
    @property
    def index(self) -> int:
        """How many steps are applied (0: the project as it was opened)."""
        return self._index

    @property
    def count(self) -> int:
        return len(self._steps)

    @property
    def clean_index(self) -> int | None:
        """The index at which the project equals its file, or None when no index does."""
        return self._clean

    @property
    def is_clean(self) -> bool:
        return self._index == self._clean

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._steps)

    @property
    def undo_text(self) -> str:
        """The text of the step ``undo`` takes back, "" when there is none."""
        return self._steps[self._index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        """The text of the step ``redo`` applies again, "" when there is none."""
        return self._steps[self._index].text if self.can_redo else ""

    def command(self, i: int) -> Command:
        """Step ``i`` (0 is the first pushed); raises IndexError outside ``range(count)``."""
        if not 0 <= i < len(self._steps):
            raise IndexError(f"the history has {len(self._steps)} steps; received step {i}")
        return self._steps[i]

    # -- changes -----------------------------------------------------------------------
    def push(self, command: Command) -> None:
        """Apply ``command`` and make it the step on top (or merge it into that step)."""
        if not command.obsolete:
            command.redo()
        top = self._steps[self._index - 1] if self._index > 0 else None
        del self._steps[self._index:]
        if self._clean is not None and self._clean > self._index:
            self._clean = None  # the clean state was among the steps just dropped
        if top is not None and self._index != self._clean and top.merge(command):
            if top.obsolete:  # the merged edits cancel out
                del self._steps[self._index - 1]
                self._index -= 1
        elif not command.obsolete:
            self._steps.append(command)
            self._index += 1
        self._announce()

    def undo(self) -> None:
        """Take back the step below the index; nothing when there is none."""
        if self.can_undo:
            self.set_index(self._index - 1)

    def redo(self) -> None:
        """Apply the step above the index again; nothing when there is none."""
        if self.can_redo:
            self.set_index(self._index + 1)

    def set_index(self, index: int) -> None:
        """Undo or redo steps until ``index`` steps are applied (clamped to the history);
        steps that turn obsolete on the way are dropped."""
        target = max(0, min(index, len(self._steps)))
        while self._index < target:
            step = self._steps[self._index]
            if not step.obsolete:
                step.redo()
            if step.obsolete:
                self._drop(self._index)
                target -= 1
            else:
                self._index += 1
        while self._index > target:
            self._index -= 1
            step = self._steps[self._index]
            step.undo()
            if step.obsolete:
                self._drop(self._index)
        self._announce()

    def set_clean(self) -> None:
        """The project now equals its file (it was saved)."""
        self._clean = self._index
        self._announce()

    def reset_clean(self) -> None:
        """No index is clean: the project differs from any file (an import, recovered work)."""
        self._clean = None
        self._announce()

    def clear(self) -> None:
        """Forget every step; the project as it is now is clean."""
        self._steps.clear()
        self._index = 0
        self._clean = 0
        self._announce()

    def _drop(self, i: int) -> None:
        del self._steps[i]
        if self._clean is not None and self._clean > i:
            self._clean = None

    def _announce(self) -> None:
        self.changed.emit()
        # read after ``changed``, and compared with what was last said: a listener of
        # ``changed`` may have moved the clean index meanwhile (then it is said once)
        clean = self.is_clean
        if clean != self._said_clean:
            self._said_clean = clean
            self.clean_changed.emit(clean)
