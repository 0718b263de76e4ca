"""File > Import > PyTorch Model…: the dialog that imports an ``nn.Module``.

It asks for ``MODULE:CALLABLE`` (an importable module such as ``torchvision.models``, or a
``.py`` file, and the class or function that gives the module), the input shape without the
batch and optional keyword arguments as JSON, and says plainly that importing from a ``.py``
file runs that file's code (``torch_import.RUNS_CODE``). The import (loading, tracing,
mapping, the comparison with the module) takes seconds, so it runs in a worker thread; the
project and its weights are then written (``save_imported``) to the chosen path, or to a
scratch folder of the application's data, and opened through the callback the window gives.
A module that cannot be loaded or imported is explained in a message box that lists every
node NetCanvas has no layer for.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from ..engine.errors import NetCanvasError
from ..engine.importers.torch_import import RUNS_CODE, TorchImportError, import_torch, save_imported
from ..engine.project import SUFFIX
from .errors import write_log
from .threads import run_in_thread

TITLE = "Import PyTorch Model"
_SHAPE_SPLIT = re.compile(r"[\s,x×]+")


class ImportRequest:
    """What the dialog's fields ask for, checked: ``target`` (``MODULE:CALLABLE``),
    ``shape`` (positive ints), ``kwargs`` (a dict) and ``out`` (where to write the project)."""

    def __init__(self, target: str, shape: list[int], kwargs: dict[str, Any], out: Path):
        self.target, self.shape, self.kwargs, self.out = target, shape, kwargs, out


def parse_target(module: str, callable_name: str) -> str:
    """``MODULE:CALLABLE`` from the two fields; the module field may hold the whole target
    (``torchvision.models:resnet50``) when the callable field is empty. Raises ``ValueError``."""
    module, callable_name = module.strip(), callable_name.strip()
    if not callable_name and ":" in module.replace(":\\", "").replace(":/", ""):
        module, _, callable_name = module.rpartition(":")
    if not module:
        raise ValueError("Name a module (such as torchvision.models) or a .py file.")
    if not callable_name:
        raise ValueError("Name the class or function that gives the model (such as resnet50).")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", callable_name):
        raise ValueError(f"{callable_name!r} is not a Python name (a class or function such as resnet50).")
    return f"{module}:{callable_name}"


def parse_shape(text: str) -> list[int]:
    """``3,224,224`` (or ``3x224x224``, ``[3, 224, 224]``) as a list of positive ints.
    Raises ``ValueError`` naming the field."""
    parts = [p for p in _SHAPE_SPLIT.split(text.strip().strip("[]()")) if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"Input shape: expected positive whole numbers without the batch, such as 3,224,224; "
                         f"received {text.strip()!r}.")
    return [int(p) for p in parts]


def parse_kwargs(text: str) -> dict[str, Any]:
    """The keyword arguments field: empty, or a JSON object. Raises ``ValueError``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"Keyword arguments: not valid JSON ({e.msg} at character {e.pos + 1}).") from None
    if not isinstance(value, dict):
        raise ValueError(f"Keyword arguments: expected a JSON object such as {{\"num_classes\": 10}}; "
                         f"received {text.strip()!r}.")
    return value


def scratch_path(target: str) -> Path:
    """Where an import goes when no path is chosen: the application's data folder,
    ``imports/<callable>-<time>.netcanvas.json`` (a new name each time)."""
    base = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "imports"
    name = re.sub(r"\W", "_", target.rpartition(":")[2]) or "model"
    return base / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}{SUFFIX}"


class ImportRunner(QObject):
    """Imports in a thread; ``done(path, summary)`` or ``failed(message, details)`` arrive
    in the GUI thread (``details``: every failure, one a line, for a refused module)."""

    done = Signal(str, str)
    failed = Signal(str, str)

    def __init__(self, request: ImportRequest, parent: QObject | None = None):
        super().__init__(parent)
        self.request = request
        self.future: Future | None = None

    def start(self) -> None:
        request = self.request  # the worker gets the request alone, no Qt object (see threads.py)
        self.future = run_in_thread(lambda: _import(request), self, self._finished,
                                    name="netcanvas-torch-import")

    def _finished(self, future: Future) -> None:
        r = self.request
        try:
            path, result = future.result()
        except TorchImportError as e:  # TorchLoadError too
            self.failed.emit(str(e), "\n".join(str(f) for f in e.failures))
        except (NetCanvasError, OSError) as e:
            self.failed.emit(str(e), "")
        except Exception as e:  # noqa: BLE001 - an importer bug must not be silent or fatal
            log = write_log("".join(traceback.format_exception(e)))
            where = f" (details in {log})" if log else ""
            self.failed.emit(f"unexpected {type(e).__name__}: {e}{where}", "")
        else:
            notes = "; ".join(result.notes)
            summary = (f"Imported {r.target}: {len(result.project.graph.nodes)} nodes, largest difference from "
                       f"the module {result.difference:.2g}" + (f" ({notes})" if notes else ""))
            self.done.emit(str(path), summary)


def _import(r: ImportRequest):
    """The import itself, on the worker thread: (the saved project's path, the import result)."""
    result = import_torch(r.target, r.shape, r.kwargs)
    r.out.parent.mkdir(parents=True, exist_ok=True)
    path, _ = save_imported(result, r.out)
    return path, result


class TorchImportDialog(QDialog):
    """The dialog; ``open_project(path) -> bool`` opens what was imported (the window's
    ``open_file``). ``last_error`` / ``last_summary`` keep what it last said."""

    def __init__(self, parent: QWidget | None, open_project: Callable[[str], bool]):
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.open_project = open_project
        self.runner: ImportRunner | None = None
        self.last_error = ""
        self.last_summary = ""
        self._box: QMessageBox | None = None

        self.module_edit = QLineEdit()
        self.module_edit.setPlaceholderText("torchvision.models   or   /path/to/my_nets.py")
        browse = QPushButton("Browse .py…")
        browse.clicked.connect(self._browse_module)
        module_row = QHBoxLayout()
        module_row.addWidget(self.module_edit, 1)
        module_row.addWidget(browse)
        self.callable_edit = QLineEdit()
        self.callable_edit.setPlaceholderText("resnet50   (a class or function returning an nn.Module)")
        self.shape_edit = QLineEdit("3,224,224")
        self.shape_edit.setPlaceholderText("C,H,W without the batch, such as 3,224,224")
        self.kwargs_edit = QLineEdit()
        self.kwargs_edit.setPlaceholderText('optional JSON, such as {"num_classes": 10}')
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("empty: a scratch file; Save As puts it where you want")
        save_browse = QPushButton("Choose…")
        save_browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(save_browse)

        form = QFormLayout()
        form.addRow("Module or .py file:", module_row)
        form.addRow("Callable:", self.callable_edit)
        form.addRow("Input shape:", self.shape_edit)
        form.addRow("Keyword arguments:", self.kwargs_edit)
        form.addRow("Save the project as:", out_row)

        self.warning = QLabel(f"⚠ {RUNS_CODE}")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("QLabel { background: #fff4d6; color: #5a4300; border: 1px solid #e0b84c; "
                                   "border-radius: 4px; padding: 6px; font-weight: bold; }")
        self.explain = QLabel("The module is traced, mapped to NetCanvas layers (repeated structure becomes "
                              "blocks) and run beside the imported graph on random inputs; it is refused, naming "
                              "each operation it has no layer for, unless the two agree within 1e-4.")
        self.explain.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: the import has no steps to count
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setDefault(True)
        self.buttons.accepted.connect(self.start_import)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.warning)
        layout.addWidget(self.explain)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(640, self.sizeHint().height())

    # -- fields ---------------------------------------------------------------------------
    def _browse_module(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A Python file defining the model", str(Path.home()),
                                              "Python files (*.py);;All files (*)")
        if path:
            self.module_edit.setText(path)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the imported project", str(Path.home() / f"model{SUFFIX}"),
                                              f"NetCanvas projects (*{SUFFIX} *.json)")
        if path:
            self.out_edit.setText(path if path.endswith(".json") else path + SUFFIX)

    def request(self) -> ImportRequest:
        """The fields as an ``ImportRequest``; raises ``ValueError`` naming a bad field."""
        target = parse_target(self.module_edit.text(), self.callable_edit.text())
        shape = parse_shape(self.shape_edit.text())
        kwargs = parse_kwargs(self.kwargs_edit.text())
        out_text = self.out_edit.text().strip()
        out = Path(out_text).expanduser() if out_text else scratch_path(target)
        if out_text and not out.name.endswith(".json"):
            out = out.with_name(out.name + SUFFIX)
        return ImportRequest(target, shape, kwargs, out)

    # -- running --------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.runner is not None

    def start_import(self) -> None:
        """Check the fields and start the import in a thread (nothing while one runs)."""
        if self.busy:
            return
        try:
            request = self.request()
        except ValueError as e:
            self._show_error(str(e), "")
            return
        self.runner = ImportRunner(request, self)
        self.runner.done.connect(self._done, Qt.ConnectionType.QueuedConnection)
        self.runner.failed.connect(self._failed, Qt.ConnectionType.QueuedConnection)
        self._set_busy(True, f"Importing {request.target}: tracing, mapping and checking take a few seconds…")
        self.runner.start()

    def _set_busy(self, busy: bool, text: str) -> None:
        self.progress.setVisible(busy)
        self.import_button.setEnabled(not busy)
        for edit in (self.module_edit, self.callable_edit, self.shape_edit, self.kwargs_edit, self.out_edit):
            edit.setReadOnly(busy)
        self.status.setText(text)

    def _done(self, path: str, summary: str) -> None:
        self.runner = None
        self._set_busy(False, summary)
        self.last_summary = summary
        if not self.isVisible():
            return  # cancelled while it ran: the files stay written, nothing is opened
        if self.open_project(path):
            self.accept()

    def _failed(self, message: str, details: str) -> None:
        self.runner = None
        self._set_busy(False, "")
        self._show_error(message, details)

    def _show_error(self, message: str, details: str) -> None:
        self.last_error = message + (("\n" + details) if details and details not in message else "")
        box = QMessageBox(QMessageBox.Icon.Warning, "Cannot import the PyTorch model", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 620px; }")  # a failure a line, not wrapped
        if details:
            box.setDetailedText(details)  # every failure, where the message shows the first ones
        box.open()
        self._box = box


def open_torch_import(window) -> TorchImportDialog:
    """Show the dialog for ``window`` (the main window: its ``open_file`` opens the result)."""
    dialog = TorchImportDialog(window, lambda path: window.open_file(path))
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
