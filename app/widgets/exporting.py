"""File > Export: ONNX (checked in onnxruntime) and PyTorch code, run off the GUI thread
(an ONNX export takes seconds) with the result, or the engine's message, shown after."""

from __future__ import annotations

import traceback
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..engine.errors import NetCanvasError
from ..engine.project import Project, parse_project, project_to_dict
from .errors import write_log
from .threads import run_in_thread

# what a PyTorch export writes into its folder (app.engine.export.python_export)
PYTHON_FILES = ("model.py", "modules.py", "weights.safetensors", "data.npz", "train.py", "README.md")


def confirm_replace(parent: QWidget | None, paths: list[Path]) -> bool:
    """True when none of ``paths`` exists, or the user agrees to replace those that do
    (for files the save dialog did not ask about: a suffix added after it, a second file
    written beside the first, files inside a folder)."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if not existing:
        return True
    names = ", ".join(p.name for p in existing)
    text = (f"{names} already exist{'s' if len(existing) == 1 else ''} in {existing[0].parent}.\n"
            f"Replace {'it' if len(existing) == 1 else 'them'}?")
    answer = QMessageBox.question(parent, "Replace?", text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                  QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


class BackgroundTask(QObject):
    """Runs ``work()`` in a thread; ``done(str)`` or ``failed(str)`` arrive in the GUI
    thread. ``NetCanvasError``s carry their message; anything else is reported as a bug.
    ``work`` must hold no Qt object (``threads.py`` says why)."""

    done = Signal(str)
    failed = Signal(str)

    def __init__(self, work: Callable[[], str], parent: QObject | None = None):
        super().__init__(parent)
        self._work = work
        self.future: Future | None = None

    def start(self) -> None:
        self.future = run_in_thread(self._work, self, self._finished, name="netcanvas-export")

    def wait(self, seconds: float) -> bool:
        """Block until the work is done, at most ``seconds``; True when it is."""
        return self.future is None or not wait_futures([self.future], seconds).not_done

    def _finished(self, future: Future) -> None:
        try:
            message = future.result()
        except NetCanvasError as e:
            self.failed.emit(str(e))
        except Exception as e:  # noqa: BLE001 - an exporter bug must not be silent or fatal
            log = write_log("".join(traceback.format_exception(e)))
            where = f" (details in {log})" if log else ""
            self.failed.emit(f"unexpected {type(e).__name__}: {e}{where}")
        else:
            self.done.emit(message)


class Exporter(QObject):
    """Asks where to export, then exports a snapshot of the project as it is now (later
    edits do not race the export) with the weights the training panel holds, if any."""

    busy_changed = Signal(bool)

    def __init__(self, window: QWidget, project: Callable[[], Project], weights: Callable[[], Path | None]):
        super().__init__(window)
        self.window = window
        self._project = project
        self._weights = weights
        self.task: BackgroundTask | None = None
        self.last_message = ""

    @property
    def busy(self) -> bool:
        return self.task is not None

    def _start_dir(self) -> Path:
        p = self._project().path
        return p.parent if p else Path.home()

    def _stem(self) -> str:
        p = self._project()
        name = p.path.name.split(".")[0] if p.path else (p.name or "network")
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "network"

    def ask_onnx(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Export ONNX", str(self._start_dir() / f"{self._stem()}.onnx"),
                                              "ONNX models (*.onnx)")
        if not path:
            return
        if not path.endswith(".onnx"):  # the dialog asked about the name without it
            path += ".onnx"
            if not confirm_replace(self.window, [Path(path)]):
                return
        self.export_onnx(path)

    def ask_python(self) -> None:
        """Asks for a folder by name: a new one is created (a folder picker accepts only
        folders that exist); an existing one with files in it gets a ``<project>`` folder of
        its own inside."""
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export PyTorch code to a folder (a new one is created)",
            str(self._start_dir() / self._stem()), "Folders (*)", "",
            QFileDialog.Option.ShowDirsOnly | QFileDialog.Option.DontConfirmOverwrite)
        if not path:
            return
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            self._show(QMessageBox.Icon.Warning, "Export failed",
                       f"{folder} is a file: choose a folder (a new name creates one)")
            return
        if folder.is_dir() and any(folder.iterdir()) and not (folder / "model.py").exists():
            folder = folder / self._stem()  # a folder of other files: the export goes in a folder of its own
        if folder.is_dir() and not confirm_replace(self.window, [folder / name for name in PYTHON_FILES]):
            return
        self.export_python(str(folder))

    def export_onnx(self, out: str) -> None:
        from ..engine.export.onnx_export import export_onnx  # here: onnx is slow to load, not at the editor start

        project, weights = self._snapshot()
        self._run(lambda: export_onnx(project, out, weights=weights).summary())

    def export_python(self, out_dir: str) -> None:
        from ..engine.export.python_export import export_python  # here: it loads onnx too (see above)

        project, weights = self._snapshot()
        self._run(lambda: export_python(project, out_dir, weights=weights).summary())

    def _snapshot(self) -> tuple[Project, Path | None]:
        current = self._project()
        project = parse_project(project_to_dict(current))  # a copy: later edits do not race the export
        project.path = current.path
        weights = self._weights()
        return project, weights if weights is not None and weights.exists() else None

    def _run(self, work: Callable[[], str]) -> None:
        if self.task is not None:
            QMessageBox.information(self.window, "Export", "An export is already running.")
            return
        self.task = BackgroundTask(work, self)
        self.task.done.connect(self._done, Qt.ConnectionType.QueuedConnection)
        self.task.failed.connect(self._failed, Qt.ConnectionType.QueuedConnection)
        self.busy_changed.emit(True)
        self.task.start()

    def _finish(self) -> None:
        self.task = None
        self.busy_changed.emit(False)

    def _done(self, message: str) -> None:
        self._finish()
        self.last_message = message
        self._show(QMessageBox.Icon.Information, "Export finished", message[0].upper() + message[1:])

    def _failed(self, message: str) -> None:
        self._finish()
        self._show(QMessageBox.Icon.Warning, "Export failed", message)

    def _show(self, icon, title: str, message: str) -> None:
        self.last_message = message
        box = QMessageBox(icon, title, message, QMessageBox.StandardButton.Ok, self.window)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
