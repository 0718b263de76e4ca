"""The open project's trained weights: which file is the project's, where a run writes its
weights, and what a finished run's weights become (put in place, held back for the user to
choose, kept elsewhere after an error).

A saved project's weights live beside its file (``NAME.safetensors``). A project that was
never saved (every example opens so) has no such place: its runs write to one file per
document in a scratch folder (the editor's recovery folder), holding the weights held before
each run, so that the engine compares every run with them and holds back a stopped,
diverged or worse run instead of replacing them. The first save copies the weights held
beside the project file.
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NetCanvasError
from ..files import atomic_write
from ..graph import Graph
from ..inference import Analysis
from ..project import Project, weights_path_for
from ..runs.store import store_path_for
from ..training.events import FinishedEvent
from ..weights import (PartialLoad, adopt_run_weights, init_weights_path, load_weights, plan_partial, read_shapes,
                       runs_dir)

if TYPE_CHECKING:
    from torch import nn

UNSAVED_WEIGHTS_DAYS = 7  # how long the weights of a run of a never-saved project are kept


def load_model(graph: Graph, analysis: Analysis, path: str | Path) -> nn.Module:
    """The graph compiled, with the weights at ``path`` loaded into it. Raises
    ``NetCanvasError`` (a ``WeightsError`` naming the file) when they do not fit."""
    from ..compiler import compile_graph  # torch loads here, not at the editor's start

    model = compile_graph(graph, analysis)
    load_weights(model, path)
    return model


def init_weights_fit(project: Project, analysis: Analysis,
                     held: str | Path | None = None) -> PartialLoad | str | None:
    """How the weights the next run starts from fit the graph as it is now (what the editor
    shows after each edit, before any run): those ``training.init_weights`` names, else
    ``held`` (the weights the project holds, when runs start from them). Returns the
    ``PartialLoad`` a run would make (nodes kept, initialized, unused), a sentence when the
    file is missing or unreadable, or None when there is no such file or the graph has
    errors (nothing to fit yet). Reads only the file's header; the graph is compiled on
    torch's meta device (no memory, no values)."""
    if not analysis.ok or not (project.training.get("init_weights") or held):
        return None
    try:
        path = init_weights_path(project, project.training) or Path(held)
        file_shapes = read_shapes(path)
    except NetCanvasError as e:
        return str(e)
    return plan_partial(param_shapes(project.graph, analysis), file_shapes, str(path))


def param_shapes(graph: Graph, analysis: Analysis) -> dict[str, tuple[int, ...]]:
    """Every tensor of the compiled graph's state, by name, with its shape: compiled on
    torch's meta device (no memory, no values). Raises ``NetCanvasError`` when the graph
    cannot be compiled."""
    import torch  # here, not at the editor's start (issue 20)

    from ..compiler import compile_graph

    model = compile_graph(graph, analysis, device=torch.device("meta"))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


START_FROM = ("held", "fresh")  # what a run starts from without training.init_weights


def carry_runs(source: Path, target: Path) -> bool:
    """Bring the runs kept beside the weights file ``source`` (a never-saved project's, in
    the scratch folder: its run store and its runs' weights) beside ``target``, the saved
    project's weights file, when no store is there yet (the store keeps each run's weights
    file relative to its runs folder, so the copies stay found). Returns whether they were
    brought; raises ``OSError`` when a copy fails."""
    store, own = store_path_for(source), store_path_for(target)
    if not store.exists() or own.exists():
        return False
    folder, destination = runs_dir(source), runs_dir(target)
    for file in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        destination.mkdir(parents=True, exist_ok=True)
        if not (destination / file.name).exists():
            shutil.copyfile(file, destination / file.name)
    # the backup API copies a consistent image, whatever the WAL holds
    source_db, copy = sqlite3.connect(store), sqlite3.connect(own)
    try:
        source_db.backup(copy)
    finally:
        copy.close()
        source_db.close()
    return True


def default_scratch_dir() -> Path:
    """A folder under the system's temporary folder, for a session that names none."""
    return Path(tempfile.gettempdir()) / "netcanvas-scratch"


def unsaved_weights_path(folder: Path) -> Path:
    """Where a run of a project that was never saved writes its weights: a new file in
    ``folder`` (made when missing; weights of such runs older than UNSAVED_WEIGHTS_DAYS are
    removed first, so that they do not pile up there)."""
    folder.mkdir(parents=True, exist_ok=True)
    prune_unsaved_weights(folder)
    return folder / f"unsaved-{uuid.uuid4().hex[:8]}.safetensors"


def prune_unsaved_weights(folder: Path, max_age_days: float = UNSAVED_WEIGHTS_DAYS) -> list[Path]:
    """Remove the weights of unsaved projects' runs in ``folder`` last written more than
    ``max_age_days`` ago, and the runs held back beside them (``unsaved-NAME.runs/``,
    removed once empty); returns the files removed."""
    cutoff = time.time() - max_age_days * 86400
    removed = []
    for path in [*folder.glob("unsaved-*.safetensors"), *folder.glob("unsaved-*.runs/*.safetensors")]:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    for runs in folder.glob("unsaved-*.runs"):
        try:
            runs.rmdir()  # only when empty
        except OSError:
            continue
    return removed


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run's weights became. ``what``:

    - ``"none"``: the run wrote no weights;
    - ``"adopted"``: the engine put them in place (``file``); ``failure`` says why they
      could not be copied beside the saved project;
    - ``"kept-elsewhere"``: they could not be written where they go; ``error`` says where
      they are (``file``, held: the only copy);
    - ``"held-back"``: held back (``held_back`` says why) with nothing in place to replace;
      they are in ``run_file``, nothing held changes;
    - ``"ask"``: held back while weights are in place (``target``): ask whether they replace
      them, then call ``ProjectWeights.replace_with_run`` or ``keep``;
    - after the answer: ``"replaced"`` (``file`` is the target, ``run_file`` is gone),
      ``"replace-failed"`` (``failure`` says why; ``run_file`` stays) or ``"kept"``.
    """

    what: str
    file: Path | None = None  # the weights held afterwards (what exports and the views use)
    run_file: Path | None = None  # the file this run's weights were written to
    target: Path | None = None  # where the project's weights live
    held_back: str | None = None  # the engine's sentence: why they were not put in place
    error: str | None = None  # the engine's sentence: they could not be written where they go
    failure: str | None = None  # why putting them in place (beside the project, over the target) failed
    unsaved_project: bool = False  # never saved: the files are the session's own, in its scratch folder


class ProjectWeights:
    """Which trained weights are the open project's, and where a run writes its weights.

    ``project``: returns the open project (its path decides where the weights live);
    ``scratch_dir``: returns the folder of a never-saved project's run weights (None: a
    folder under ``tempfile.gettempdir()``)."""

    def __init__(self, project: Callable[[], Project], scratch_dir: Callable[[], Path] | None = None):
        self._project = project
        self._scratch_dir = scratch_dir or default_scratch_dir
        self._file: Path | None = None
        self._origin = "trained-unsaved"  # of the file held: "loaded" (adopted) or "trained-unsaved"
        self._unsaved_target: Path | None = None  # see run_target
        # "held": a run starts from the weights held (those that fit; the others are
        # initialized), "fresh": from a fresh initialization; training.init_weights overrides both
        self.start_from = "held"

    @property
    def file(self) -> Path | None:
        """The weights held (what exports and the views use), None when none are."""
        return self._file

    @property
    def state(self) -> str:
        """``"none"``; ``"saved"`` (the file beside the saved project); ``"loaded"`` (adopted
        from another file, an import: the first save copies it beside the project) or
        ``"trained-unsaved"`` (a run's, not beside a saved project file)."""
        if self._file is None:
            return "none"
        path = self._project().path
        if path is not None and self._file == weights_path_for(path):
            return "saved"
        return self._origin

    @property
    def unsaved_file(self) -> Path | None:
        """The weights held that no saved project file keeps (what a recovery brings back)."""
        return self._file if self.state in ("loaded", "trained-unsaved") else None

    def reset(self) -> None:
        """Another project was opened: no weights held, and its runs get a file of their own."""
        self._file = None
        self._origin = "trained-unsaved"
        self._unsaved_target = None

    def hold(self, path: str | Path | None, origin: str = "loaded") -> None:
        """Hold the weights at ``path`` (None: none); ``origin`` is ``"loaded"`` or
        ``"trained-unsaved"`` (see ``state``)."""
        if origin not in ("loaded", "trained-unsaved"):
            raise ValueError(f"origin must be 'loaded' or 'trained-unsaved', not {origin!r}")
        self._file = Path(path) if path is not None else None
        self._origin = origin

    def load(self, graph: Graph, analysis: Analysis, path: str | Path) -> nn.Module:
        """Compile the graph and load the weights at ``path`` (saved, or imported with a
        model); held from then on. Returns the model; raises ``NetCanvasError`` when they do
        not fit (nothing held changes)."""
        model = load_model(graph, analysis, path)
        self.hold(path, "loaded")
        return model

    def saved_file(self) -> Path | None:
        """The saved project's weights file when it exists (what opening the project loads)."""
        path = self._project().weights_path
        return path if path is not None and path.exists() else None

    # -- a run ----------------------------------------------------------------------------
    def start_file(self) -> Path | None:
        """The weights held that the next run starts from: the file held when ``start_from``
        is "held" and it is readable, else None (a fresh initialization). The project's
        ``training.init_weights``, when set, goes before this (see ``start_overrides``)."""
        if self.start_from != "held" or self._file is None:
            return None
        try:
            read_shapes(self._file)
        except NetCanvasError:
            return None  # gone or unreadable: nothing to start from (the views say why)
        return self._file

    def start_overrides(self) -> dict:
        """The training settings that make the next run start from ``start_file``: the
        ``init_weights`` override every way of running reads (a run in a process, in
        several, inline), absolute; empty when ``training.init_weights`` is set or nothing
        is held."""
        if self._project().training.get("init_weights"):
            return {}
        start = self.start_file()
        return {"init_weights": str(start.resolve())} if start is not None else {}

    def run_target(self) -> Path:
        """Where the next run writes its weights: beside the saved project file; for a
        never-saved project one file per document in the scratch folder, holding the
        weights held now (or removed when none are held), so that the engine compares the
        run with them. Raises ``OSError`` when they cannot be copied there."""
        project = self._project()
        if project.path is not None:
            return weights_path_for(project.path)
        if self._unsaved_target is None:
            self._unsaved_target = unsaved_weights_path(self._scratch_dir())
        target, held = self._unsaved_target, self._file
        if held is not None and held.exists():
            if held.resolve() != target.resolve():
                atomic_write(target, held.read_bytes())
        elif target.exists():  # nothing held any more: nothing in place to compare with
            target.unlink()
        return target

    def store_path(self) -> Path | None:
        """The run store of this project (``NAME.runs.sqlite`` beside its weights; for a
        never-saved project, beside its scratch weights once it has run), None before a
        never-saved project's first run. Makes nothing."""
        project = self._project()
        if project.path is not None:
            return store_path_for(weights_path_for(project.path))
        return store_path_for(self._unsaved_target) if self._unsaved_target is not None else None

    def run_finished(self, event: FinishedEvent) -> RunOutcome:
        """Decide what the run's weights (``event.weights_*``) mean for the weights held:
        those the engine put in place are held (and copied beside a project saved while the
        run trained); held-back ones wait for the user's choice when weights are in place
        (``what == "ask"``). Returns the outcome; raises nothing."""
        unsaved = self._project().path is None
        run_file = Path(event.weights_path) if event.weights_path else None
        facts = dict(run_file=run_file, target=Path(event.weights_target) if event.weights_target else None,
                     held_back=event.weights_held_back, error=event.weights_error, unsaved_project=unsaved)
        if event.weights_held_back and run_file is not None:
            # the engine held them back (stopped, diverged or worse than those in place): they
            # replace the weights in place only if the user says so
            in_place = facts["target"] is not None and facts["target"].exists()
            return RunOutcome("ask" if in_place else "held-back", file=self._file, **facts)
        if run_file is None:
            return RunOutcome("none", file=self._file, **facts)
        self.hold(run_file, "trained-unsaved")  # put in place, or kept where the error says
        if event.weights_error:
            return RunOutcome("kept-elsewhere", file=run_file, **facts)
        failure = None
        if not unsaved:  # saved (or renamed) while it trained
            try:
                self.project_saved(self._project().path)
            except OSError as e:
                failure = str(e)
        return RunOutcome("adopted", file=self._file, failure=failure, **facts)

    def replace_with_run(self, outcome: RunOutcome) -> RunOutcome:
        """The user chose the held-back run's weights (``outcome.what == "ask"``): put them in
        place over the target and remove the run's file (a second full copy in the runs
        folder helps nobody). Returns ``"replaced"``, or ``"replace-failed"`` (the target
        stays held)."""
        try:
            placed = adopt_run_weights(outcome.run_file, outcome.target)
        except (OSError, NetCanvasError) as e:
            self.hold(outcome.target, self._origin)
            return dataclasses.replace(outcome, what="replace-failed", file=outcome.target, failure=str(e))
        try:
            outcome.run_file.unlink()
        except OSError:
            pass
        self.hold(placed, "trained-unsaved")
        return dataclasses.replace(outcome, what="replaced", file=placed)

    def keep(self, outcome: RunOutcome) -> RunOutcome:
        """The weights in place stay (the default answer, or nobody to ask): held from
        ``outcome.target``; the run's stay in ``outcome.run_file``. Returns ``"kept"``."""
        # the target holds the weights held before the run (a copy of them, for a
        # never-saved project): they keep their origin
        self.hold(outcome.target, self._origin)
        return dataclasses.replace(outcome, what="kept", file=outcome.target)

    # -- saving ---------------------------------------------------------------------------
    def project_saved(self, path: str | Path | None) -> Path | None:
        """The project was saved at ``path`` ("" or None: it has no path): weights held
        from elsewhere (trained before the first save, imported, a Save As) are copied beside
        it and held from there. Returns the file held there (None when nothing is held);
        raises ``OSError`` when the copy fails (the weights held stay where they were)."""
        if path and self._unsaved_target is not None:
            carry_runs(self._unsaved_target, weights_path_for(path))
        if not path or self._file is None or not self._file.exists():
            return None
        target = weights_path_for(path)
        if self._file != target:
            atomic_write(target, self._file.read_bytes())
            self._file = target
        return target
