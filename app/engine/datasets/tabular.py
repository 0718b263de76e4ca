"""CSV tables: one row per sample, one column holding an integer class label.

Two readers give the same table. The fast one hands a file without quotes to numpy's C
parser (``np.loadtxt``, about twice as fast as the ``csv`` module followed by a conversion).
The careful one, the ``csv`` module (quoting, any line ending), reads the rest and, when a
file has a problem, finds the line and column to name in the message.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import RawData


def load_csv(path: Path, label_column: str | int | None = None) -> RawData:
    """``csv``: a table with numeric cells, an optional header row (detected: the first row
    has a non-numeric cell) and one label column (a header name or a 0-based index; default
    the first column). Returns ``x`` float32 ``[N, F]`` (F = columns - 1) and ``y`` int64
    ``[N]``. Labels must be whole numbers >= 0; when their distinct values are not exactly
    ``0 .. max`` they are mapped, in sorted order, to ``0 .. K-1`` and ``class_names`` keeps
    the original values. Raises ``DatasetError`` naming the file, the (1-based) line and the
    column of the first cell that is not a number or label that is not a class number."""
    path = Path(path)
    text = _read_text(path)
    fast = _fast_table(text)
    if fast is not None:
        table, header = fast
    else:
        table, header, _ = _careful_table(text, path)
    width = table.shape[1]
    if width < 2:
        raise DatasetError("the CSV file has a single column; it needs a label column and at least one "
                           "feature column", where=str(path))
    col = _label_index(label_column, header, width, path)
    labels = table[:, col]  # float64 parsed from the text: 2.0000001 is not taken for 2
    # a class number beyond 2**31 is no class number (and would overflow the cast)
    bad = np.flatnonzero((labels != np.floor(labels)) | (labels < 0) | (labels >= 2**31))
    if len(bad):
        _, _, rows = _careful_table(text, path)  # for the line number and the cell's own text
        i = int(bad[0])
        line, cells = rows[i]
        v = labels[i]
        why = "is negative" if v < 0 else "is not a whole number" if v != np.floor(v) else "is too large"
        raise DatasetError(f"line {line}, {_column_name(col, header)}: the label {cells[col].strip()!r} {why}; "
                           "labels must be class numbers 0, 1, 2, ...", where=str(path))
    y = labels.astype(np.int64)
    x = np.delete(table, col, axis=1).astype(np.float32)
    distinct = np.unique(y)
    mapped = ""
    if len(distinct) != distinct[-1] + 1:  # not exactly 0 .. max
        class_names = [str(int(v)) for v in distinct]
        y = np.searchsorted(distinct, y).astype(np.int64)
        mapped = f"; labels {_short(class_names)} mapped to classes 0 to {len(distinct) - 1}"
    else:
        class_names = [str(i) for i in range(len(distinct))]
    label_name = repr(header[col].strip()) if header is not None else f"index {col}"
    description = (f"CSV file {path.name}: {len(x):,} rows of {x.shape[1]} features, label column "
                   f"{label_name}, {len(class_names)} classes{mapped}")
    return RawData(x, y, class_names, description)


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DatasetError("file not found", where=str(path))
    if path.is_dir():
        raise DatasetError("is a folder, not a CSV file", where=str(path))
    try:
        # utf-8-sig: Excel writes a byte-order mark before the first header cell; newline=""
        # keeps line endings as they are, for the csv module to read as spreadsheets mean them
        with open(path, newline="", encoding="utf-8-sig") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise DatasetError(f"not a UTF-8 text file (byte {e.start} cannot be decoded); is it really a CSV file?",
                           where=str(path)) from e
    except OSError as e:
        raise DatasetError(f"cannot read the file: {e.strerror or e}", where=str(path)) from e


def _fast_table(text: str) -> tuple[np.ndarray, list[str] | None] | None:
    """The float64 table and header row by numpy's parser, or None when the file needs the
    careful reader: quotes, unusual line endings, a blank first line, no data rows, or any
    cell numpy cannot read (the careful reader then says which)."""
    if '"' in text or "\r" in text.replace("\r\n", ""):
        return None
    text = text.replace("\r\n", "\n")
    first, _, rest = text.partition("\n")
    if not first.strip() or not rest.strip():
        return None
    delimiter = _delimiter(first)
    cells = first.split(delimiter)
    header = None if all(_is_number(c) for c in cells) else cells
    body = rest if header is not None else text
    try:
        table = np.loadtxt(io.StringIO(body), delimiter=delimiter, comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        return None
    if table.shape[1] != len(cells) or not np.isfinite(table).all():
        return None
    return table, header


def _careful_table(text: str, path: Path) -> tuple[np.ndarray, list[str] | None, list[tuple[int, list[str]]]]:
    """The float64 table, the header row and the data rows as ``(line, cells)`` by the
    ``csv`` module; raises ``DatasetError`` naming the line (and column) of any problem."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text.partition("\n")[0]))
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if cells and any(c.strip() for c in cells):  # blank lines (often at the end) are no samples
                rows.append((reader.line_num, cells))
    except csv.Error as e:
        raise DatasetError(f"line {reader.line_num}: {e}", where=str(path)) from e
    if not rows:
        raise DatasetError("the CSV file is empty", where=str(path))
    header = rows[0][1] if not all(_is_number(c) for c in rows[0][1]) else None
    if header is not None:
        rows = rows[1:]
    if not rows:
        raise DatasetError("the CSV file has a header row but no data rows", where=str(path))
    width = len(header) if header is not None else len(rows[0][1])
    for line, cells in rows:
        if len(cells) != width:
            first = "the header row" if header is not None else f"line {rows[0][0]}"
            raise DatasetError(f"line {line} has {len(cells)} columns, but {first} has {width}", where=str(path))
    try:
        table = np.array([cells for _, cells in rows], dtype=np.float64)
    except ValueError:
        table = None
    if table is None or not np.isfinite(table).all():
        _raise_bad_cell(rows, header, path)
    return table, header, rows


def _delimiter(first_line: str) -> str:
    """Comma, unless the first line has none but has semicolons (European spreadsheets) or tabs."""
    if "," not in first_line:
        for d in (";", "\t"):
            if d in first_line:
                return d
    return ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_index(label_column: str | int | None, header: list[str] | None, width: int, path: Path) -> int:
    if label_column is None:
        return 0
    if isinstance(label_column, str):
        if header is not None:
            names = [h.strip() for h in header]
            if label_column.strip() in names:
                return names.index(label_column.strip())
        if label_column.strip().isdigit():  # "3" typed in a text field means index 3
            label_column = int(label_column)
        elif header is None:
            raise DatasetError(f"label_column {label_column!r} is a column name, but the file has no header "
                               "row (its first row is all numbers); give the column's 0-based index instead",
                               where=str(path))
        else:
            raise DatasetError(f"label_column {label_column!r} is not a column of the header; it has "
                               + _short([h.strip() for h in header]), where=str(path))
    if not 0 <= label_column < width:
        raise DatasetError(f"label_column {label_column} is out of range: the file has {width} columns, "
                           f"indices 0 to {width - 1}", where=str(path))
    return int(label_column)


def _raise_bad_cell(rows: list[tuple[int, list[str]]], header: list[str] | None, path: Path) -> None:
    """Raise for the first cell that is not a finite number (the slow path, taken on error only)."""
    for line, cells in rows:
        for c, cell in enumerate(cells):
            try:
                number = float(cell)
            except ValueError:
                what = "an empty cell" if not cell.strip() else f"{cell.strip()!r}"
                raise DatasetError(f"line {line}, {_column_name(c, header)}: {what} is not a number; every "
                                   "cell but the header's must be a number", where=str(path)) from None
            if not np.isfinite(number):
                raise DatasetError(f"line {line}, {_column_name(c, header)}: {cell.strip()!r} is not a finite "
                                   "number; fill in or drop the missing values", where=str(path))
    raise DatasetError("the cells cannot be read as numbers", where=str(path))  # not reached


def _column_name(c: int, header: list[str] | None) -> str:
    return f"column index {c}" + (f" ({header[c].strip()!r})" if header is not None else "")


def _short(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
