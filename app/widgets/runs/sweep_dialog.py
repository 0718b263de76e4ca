"""The Sweep dialog: a search space over the project's training settings and node
parameters, run by ``netcanvas sweep ... --json`` in a child process, with a live table of
its trials, the best trial so far, parallel coordinates and Optuna's parameter importance.

The project is handed to the child as a file: the project's own when it is saved and
unchanged, else a copy written to a temporary folder (named so that the sweep's weights and
run store land where the editor's runs of this project go: ``--out`` the folder of the
weights target).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QComboBox, QDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox, QSplitter,
                               QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from ...engine import config
from ...engine.errors import NetCanvasError
from ...engine.files import atomic_write
from ...engine.project import SUFFIX, Project, dumps_project
from ...engine.runs.space import UNSWEPT, SweepParam, check_space, grid_size, parse_param
from ..param_fields import error_colours
from .sweep_plots import ImportancePlot, ParallelCoordinates, complete_trials
from .sweep_runner import SweepRunner

SAMPLERS = ("tpe", "random", "grid")
METRICS = {"val_accuracy": "max", "val_loss": "min"}  # each metric's natural direction
SEARCHABLE_KINDS = ("int", "float", "choice", "bool")
MAX_TRIALS = 100_000
MAX_REPEATS = 100  # as the sweep command's --repeats
SPEC_HINT = "LOW:HIGH[:log] or A,B,C"


def searchable_names(project: Project) -> list[str]:
    """The names a sweep may vary in ``project``: its training settings, then ``NODE.PARAM``
    for every number, choice or switch of its nodes (in the graph's order)."""
    names = [p.name for p in config.TRAINING_FIELDS if p.kind in SEARCHABLE_KINDS and p.name not in UNSWEPT]
    for node in project.graph.nodes.values():
        spec = project.graph.spec(node.type)
        if spec is not None:
            names += [f"{node.id}.{p.name}" for p in spec.params if p.kind in SEARCHABLE_KINDS]
    return names


def suggested_spec(name: str, project: Project) -> str:
    """A starting SPEC for ``name``: a log decade either side of a positive float setting's
    value, half to double an integer's, else empty (the user types it)."""
    if "." in name:
        node_id, _, param = name.partition(".")
        node = project.graph.nodes.get(node_id)
        value = node.params.get(param) if node is not None else None
    else:
        value = project.training.get(name, next((p.default for p in config.TRAINING_FIELDS if p.name == name), None))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return ""
    if isinstance(value, int):
        return f"{max(1, value // 2)}:{max(2, value * 2)}"
    return f"{value / 10:.3g}:{value * 10:.3g}:log"


class ParamRow(QWidget):
    """One searched parameter: NAME (a combo of the project's names, editable) and SPEC,
    checked as typed with the reason shown under them. Signals ``changed()``,
    ``remove_requested(ParamRow)``."""

    changed = Signal()
    remove_requested = Signal(object)

    def __init__(self, names: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.name = QComboBox()
        self.name.setEditable(True)
        self.name.addItems(names)
        self.name.setMinimumContentsLength(18)
        self.name.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.name.setToolTip("A training setting (lr, batch_size...) or NODE.PARAM (conv1.out_channels)")
        self.spec = QLineEdit()
        self.spec.setPlaceholderText(SPEC_HINT)
        self.spec.setToolTip("A range LOW:HIGH (LOW:HIGH:log for a log scale) or a list of values A,B,C")
        self.remove = QToolButton()
        self.remove.setText("−")
        self.remove.setToolTip("Remove this parameter")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.param: SweepParam | None = None
        self.error = ""
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.name, 2)
        top.addWidget(QLabel("="))
        top.addWidget(self.spec, 3)
        top.addWidget(self.remove)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.message)
        self.name.currentTextChanged.connect(lambda _: self.changed.emit())
        self.spec.textChanged.connect(lambda _: self.changed.emit())
        self.remove.clicked.connect(lambda: self.remove_requested.emit(self))

    @property
    def text(self) -> str:
        """``NAME=SPEC`` as the CLI takes it."""
        return f"{self.name.currentText().strip()}={self.spec.text().strip()}"

    def check(self, project: Project) -> SweepParam | None:
        """Parse the row against ``project``; the parameter, or None with ``error`` set."""
        try:
            self.param, self.error = parse_param(self.text, project), ""
        except NetCanvasError as e:
            self.param, self.error = None, str(e)
        return self.param

    def show_error(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        red, _ = error_colours(self.palette())
        self.message.setStyleSheet(f"QLabel {{ color: {red}; }}" if text else "")


class SweepDialog(QDialog):
    """The Sweep dialog for ``project`` (the open one: read again at each Start; ``dirty``,
    a bool or a callable returning one at Start, says whether it differs from its file).
    ``weights_target``: where the editor's runs of this project write their
    weights (``ProjectWeights.run_target()``); the sweep's run store goes beside it.
    ``command``: how to start ``netcanvas`` (default: this installation's; tests give a
    script). Public: ``add_param``, ``space()``, ``arguments(file)``, ``start()``, ``cancel()``,
    ``runner``, ``table``, ``best_label``, ``parallel``, ``importance``."""

    def __init__(self, project: Project, weights_target: str | Path, *, dirty: bool | Callable[[], bool] = False,
                 parent: QWidget | None = None, command: list[str] | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Sweep: {project.name}")
        self.project = project
        self.weights_target = Path(weights_target)
        self.dirty = dirty
        self.names = searchable_names(project)
        self.rows: list[ParamRow] = []
        self.trials: list[dict] = []
        self.columns: list[str] = []  # the parameters of the running sweep (table columns)
        self.log_params: set[str] = set()
        self.sweep_metric = "val_accuracy"
        self.sweep_direction = "max"
        self._temp_dir: Path | None = None
        self.runner = SweepRunner(command, self)
        self.runner.trial.connect(self._trial)
        self.runner.done.connect(self._done)
        self.runner.log.connect(self._log)
        self.runner.ended.connect(self._ended)
        self._build()
        first = "lr" if "lr" in self.names else (self.names[0] if self.names else "")
        self.add_param(first, suggested_spec(first, project) if first else "")
        self.resize(1100, 820)

    # -- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        space_box = QGroupBox("Search space")
        self.rows_layout = QVBoxLayout()
        self.rows_layout.setSpacing(6)
        add = QPushButton("Add parameter")
        add.clicked.connect(lambda: self.add_param())
        space_layout = QVBoxLayout(space_box)
        space_layout.addLayout(self.rows_layout)
        space_layout.addWidget(add, 0, Qt.AlignmentFlag.AlignLeft)
        space_layout.addStretch(1)

        settings_box = QGroupBox("Sweep")
        form = QFormLayout(settings_box)
        self.trials_box = QSpinBox()
        self.trials_box.setRange(1, MAX_TRIALS)
        self.trials_box.setValue(20)
        self.workers_box = QSpinBox()
        self.workers_box.setRange(1, max(1, os.cpu_count() or 1))
        self.workers_box.setToolTip("Trials run at once, each in its own process")
        self.repeats_box = QSpinBox()
        self.repeats_box.setRange(1, MAX_REPEATS)
        self.repeats_box.setToolTip("Runs per trial, with the initialization seeds seed, seed+1...: a trial is "
                                    "judged by their mean (steadier than one run on a small validation split)")
        self.epochs_box = QSpinBox()
        self.epochs_box.setRange(0, config.MAX_EPOCHS)
        self.epochs_box.setSpecialValueText(f"the project's ({self.project.training.get('epochs')})")
        self.epochs_box.setToolTip("Epochs of each trial")
        self.sampler_box = QComboBox()
        self.sampler_box.addItems(SAMPLERS)
        self.sampler_box.setToolTip("tpe: Optuna's default; random; grid: every combination of lists")
        self.metric_box = QComboBox()
        self.metric_box.addItems(list(METRICS))
        self.direction_box = QComboBox()
        self.direction_box.addItems(["max", "min"])
        form.addRow("Trials", self.trials_box)
        form.addRow("Workers", self.workers_box)
        form.addRow("Repeats", self.repeats_box)
        form.addRow("Epochs", self.epochs_box)
        form.addRow("Sampler", self.sampler_box)
        form.addRow("Metric", self.metric_box)
        form.addRow("Direction", self.direction_box)
        self.sampler_box.currentTextChanged.connect(lambda _: self.validate())
        self.repeats_box.valueChanged.connect(lambda _: self.validate())
        self.metric_box.currentTextChanged.connect(lambda m: self.direction_box.setCurrentText(METRICS[m]))

        top = QHBoxLayout()
        top.addWidget(space_box, 3)
        top.addWidget(settings_box, 1)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel sweep")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        close = QPushButton("Close")
        close.setAutoDefault(False)
        close.clicked.connect(self.reject)
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m trials")
        self.progress.setValue(0)
        self.status = QLabel()
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(close)

        self.best_label = QLabel("Best trial: none yet")
        font = QFont(self.best_label.font())
        font.setBold(True)
        self.best_label.setFont(font)
        self.best_label.setWordWrap(True)
        self.best_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.parallel = ParallelCoordinates()
        self.importance = ImportancePlot()
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.parallel)
        plots.addWidget(self.importance)
        plots.setSizes([640, 420])
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("What the sweep prints besides its trials appears here.")
        results = QSplitter(Qt.Orientation.Vertical)
        results.addWidget(self.table)
        results.addWidget(plots)
        results.addWidget(self.log_view)
        results.setSizes([260, 320, 40])

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.best_label)
        layout.addWidget(results, 1)

    def add_param(self, name: str = "", spec: str = "") -> ParamRow:
        """Add a row (``name`` chosen when given, else the first name not searched yet)."""
        row = ParamRow(self.names, self)
        taken = {r.name.currentText() for r in self.rows}
        row.name.setCurrentText(name or next((n for n in self.names if n not in taken), ""))
        row.spec.setText(spec)
        row.changed.connect(self.validate)
        row.remove_requested.connect(self._remove_row)
        self.rows.append(row)
        self.rows_layout.addWidget(row)
        self.validate()
        return row

    def _remove_row(self, row: ParamRow) -> None:
        self.rows.remove(row)
        row.setParent(None)
        row.deleteLater()
        self.validate()

    # -- checking ---------------------------------------------------------------------------
    def space(self) -> list[SweepParam] | None:
        """The search space as typed, each row's reason shown under it; None when a row (or
        the whole, e.g. a range for the grid sampler) is not valid (``status`` says why)."""
        params = [row.check(self.project) for row in self.rows]
        problems = [row.error for row in self.rows]
        sampler = self.sampler_box.currentText()
        if all(p is not None for p in params):
            try:
                check_space(params, sampler)
            except NetCanvasError as e:
                culprit = next((i for i, r in enumerate(self.rows)
                                if e.where and r.name.currentText().strip() == e.where), None)
                if culprit is None:
                    self.status.setText(str(e))
                    return None
                problems[culprit] = str(e)
        if self.repeats_box.value() > 1:  # each repeat sets the seed itself
            culprit = next((i for i, p in enumerate(params) if p is not None and p.name == "seed"), None)
            if culprit is not None:
                problems[culprit] = "repeats set the seed themselves (seed, seed+1...): search seed or repeat"
        for row, problem in zip(self.rows, problems):
            row.show_error(problem)
        if any(problems):
            self.status.setText("Fix the search space to start: " + next(p for p in problems if p))
            return None
        if sampler == "grid":
            size = grid_size(params)
            self.status.setText(f"The grid has {size} point{'s' * (size != 1)}; "
                                f"a sweep of more trials stops when it has tried them all.")
        else:
            self.status.setText("")
        return params

    def validate(self) -> bool:
        """Check the space (not while a sweep runs); enables Start when it is valid."""
        if self.runner.running:
            return False
        ok = self.space() is not None
        self.start_button.setEnabled(ok)
        return ok

    def arguments(self, file: str | Path) -> list[str]:
        """The ``sweep`` command line (after the program) for the project file ``file``."""
        args = ["sweep", str(file), "--trials", str(self.trials_box.value()),
                "--workers", str(self.workers_box.value()), "--repeats", str(self.repeats_box.value())]
        if self.epochs_box.value():
            args += ["--epochs", str(self.epochs_box.value())]
        for row in self.rows:
            args += ["--param", row.text]
        args += ["--sampler", self.sampler_box.currentText(), "--metric", self.metric_box.currentText(),
                 "--direction", self.direction_box.currentText(), "--out", str(self.weights_target.parent),
                 "--json"]
        return args

    # -- running ----------------------------------------------------------------------------
    def project_file(self) -> Path:
        """The file the sweep reads: the project's own when saved and unchanged, else a copy
        written atomically into a new temporary folder (removed when the sweep ends), named
        after the weights target so that the sweep writes beside it."""
        dirty = self.dirty() if callable(self.dirty) else self.dirty
        if self.project.path is not None and not dirty:
            return Path(self.project.path)
        self._temp_dir = Path(tempfile.mkdtemp(prefix="netcanvas-sweep-"))
        stem = self.weights_target.name.removesuffix(".safetensors")
        path = self._temp_dir / (stem + SUFFIX)
        # dumps/atomic_write, not save_project: that would point the open project at the copy
        atomic_write(path, dumps_project(self.project).encode("utf-8"))
        return path

    def start(self) -> bool:
        """Start the sweep; False (with the reason in ``status``) when the space is invalid,
        the copy cannot be written, or a sweep runs already."""
        if self.runner.running:
            return False
        params = self.space()
        if params is None:
            return False
        try:
            file = self.project_file()
        except OSError as e:
            self.status.setText(f"Could not write the project for the sweep: {e}")
            return False
        self.trials = []
        self.columns = [p.name for p in params]
        self.log_params = {p.name for p in params if p.log}
        self.sweep_metric = self.metric_box.currentText()
        self.sweep_direction = self.direction_box.currentText()
        self._reset_results()
        self.progress.setRange(0, self.trials_box.value())
        self.progress.setValue(0)
        self._set_running(True)
        self.status.setText(f"Running {self.trials_box.value()} trials with {self.workers_box.value()} "
                            f"worker{'s' * (self.workers_box.value() != 1)}…")
        self.runner.start(self.arguments(file), cwd=self.weights_target.parent)
        return True

    def cancel(self) -> None:
        """End the running sweep (its finished trials stay in the store)."""
        if self.runner.running:
            self.status.setText("Cancelling: ending the sweep's workers…")
            self.cancel_button.setEnabled(False)
            self.runner.cancel()

    def reject(self) -> None:
        """Closing ends a running sweep: asked to stop, then killed after the grace period."""
        if self.runner.running:
            self.runner.cancel()
            if not self.runner.wait_ended(self.runner.grace_ms):
                self.runner.kill()
                self.runner.wait_ended(2000)
        self._remove_copy()
        super().reject()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.trials_box, self.workers_box, self.repeats_box, self.epochs_box, self.sampler_box,
                       self.metric_box, self.direction_box, *self.rows):
            widget.setEnabled(not running)

    def _reset_results(self) -> None:
        headers = ["Trial", "State", self.sweep_metric, *self.columns, "Run"]
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.best_label.setText("Best trial: none yet")
        self.parallel.set_trials([])
        self.importance.set_message("Parameter importance: shown when the sweep ends.")
        self.log_view.clear()

    def _trial(self, trial: dict) -> None:
        self.trials.append(trial)
        self.table.setSortingEnabled(False)
        row = self.table.rowCount()
        self.table.insertRow(row)
        cells = [trial["trial"], trial["state"], trial["value"],
                 *[trial["params"].get(name) for name in self.columns], trial["run_id"] or ""]
        for column, value in enumerate(cells):
            self.table.setItem(row, column, _cell(value))
        self.table.setSortingEnabled(True)
        self.progress.setValue(min(self.progress.maximum(), len(self.trials)))
        self._show_best(trial["best"])
        self.parallel.set_trials(self.trials, self.sweep_metric, self.sweep_direction, self.log_params,
                                 self.columns)

    def _show_best(self, best: dict | None) -> None:
        if best is None:
            return
        value = "—" if best["value"] is None else _fmt(best["value"])
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best["params"].items())
        self.best_label.setText(f"Best trial: #{best['trial']}: {self.sweep_metric} {value}   ({params})")
        bold = QFont(self.table.font())
        bold.setBold(True)
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            is_best = item is not None and item.data(Qt.ItemDataRole.DisplayRole) == best["trial"]
            for c in range(self.table.columnCount()):
                cell = self.table.item(r, c)
                if cell is not None:
                    cell.setFont(bold if is_best else self.table.font())

    def _done(self, result: dict) -> None:
        self._show_best(result["best"])
        if len(complete_trials(self.trials)) < 2:
            self.importance.set_message("Parameter importance needs at least 2 complete trials; "
                                        f"this sweep has {len(complete_trials(self.trials))}.")
            return
        if not result["storage"] or not result["study"]:
            self.importance.set_message("Parameter importance: the sweep did not say where its study is stored.")
            return
        self.importance.compute(self._storage_url(result["storage"]), result["study"])

    def _storage_url(self, url: str) -> str:
        """A relative SQLite path is the child's, which ran in the weights' folder."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not Path(url[len(prefix):]).is_absolute():
            return prefix + str(self.weights_target.parent / url[len(prefix):])
        return url

    def _log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _ended(self, problem: str) -> None:
        self._set_running(False)
        self.validate()
        done = len(self.trials)
        if problem:
            self.status.setText(f"The sweep stopped: {problem}.")
        else:
            pruned = sum(t["state"] == "pruned" for t in self.trials)
            failed = sum(t["state"] == "failed" for t in self.trials)
            extra = "".join(f", {n} {what}" for n, what in ((pruned, "pruned"), (failed, "failed")) if n)
            self.status.setText(f"The sweep finished: {done} trial{'s' * (done != 1)}{extra}. "
                                f"Each trial is a run in the Runs view.")
        self._remove_copy()

    def _remove_copy(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(value) -> QTableWidgetItem:
    """A table cell that sorts numbers as numbers (None: an empty cell)."""
    item = QTableWidgetItem()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        item.setText("" if value is None else str(value))
    elif isinstance(value, float) and math.isfinite(value):
        item.setData(Qt.ItemDataRole.DisplayRole, float(f"{value:.4g}"))
        item.setToolTip(repr(value))
    else:
        item.setData(Qt.ItemDataRole.DisplayRole, value)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                          if isinstance(value, (int, float)) and not isinstance(value, bool)
                          else Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    return item
