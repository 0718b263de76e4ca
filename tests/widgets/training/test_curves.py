"""The live curves: what the plot items show after a redraw, smoothing, the dimmed previous
run, throttled drawing, hover read-outs, decimation of long runs, and exports."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QFileDialog

from app.engine.training.events import BatchEvent, EpochEvent
from app.widgets.training.curves import CurvesView
from app.engine.session.metrics import ema
from tests.helpers import shown as shown_widget

SHOTS = Path("/tmp/training-shots")


def feed(view, epochs=3, batches=100, seed=0, scale=1.0, accuracy=True, lr=0.01):
    """A decaying noisy loss; returns (losses, accuracies) as fed."""
    rng = np.random.default_rng(seed)
    losses, accs, step = [], [], 0
    for epoch in range(1, epochs + 1):
        for batch in range(1, batches + 1):
            step += 1
            loss = scale * (2.3 * math.exp(-step / 60) + 0.15) * (1 + 0.25 * rng.standard_normal())
            loss = abs(loss)
            acc = float(np.clip(1 - loss / 2.5 + 0.05 * rng.standard_normal(), 0, 1)) if accuracy else None
            losses.append(loss)
            accs.append(acc)
            view.add_batch(BatchEvent(epoch, batch, batches, step, loss, acc, 4000.0, lr * 0.5 ** (epoch - 1)))
        train = float(np.mean(losses[-batches:]))
        view.add_epoch(EpochEvent(epoch, epochs, train, 0.9 if accuracy else None, train * 1.1,
                                  0.85 if accuracy else None, 2.5, lr * 0.5 ** (epoch - 1)))
    return np.array(losses), accs


@pytest.fixture
def view(qtbot):
    v = shown_widget(qtbot, CurvesView(), 900, 600)
    return v


def settle(qtbot, widget):
    """Let pyqtgraph size its axes to their labels (done on a first paint), then paint."""
    qtbot.wait(1)
    widget.grab()
    qtbot.wait(1)


def test_points_reach_the_plot_items_after_flush(view):
    losses, accs = feed(view)
    view.flush()
    x, y = view.raw_loss.getData()
    assert np.array_equal(x, np.arange(1, 301)) and np.allclose(y, losses)
    x, y = view.smoothed_loss.getData()
    assert np.allclose(y, ema(losses, 0.9))
    x, y = view.smoothed_accuracy.getData()
    assert np.allclose(y, ema(np.array(accs), 0.9))
    # epoch points sit at the step where their epoch ended
    x, y = view.train_accuracy.getData()
    assert list(x) == [100, 200, 300] and list(y) == [0.9, 0.9, 0.9]
    x, y = view.val_accuracy.getData()
    assert list(x) == [100, 200, 300] and list(y) == [0.85, 0.85, 0.85]
    x, y = view.train_loss.getData()
    assert list(x) == [1, 2, 3] and np.allclose(y, losses.reshape(3, 100).mean(axis=1))
    x, y = view.lr.getData()
    assert len(x) == 300 and y[0] == 0.01 and y[-1] == 0.0025
    assert view.step_count() == 300 and view.epoch_count() == 3


def test_smoothing_is_an_exponential_moving_average(qtbot, view):
    view.set_smoothing(0.5)
    for step, (loss, acc) in enumerate([(1.0, 0.5), (0.0, None), (0.0, 1.0), (1.0, 1.0)], 1):
        view.add_batch(BatchEvent(1, step, 4, step, loss, acc, 1.0, 0.1))
    view.flush()
    assert list(view.smoothed_loss.getData()[1]) == [1.0, 0.5, 0.25, 0.625]
    acc = view.current.batches["smoothed_accuracy"]
    assert acc[0] == 0.5 and math.isnan(acc[1]) and acc[2] == 0.75 and acc[3] == 0.875
    view.set_smoothing(0.0)  # recomputed over what is there: no smoothing at all
    view.flush()
    assert list(view.smoothed_loss.getData()[1]) == [1.0, 0.0, 0.0, 1.0]
    assert view.smoothing_box.value() == 0.0
    with pytest.raises(ValueError):
        view.set_smoothing(1.0)
    view.smoothing_box.setValue(0.5)  # the spin box does the same
    view.flush()
    assert list(view.smoothed_loss.getData()[1]) == [1.0, 0.5, 0.25, 0.625]
    values = np.random.default_rng(0).random(1000)  # the incremental and the whole-array average agree
    incremental = CurvesView(smoothing=0.8)
    qtbot.addWidget(incremental)
    for i, v in enumerate(values, 1):
        incremental.add_batch(BatchEvent(1, i, 1000, i, float(v), None, 1.0, 0.1))
    assert np.allclose(incremental.current.batches["smoothed_loss"], ema(values, 0.8), rtol=1e-12)



def test_the_previous_run_stays_dimmed_and_only_the_last_one(view):
    first, _ = feed(view, seed=1, scale=1.4)
    view.start_run()
    assert view.step_count() == 0
    second, _ = feed(view, epochs=2, seed=2)
    view.flush()
    assert np.allclose(view.prev_loss.getData()[1], ema(first, 0.9))
    assert np.allclose(view.smoothed_loss.getData()[1], ema(second, 0.9))
    assert len(view.prev_train_loss.getData()[0]) == 3 and len(view.train_loss.getData()[0]) == 2
    # dimmed: the previous curve's colour lies nearer the background than the current one's
    bg = view.loss_plot.backgroundBrush().color()
    dist = lambda c: abs(c.red() - bg.red()) + abs(c.green() - bg.green()) + abs(c.blue() - bg.blue())  # noqa: E731
    assert dist(view.prev_loss.opts["pen"].color()) < dist(view.smoothed_loss.opts["pen"].color()) / 1.5
    assert key_labels(view.loss_plot) == ["minibatch", "smoothed", "previous run"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert view.export_png(SHOTS / "curves-two-runs-900x600.png")

    view.start_run()  # a third run: the second becomes the previous, the first is gone
    feed(view, epochs=1, seed=3)
    view.flush()
    assert np.allclose(view.prev_loss.getData()[1], ema(second, 0.9))
    view.start_run()
    view.start_run()  # a run that reported nothing does not replace the comparison
    view.flush()
    assert shown(view.prev_loss) == 100 and shown(view.raw_loss) == 0
    assert "previous run" in view.hover_text().lower()
    view.clear()
    view.flush()
    assert shown(view.prev_loss) == 0 and view.previous is None
    assert key_labels(view.loss_plot) == ["minibatch", "smoothed"]


def key_labels(plot) -> list[str]:
    """The labels of the key in a plot's title, as the title shows them."""
    import re

    title = plot.getPlotItem().titleLabel.text
    return re.findall(r"</span>&nbsp;([^&<]+)", title)


def key_colours(plot) -> dict[str, QColor]:
    import re

    title = plot.getPlotItem().titleLabel.text
    found = re.findall(r"color:(#[0-9a-f]{6})'>[^<]+</span>&nbsp;([^&<]+)", title)
    return {label: QColor(colour) for colour, label in found}


def test_every_plot_says_which_line_is_train_and_which_validation_at_the_docked_size(qtbot, view):
    """A key in each title (the legend boxes were hidden below 180 px, so at the default
    window size no plot said which line was which), in the colours of the lines."""
    feed(view, seed=1)
    view.start_run()
    feed(view, seed=2)
    view.resize(1030, 340)  # the Curves tab in the default window with the Training dock open
    view.flush()
    settle(qtbot, view)
    assert all(p.height() < 180 for p in view.plots)
    assert key_labels(view.epoch_plot) == ["train", "validation", "previous run"]
    assert key_labels(view.accuracy_plot) in (["minibatch, smoothed", "train (epoch)", "validation (epoch)",
                                               "previous run"], ["smoothed", "train", "val.", "previous"])
    colours = key_colours(view.epoch_plot)
    assert colours["train"] == view.train_loss.opts["pen"].color()
    assert colours["validation"] == view.val_loss.opts["pen"].color()
    for plot in view.plots:  # the key is drawn, and within the plot's width
        label = plot.getPlotItem().titleLabel
        assert label.isVisible() and label.item.boundingRect().width() <= plot.width()
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert view.grab().save(str(SHOTS / "curves-keys-1030x340.png"))
    view.resize(640, 340)  # narrower: shorter labels
    view.flush()
    settle(qtbot, view)
    assert key_labels(view.epoch_plot) == ["train", "val.", "previous"]
    view.resize(420, 300)  # too narrow for a key: the title alone (the read-out line names the values)
    view.flush()
    settle(qtbot, view)
    assert key_labels(view.epoch_plot) == [] and "Loss per epoch" in view.epoch_plot.getPlotItem().titleLabel.text


def test_many_batches_between_frames_make_one_draw(qtbot, view):
    view.flush()
    before = view.draw_count
    for step in range(1, 5001):
        view.add_batch(BatchEvent(1, step, 5000, step, 1.0 / step, 0.5, 1e5, 0.1))
    assert view.draw_count == before  # appending never draws
    qtbot.waitUntil(lambda: view.draw_count == before + 1, timeout=10_000)  # paced by drawing cost
    qtbot.wait(3 * CurvesView.INTERVAL_MS)
    assert view.draw_count == before + 1
    assert view.raw_loss.getData()[0][-1] == 5000 and view.step_count() == 5000
    qtbot.wait(2 * CurvesView.INTERVAL_MS)
    assert view.draw_count == before + 1  # nothing new: nothing drawn


def test_a_hidden_view_draws_when_shown(qtbot, view):
    feed(view, epochs=2)
    view.flush()
    settle(qtbot, view)
    view.hide()
    qtbot.waitUntil(lambda: not view._timer.isActive(), timeout=5_000)  # what was due before
    count = view.draw_count
    for step in range(201, 401):  # two more epochs of the same run
        view.add_batch(BatchEvent(3 + (step > 300), (step - 1) % 100 + 1, 100, step, 0.3 + 0.1 * math.sin(step),
                                  0.8, 4000.0, 0.0025))
        if step % 100 == 0:
            view.add_epoch(EpochEvent(step // 100, 4, 0.3, 0.8, 0.33, 0.78, 2.5, 0.0025))
    assert not view._timer.isActive()  # no wake-ups for a view nobody sees
    qtbot.wait(3 * CurvesView.INTERVAL_MS)
    assert view.draw_count == count
    painted = {plot: [] for plot in view.plots}
    for plot in view.plots:
        plot._report = lambda seconds, plot=plot: painted[plot].append(seconds)
    view.show()
    # up to date before the paint that showing it brings: painted once, not stale first and
    # then again plot by plot as a pass catches up
    assert view.draw_count == count + 1 and len(view.raw_loss.getData()[0]) == 400
    qtbot.wait(3 * CurvesView.INTERVAL_MS)
    assert {view._titles[k]: len(v) for k, v in painted.items()} == {t: 1 for t in view._titles.values()}
    assert not view._timer.isActive()


def shown(item) -> int:
    """How many points a plot item draws."""
    x = item.getData()[0]
    return 0 if x is None else len(x)


def _view_point(plot, x, y):
    """Where the data point (x, y) is, in the plot widget's viewport coordinates."""
    scene = plot.getViewBox().mapViewToScene(QPointF(x, y))
    return plot.mapFromScene(scene)


def test_hovering_reads_the_values_under_the_cursor(qtbot, view):
    losses, accs = feed(view)
    view.flush()
    settle(qtbot, view)
    qtbot.mouseMove(view.loss_plot.viewport(), _view_point(view.loss_plot, 150, 1.0))
    text = view.hover_text()
    assert text.startswith("step 150 ·") and "epoch 2 (batch 50/100)" in text
    assert f"loss {losses[149]:.4g}" in text and f"accuracy {accs[149]:.1%}" in text
    assert view.readout.text() == text
    line = view.crosshairs[view.loss_plot]
    assert line.isVisible() and line.value() == 150 and view.crosshairs[view.lr_plot].value() == 150
    assert not view.crosshairs[view.epoch_plot].isVisible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert view.grab().save(str(SHOTS / "curves-hover-900x600.png"))

    # the epoch plot reports epochs; the scene signal is what the mouse drives
    scene_pos = view.epoch_plot.getViewBox().mapViewToScene(QPointF(2.1, 0.5))
    view.epoch_plot.scene().sigMouseMoved.emit(scene_pos)
    text = view.hover_text()
    assert text.startswith("epoch 2 (step 200)") and "train accuracy 90.0%" in text
    assert "validation loss" in text and view.crosshairs[view.epoch_plot].value() == 2

    # outside the data area: back to the latest values
    view.loss_plot.scene().sigMouseMoved.emit(QPointF(1, 1))
    assert view.hover_text().startswith("latest: step 300")
    assert not any(line.isVisible() for line in view.crosshairs.values())


def test_export_csv_writes_steps_and_epochs(tmp_path, view):
    losses, _ = feed(view, epochs=2, batches=5)
    view.add_batch(BatchEvent(3, 1, 5, 11, 0.5, None, 1.0, 0.001))  # a step without accuracy
    steps_path, epochs_path = view.export_csv(tmp_path / "run.csv")
    assert epochs_path == tmp_path / "run-epochs.csv"
    rows = list(csv.reader(steps_path.read_text().splitlines()))
    assert rows[0] == ["step", "epoch", "loss", "smoothed_loss", "accuracy", "lr"]
    assert len(rows) == 12
    assert rows[1][:2] == ["1", "1"] and float(rows[1][2]) == losses[0] and float(rows[1][3]) == losses[0]
    assert math.isclose(float(rows[2][3]), 0.9 * losses[0] + 0.1 * losses[1])
    assert rows[6][:2] == ["6", "2"] and float(rows[6][5]) == 0.005
    assert rows[11] == ["11", "3", "0.5", rows[11][3], "", "0.001"]
    epochs = list(csv.DictReader(epochs_path.read_text().splitlines()))
    assert [e["epoch"] for e in epochs] == ["1", "2"] and [e["step"] for e in epochs] == ["5", "10"]
    assert float(epochs[1]["val_accuracy"]) == 0.85 and float(epochs[0]["seconds"]) == 2.5
    assert math.isclose(float(epochs[0]["train_loss"]), losses[:5].mean())


def test_export_png_renders_the_plots(qtbot, tmp_path, view):
    feed(view)
    path = tmp_path / "curves.png"
    assert view.export_png(path)
    image = QImage(str(path))
    assert image.width() >= view.plot_area.width() and image.height() >= view.plot_area.height()
    blue = QColor(view.smoothed_loss.opts["pen"].color())
    step = max(1, image.width() // 300)
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), step)
               for y in range(0, image.height(), step)}
    assert blue.name() in colours and len(colours) > 20


def test_export_buttons_ask_for_a_file(qtbot, tmp_path, view, monkeypatch):
    feed(view, epochs=1, batches=10)
    view.flush()
    target = tmp_path / "out.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV files (*.csv)"))
    view.csv_button.click()
    assert target.exists() and (tmp_path / "out-epochs.csv").exists()
    assert "out.csv" in view.hover_text()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "shot"), ""))
    view.png_button.click()
    assert (tmp_path / "shot.png").exists()
    # files the dialog did not ask about (the added suffix, the epochs file beside) are not
    # replaced without asking
    from PySide6.QtWidgets import QMessageBox

    asked = []
    answer = QMessageBox.StandardButton.Cancel
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or answer)
    before = (tmp_path / "shot.png").stat().st_mtime_ns, (tmp_path / "out-epochs.csv").read_text()
    feed(view, epochs=1, batches=10)
    view.flush()
    view.png_button.click()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV files (*.csv)"))
    view.csv_button.click()
    assert ((tmp_path / "shot.png").stat().st_mtime_ns, (tmp_path / "out-epochs.csv").read_text()) == before
    assert len(asked) == 2 and "shot.png" in asked[0] and "out-epochs.csv" in asked[1]
    answer = QMessageBox.StandardButton.Yes
    view.csv_button.click()
    assert (tmp_path / "out-epochs.csv").read_text() != before[1]


def test_a_model_without_accuracy_hides_the_accuracy_plot(view):
    feed(view, epochs=2, accuracy=False)
    view.flush()
    assert not view.accuracy_plot.isVisible() and view.loss_plot.isVisible()
    assert "accuracy" not in view.hover_text()
    view.start_run()
    feed(view, epochs=1)
    view.flush()
    assert view.accuracy_plot.isVisible()


def test_a_million_steps_draw_in_bounded_points_and_time(qtbot, view):
    n = 1_000_000
    steps = np.arange(1, n + 1, dtype=float)
    loss = np.exp(-steps / 2e5) + 0.1 * np.random.default_rng(0).random(n)
    b = view.current.batches
    b.extend(step=steps, epoch=1 + (steps - 1) // 10_000, batch=(steps - 1) % 10_000 + 1,
             batches=np.full(n, 10_000), loss=loss, smoothed_loss=np.full(n, 0.5),
             accuracy=np.full(n, 0.5), smoothed_accuracy=np.full(n, 0.5), lr=np.full(n, 1e-3))
    view.current.has_accuracy = True
    view.current.lr_min = view.current.lr_max = 1e-3
    view.flush()  # builds the pyramids
    view.add_batch(BatchEvent(101, 1, 10_000, n + 1, 0.1, 0.5, 1.0, 1e-3))
    view.flush()
    width = view.loss_plot.getViewBox().width()
    assert len(view.raw_loss.getData()[0]) <= 4 * width + 64
    assert view.raw_loss.getData()[1].max() == pytest.approx(loss.max())
    assert view.last_draw_seconds < 0.05  # ~2 ms here; generous for slow CI machines
    view.set_step_range(500_000, 500_300)  # zoomed in: the samples themselves
    view.flush()
    x, y = view.raw_loss.getData()
    assert 300 <= len(x) <= 310 and np.array_equal(y, loss[int(x[0]) - 1:int(x[-1])])
    view.loss_plot.getPlotItem().autoBtn.clicked.emit(view.loss_plot.getPlotItem().autoBtn)  # "A": all again
    qtbot.waitUntil(lambda: view.raw_loss.getData()[0][-1] == n + 1, timeout=10_000)
    assert view.raw_loss.getData()[0][0] == 1 and len(view.raw_loss.getData()[0]) <= 4 * width + 64


def test_screenshots_at_the_panel_sizes(qtbot, view):
    """The curves at the docked size and at a narrow width (for looking at, not only checks)."""
    feed(view, seed=1, scale=1.3)
    view.start_run()
    feed(view, seed=2)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for w, h in ((900, 600), (450, 600)):
        view.resize(w, h)
        view.flush()
        settle(qtbot, view)
        assert view.grab().save(str(SHOTS / f"curves-{w}x{h}.png"))
        for plot in view.plots:
            assert plot.width() >= 150 and plot.height() >= 150
        if w == 900:
            assert key_labels(view.loss_plot) == ["minibatch", "smoothed", "previous run"]


def test_the_loss_range_moves_in_steps_not_with_every_minibatch(qtbot, view):
    def add(step, loss):
        view.add_batch(BatchEvent(1, step, 10_000, step, loss, 0.5, 1e4, 0.1))

    for step in range(1, 101):
        add(step, 2.0 + 0.1 * math.sin(step))
    view.flush()
    vb = view.loss_plot.getViewBox()
    first = vb.viewRange()[1]
    assert first[0] <= 1.9 and first[1] >= 2.1
    for step in range(101, 201):  # more of the same: the axes stay as they are
        add(step, 2.0 + 0.09 * math.cos(step))
    view.flush()
    assert vb.viewRange()[1] == first
    add(201, 5.0)  # a value outside: the range takes it in
    view.flush()
    assert vb.viewRange()[1][1] >= 5.0
    for step in range(202, 3000):  # the loss falls far below: the range follows it down
        add(step, 0.1)
    view.flush()
    low, high = vb.viewRange()[1]
    assert low <= 0.1 and high >= 5.0  # the raw curve still holds the 5.0 (decimated peaks kept)
    view.set_step_range(1, 100)  # the user's own range is left alone
    before = vb.viewRange()[1]
    add(3000, 50.0)
    view.flush()
    assert vb.viewRange()[1] == before


def test_a_redraw_paints_its_plot_once(qtbot, view):
    feed(view, epochs=1)
    view.flush()
    qtbot.wait(50)
    painted = []
    view.loss_plot._report = lambda seconds: painted.append(seconds)
    for step in range(101, 104):
        view.add_batch(BatchEvent(2, step - 100, 100, step, 0.5, 0.5, 1e4, 0.01))
    view._timer.stop()
    view._redraw([view.loss_plot])
    qtbot.wait(100)
    # the autorange settled before the paint: no second paint for a range that moved after it
    assert len(painted) == 1


def test_a_redraw_of_one_plot_paints_no_other(qtbot, view):
    """Epochs keep arriving past the 15 the epoch axis numbers one by one: a pass over the
    step plots must not touch the epoch plot's axis (each touch repaints it)."""
    feed(view, epochs=20, batches=10)
    view.flush()
    qtbot.wait(50)
    painted = {plot: [] for plot in view.plots}
    for plot in view.plots:
        plot._report = lambda seconds, plot=plot: painted[plot].append(seconds)
    for epoch in (21, 22):
        for batch in range(1, 11):
            step = (epoch - 1) * 10 + batch
            view.add_batch(BatchEvent(epoch, batch, 10, step, 0.3, 0.9, 1e4, 0.01))
        view.add_epoch(EpochEvent(epoch, 40, 0.3, 0.9, 0.33, 0.85, 0.1, 0.01))
        view._timer.stop()
        for plot in (view.loss_plot, view.accuracy_plot, view.lr_plot):
            view._redraw([plot])
            qtbot.wait(20)
    assert painted[view.epoch_plot] == []
    assert all(painted[p] for p in (view.loss_plot, view.accuracy_plot))
    view._redraw([view.epoch_plot])  # its own pass draws the new epochs
    qtbot.wait(20)
    assert len(painted[view.epoch_plot]) == 1
    assert list(view.train_loss.getData()[0])[-1] == 22


def test_grid_lines_are_opaque_and_as_light_as_before(view):
    from PySide6.QtGui import QPainter

    axis = view.loss_plot.getPlotItem().getAxis("left")
    image = QImage(200, 200, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    _axis_spec, ticks, _texts = axis.generateDrawSpecs(painter)
    painter.end()
    assert ticks
    bg, pen = axis.background, axis.pen().color()
    for tick_pen, _p1, _p2 in ticks:
        colour = tick_pen.color()
        assert colour.alpha() == 255
        # between the background and the axis colour, nearer the background (a light grid)
        assert abs(colour.red() - bg.red()) < abs(pen.red() - bg.red()) / 2
    assert axis.zValue() < view.loss_plot.getViewBox().zValue()  # under the curves


def test_a_pass_draws_the_step_plots_then_the_epoch_plot(view):
    order = view._pass_order()
    assert order == [view.loss_plot, view.accuracy_plot, view.lr_plot, view.epoch_plot]
    view.accuracy_plot.hide()  # a model without accuracy
    assert view._pass_order() == [view.loss_plot, view.lr_plot, view.epoch_plot]


def test_the_step_plots_end_at_the_same_step_after_each_pass(qtbot, view):
    """Minibatches keep arriving between the ticks of a pass (one plot per tick): the
    accuracy and learning-rate plots used to show tens of steps fewer than the loss plot.
    Each pass draws the run as it was when it began, in every plot; a redraw costs as before
    (one plot per tick)."""
    step = 0

    def arrive(n=7):
        nonlocal step
        for _ in range(n):
            step += 1
            view.add_batch(BatchEvent(1, step, 10_000, step, 1.0 / step, 0.5, 1e4, 0.01))

    arrive(50)
    view.flush()
    view._timer.stop()
    ends = lambda: {name: int(getattr(view, name).getData()[0][-1])  # noqa: E731
                    for name in ("raw_loss", "smoothed_accuracy", "lr")}
    for _ in range(6):  # six passes, minibatches arriving before every tick
        pass_started = None
        while True:
            arrive()
            view._drawn_at = 0.0  # the pace is not what this test is about
            view._dirty = True
            view._tick()
            view._timer.stop()
            if pass_started is None:
                pass_started = view._pass_rows[1]
            if not view._pending:
                break
        assert set(ends().values()) == {pass_started}, ends()
        assert pass_started > 50
    view.flush()  # the end of a run: everything
    assert set(ends().values()) == {step}


def test_a_run_that_just_began_reaches_every_plot_at_the_base_pace(view):
    """Where drawing is slow and training takes every CPU, the pace slows to MAX_INTERVAL_MS
    between plots: a run's fourth plot stayed empty for seconds after it began. A plot that
    shows none of a run that has data for it is drawn at the base pace."""
    view.DUTY = 0.001  # a redraw of 50 ms would then wait the slowest pace
    view.start_run()
    for step in range(1, 21):
        view.add_batch(BatchEvent(1, step, 100, step, 1.0 / step, 0.5, 1e4, 0.01))

    def tick() -> int:
        view._drawn_at = 0.0
        view.last_draw_seconds = 0.05
        view._tick()
        view._timer.stop()
        return view._timer.interval()

    assert [tick() for _ in range(3)] == [view.INTERVAL_MS] * 3  # loss, accuracy, learning rate
    assert all(len(getattr(view, n).getData()[0]) == 20 for n in ("raw_loss", "smoothed_accuracy", "lr"))
    assert tick() == view.MAX_INTERVAL_MS  # the epoch plot: no epoch yet, nothing behind
    view.add_epoch(EpochEvent(1, 5, 0.5, 0.8, 0.6, 0.7, 2.0, 0.01))
    view.add_batch(BatchEvent(2, 1, 100, 21, 0.05, 0.5, 1e4, 0.01))
    assert [tick() for _ in range(4)][-1] == view.INTERVAL_MS  # the first epoch: its plot at once
    view.add_batch(BatchEvent(2, 2, 100, 22, 0.05, 0.5, 1e4, 0.01))
    assert tick() == view.MAX_INTERVAL_MS
