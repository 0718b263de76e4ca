"""The open project as the editor sees it: the engine's Project, its undo stack, and the
latest analysis, re-run after every change of the graph."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from ..engine.inference import Analysis, analyze
from ..engine.project import Project, save_project


class Document(QObject):
    """Signals: ``analyzed(Analysis)`` after each change; ``reset()`` when another project
    replaces this one (views rebuild); ``path_changed(str)``; ``dirty_changed(bool)``."""

    analyzed = Signal(object)
    reset = Signal()
    path_changed = Signal(str)
    dirty_changed = Signal(bool)
    settings_changed = Signal(str)  # "dataset" or "training" was replaced

    def __init__(self, project: Project | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        # a method, not a lambda: the stack says "clean" again as it is destroyed with this
        # document (after Discard), and a lambda would then emit from a deleted object
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self._batch = 0
        self._pending = False
        self.project = project or Project()
        self.analysis: Analysis = analyze(self.project.graph)
        self._listen()

    def _clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    @property
    def graph(self):
        return self.project.graph

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def set_project(self, project: Project) -> None:
        """Replace the open project (New, Open): clears the undo history."""
        self.graph.changed.disconnect(self._changed)
        self.project = project
        self.undo_stack.clear()
        self._listen()
        self.analysis = analyze(self.graph)
        self.reset.emit()
        self.analyzed.emit(self.analysis)
        self.path_changed.emit(str(project.path or ""))

    def set_section(self, section: str, values: dict) -> None:
        """Replace the project's ``dataset`` or ``training`` settings (undo commands call this)."""
        setattr(self.project, section, dict(values))
        self.settings_changed.emit(section)

    def save(self, path: str | Path | None = None) -> Path:
        """Save atomically; raises ProjectError when there is no path yet."""
        target = save_project(self.project, path)
        self.undo_stack.setClean()
        self.path_changed.emit(str(target))
        return target

    @contextmanager
    def batch(self):
        """Run many graph edits with one analysis at the end (paste, delete, layout)."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if self._batch == 0 and self._pending:
                self._pending = False
                self._analyze()

    def _listen(self) -> None:
        self.graph.changed.connect(self._changed)

    def _changed(self) -> None:
        if self._batch:
            self._pending = True
        else:
            self._analyze()

    def _analyze(self) -> None:
        self.analysis = analyze(self.graph)
        self.analyzed.emit(self.analysis)
