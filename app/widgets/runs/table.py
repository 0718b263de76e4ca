"""The table of runs: a model over the run store's records (one row a run, newest first) and
the proxy that sorts and filters it. A model and a view, not a QTableWidget, so that a
project with a thousand runs lists, sorts and filters at once: cells are worked out when
shown, and the one costly cell (the changes since the previous run) once per run."""

from __future__ import annotations

import json
import time
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor

from ...engine.runs.changes import describe_changes
from ...engine.runs.store import RunRecord

# (key, header): the key names the column for tests, the CSV and ``column()``
COLUMNS = (
    ("run", "Run"),
    ("status", "Status"),
    ("started", "Started"),
    ("duration", "Duration"),
    ("changes", "Changes"),
    ("val", "Val acc"),
    ("test", "Test acc"),
    ("note", "Note"),
    ("tags", "Tags"),
    ("sweep", "Sweep / trial"),
)
HEADER_TIPS = {"changes": "What changed in the settings and the graph since the run started before it",
               "val": "Best validation accuracy of the run", "test": "Test accuracy at the end of the run",
               "note": "Double-click to write a note", "tags": "Double-click to tag (comma-separated)",
               "sweep": "The sweep the run was a trial of, and the trial's number"}
EDITABLE = ("note", "tags")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # the raw value a column sorts by
# a status's swatch (shown beside it, readable on light and dark backgrounds alike)
STATUS_COLOURS = {"running": QColor(60, 130, 220), "finished": QColor(40, 160, 80), "stopped": QColor(200, 150, 40),
                  "diverged": QColor(215, 65, 45), "crashed": QColor(170, 40, 40), "pruned": QColor(140, 140, 140)}


def column(key: str) -> int:
    """The index of column ``key``; raises ValueError for an unknown key."""
    for i, (k, _) in enumerate(COLUMNS):
        if k == key:
            return i
    raise ValueError(f"there is no column {key!r}")


def duration_seconds(r: RunRecord) -> float | None:
    """How long run ``r`` trained: its recorded seconds, else end minus start (None while running)."""
    if r.seconds is not None:
        return float(r.seconds)
    return None if r.ended is None else max(0.0, r.ended - r.started)


def show_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"  # short runs are the common case with small data
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def show_time(t: float | None) -> str:
    """A start time, local: "12-03 06:41" this year, "2025-12-03 06:41" before."""
    if t is None:
        return ""
    when = time.localtime(t)
    return time.strftime("%m-%d %H:%M" if when.tm_year == time.localtime().tm_year else "%Y-%m-%d %H:%M", when)


def show_accuracy(a: float | None) -> str:
    return "" if a is None else f"{a:.2%}"


def sweep_text(r: RunRecord) -> str:
    if not r.sweep:
        return ""
    return r.sweep if r.trial is None else f"{r.sweep} #{r.trial}"


class RunsTableModel(QAbstractTableModel):
    """``set_runs(records)`` (newest first, as ``RunStore.runs()`` gives them); ``record(row)``.
    The note and tags cells are editable: an edit is announced as ``note_edited(run_id, text)``
    or ``tags_edited(run_id, tags)`` for the view to write into the store (the record here
    changes at once)."""

    note_edited = Signal(str, str)
    tags_edited = Signal(str, list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunRecord] = []
        self._rows: dict[str, int] = {}  # run id -> row
        self._changes: dict[int, str] = {}  # row -> changes since the previous run (worked out once)
        self._colours: dict[str, QColor] = {}  # run id -> its colour in the comparison
        self.generation = 0  # counts the changes of the rows' values (the proxy's sort keys follow it)

    # -- contents -------------------------------------------------------------------------
    def set_runs(self, records: list[RunRecord]) -> None:
        self.beginResetModel()
        self._runs = list(records)
        self.generation += 1
        self._rows = {r.id: i for i, r in enumerate(self._runs)}
        self._changes.clear()
        self.endResetModel()

    def set_colours(self, colours: dict[str, QColor]) -> None:
        """Mark the runs compared with their colour (a swatch beside their id)."""
        if colours == self._colours:
            return
        self._colours = dict(colours)
        if self._runs:
            c = column("run")
            self.dataChanged.emit(self.index(0, c), self.index(len(self._runs) - 1, c),
                                  [Qt.ItemDataRole.DecorationRole])

    def colour(self, run_id: str) -> QColor | None:
        return self._colours.get(run_id)

    def record(self, row: int) -> RunRecord:
        return self._runs[row]

    def records(self) -> list[RunRecord]:
        return list(self._runs)

    def row_of(self, run_id: str) -> int | None:
        return self._rows.get(run_id)

    def changes(self, row: int) -> str:
        """What changed from the run started before this one ("first run" for the oldest)."""
        text = self._changes.get(row)
        if text is None:
            before = self._runs[row + 1].project if row + 1 < len(self._runs) else None
            if before is None:
                text = "first run"
            else:
                try:
                    text = describe_changes(before, self._runs[row].project)
                except Exception as e:  # noqa: BLE001 (a stored project of another version: say so in the cell)
                    text = f"(cannot compare: {e})"
            self._changes[row] = text
        return text

    # -- Qt's model -----------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(COLUMNS[section][0])
        return super().headerData(section, orientation, role)

    def flags(self, index):
        base = super().flags(index)
        if index.isValid() and COLUMNS[index.column()][0] in EDITABLE:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, key = self._runs[index.row()], COLUMNS[index.column()][0]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self.text(index.row(), key, edit=role == Qt.ItemDataRole.EditRole)
        if role == SORT_ROLE:
            return self.sort_key(index.row(), key)
        if role == Qt.ItemDataRole.DecorationRole and key == "status":
            return STATUS_COLOURS.get(r.status)
        if role == Qt.ItemDataRole.DecorationRole and key == "run":
            return self._colours.get(r.id)
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("val", "test", "duration"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(index.row(), key)
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        r, key = self._runs[index.row()], COLUMNS[index.column()][0]
        if key == "note":
            r.note = str(value)
            self.note_edited.emit(r.id, r.note)
        elif key == "tags":
            r.tags = parse_tags(str(value))
            self.tags_edited.emit(r.id, list(r.tags))
        else:
            return False
        self.generation += 1
        self.dataChanged.emit(index, index)
        return True

    # -- cells ----------------------------------------------------------------------------
    def text(self, row: int, key: str, edit: bool = False) -> str:
        r = self._runs[row]
        if key == "run":
            return r.id
        if key == "status":
            return r.status
        if key == "started":
            return show_time(r.started)
        if key == "duration":
            return "running" if r.status == "running" else show_duration(duration_seconds(r))
        if key == "changes":
            return self.changes(row)
        if key == "val":
            return show_accuracy(r.best_val_accuracy)
        if key == "test":
            return show_accuracy(r.test_accuracy)
        if key == "note":
            return r.note if edit else r.note.replace("\n", " ")
        if key == "tags":
            return ", ".join(r.tags)
        if key == "sweep":
            return sweep_text(r)
        raise ValueError(f"there is no column {key!r}")

    def sort_key(self, row: int, key: str) -> Any:
        """What column ``key`` sorts by: numbers for times and accuracies (None: no value)."""
        r = self._runs[row]
        if key == "started":
            return r.started
        if key == "duration":
            return duration_seconds(r)
        if key == "val":
            return r.best_val_accuracy
        if key == "test":
            return r.test_accuracy
        if key == "sweep":
            return (r.sweep or "", -1 if r.trial is None else r.trial)
        return self.text(row, key).lower()

    def tooltip(self, row: int, key: str) -> str | None:
        r = self._runs[row]
        if key == "status":
            return r.message or r.status
        if key == "changes":
            return self.changes(row).replace("; ", "\n")
        if key == "sweep" and r.params:
            return json.dumps(r.params)
        if key == "run":
            return f"{r.id} on {r.device}" + (f"\nweights: {r.weights}" if r.weights else "\nno weights file")
        if key == "note":
            return r.note or None
        return None


def parse_tags(text: str) -> list[str]:
    """Tags typed as "a, b c": split on commas, trimmed, empty ones and repeats dropped."""
    return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


class RunsFilterModel(QSortFilterProxyModel):
    """Sorts by each column's raw value (no value last, whichever the order) and keeps the
    rows whose status is ``set_status`` (None: any) and where some cell contains the
    ``set_text`` words (each word somewhere in the row, case-insensitive)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._words: list[str] = []
        self._status: str | None = None
        self._keys: tuple[int, int, list] | None = None  # (column, model generation, each row's key)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(False)  # an edited note must not make its row jump away

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._words = text.lower().split()
        self.endFilterChange()

    def set_status(self, status: str | None) -> None:
        self.beginFilterChange()
        self._status = status or None
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:
        model: RunsTableModel = self.sourceModel()
        if self._status is not None and model.record(source_row).status != self._status:
            return False
        if not self._words:
            return True
        row = " \x00 ".join(model.text(source_row, key).lower() for key, _ in COLUMNS)
        return all(w in row for w in self._words)

    def _key(self, index) -> Any:
        """Column ``index.column()``'s sort key of a source row: every row's key worked out
        once per column sorted by, not twice per comparison."""
        model: RunsTableModel = self.sourceModel()
        c = index.column()
        # (keyed by the model's generation: Qt may sort on a reset before any slot of ours runs)
        if self._keys is None or self._keys[:2] != (c, model.generation):
            key = COLUMNS[c][0]
            self._keys = (c, model.generation, [model.sort_key(r, key) for r in range(model.rowCount())])
        return self._keys[2][index.row()]

    def lessThan(self, left, right) -> bool:
        a, b = self._key(left), self._key(right)
        if a is None or b is None:
            # "no value" sorts after every value in ascending order; in descending order Qt
            # reverses the comparison, which puts it first: keep it last there too
            descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
            if a is None and b is None:
                return False
            return (a is None) == descending
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)
