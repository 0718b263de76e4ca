"""Live training curves: minibatch loss (raw and smoothed), accuracy (minibatch, smoothed,
and per epoch), per-epoch train / validation loss, and the learning rate, with the previous
run dimmed behind the current one for comparison.

Metrics are plain arrays (:class:`app.engine.session.metrics.RunMetrics`); the plot items only draw them.
``add_batch`` / ``add_epoch`` only append and mark the view dirty; a timer redraws at most
every 60 ms, so a trainer reporting thousands of minibatches a second never floods the GUI.
Long runs are drawn through a min/max pyramid (:class:`app.engine.session.metrics.Decimator`): a redraw hands each
curve about two points per pixel of the visible range, whatever the length of the run.

CSV export, ``export_csv("run.csv")``, writes two files (plain CSV, header row first, empty
cells where a value does not exist, e.g. accuracy of an autoencoder):

- ``run.csv``, one row per minibatch: ``step,epoch,loss,smoothed_loss,accuracy,lr``
- ``run-epochs.csv``, one row per epoch:
  ``epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds``
  (``step``: the last step of that epoch, where its points sit on the step axis).

Smoothing is an exponential moving average with weight ``w`` (0.9 unless changed):
``s[0] = x[0]``, ``s[t] = w * s[t-1] + (1 - w) * x[t]``; missing values are skipped.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QSignalBlocker, QTimer

from ...engine.session.budget import drawing_duty
from .curves_plots import CurvesPlots
from .curves_readout import ask_csv_path, ask_png_path, render_png
from ...engine.session.metrics import F8, Decimator, RunMetrics, write_csv
from .plot_parts import _Curve, _round_step


class CurvesView(CurvesPlots):
    """Four live plots of a training run. ``start_run()`` keeps the run so far as the
    (dimmed) previous run; ``add_batch(BatchEvent)`` / ``add_epoch(EpochEvent)`` append;
    drawing happens on a timer (``flush()`` draws now). ``draw_count`` counts redraws and
    ``last_draw_seconds`` times the last one (updating the items and painting the plots).

    The timer paces itself: a redraw waits at least ``INTERVAL_MS`` after the last one, and
    longer when drawing is costly, so that drawing takes at most ``DUTY`` of the GUI
    thread's time (less where training takes every CPU: see ``budget.py``). On a slow
    screen (or a small machine, where the editor shares the CPU with the training process)
    the curves refresh less often instead of freezing the editor or slowing the training
    down."""

    INTERVAL_MS = 60
    MAX_INTERVAL_MS = 1500
    DUTY = drawing_duty()  # 0.08, or 0.02 where training takes every CPU (budget.py)

    def __init__(self, parent=None, smoothing: float = 0.9):
        super().__init__(parent)
        self.current = RunMetrics(smoothing)
        self.previous: RunMetrics | None = None
        self._fills_current = True  # False while a run's supervisor fills ``current``
        self.draw_count = 0
        self.last_draw_seconds = 0.0
        self._dirty = False
        self._pending: list[pg.PlotWidget] = []  # plots still to redraw in this pass
        self._pass_rows: tuple[int, int, int] | None = None  # the rows that pass draws
        self._x_max = 0.0  # the step plots' right edge while following the run
        self._pyramids: dict[tuple[int, str], Decimator] = {}
        self._drawn: dict[int, tuple] = {}  # what each curve item shows, to skip unchanged ones
        self._seen: dict[int, tuple[int, bool]] = {}  # plot -> (run serial, had rows) of its last redraw
        self._follow = True  # step plots show every step (else the range the user zoomed to)
        self._generation = 0  # bumped when smoothed values are recomputed
        self._timer = QTimer(self, singleShot=True, interval=self.INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._drawn_at = 0.0  # when the last redraw ended (perf_counter)
        self._update_seconds = 0.0  # the last redraw's item updates
        self._paint_seconds = 0.0  # and the painting of the plots that followed
        self._build(smoothing)
        self._apply_theme()
        self._arrange()
        self._redraw()
        self.draw_count = 0

    # -- data in ---------------------------------------------------------------------------------
    def start_run(self, metrics: RunMetrics | None = None) -> None:
        """A new run begins: the current one (if it has data) becomes the dimmed previous run.
        ``metrics``: the store the run fills (the supervisor's): ``add_batches`` and
        ``add_epoch`` then only redraw; None: this view fills a store of its own."""
        if self.current:
            self.previous = self.current
            self._legend_previous(True)
        self._fills_current = metrics is None
        if metrics is None:
            metrics = RunMetrics(self.smoothing_box.value())
        else:
            metrics.set_smoothing(self.smoothing_box.value())
        self.current = metrics
        self._pyramids = {k: v for k, v in self._pyramids.items()
                          if self.previous is not None and k[0] == self.previous.serial}
        self.epoch_plot.enableAutoRange()
        self.set_step_range()

    def clear(self) -> None:
        """Forget both runs."""
        self.current, self.previous = RunMetrics(self.smoothing_box.value()), None
        self._fills_current = True
        self._legend_previous(False)
        self._pyramids.clear()
        self._changed()

    def add_batch(self, event) -> None:
        self.add_batches([event])

    def add_batches(self, events: list) -> None:
        if self._fills_current:
            self.current.add_batches(events)
        self._changed()

    def add_epoch(self, event) -> None:
        if self._fills_current:
            self.current.add_epoch(event)
        self._changed()

    def set_smoothing(self, weight: float) -> None:
        """Smooth both runs with a new weight (0 <= weight < 1)."""
        if not 0 <= weight < 1:
            raise ValueError(f"smoothing must be in [0, 1); received {weight}")
        with QSignalBlocker(self.smoothing_box):
            self.smoothing_box.setValue(weight)
        for run in (self.current, self.previous):
            if run is not None:
                run.set_smoothing(weight)
        self._pyramids = {k: v for k, v in self._pyramids.items() if not k[1].startswith("smoothed")}
        self._generation += 1
        self._changed()

    def step_count(self) -> int:
        return len(self.current.batches)

    def epoch_count(self) -> int:
        return len(self.current.epochs)

    # -- drawing ---------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty = True
        if not self._timer.isActive() and self.isVisible():  # hidden: showEvent draws
            self._timer.start()

    def _zoomed(self, *_args) -> None:
        """The user zoomed or panned a step plot: draw that range in detail from now on."""
        self._follow = False
        self._changed()

    def _follow_all(self) -> None:
        self._follow = True
        self._x_max = 0.0
        self._changed()

    def _x_range_changed(self, _viewbox, _range) -> None:
        if not self._follow:
            self._changed()

    def set_step_range(self, first: float | None = None, last: float | None = None) -> None:
        """Show steps ``first`` to ``last`` in detail, or (no arguments) every step, following
        the run as it grows."""
        vb = self.loss_plot.getViewBox()
        if first is None:
            self._follow = True
            self._x_max = 0.0
            for plot in self.step_plots:
                plot.enableAutoRange(y=True)
        else:
            self._follow = False
            vb.setXRange(first, last, padding=0)
        self._changed()

    def _painted(self, seconds: float) -> None:
        self._paint_seconds += seconds
        self.last_draw_seconds = self._update_seconds + self._paint_seconds

    def _tick(self) -> None:
        if not self._dirty and not self._pending:
            return
        if not self.isVisible():  # drawn when shown again
            return
        # the previous redraw has been painted by now: pace the next one by what it cost; a
        # plot that shows nothing of a run that has data for it is drawn at the base pace (a
        # run just began: at the slowest pace its fourth plot stayed empty for seconds)
        pace = self.INTERVAL_MS if self._behind() else int(
            min(self.MAX_INTERVAL_MS, max(self.INTERVAL_MS, self.last_draw_seconds * 1000 / self.DUTY)))
        self._timer.setInterval(pace)
        early = self._drawn_at + pace / 1000 - time.perf_counter()  # the timer was started before
        if early > 0.005:  # that redraw was known (a full one when the view was shown): wait on
            self._timer.start(int(early * 1000) + 1)  # (the next tick sets the interval again)
            return
        if not self._pending:  # a new pass over the plots, one plot per tick: each paint is
            self._dirty = False  # a short pause of the event loop, not four in a row
            self._pending = self._pass_order()
            self._pass_rows = self._rows_now()  # and every plot of the pass draws the same steps
        self._redraw([self._pending.pop(0)], self._pass_rows)
        if self._pending:
            self._timer.start()

    def _has_rows(self, plot: pg.PlotWidget) -> bool:
        """Whether the current run has data for ``plot`` (the epoch plot: an epoch)."""
        return len(self.current.epochs if plot is self.epoch_plot else self.current.batches) > 0

    def _behind(self) -> bool:
        """Some visible plot shows none of the current run, which has data for it."""
        serial = self.current.serial
        return any(self._has_rows(p) and self._seen.get(id(p)) != (serial, True) for p in self._pass_order())

    def _pass_order(self) -> list[pg.PlotWidget]:
        """The plots a pass redraws, in turn: the step plots (minibatch loss, accuracy,
        learning rate) one after the other, then the epoch plot. A pass draws the run as it
        was when the pass began, so that the step plots, which share their step axis, end
        at the same step once it is over (drawing the loss more often than the others left
        them tens of steps behind it). An unchanged plot costs nothing."""
        plots = [p for p in self.plots if p.isVisible()] or list(self.plots)
        return [p for p in plots if p in self.step_plots] + [p for p in plots if p not in self.step_plots]

    def _rows_now(self) -> tuple[int, int, int]:
        """(run serial, minibatches, epochs) of the current run now."""
        return self.current.serial, len(self.current.batches), len(self.current.epochs)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty or self._pending:  # what came while hidden (or a pass left half-way):
            # every plot brought up to date before the paint that showing the view brings, so
            # the view is painted once, not once stale and then again plot by plot
            self._timer.stop()
            self._dirty, self._pending = False, []
            self._redraw()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._changed()  # the plots' width decides how finely long runs are drawn

    def flush(self) -> None:
        """Draw now whatever arrived (tests; the end of a run)."""
        self._timer.stop()
        self._dirty = False
        self._pending = []
        self._redraw()

    def _redraw(self, plots: list[pg.PlotWidget] | None = None, rows: tuple[int, int, int] | None = None) -> None:
        """Update the items of ``plots`` (default: all) to the data: the current run's first
        ``rows`` (``_rows_now()`` as a pass began; default: all of it). A pass is complete
        (``draw_count``) when no plot waits."""
        start = time.perf_counter()
        if not self._pending:
            self.draw_count += 1
        self._arrange()
        self._follow_steps()
        for curve in self.curves:
            if plots is not None and curve.plot not in plots:
                continue
            run = self.current if curve.run == "current" else self.previous
            if run is None:
                key, data = "empty", ([], [])
            else:
                table = getattr(run, curve.table)
                x, y = table[curve.x], table[curve.y]
                if rows is not None and run is self.current and rows[0] == run.serial:
                    n = rows[1] if curve.table == "batches" else rows[2]
                    x, y = x[:n], y[:n]
                if curve.table == "epochs":
                    ok = np.isfinite(y)
                    key, data = (run.serial, len(y), self._generation), (x[ok].astype(F8), y[ok])
                else:
                    key, data = self._points(run, curve, x, y)
            if key != self._drawn.get(id(curve)):  # unchanged items are not repainted
                curve.item.setData(*data() if callable(data) else data)
                self._drawn[id(curve)] = key
        # the axes of a plot change only in its own redraw: a change to another plot's
        # repaints that plot too, between its own redraws
        targets = self.plots if plots is None else plots
        serial = self.current.serial
        for plot in targets:  # (a pass draws the rows there were as it began)
            drew = self._has_rows(plot) if rows is None or rows[0] != serial else (
                rows[2] if plot is self.epoch_plot else rows[1]) > 0
            self._seen[id(plot)] = (serial, drew)
        if self.lr_plot in targets:
            self._update_lr_scale()
        if self.epoch_plot in targets:
            self._update_epoch_ticks()
        self._settle_y(targets)
        for plot in self.plots:  # settle the autoranges now: one paint follows, not a chain of
            plot.scene().prepareForPaint()  # them (each moving the range and asking for the next)
        self.png_button.setEnabled(bool(self.current) or self.previous is not None)
        self.csv_button.setEnabled(bool(self.current))
        self.readout_line.refresh()
        self._drawn_at = time.perf_counter()
        self._update_seconds = self.last_draw_seconds = self._drawn_at - start
        self._paint_seconds = 0.0

    def _points(self, run: RunMetrics, curve: _Curve, x: np.ndarray, y: np.ndarray):
        """(key, data) for a step column: the visible range, decimated; ``data`` is a
        function, called only when ``key`` differs from what the item shows."""
        pyramid = self._pyramids.get((run.serial, curve.y))
        if pyramid is None:
            pyramid = self._pyramids[(run.serial, curve.y)] = Decimator()
        pyramid.update(y)
        vb = self.loss_plot.getViewBox()  # the step plots share their x range
        i0, i1 = 0, len(x)
        if not self._follow:
            lo, hi = vb.viewRange()[0]
            i0 = max(0, int(np.searchsorted(x, lo, "left")) - 1)
            i1 = min(len(x), int(np.searchsorted(x, hi, "right")) + 1)
        width = int(vb.width()) if vb.width() > 50 else 800
        key = (run.serial, i0, i1, width, self._generation)
        return key, lambda: pyramid.points(x, y, i0, i1, width, curve.peak)

    def _follow_steps(self) -> None:
        """While following the run, the step plots' right edge moves out in round steps
        (1, 2, 5 x 10^k) instead of with every point: their axes (costly to paint) stay put
        between those steps, and a redraw repaints only the plot whose curves changed."""
        if not self._follow:
            return
        last = max((float(r.batches["step"][-1]) for r in (self.current, self.previous)
                    if r is not None and len(r.batches)), default=0.0)
        if last <= self._x_max and last > 0.45 * self._x_max:
            return
        edge = 10.0
        while edge < last * 1.05:
            edge *= 2.5 if str(int(edge))[0] == "2" else 2
        self._x_max = edge
        for plot in self.step_plots:
            plot.getViewBox().setXRange(0, edge, padding=0.02)

    def _settle_y(self, plots) -> None:
        """While following the run, the loss and accuracy plots' y ranges move in round steps
        too, and only when the curves leave the range or shrink to less than half of it: a
        range that follows every minibatch regenerates both axes (their ticks, labels and
        grid) on every redraw, which costs more than drawing the curves."""
        if not self._follow:
            return
        for plot in (p for p in (self.loss_plot, self.accuracy_plot) if p in plots):
            lo, hi = math.inf, -math.inf
            for curve in self.curves:
                y = curve.item.yData if curve.plot is plot and curve.item.isVisible() else None
                if y is not None and len(y):
                    finite = y[np.isfinite(y)]
                    if finite.size:
                        lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
            if lo > hi:
                continue
            vb = plot.getViewBox()
            a, b = vb.viewRange()[1]
            inside = a <= lo and hi <= b
            if not vb.autoRangeEnabled()[1] and inside and hi - lo >= 0.5 * (b - a):
                continue
            step = _round_step(max(hi - lo, abs(hi) * 1e-3, 1e-9) / 6)
            vb.setYRange(math.floor(lo / step) * step, math.ceil(hi / step) * step, padding=0.04)

    def _update_lr_scale(self) -> None:
        lo = min(r.lr_min for r in (self.current, self.previous) if r is not None)
        hi = max(r.lr_max for r in (self.current, self.previous) if r is not None)
        log = lo > 0 and math.isfinite(hi) and hi / lo > 50  # decays over decades read on a log axis
        vb = self.lr_plot.getViewBox()
        if lo == hi and lo > 0:  # a constant rate: from zero up, not ±0.5 around it
            vb.setYRange(0, 1.5 * lo, padding=0)
        elif not vb.autoRangeEnabled()[1] and self._follow:
            vb.enableAutoRange(y=True)
        if log != self._lr_log:
            self._lr_log = log
            self.lr_plot.setLogMode(y=log)
            self._titles[self.lr_plot] = "Learning rate (log scale)" if log else "Learning rate"
            self._apply_theme()

    def _update_epoch_ticks(self) -> None:
        """Whole epochs on the epoch axis; markers on epoch points while they stay apart."""
        n = max(len(self.current.epochs), len(self.previous.epochs) if self.previous else 0)
        shown = n if 0 < n <= 15 else 0  # past 15 epochs (and before the first) the axis picks
        if shown != self._epoch_ticks:  # setting ticks repaints the axis: only when they change
            self._epoch_ticks = shown
            ticks = [[(i, str(i)) for i in range(1, n + 1)]] if shown else None
            self.epoch_plot.getAxis("bottom").setTicks(ticks)
        markers = len(self.current.epochs) <= 60
        if markers != self._markers:
            self._markers = markers
            for item, symbol in ((self.train_accuracy, "o"), (self.val_accuracy, "s"),
                                 (self.train_loss, "o"), (self.val_loss, "s")):
                item.setSymbol(symbol if markers else None)

    # -- the read-out line and the exports ---------------------------------------------------------
    def set_running(self, running: bool) -> None:
        """Whether a run is starting or training (the panel says so as its state changes)."""
        self.readout_line.set_running(running)

    def hover_text(self) -> str:
        """What the line under the plots says: the values under the cursor, or the latest."""
        return self.readout_line.text

    def export_png(self, path) -> bool:
        """Render the plots as they are shown (without the hover line) to a PNG file."""
        self.flush()
        return render_png(self.plot_area, self.plots, self.crosshairs, path)

    def export_csv(self, path) -> tuple[Path, Path]:
        """Write the current run: per step to ``path``, per epoch to ``<stem>-epochs<suffix>``
        beside it (see the module's docstring). Returns both paths."""
        return write_csv(self.current, path)

    def _ask_png(self) -> None:
        path = ask_png_path(self)
        if path:
            ok = self.export_png(path)
            self.readout_line.show(f"Saved {Path(path).name}." if ok else f"Could not write {path}.")

    def _ask_csv(self) -> None:
        path = ask_csv_path(self)
        if not path:
            return
        try:
            steps, epochs = self.export_csv(path)
        except OSError as e:
            self.readout_line.show(f"Could not write {path}: {e.strerror or e}")
            return
        self.readout_line.show(f"Saved {steps.name} (per step) and {epochs.name} (per epoch).")

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self.readout_line.leave()
        elif event.type() == QEvent.Type.Resize and isinstance(obj, pg.PlotWidget):
            roomy = obj.width() >= 200 and obj.height() >= 180
            obj.getPlotItem().getAxis("bottom").showLabel(roomy)
            if obj in self._title_widths:  # the key's labels as long as the new width allows
                self._set_title(obj)
        return False
