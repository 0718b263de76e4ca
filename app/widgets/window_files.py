"""The main window's files (``WindowFiles``, a part of ``MainWindow``): new, open (a project,
an example, an ONNX or PyTorch model to import), save, the recent files, the recovery of
unsaved work after a crash, and the error box that says what went wrong."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from ..engine.errors import NetCanvasError
from ..engine.project import SUFFIX, Project, load_project
from .recovery import forget, pending_recoveries
from .threads import thaw_garbage

MAX_RECENT = 8
FILE_FILTER = f"NetCanvas projects (*{SUFFIX} *.json);;ONNX models (*.onnx);;All files (*)"


class WindowFiles:
    """``MainWindow``'s methods about files (it holds ``doc``, ``view``, ``training``,
    ``autosaver``, ``settings``, ``recent_menu``)."""

    def set_project(self, project: Project) -> None:
        """Show ``project`` (the document lays out nodes that have no position)."""
        self.doc.set_project(project)
        self._project_replaced()

    def _project_replaced(self) -> None:
        """Another project is open: the previous one's recovery copy goes, the view fits;
        the garbage collector looks at every object again (the last one's cycles)."""
        thaw_garbage()
        self.autosaver.discard()
        self.view.fit()
        self._update_title()

    def new_file(self) -> None:
        if self.maybe_save():
            self.set_project(Project(name="Untitled"))

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        start = str(Path(self.doc.project.path).parent) if self.doc.project.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, FILE_FILTER)
        if path:
            self.open_file(path, ask=False)

    def open_file(self, path, example: bool = False, ask: bool = True) -> bool:
        """Open a project file; a file that fails to load shows the engine's message and
        leaves the current document as it was. Examples open as untitled copies."""
        if self.training.session.running:
            self.show_error("Training is running", "Stop the training before opening another project.")
            return False
        if ask and not self.maybe_save():
            return False
        if str(path).lower().endswith(".onnx"):
            return self._import_onnx(Path(path))
        try:
            project = load_project(path)
        except NetCanvasError as e:
            self.show_error("Cannot open the file", str(e))
            return False
        if example:
            project.path = None
        self.set_project(project)
        if not example:
            self._remember(str(Path(path).resolve()))
        self.statusBar().showMessage(f"Opened {project.name}", 4000)
        return True

    def _import_torch(self) -> None:
        # imported here: the PyTorch importer loads torch.fx and torch.export, a second more at every start
        from .torch_import_dialog import open_torch_import
        open_torch_import(self)

    def _import_onnx(self, path: Path) -> bool:
        """An ONNX model becomes an unsaved project; its weights wait in the recovery folder
        until the first save puts them beside the project file."""
        # imported here: the importer loads onnx, which would lengthen every start of the editor
        from ..engine.importers.onnx_import import import_onnx

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            result = import_onnx(path)
            weights = self.doc.model.adopt_import(result.project, result.state, result.weights_metadata())
        except (NetCanvasError, OSError) as e:
            self.show_error("Cannot import the ONNX model", str(e))
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._project_replaced()
        self.training.adopt_weights(weights, f"Weights imported from {path.name}; saving the project keeps them "
                                             "beside it.")
        self._remember(str(path.resolve()))
        notes = f" ({'; '.join(result.notes)})" if result.notes else ""
        self.statusBar().showMessage(f"Imported {path.name}: {len(result.project.graph.nodes)} layers{notes}", 8000)
        return True

    def save(self) -> bool:
        if self.doc.project.path is None:
            return self.save_as()
        return self._save_to(self.doc.project.path)

    def save_as(self) -> bool:
        start = str(self.doc.project.path or Path.home() / ("network" + SUFFIX))
        path, _ = QFileDialog.getSaveFileName(self, "Save project", start, FILE_FILTER)
        if not path:
            return False
        if not path.endswith(".json"):
            path += SUFFIX
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            self.doc.save(path)
        except (OSError, NetCanvasError) as e:
            self.show_error("Cannot save", f"{path}: {e}")
            return False
        self.autosaver.discard()
        self._remember(str(Path(path).resolve()))
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False when the user cancels."""
        if not self.doc.dirty:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", f"Save the changes to {self.doc.project.name!r}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def show_error(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.last_error = message
        box.open()
        self._error_box = box

    def offer_recoveries(self) -> None:
        for rec in pending_recoveries():
            answer = QMessageBox.question(
                self, "Recover unsaved work",
                f"NetCanvas closed unexpectedly while {rec.name!r} had unsaved changes"
                + (f" ({rec.original})" if rec.original else "") + ". Recover them?")
            if answer == QMessageBox.StandardButton.Yes:
                try:
                    weights = self.doc.model.recover(rec)
                except NetCanvasError as e:
                    self.show_error("Cannot recover", str(e))
                    continue
                self._project_replaced()
                if weights is not None:
                    self.training.adopt_weights(weights, "Trained weights recovered.")
            forget(rec)
            break

    def _remember(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent_files", [path] + recent[: MAX_RECENT - 1])
        self._fill_recent()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            self.recent_menu.addAction(path, lambda p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(self._recent()))
