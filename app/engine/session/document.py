"""The open project: the engine's ``Project``, its command history, the latest analysis
(re-run after every change of the graph), its settings with change events, and which
trained weights are its own. The editor, a test and a script drive it alike; the Qt
adapter (``app/widgets/document.py``) only re-announces its events as Qt signals.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..graph import Graph
from ..incremental import Analyzer
from ..inference import Analysis, analyze
from ..layout import layered_layout
from ..project import Project, load_project, save_project
from ..signals import Signal
from ..weights import save_tensors
from .history import Command, History
from .recovery import Recovery
from .weights import ProjectWeights, default_scratch_dir

SECTIONS = ("dataset", "training")


class Document:
    """Signals: ``analyzed(analysis)`` after each change of the graph; ``reset()`` when
    another project replaces this one (views rebuild); ``path_changed(path)`` ("" when
    none); ``dirty_changed(dirty)``; ``settings_changed(section)`` ("dataset" or
    "training") when a section of settings is replaced; ``scope_changed(scope)`` when the
    editor opens or leaves a block.

    ``scope`` is the path of block nodes opened, outermost first (``()``: the project's own
    graph). ``current_graph`` is the graph shown there, whose edits change the block's
    definition, and ``current_analysis`` its analysis: the inside of the opened node, with
    the shapes it receives.

    ``scratch_dir`` returns the folder where runs of a never-saved project write their
    weights (see ``ProjectWeights``)."""

    def __init__(self, project: Project | None = None, *, scratch_dir: Callable[[], Path] | None = None):
        self.analyzed = Signal()
        self.reset = Signal()
        self.path_changed = Signal()
        self.dirty_changed = Signal()
        self.settings_changed = Signal()
        self.scope_changed = Signal()
        self.scope: tuple[str, ...] = ()
        self.history = History()
        self.history.clean_changed.connect(lambda clean: self.dirty_changed.emit(not clean))
        self._batch = 0
        self._pending = False
        self.project = project or Project()
        _place(self.project)
        self._scratch_dir = scratch_dir or default_scratch_dir
        self.weights = ProjectWeights(lambda: self.project, self._scratch_dir)
        # (before _listen: its slots must see a change before the document asks for the analysis)
        self._analyzer = Analyzer(self.project.graph)
        self.analysis: Analysis = self._analyzer.analysis()
        self._listen(True)

    @property
    def graph(self):
        return self.project.graph

    @property
    def dirty(self) -> bool:
        """Whether the project differs from its file (or was never saved and was edited)."""
        return not self.history.is_clean

    # -- edits -------------------------------------------------------------------------
    def push(self, command: Command) -> None:
        """Apply ``command`` as the next step of the history."""
        self.history.push(command)

    def undo(self) -> None:
        self.history.undo()

    def redo(self) -> None:
        self.history.redo()

    def set_section(self, section: str, values: dict) -> None:
        """Replace the project's ``dataset`` or ``training`` settings (commands call this);
        raises ValueError for another section."""
        if section not in SECTIONS:
            raise ValueError(f"settings section must be one of {', '.join(SECTIONS)}; received {section!r}")
        setattr(self.project, section, dict(values))
        self.settings_changed.emit(section)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run many graph edits with one analysis at the end (paste, delete, layout)."""
        self._batch += 1
        try:
            yield
        finally:
            self._batch -= 1
            if self._batch == 0 and self._pending:
                self._pending = False
                self._analyze()

    # -- whole projects ----------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        """Replace the open project (New, Open): nodes without a position are laid out
        (``layered_layout``), the history is cleared and no weights are held."""
        _place(project)
        self._listen(False)
        self._analyzer.close()
        self.project = project
        self.history.clear()
        self.weights.reset()
        self._analyzer = Analyzer(self.graph)
        self._listen(True)
        self.analysis = self._analyzer.analysis()
        self.scope = ()
        self.reset.emit()
        self.analyzed.emit(self.analysis)
        self.path_changed.emit(str(project.path or ""))

    def adopt_import(self, project: Project, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
        """Open an imported model as unsaved work: its weights (``tensors``, with
        ``metadata``) are written to the scratch folder, where they wait until the first save
        copies them beside the project file, and are held as loaded; no step of the history
        is clean. Returns the weights file; raises ``OSError`` when it cannot be written
        (the open project stays)."""
        folder = self._scratch_dir()
        folder.mkdir(parents=True, exist_ok=True)
        weights = save_tensors(tensors, folder / f"imported-{uuid.uuid4().hex[:8]}.safetensors", metadata)
        self.set_project(project)
        self.weights.hold(weights, "loaded")
        self.history.reset_clean()
        return weights

    def recover(self, recovery: Recovery) -> Path | None:
        """Open the recovery copy ``recovery`` as unsaved work (no step of the history is
        clean), under the path of the file it was opened from (none when never saved).
        Returns the unsaved weights it held when that file still exists (for the caller to
        load: ``ProjectWeights.load``, or the panel's ``adopt_weights``), else None. Raises
        ``ProjectError`` when the copy cannot be read (the open project stays)."""
        project = load_project(recovery.path)
        project.path = Path(recovery.original) if recovery.original else None
        self.set_project(project)
        self.history.reset_clean()
        weights = recovery.weights
        return weights if weights is not None and weights.is_file() else None

    def save(self, path: str | Path | None = None) -> Path:
        """Save the project atomically (to ``path``, else to its own path) and mark the
        history clean there. Returns the file written; raises ProjectError when there is no
        path, OSError when it cannot be written."""
        target = save_project(self.project, path)
        self.history.set_clean()
        self.path_changed.emit(str(target))
        return target

    # -- inside blocks -----------------------------------------------------------------
    @property
    def current_graph(self) -> Graph:
        return self._walk(self.scope)[0]

    @property
    def current_analysis(self) -> Analysis:
        return self._walk(self.scope)[1]

    def open_block(self, node_id: str) -> None:
        """Show the inside of block node ``node_id`` of the current graph. Raises
        ValueError when it is not a block node."""
        node = self.current_graph.nodes.get(node_id)
        if node is None or node.type not in self.graph.blocks:
            raise ValueError(f"{node_id!r} is not a block node; only a block can be opened")
        self.set_scope(self.scope + (node_id,))

    def set_scope(self, scope) -> None:
        """Show the graph at ``scope`` (a path of block node ids; ``()`` is the project's
        graph); as far along it as it leads."""
        scope = self._valid(tuple(scope))
        if scope != self.scope:
            self.scope = scope
            self.scope_changed.emit(scope)

    def _valid(self, scope: tuple[str, ...]) -> tuple[str, ...]:
        g, kept = self.graph, []
        for node_id in scope:
            node = g.nodes.get(node_id)
            block = self.graph.blocks.get(node.type) if node is not None else None
            if block is None:
                break
            kept.append(node_id)
            g = block.graph
        return tuple(kept)

    def _walk(self, scope: tuple[str, ...]) -> tuple[Graph, Analysis]:
        g, a = self.graph, self.analysis
        for node_id in scope:
            block = self.graph.blocks[g.nodes[node_id].type]
            inside = a.expansions.get(node_id)
            g = block.graph
            # a node whose input shapes are unknown has no expansion: the bare definition's
            # analysis (its Inputs have no shapes) still shows its structure and parameters
            a = inside.analysis if inside is not None else _bare(g)
        return g, a

    # -- analysis ----------------------------------------------------------------------
    def _listen(self, on: bool) -> None:
        """Follow (or stop following) changes of the graph and of its blocks' definitions
        (an edit inside a block changes every node of it)."""
        for signal in (self.graph.changed, self.graph.blocks.changed):
            (signal.connect if on else signal.disconnect)(self._changed)

    def _changed(self) -> None:
        if self._batch:
            self._pending = True
        else:
            self._analyze()

    def _analyze(self) -> None:
        self.analysis = self._analyzer.analysis()  # only what the edits since the last one reach
        self.set_scope(self.scope)  # (the opened block node may be gone)
        self.analyzed.emit(self.analysis)


def _bare(graph: Graph) -> Analysis:
    """The analysis of a block's graph on its own: its Inputs' missing shapes are not issues."""
    a = analyze(graph)
    a.issues = [i for i in a.issues if not (i.node in graph.nodes and graph.nodes[i.node].type == "Input")]
    return a


def _place(project: Project) -> None:
    """Give the nodes that have no position one (``layered_layout``), in the project's graph
    and in its blocks' graphs; placed nodes stay."""
    for graph in (project.graph, *(b.graph for b in project.graph.blocks.values())):
        if any(n.position is None for n in graph.nodes.values()):
            for node_id, position in layered_layout(graph).items():
                if graph.nodes[node_id].position is None:
                    graph.move_node(node_id, position)
