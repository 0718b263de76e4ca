"""The Runs view: every recorded run of the open project in a table (sortable, filtered by
text and status), the selected runs compared below it (curves overlaid, settings side by
side, confusion matrices), and what can be done with a run: restore its graph and settings
(one undo step), use its weights, delete it, give it a note and tags, export the table.

The main window gives the view the run store's path (``set_store``) and calls ``refresh``
after each run; the view opens the store only once the file exists, so that merely looking
at a project never leaves a file beside it."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, QPoint, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...engine.errors import NetCanvasError
from ...engine.files import atomic_write
from ...engine.runs.store import STATUSES, RunRecord, RunStore, use_weights
from ...engine.session.run_commands import RestoreRun
from ...engine.session.weights import param_shapes
from ...engine.weights import plan_partial, read_shapes
from ..document import Document
from .compare import RunsCompare
from .table import RunsFilterModel, RunsTableModel, column, duration_seconds, parse_tags

MAX_COMPARED = 10  # runs overlaid at once (one colour each); more selected: the first ten
# the width each column starts with (characters); the changes column takes the rest
COLUMN_CHARS = {"status": 10, "started": 11, "duration": 8, "val": 8, "test": 8, "note": 14,
                "tags": 10, "sweep": 12}
CSV_FIELDS = ("id", "status", "started", "ended", "duration_s", "changes", "best_val_accuracy", "best_val_loss",
              "test_accuracy", "test_loss", "epochs", "steps", "note", "tags", "sweep", "trial", "params",
              "device", "weights", "message")


class RunsView(QWidget):
    """``RunsView(doc, parent)``; ``set_store(path | None)``, ``refresh()``.

    Signals: ``weights_chosen(Path)`` after "Use these weights" put a run's weights in the
    project's weights file (the training panel reloads them: ``adopt_weights``);
    ``restored(str)`` after a run's graph and settings came back (the run id);
    ``message(str)`` a sentence for the status bar."""

    weights_chosen = Signal(object)
    restored = Signal(str)
    message = Signal(str)

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.store: RunStore | None = None
        self.store_path: Path | None = None
        self.locked = False  # a run is training: no restore, no weights put in place
        self._problem = ""  # why the store cannot be read, shown in place of the table's rows
        self.model = RunsTableModel(self)
        self.proxy = RunsFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self._wire()
        self._show_state()

    # -- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: words in any column")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMinimumWidth(self.fontMetrics().horizontalAdvance("Filter: words in any") + 40)
        self.filter.setToolTip("Rows where every word appears in some column: lr 0.05, a tag, a note, an id…")
        self.status_filter = QComboBox()
        self.status_filter.addItem("All statuses", None)
        for s in STATUSES:
            self.status_filter.addItem(s, s)
        self.buttons = {}
        for name, text, tip in (
                ("restore", "Restore", "Bring the run's graph, training and dataset settings back (one undo step)"),
                ("use", "Use these weights", "Make this run's weights the project's weights"),
                ("note", "Note…", "Write a note about the run"),
                ("tags", "Tags…", "Tag the run (comma-separated)"),
                ("delete", "Delete…", "Delete the selected runs, their metrics and weights files"),
                ("export", "Export CSV…", "Save the table (the rows shown) as a CSV file")):
            b = QPushButton(text)
            b.setToolTip(tip)
            self.buttons[name] = b
        self.count = QLabel()
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter, 2)
        top.addWidget(self.status_filter)
        top.addWidget(self.count)
        top.addStretch(1)
        for b in self.buttons.values():
            top.addWidget(b)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(column("started"), Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        # fixed row heights: a thousand rows need not be measured
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        em = self.fontMetrics().horizontalAdvance("0")
        for key, chars in COLUMN_CHARS.items():
            self.table.setColumnWidth(column(key), chars * em + 12)
        # a whole run id beside the swatch of its colour in the comparison
        swatch = self.table.style().pixelMetric(self.table.style().PixelMetric.PM_SmallIconSize) + 12
        self.table.setColumnWidth(column("run"), self.fontMetrics().horizontalAdvance("20261203-064110-ff95")
                                  + swatch + 16)
        header.setSectionResizeMode(column("changes"), QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(6 * em)

        self.compare = RunsCompare()
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.table)
        self.split.addWidget(self.compare)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        self.split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.empty)
        layout.addWidget(self.split, 1)

    def _wire(self) -> None:
        self.filter.textChanged.connect(self._filter_changed)
        self.status_filter.currentIndexChanged.connect(
            lambda _: self._filter_changed())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.model.note_edited.connect(self._write_note)
        self.model.tags_edited.connect(self._write_tags)
        self.buttons["restore"].clicked.connect(lambda: self.restore())
        self.buttons["use"].clicked.connect(lambda: self.use_weights())
        self.buttons["note"].clicked.connect(lambda: self.edit_note())
        self.buttons["tags"].clicked.connect(lambda: self.edit_tags())
        self.buttons["delete"].clicked.connect(lambda: self.delete())
        self.buttons["export"].clicked.connect(lambda: self.export_csv())

    # -- the store ------------------------------------------------------------------------
    def set_store(self, path: str | Path | None) -> None:
        """Show the runs recorded in the store at ``path`` (None: no project store, nothing
        listed). The store is opened once the file exists (``refresh`` looks again)."""
        new = Path(path) if path else None
        if new != self.store_path:
            self._close()
            self.store_path = new
        self.refresh()

    def refresh(self) -> None:
        """Read the runs again (after a run, a sweep trial), keeping the selection."""
        chosen = self.selected_ids()
        if self.store is None and self.store_path is not None and self.store_path.exists():
            try:
                self.store = RunStore(self.store_path)
                self.store.fail_stale()  # runs whose process is gone (killed with the editor) crashed
            except (NetCanvasError, sqlite3.Error, OSError) as e:
                self._close()
                self._problem = f"The runs cannot be read: {e}"
                self.model.set_runs([])
                self._show_state()
                return
        self._problem = ""
        try:
            records = self.store.runs() if self.store is not None else []
        except (NetCanvasError, sqlite3.Error) as e:
            records, self._problem = [], f"The runs cannot be read: {e}"
        self.model.set_runs(records)  # (the proxy sorts the new rows as the model resets)
        with QSignalBlocker(self.table.selectionModel()):  # drawn once, below, with the new metrics
            self.select(chosen)
        self.table.viewport().update()
        self._show_state()
        self._selection_changed()

    def _close(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except (NetCanvasError, sqlite3.Error):
                pass
        self.store = None

    def closeEvent(self, event) -> None:
        self._close()
        super().closeEvent(event)

    def set_editing_locked(self, locked: bool) -> None:
        """While a run trains, Restore and "Use these weights" wait (the graph and the weights
        file are the run's); the table and the comparison stay."""
        self.locked = bool(locked)
        tip = "Stop the training first" if locked else ""
        for name in ("restore", "use"):
            self.buttons[name].setStatusTip(tip)
        self._selection_changed()

    # -- selection ------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        """The selected runs' ids in the table's order (top first)."""
        # from the selection's ranges: selectedRows() checks every cell (slow with a thousand)
        rows = sorted({r for rng in self.table.selectionModel().selection()
                       for r in range(rng.top(), rng.bottom() + 1)})
        return [self.model.record(self.proxy.mapToSource(self.proxy.index(r, 0)).row()).id for r in rows]

    def selected_records(self) -> list[RunRecord]:
        return [self.model.record(self.model.row_of(i)) for i in self.selected_ids()]

    def select(self, run_ids: list[str]) -> None:
        """Select the runs ``run_ids`` that are listed (and shown), nothing else."""
        selection = QItemSelection()
        for run_id in run_ids:
            row = self.model.row_of(run_id)
            if row is None:
                continue
            index = self.proxy.mapFromSource(self.model.index(row, 0))
            if index.isValid():
                selection.select(index, index)
        # one change of the selection (the comparison is drawn once, not once a row)
        self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                           | QItemSelectionModel.SelectionFlag.Rows)

    def _selection_changed(self, *_args) -> None:
        records = self.selected_records()[:MAX_COMPARED]
        runs = []
        for r in records:
            try:
                runs.append((r, self.store.batches(r.id), self.store.epochs(r.id)))
            except (NetCanvasError, sqlite3.Error):  # deleted meanwhile by another process
                runs.append((r, {}, {}))
        self.compare.show_runs(runs)
        self.model.set_colours(self.compare.colours)  # the table says which curve is which run
        one = len(records) == 1
        self.buttons["restore"].setEnabled(one and not self.locked)
        self.buttons["use"].setEnabled(one and bool(records[0].weights) and not self.locked)
        self.buttons["note"].setEnabled(one)
        self.buttons["tags"].setEnabled(bool(records))
        self.buttons["delete"].setEnabled(bool(records) and all(r.status != "running" for r in records))
        self.buttons["export"].setEnabled(self.proxy.rowCount() > 0)

    def _filter_changed(self, *_args) -> None:
        self.proxy.set_text(self.filter.text())
        self.proxy.set_status(self.status_filter.currentData())
        self._show_state()

    def _show_state(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        self.count.setText(f"{shown} of {total} runs" if shown != total else f"{total} run{'s' if total != 1 else ''}")
        if self._problem:
            self.empty.setText(self._problem)
        elif self.store_path is None:
            self.empty.setText("No project open whose runs could be listed.")
        elif not total:
            self.empty.setText("No runs recorded yet: every training run of this project is kept here, "
                               "with its settings, curves and weights.")
        else:
            self.empty.setText("")
        self.empty.setVisible(bool(self.empty.text()))
        self.buttons["export"].setEnabled(shown > 0)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row(), QModelIndex()):
            self.table.selectRow(index.row())
        menu = self.context_menu()
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        """The actions on the selected runs, as the table's context menu offers them."""
        menu = QMenu(self)
        for name in ("restore", "use", "note", "tags", "delete", "export"):
            b = self.buttons[name]
            action = menu.addAction(b.text())
            action.setEnabled(b.isEnabled())
            action.setToolTip(b.toolTip())
            action.triggered.connect(b.click)
            if name in ("use", "tags"):
                menu.addSeparator()
        return menu

    def _one(self, run_id: str | None) -> RunRecord | None:
        if run_id is not None:
            row = self.model.row_of(run_id)
            return self.model.record(row) if row is not None else None
        records = self.selected_records()
        return records[0] if len(records) == 1 else None

    def _error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)
        self.message.emit(text)

    # -- actions --------------------------------------------------------------------------
    def restore(self, run_id: str | None = None) -> bool:
        """Bring run ``run_id`` (default: the one selected) back into the editor: its graph,
        training and dataset settings, as one undo step. Returns whether it was restored."""
        r = self._one(run_id)
        if r is None or self.locked:
            return False
        try:
            command = RestoreRun(self.doc.model, r)
        except NetCanvasError as e:
            self._error("Cannot restore the run", str(e))
            return False
        self.doc.push(command)
        self.restored.emit(r.id)
        self.message.emit(f"Restored run {r.id}: its graph and settings (Undo takes them back).")
        return True

    def weights_fit(self, r: RunRecord) -> str | None:
        """Why run ``r``'s weights do not fit the graph in the editor, or None when they do
        (every parameter of the graph has its tensor, of the same shape)."""
        try:
            file_shapes = read_shapes(r.weights)
        except NetCanvasError as e:
            return str(e)
        analysis = self.doc.analysis
        if not analysis.ok:
            return "the graph in the editor has errors"
        try:
            shapes = param_shapes(self.doc.graph, analysis)
        except NetCanvasError as e:
            return str(e)
        fit = plan_partial(shapes, file_shapes, str(r.weights))
        return None if fit.complete else fit.summary()

    def use_weights(self, run_id: str | None = None, ask: bool = True) -> Path | None:
        """Copy run ``run_id``'s weights (default: the one selected) over the project's
        weights file and announce ``weights_chosen``. When they do not fit the graph in the
        editor, ask first whether to restore the run's graph with them (``ask`` False: do
        not ask, and do nothing). Returns the file written, None when nothing was done."""
        r = self._one(run_id)
        if r is None or self.store is None or self.locked:
            return None
        if not r.weights:
            self._error("No weights", f"Run {r.id} kept no weights file.")
            return None
        misfit = self.weights_fit(r)
        if misfit is not None:
            if not ask:
                return None
            yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel
            answer = QMessageBox.question(
                self, "Restore the run's graph too?",
                f"Run {r.id}'s weights do not fit the graph in the editor ({misfit}).\n\n"
                "Restore the run's graph and settings (one undo step) and use its weights?", yes | no, no)
            if answer != yes or not self.restore(r.id):
                return None
        try:
            target = self.doc.weights.run_target()
            written = use_weights(self.store, r.id, target)
        except (NetCanvasError, OSError) as e:
            self._error("Cannot use these weights", str(e))
            return None
        self.weights_chosen.emit(Path(written))
        self.message.emit(f"The project's weights are now run {r.id}'s ({Path(written).name}).")
        return Path(written)

    def delete(self, run_ids: list[str] | None = None, ask: bool = True) -> list[str]:
        """Delete runs (default: those selected) with their metrics and weights files,
        after asking (``ask``). A run still training is left alone. Returns the ids deleted."""
        ids = self.selected_ids() if run_ids is None else list(run_ids)
        records = [self.model.record(self.model.row_of(i)) for i in ids if self.model.row_of(i) is not None]
        records = [r for r in records if r.status != "running"]
        if not records or self.store is None:
            return []
        if ask:
            what = f"run {records[0].id}" if len(records) == 1 else f"{len(records)} runs"
            yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel
            if QMessageBox.question(self, "Delete runs?", f"Delete {what}, with the metrics and the weights "
                                    "files kept for them? This cannot be undone.", yes | no, no) != yes:
                return []
        done = []
        for r in records:
            try:
                self.store.delete(r.id)
                done.append(r.id)
            except (NetCanvasError, sqlite3.Error, OSError) as e:
                self._error("Cannot delete the run", str(e))
                break
        self.refresh()
        return done

    def edit_note(self, run_id: str | None = None) -> None:
        r = self._one(run_id)
        if r is None:
            return
        text, ok = QInputDialog.getMultiLineText(self, "Note", f"A note about run {r.id}:", r.note)
        if ok:
            self.set_note(r.id, text)

    def edit_tags(self, run_id: str | None = None) -> None:
        records = [self._one(run_id)] if run_id is not None else self.selected_records()
        records = [r for r in records if r is not None]
        if not records:
            return
        current = ", ".join(records[0].tags) if len(records) == 1 else ""
        what = f"run {records[0].id}" if len(records) == 1 else f"{len(records)} runs"
        text, ok = QInputDialog.getText(self, "Tags", f"Tags of {what} (comma-separated):", text=current)
        if ok:
            for r in records:
                self.set_tags(r.id, parse_tags(text))

    def set_note(self, run_id: str, note: str) -> None:
        row = self.model.row_of(run_id)
        if row is not None:
            self.model.setData(self.model.index(row, column("note")), note)

    def set_tags(self, run_id: str, tags: list[str]) -> None:
        row = self.model.row_of(run_id)
        if row is not None:
            self.model.setData(self.model.index(row, column("tags")), ", ".join(tags))

    def _write_note(self, run_id: str, note: str) -> None:
        try:
            self.store.set_note(run_id, note)
        except (NetCanvasError, sqlite3.Error) as e:
            self._error("Cannot save the note", str(e))

    def _write_tags(self, run_id: str, tags: list) -> None:
        try:
            self.store.set_tags(run_id, list(tags))
        except (NetCanvasError, sqlite3.Error) as e:
            self._error("Cannot save the tags", str(e))

    # -- CSV ------------------------------------------------------------------------------
    def csv_text(self) -> str:
        """The rows shown (filtered, in the table's order) as CSV: a header row, then one row
        a run; times in ISO 8601 (UTC), accuracies as fractions, tags joined with ";"."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(CSV_FIELDS)
        for view_row in range(self.proxy.rowCount()):
            row = self.proxy.mapToSource(self.proxy.index(view_row, 0)).row()
            r = self.model.record(row)
            seconds = duration_seconds(r)
            w.writerow([r.id, r.status, _iso(r.started), _iso(r.ended), "" if seconds is None else f"{seconds:.3f}",
                        self.model.changes(row), _num(r.best_val_accuracy), _num(r.best_val_loss),
                        _num(r.test_accuracy), _num(r.test_loss), r.epochs, r.steps, r.note, ";".join(r.tags),
                        r.sweep or "", "" if r.trial is None else r.trial,
                        json.dumps(r.params, sort_keys=True) if r.params else "", r.device, r.weights or "",
                        r.message])
        return out.getvalue()

    def export_csv(self, path: str | Path | None = None) -> Path | None:
        """Write ``csv_text`` to ``path`` atomically (None: ask where). Returns the file."""
        if path is None:
            start = str(self.store_path.with_suffix("").with_suffix(".csv")) if self.store_path else "runs.csv"
            chosen, _ = QFileDialog.getSaveFileName(self, "Export the runs as CSV", start, "CSV files (*.csv)")
            if not chosen:
                return None
            path = chosen
        target = Path(path)
        try:
            atomic_write(target, self.csv_text().encode("utf-8"))
        except OSError as e:
            self._error("Cannot export the runs", f"{target}: {e.strerror or e}")
            return None
        self.message.emit(f"Exported {self.proxy.rowCount()} runs to {target}.")
        return target


def _iso(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _num(x) -> str:
    return "" if x is None else repr(float(x))


def store_path_of(doc: Document) -> Path | None:
    """Where the open project's runs are recorded (``ProjectWeights.store_path``): beside the
    saved project file; for a never-saved project, beside its scratch weights once it has
    run; None before that. Makes nothing."""
    return doc.weights.store_path()

