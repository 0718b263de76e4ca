"""The main window's runs (``WindowRuns``, a part of ``MainWindow``): the Runs view and the
Sweep dialog, both built when first used, after the first paint: their modules (the
comparison plots, optuna) would lengthen every start of the editor (issue 20)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

if TYPE_CHECKING:
    from .runs.sweep_dialog import SweepDialog
    from .runs.view import RunsView

RUNS_MIN_SIZE = (240, 140)  # the Runs view's buttons' row would widen the window past the screen


class WindowRuns:
    """``MainWindow``'s Runs view (``runs``) and Sweep dialog (``open_sweep``); it holds
    ``doc``, ``training``, ``first_paint`` and the ``runs`` dock."""

    def _prepare_runs(self) -> QWidget:
        """What the Runs dock holds until the view is built (``_build_runs``)."""
        self._runs: RunsView | None = None
        self._runs_on_screen = False
        self._sweep: SweepDialog | None = None
        self._runs_holder = QWidget()
        self._runs_holder.setMinimumSize(*RUNS_MIN_SIZE)
        return self._runs_holder

    def _follow_runs(self) -> None:
        """The Runs view reads the store beside the project's weights again after each run
        and as the project changes (once the view exists: it reads the store as it is
        built), and is built when its dock first shows."""
        self.doc.path_changed.connect(lambda _: self._reread_runs())
        self.doc.reset.connect(self._reread_runs)
        self.training.runs_changed.connect(self._reread_runs)
        self.training.training_active.connect(lambda on: self._runs is not None and self._runs.set_editing_locked(on))
        self._docks["runs"].visibilityChanged.connect(self._runs_dock_visible)

    def open_sweep(self) -> None:
        """The Sweep dialog for the open project (unsaved changes included); its trials are
        runs in the project's store, listed in the Runs view as they finish."""
        if self._sweep is not None and shiboken6.isValid(self._sweep) and self._sweep.isVisible():
            self._sweep.raise_()
            self._sweep.activateWindow()
            return
        try:
            target = self.doc.weights.run_target()
        except OSError as e:
            QMessageBox.warning(self, "Sweep", f"The weights folder cannot be prepared: {e}")
            return
        # imported here: the dialog's plots load optuna, which would lengthen every start of
        # the editor, for a dialog most sessions never open
        from .runs.sweep_dialog import SweepDialog

        self._sweep = SweepDialog(self.doc.project, target, dirty=lambda: self.doc.dirty, parent=self)
        self._sweep.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._sweep.runner.trial.connect(lambda _t: self._reread_runs())
        self._sweep.runner.ended.connect(lambda _m: self._reread_runs())
        self._sweep.show()

    @property
    def runs(self) -> RunsView:
        """The Runs view (built here when nothing has shown it yet)."""
        if self._runs is None:
            self._build_runs()
        return self._runs

    def _build_runs(self) -> None:
        # imported here: the Runs view (its table, its comparison plots) is not on screen at
        # start, and its modules lengthen every start
        from .runs.view import RunsView

        view = RunsView(self.doc, self)
        view.setMinimumSize(*RUNS_MIN_SIZE)
        view.set_store(self.doc.weights.store_path())
        view.set_editing_locked(self._editing_locked)
        view.weights_chosen.connect(lambda path: self.training.adopt_weights(
            path, f"Weights of the chosen run loaded from {path.name}."))
        view.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self._runs = view
        self._docks["runs"].setWidget(view)
        self._runs_holder.deleteLater()

    def _reread_runs(self) -> None:
        """The Runs view reads the project's store again (its path may have changed)."""
        if self._runs is not None:
            self._runs.set_store(self.doc.weights.store_path())

    def _runs_dock_visible(self, visible: bool) -> None:
        # (a dock tabbed away stays isVisible(): this signal says whether it is on screen)
        self._runs_on_screen = visible
        if visible and self._runs is None:  # (a restored layout may show the Runs tab)
            self.first_paint.after(self._build_runs_on_screen)

    def _build_runs_on_screen(self) -> None:
        if self._runs is None and self._runs_on_screen:
            self._build_runs()
