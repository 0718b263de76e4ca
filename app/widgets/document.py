"""The open project for Qt: the engine's ``Document`` (``model``), its events re-announced
as Qt signals so that widgets connect to them as to any other."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from ..engine.inference import Analysis
from ..engine.project import Project
from ..engine.session import document
from ..engine.session.history import Command, History
from ..engine.session.weights import ProjectWeights


class Document(QObject):
    """Signals: ``analyzed(Analysis)`` after each change; ``reset()`` when another project
    replaces this one (views rebuild); ``path_changed(str)``; ``dirty_changed(bool)``;
    ``settings_changed(str)`` ("dataset" or "training" was replaced); ``scope_changed(tuple)``
    (a block was opened or left: ``current_graph`` is what the canvas shows and edits).
    Everything else is the engine document's (``model``)."""

    analyzed = Signal(object)
    reset = Signal()
    path_changed = Signal(str)
    dirty_changed = Signal(bool)
    settings_changed = Signal(str)
    scope_changed = Signal(object)

    def __init__(self, project: Project | None = None, parent: QObject | None = None, *,
                 scratch_dir: Callable[[], Path] | None = None):
        super().__init__(parent)
        self.model = document.Document(project, scratch_dir=scratch_dir)
        for name in ("analyzed", "reset", "path_changed", "dirty_changed", "settings_changed",
                     "scope_changed"):
            getattr(self.model, name).connect(getattr(self, name).emit)

    @property
    def history(self) -> History:
        return self.model.history

    @property
    def weights(self) -> ProjectWeights:
        return self.model.weights

    @property
    def project(self) -> Project:
        return self.model.project

    @property
    def graph(self):
        return self.model.graph

    @property
    def analysis(self) -> Analysis:
        return self.model.analysis

    @property
    def scope(self) -> tuple[str, ...]:
        return self.model.scope

    @property
    def current_graph(self):
        return self.model.current_graph

    @property
    def current_analysis(self) -> Analysis:
        return self.model.current_analysis

    def open_block(self, node_id: str) -> None:
        self.model.open_block(node_id)

    def set_scope(self, scope) -> None:
        self.model.set_scope(scope)

    @property
    def dirty(self) -> bool:
        return self.model.dirty

    def push(self, command: Command) -> None:
        self.model.push(command)

    def set_project(self, project: Project) -> None:
        self.model.set_project(project)

    def set_section(self, section: str, values: dict) -> None:
        self.model.set_section(section, values)

    def save(self, path: str | Path | None = None) -> Path:
        return self.model.save(path)

    def batch(self) -> AbstractContextManager[None]:
        return self.model.batch()
