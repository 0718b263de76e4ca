"""The curves view's read-out line (the latest values, or those under the cursor) and its
PNG and CSV exports: a mixin of ``CurvesView``, which holds the plots, the runs and the
hover lines it reads."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QFileDialog

from ..exporting import confirm_replace
from .metrics import epochs_csv_path, write_csv
from .plot_parts import hover_readout, step_text


class ReadoutAndExport:
    """Needs: ``current``, ``previous`` (RunMetrics), ``readout`` (a one-line label),
    ``crosshairs`` ({plot: InfiniteLine}), ``epoch_plot``, ``plots``, ``plot_area``,
    ``flush()``, and ``_hover_text`` / ``_hovering``. ``set_running`` says whether a run is
    starting or training: only then does the read-out wait for a first minibatch."""

    _run_active = False  # a run is starting or training: the read-out waits for its minibatches

    # -- reading values --------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        """Whether a run is starting or training (the panel says so as its state changes)."""
        if running != self._run_active:
            self._run_active = running
            if not self._hovering:
                self._set_readout(self._summary())

    def hover_text(self) -> str:
        """What the line under the plots says: the values under the cursor, or the latest."""
        return self._hover_text

    def _set_readout(self, text: str) -> None:
        self._hover_text = text
        self.readout.setText(text)
        self.readout.setToolTip(text)

    def _summary(self) -> str:
        b = self.current.batches
        if not len(b):
            dimmed = "" if self.previous is None else "Dimmed: the previous run."
            if self._run_active:
                return f"{dimmed} Waiting for the first minibatch…".strip()
            return dimmed or "No run yet: Train draws its curves here."
        return "latest: " + step_text(self.current, len(b) - 1)

    def _mouse_moved(self, plot: pg.PlotWidget, pos: QPointF) -> None:
        """Values at the cursor: the nearest step (or epoch) of the current run (of the
        previous one where the current has none), with a vertical line across the plots."""
        vb = plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            self._leave()
            return
        x = vb.mapSceneToView(pos).x()
        epoch_plot = plot is self.epoch_plot
        found = hover_readout(self.current, self.previous, x, epoch_plot)
        if found is None:
            self._leave()
            return
        at, text = found
        self._hovering = True
        for p, line in self.crosshairs.items():
            same = (p is self.epoch_plot) == epoch_plot
            line.setVisible(same)
            if same:
                line.setValue(at)
        self._set_readout(text)

    def _leave(self) -> None:
        if self._hovering:
            self._hovering = False
            for line in self.crosshairs.values():
                line.setVisible(False)
            self._set_readout(self._summary())


    # -- export ------------------------------------------------------------------------------------
    def export_png(self, path) -> bool:
        """Render the plots as they are shown (without the hover line) to a PNG file."""
        self.flush()
        hidden = [line for line in self.crosshairs.values() if line.isVisible()]
        for line in hidden:
            line.setVisible(False)
        self.plot_area.grab()  # a first paint sizes the axes to their tick labels...
        for plot in self.plots:
            plot.getPlotItem().layout.activate()  # ...and the plots make room for them now
        ok = self.plot_area.grab().save(str(path), "PNG")
        for line in hidden:
            line.setVisible(True)
        return ok

    def export_csv(self, path) -> tuple[Path, Path]:
        """Write the current run: per step to ``path``, per epoch to ``<stem>-epochs<suffix>``
        beside it (see the module's docstring). Returns both paths."""
        return write_csv(self.current, path)

    def _ask_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the curves as an image", "training-curves.png",
                                              "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):  # the dialog asked about the name without it
                path += ".png"
                if not confirm_replace(self, [Path(path)]):
                    return
            ok = self.export_png(path)
            self._set_readout(f"Saved {Path(path).name}." if ok else f"Could not write {path}.")

    def _ask_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the curves as CSV", "training-curves.csv",
                                              "CSV files (*.csv)")
        if path:
            if not confirm_replace(self, [epochs_csv_path(path)]):  # the dialog asked about the first file only
                return
            try:
                steps, epochs = self.export_csv(path)
            except OSError as e:
                self._set_readout(f"Could not write {path}: {e.strerror or e}")
                return
            self._set_readout(f"Saved {steps.name} (per step) and {epochs.name} (per epoch).")

