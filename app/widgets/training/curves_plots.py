"""The curves view's four plots as widgets: building them and their curve items, the
smoothing box and export buttons above them and the read-out line below, arranging them in
two columns, their colours in the palette's light or dark, and the key in each plot's title
(which line is which run and metric).

:class:`CurvesPlots` is the base of :class:`app.widgets.training.curves.CurvesView`, which
adds the data, the paced redraws and the exports; the widgets built here connect to the
view's handlers (``_painted``, ``_x_range_changed``, ``_zoomed``, ``_follow_all``,
``set_smoothing``, ``_ask_png``, ``_ask_csv``) and read its runs (``current``, ``previous``).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..colors import mix
from .curves_readout import CurvesReadout
from .plot_parts import _CountAxis, _Curve, _ElidedLabel, _GridAxis, _TimedPlot


class CurvesPlots(QWidget):
    """The plots, items and controls of :class:`~app.widgets.training.curves.CurvesView`
    (see the module's docstring); not used on its own."""

    # -- building ------------------------------------------------------------------------------
    def _plot(self, title: str, x_label: str) -> pg.PlotWidget:
        w = _TimedPlot(self._painted, axisItems={"bottom": _CountAxis("bottom"), "left": _GridAxis("left")})
        w.setMinimumSize(160, 120)
        p = w.getPlotItem()
        p.setMenuEnabled(False)
        p.showGrid(x=True, y=True, alpha=0.13)
        for name in ("left", "bottom"):  # grid lines at major ticks only: each level costs ms per paint
            p.getAxis(name).setStyle(maxTickLevel=0)
            p.getAxis(name).setZValue(p.getViewBox().zValue() - 1)  # opaque grid lines under the curves
        p.setLabel("bottom", x_label)
        self._titles[w] = title
        p.getViewBox().setDefaultPadding(0.03)
        w.scene().sigMouseMoved.connect(lambda pos, w=w: self.readout_line.mouse_moved(w, pos))
        w.installEventFilter(self)
        return w

    def _item(self, plot: pg.PlotWidget, **kw) -> pg.PlotDataItem:
        item = pg.PlotDataItem(antialias=True, connect="finite", **kw)
        plot.addItem(item)
        item.setDownsampling(auto=False)  # the Decimator does it, bounded per redraw
        item.setClipToView(False)
        return item

    def _build(self, smoothing: float) -> None:
        self._titles: dict[pg.PlotWidget, str] = {}
        self._lr_log = False
        self._markers = True
        self._epoch_ticks = -1
        self.loss_plot = self._plot("Minibatch loss", "step")
        self.accuracy_plot = self._plot("Accuracy", "step")
        self.epoch_plot = self._plot("Loss per epoch", "epoch")
        self.lr_plot = self._plot("Learning rate", "step")
        self.plots = [self.loss_plot, self.accuracy_plot, self.epoch_plot, self.lr_plot]
        self.step_plots = [self.loss_plot, self.accuracy_plot, self.lr_plot]
        for plot in (self.accuracy_plot, self.lr_plot):
            plot.setXLink(self.loss_plot)
        for plot in self.step_plots:
            vb = plot.getViewBox()
            vb.sigXRangeChanged.connect(self._x_range_changed)
            vb.sigRangeChangedManually.connect(self._zoomed)
            plot.getPlotItem().autoBtn.clicked.connect(self._follow_all)  # "A": every step again

        # (attribute, plot, key in the title, run, table, x column, y column); previous-run
        # items come first so the current run draws over them
        o, sq = dict(symbol="o", symbolSize=7), dict(symbol="s", symbolSize=7)
        spec = [("prev_loss", self.loss_plot, None, "previous", "batches", "step", "smoothed_loss", {}),
                ("raw_loss", self.loss_plot, "minibatch", "current", "batches", "step", "loss", {}),
                ("smoothed_loss", self.loss_plot, "smoothed", "current", "batches", "step", "smoothed_loss", {}),
                ("prev_accuracy", self.accuracy_plot, None, "previous", "batches", "step", "smoothed_accuracy", {}),
                ("prev_train_acc", self.accuracy_plot, None, "previous", "epochs", "step", "train_accuracy", {}),
                ("prev_val_acc", self.accuracy_plot, None, "previous", "epochs", "step", "val_accuracy", {}),
                ("smoothed_accuracy", self.accuracy_plot, "minibatch, smoothed", "current", "batches", "step",
                 "smoothed_accuracy", {}),
                ("train_accuracy", self.accuracy_plot, "train (epoch)", "current", "epochs", "step",
                 "train_accuracy", o),
                ("val_accuracy", self.accuracy_plot, "validation (epoch)", "current", "epochs", "step",
                 "val_accuracy", sq),
                ("prev_train_loss", self.epoch_plot, None, "previous", "epochs", "epoch", "train_loss", {}),
                ("prev_val_loss", self.epoch_plot, None, "previous", "epochs", "epoch", "val_loss", {}),
                ("train_loss", self.epoch_plot, "train", "current", "epochs", "epoch", "train_loss", o),
                ("val_loss", self.epoch_plot, "validation", "current", "epochs", "epoch", "val_loss", sq),
                ("prev_lr", self.lr_plot, None, "previous", "batches", "step", "lr", {}),
                ("lr", self.lr_plot, None, "current", "batches", "step", "lr", {})]
        self.curves = []
        self._symbols: dict[int, str | None] = {}
        self._keys: dict[pg.PlotWidget, list[tuple[str, pg.PlotDataItem]]] = {p: [] for p in self.plots}
        for attribute, plot, legend, run, table, x, y, options in spec:
            item = self._item(plot, **options)
            self._symbols[id(item)] = options.get("symbol")  # the key's glyph (markers come and go)
            setattr(self, attribute, item)
            self.curves.append(_Curve(item, run, table, x, y, peak=attribute == "raw_loss"))
            self.curves[-1].plot = plot
            if legend:
                self._keys[plot].append((legend, item))
        self._previous_in_legend = False
        self._title_widths: dict[pg.PlotWidget, int] = {}

        self.crosshairs = {}
        for plot in self.plots:
            line = pg.InfiniteLine(angle=90, movable=False)
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
            self.crosshairs[plot] = line

        self.smoothing_box = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.99, singleStep=0.05)
        self.smoothing_box.setValue(smoothing)
        self.smoothing_box.setToolTip("Weight of the exponential moving average drawn over the minibatch "
                                      "loss and accuracy (0: no smoothing)")
        self.smoothing_box.valueChanged.connect(self.set_smoothing)
        self.png_button = QPushButton("Export PNG…")
        self.csv_button = QPushButton("Export CSV…")
        self.png_button.clicked.connect(self._ask_png)
        self.csv_button.clicked.connect(self._ask_csv)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing_box)
        bar.addStretch(1)
        bar.addWidget(self.png_button)
        bar.addWidget(self.csv_button)

        self.plot_area = QWidget()
        self.grid = QGridLayout(self.plot_area)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(4)
        self.readout = _ElidedLabel()
        self.readout_line = CurvesReadout(self.readout, self.crosshairs, self.epoch_plot,
                                          lambda: (self.current, self.previous))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 2)
        layout.setSpacing(3)
        layout.addLayout(bar)
        layout.addWidget(self.plot_area, 1)
        layout.addWidget(self.readout)

    def _arrange(self) -> None:
        """Two columns of plots; the accuracy plot only when some run has an accuracy."""
        show_accuracy = (self.current.has_accuracy or bool(self.previous and self.previous.has_accuracy)
                         or not (self.current or self.previous))
        shown = [p for p in self.plots if p is not self.accuracy_plot or show_accuracy]
        if getattr(self, "_shown", None) == shown:
            return
        self._shown = shown
        for plot in self.plots:
            self.grid.removeWidget(plot)
        self.accuracy_plot.setVisible(show_accuracy)
        for i, plot in enumerate(shown):
            span = 2 if i == len(shown) - 1 and len(shown) % 2 else 1
            self.grid.addWidget(plot, i // 2, i % 2, 1, span)

    def _apply_theme(self) -> None:
        pal = self.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
        dark = bg.lightness() < 128
        train = QColor("#5aaae6" if dark else "#1f6fb4")
        val = QColor("#ffa04d" if dark else "#e8710a")
        lr = QColor("#c39bff" if dark else "#7b4fc0")
        dim = lambda c: mix(c, bg, 0.62)  # noqa: E731
        axis_pen = pg.mkPen(mix(fg, bg, 0.45))
        for plot in self.plots:
            plot.setBackground(bg)
            p = plot.getPlotItem()
            for name in ("left", "bottom"):
                axis = p.getAxis(name)
                axis.background = bg
                axis.setPen(axis_pen)
                axis.setTextPen(fg)
                axis.label.setDefaultTextColor(fg)
            self.crosshairs[plot].setPen(pg.mkPen(mix(fg, bg, 0.35), width=1, style=Qt.PenStyle.DashLine))
        raw = QColor(train)
        raw.setAlpha(110 if dark else 80)
        self.raw_loss.setPen(pg.mkPen(raw, width=1))
        self.smoothed_loss.setPen(pg.mkPen(train, width=2.2))
        self.smoothed_accuracy.setPen(pg.mkPen(train, width=2.2))
        self.lr.setPen(pg.mkPen(lr, width=2))
        for item, colour in ((self.train_accuracy, train.darker(125) if not dark else train.lighter(115)),
                             (self.val_accuracy, val), (self.train_loss, train), (self.val_loss, val)):
            item.setPen(pg.mkPen(colour, width=1.5))
            item.setSymbolBrush(colour)
            item.setSymbolPen(pg.mkPen(bg, width=1))
        for item, colour in ((self.prev_loss, train), (self.prev_accuracy, train), (self.prev_lr, lr),
                             (self.prev_train_acc, train), (self.prev_val_acc, val),
                             (self.prev_train_loss, train), (self.prev_val_loss, val)):
            item.setPen(pg.mkPen(dim(colour), width=1.6, style=Qt.PenStyle.DashLine))
        self._key_colours = {"background": bg}
        self._title_widths.clear()
        for plot in self.plots:
            self._set_title(plot)

    def _set_title(self, plot: pg.PlotWidget) -> None:
        """The plot's title followed by its key: which line is train, which validation, which
        the previous run, in their colours. In the title line, not in a legend box: a box
        covers a small plot's curves, so small plots had none. The longest text that fits."""
        width = plot.width()
        if self._title_widths.get(plot) == width:
            return
        self._title_widths[plot] = width
        bg = self._key_colours["background"]
        entries = []
        for label, item in self._keys[plot]:
            colour = pg.mkPen(item.opts["pen"]).color()
            colour = mix(bg, colour, colour.alphaF())  # the faint raw loss as it shows on the plot
            glyph = {"o": "●", "s": "■"}.get(self._symbols.get(id(item)), "━")
            entries.append((glyph, colour.name(), label))
        previous = next((c.item for c in self.curves if c.plot is plot and c.run == "previous"), None)
        if self.previous is not None and previous is not None:
            entries.append(("┅", previous.opts["pen"].color().name(), "previous run"))
        font = QFont(self.font())
        font.setPointSizeF(9)
        fm = QFontMetrics(font)
        title = self._titles[plot]
        short = {"minibatch, smoothed": "smoothed", "train (epoch)": "train", "validation (epoch)": "val.",
                 "validation": "val.", "previous run": "previous", "minibatch": "raw"}
        shown = []  # the title alone where even the short labels do not fit
        for labels in (entries, [(g, c, short.get(lab, lab)) for g, c, lab in entries]):
            plain = "  ".join([title] + [f"{g} {lab}" for g, _c, lab in labels])
            if fm.horizontalAdvance(plain) + 24 <= width:
                shown = labels
                break
        key = "&nbsp;&nbsp;".join(f"<span style='color:{c}'>{g}</span>&nbsp;{lab}" for g, c, lab in shown)
        fg = self.palette().color(QPalette.ColorRole.Text)
        plot.getPlotItem().setTitle(f"{title}&nbsp;&nbsp;{key}" if key else title, color=fg, size="9pt")

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "curves"):
            self._apply_theme()

    def _legend_previous(self, shown: bool) -> None:
        if shown != self._previous_in_legend:
            self._previous_in_legend = shown
            self._title_widths.clear()
            for plot in self.plots:
                self._set_title(plot)
