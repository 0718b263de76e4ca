"""The curves view's read-out line (the latest values, or those under the cursor, or a
message) and the dialogs and rendering of its PNG and CSV exports."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QFileDialog, QWidget

from ...engine.session.metrics import RunMetrics, epochs_csv_path
from ..exporting import confirm_replace
from .plot_parts import hover_readout, step_text


class CurvesReadout:
    """What the line under the plots says. ``label``: the one-line label it writes to;
    ``crosshairs``: a vertical line per plot ({plot: InfiniteLine}), shown at the value read;
    ``epoch_plot``: the plot whose x axis is epochs (the others' is steps); ``runs()``: the
    current run and the previous one (or None), as the view holds them now."""

    def __init__(self, label, crosshairs: dict[pg.PlotWidget, pg.InfiniteLine], epoch_plot: pg.PlotWidget,
                 runs: Callable[[], tuple[RunMetrics, RunMetrics | None]]):
        self.label = label
        self.crosshairs = crosshairs
        self.epoch_plot = epoch_plot
        self._runs = runs
        self.text = ""
        self.hovering = False  # the text is the values under the cursor
        self._run_active = False  # a run is starting or training: the summary waits for its minibatches

    def set_running(self, running: bool) -> None:
        """Whether a run is starting or training: only then does the summary wait for a
        first minibatch."""
        if running != self._run_active:
            self._run_active = running
            self.refresh()

    def refresh(self) -> None:
        """Show the summary of the runs as they are now, unless the cursor is on a plot."""
        if not self.hovering:
            self.show(self.summary())

    def show(self, text: str) -> None:
        """Say ``text`` (also the label's tooltip)."""
        self.text = text
        self.label.setText(text)
        self.label.setToolTip(text)

    def summary(self) -> str:
        """The latest values of the current run, or what the plots show when it has none."""
        current, previous = self._runs()
        b = current.batches
        if not len(b):
            dimmed = "" if previous is None else "Dimmed: the previous run."
            if self._run_active:
                return f"{dimmed} Waiting for the first minibatch…".strip()
            return dimmed or "No run yet: Train draws its curves here."
        return "latest: " + step_text(current, len(b) - 1)

    def mouse_moved(self, plot: pg.PlotWidget, pos: QPointF) -> None:
        """Values at the cursor: the nearest step (or epoch) of the current run (of the
        previous one where the current has none), with a vertical line across the plots."""
        vb = plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            self.leave()
            return
        x = vb.mapSceneToView(pos).x()
        epoch_plot = plot is self.epoch_plot
        current, previous = self._runs()
        found = hover_readout(current, previous, x, epoch_plot)
        if found is None:
            self.leave()
            return
        at, text = found
        self.hovering = True
        for p, line in self.crosshairs.items():
            same = (p is self.epoch_plot) == epoch_plot
            line.setVisible(same)
            if same:
                line.setValue(at)
        self.show(text)

    def leave(self) -> None:
        """The cursor left the plots: back to the summary."""
        if self.hovering:
            self.hovering = False
            for line in self.crosshairs.values():
                line.setVisible(False)
            self.show(self.summary())


def render_png(plot_area: QWidget, plots: list[pg.PlotWidget], crosshairs: dict, path) -> bool:
    """Render ``plot_area`` as shown (without the hover lines) to a PNG file; True when it
    was written."""
    hidden = [line for line in crosshairs.values() if line.isVisible()]
    for line in hidden:
        line.setVisible(False)
    plot_area.grab()  # a first paint sizes the axes to their tick labels...
    for plot in plots:
        plot.getPlotItem().layout.activate()  # ...and the plots make room for them now
    ok = plot_area.grab().save(str(path), "PNG")
    for line in hidden:
        line.setVisible(True)
    return ok


def ask_png_path(parent: QWidget) -> str | None:
    """The PNG file the user picks (".png" added, and a replacement confirmed, where the
    dialog asked about the name without it); None when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export the curves as an image", "training-curves.png",
                                          "PNG images (*.png)")
    if not path:
        return None
    if not path.lower().endswith(".png"):  # the dialog asked about the name without it
        path += ".png"
        if not confirm_replace(parent, [Path(path)]):
            return None
    return path


def ask_csv_path(parent: QWidget) -> str | None:
    """The CSV file the user picks (replacing the epochs file beside it confirmed); None
    when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export the curves as CSV", "training-curves.csv",
                                          "CSV files (*.csv)")
    if not path or not confirm_replace(parent, [epochs_csv_path(path)]):  # the dialog asked about the first only
        return None
    return path
