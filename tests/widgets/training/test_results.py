"""The results of a finished run: headline numbers, the confusion grid, accuracy per class,
misclassified samples (images or a table), an autoencoder's loss only, and clearing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor

from app.engine.training.events import FinishedEvent
from app.widgets.training.results import ResultsView
from tests.helpers import shown

SHOTS = Path("/tmp/training-shots")
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


def digits_result(seed: int = 0):
    """scikit-learn's digits as the test split, with about 6 % of predictions wrong."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.images[:, None].astype(np.float32) / 16, d.target
    rng = np.random.default_rng(seed)
    predicted = y.copy()
    flip = rng.random(len(y)) < 0.06
    predicted[flip] = rng.integers(0, 10, flip.sum())
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (y, predicted), 1)
    wrong = np.nonzero(y != predicted)[0]
    event = FinishedEvent("completed", "trained 3 epochs", 3, 300, 12.3, test_loss=0.1834,
                          test_accuracy=float((y == predicted).mean()), confusion=matrix.tolist(),
                          per_class_accuracy=[float(matrix[i, i] / matrix[i].sum()) for i in range(10)],
                          misclassified=[(int(i), int(y[i]), int(predicted[i])) for i in wrong[:100]])
    return event, x, matrix


@pytest.fixture
def view(qtbot):
    v = shown(qtbot, ResultsView(), 900, 600)
    return v


def shoot(qtbot, widget, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    widget.grab()  # pyqtgraph sizes its axes on a first paint
    qtbot.wait(1)
    assert widget.grab().save(str(SHOTS / name))


def test_the_headline_says_the_test_metrics(view):
    event, x, _ = digits_result()
    view.show_result(event, x, [str(i) for i in range(10)])
    text = view.headline.text()
    assert f"{event.test_accuracy:.2%}" in text and "test accuracy" in text and "0.1834" in text
    assert view.message.text() == "Trained 3 epochs (300 steps, 12.3 s)."
    assert view.details.isVisible()


def test_the_confusion_grid_shows_counts_coloured_by_share(view):
    event, x, matrix = digits_result()
    view.show_result(event, x, [str(i) for i in range(10)])
    t = view.confusion
    assert t.rowCount() == t.columnCount() == 10
    grid = [[int(t.item(i, j).text()) for j in range(10)] for i in range(10)]
    assert grid == matrix.tolist()
    assert view.column_header.labels == [str(i) for i in range(10)] and not view.column_header.rotated
    assert t.verticalHeaderItem(3).text() == "3"
    # diagonal cells are a strong blue, mistakes a red tint, empty cells the plain background
    diag = t.item(2, 2).background().color()
    assert diag.blue() > diag.red() + 80
    i, j = np.argwhere((matrix > 0) & ~np.eye(10, dtype=bool))[0]
    off = t.item(i, j).background().color()
    assert off.red() > off.blue()
    i, j = np.argwhere(matrix == 0)[0]
    assert t.item(i, j).background().color() == view.palette().color(view.palette().ColorRole.Base)
    assert "true 2, predicted 2" in t.item(2, 2).toolTip()


def test_accuracy_per_class_is_a_bar_each(view):
    event, x, matrix = digits_result()
    event.per_class_accuracy[4] = None  # a class with no test samples
    view.show_result(event, x, FASHION)
    widths = list(view.bar_item.opts["width"])
    assert widths[0] == pytest.approx(matrix[0, 0] / matrix[0].sum()) and widths[4] == 0
    assert [label.textItem.toPlainText() for label in view._bar_labels][:5] == \
        [f"{a:.1%}" for a in event.per_class_accuracy[:4]] + ["no samples"]
    ticks = view.bars.getAxis("left")._tickLevels[0]
    assert [name for _, name in ticks] == FASHION


def test_misclassified_samples_are_images_captioned_true_then_predicted(qtbot, view):
    event, x, matrix = digits_result()
    view.show_result(event, x, FASHION)
    wrong = int(matrix.sum() - np.trace(matrix))
    assert view.samples.currentWidget() is view.misclassified
    assert view.misclassified.count() == 32
    index, true, predicted = event.misclassified[0]
    item = view.misclassified.item(0)
    assert item.text() == f"{FASHION[true]} → {FASHION[predicted]}"
    assert str(index) in item.toolTip() and not item.icon().isNull()
    assert view.samples_title.text() == f"Misclassified test samples (32 of {wrong})"
    assert view.column_header.rotated  # long class names are written upwards
    shoot(qtbot, view, "results-fashion-names-900x600.png")


def test_non_image_data_lists_the_mistakes_in_a_table(view):
    event, _, _ = digits_result()
    features = np.random.default_rng(0).random((2000, 20)).astype(np.float32)
    view.show_result(event, features, [f"class {i}" for i in range(10)])
    t = view.misclassified_table
    assert view.samples.currentWidget() is t and t.rowCount() == 32
    index, true, predicted = event.misclassified[1]
    assert [t.item(1, c).text() for c in range(3)] == [str(index), f"class {true}", f"class {predicted}"]
    view.show_result(event, None, [])  # no test data here: a table too, classes by number
    assert view.samples.currentWidget() is t and t.item(1, 1).text() == str(true)


def test_an_autoencoder_shows_its_test_loss_only(qtbot, view):
    event = FinishedEvent("completed", "trained 5 epochs", 5, 500, 4.0, test_loss=0.0123)
    view.show_result(event, np.zeros((10, 1, 8, 8), np.float32), [])
    assert "0.0123" in view.headline.text() and "accuracy" not in view.headline.text()
    assert not view.details.isVisible()
    assert "no accuracy" in view.message.text()
    shoot(qtbot, view, "results-autoencoder-900x600.png")


def test_a_diverged_run_shows_its_message_in_red_and_clear_resets(view):
    event = FinishedEvent("diverged", "the loss became nan at epoch 1, minibatch 3 (step 3); try 0.01",
                          1, 3, 0.5)
    view.show_result(event, None, [])
    assert "No test result" in view.headline.text() and not view.details.isVisible()
    assert view.message.text().startswith("The loss became nan")
    colour = view.message.styleSheet().split(":")[-1].strip()
    assert QColor(colour).red() > 150
    view.clear()
    assert "No results yet" in view.headline.text() and view.message.styleSheet() == ""
    assert view.confusion.rowCount() == 0 and view.misclassified.count() == 0


def test_screenshots_at_the_panel_sizes(qtbot, view):
    event, x, _ = digits_result()
    view.show_result(event, x, [str(i) for i in range(10)])
    for w, h in ((900, 600), (450, 600)):
        view.resize(w, h)
        qtbot.wait(1)
        shoot(qtbot, view, f"results-{w}x{h}.png")
        t = view.confusion
        assert t.columnWidth(0) >= t.fontMetrics().horizontalAdvance("000")  # counts are not elided
    assert view.split.orientation().name == "Vertical"  # narrow: the parts stack, the view scrolls


def _big_mistakes(k: int) -> FinishedEvent:
    """A confusion matrix whose largest counts are off the diagonal (a class mostly taken for
    another), with counts of every size from 1 to 90,000."""
    rng = np.random.default_rng(k)
    matrix = np.diag(rng.integers(50, 1000, k))
    matrix[3, 5], matrix[1, 0], matrix[0, 1], matrix[2, 7], matrix[4, 6] = 90_000, 400, 700, 12, 1
    per_class = [float(matrix[i, i] / matrix[i].sum()) for i in range(k)]
    return FinishedEvent("completed", "trained", 5, 1000, 12.0, 0.3, float(np.trace(matrix) / matrix.sum()),
                         matrix.tolist(), per_class, [])


@pytest.mark.parametrize("dark", [False, True])
def test_every_count_reads_on_its_cell_colour(qtbot, view, dark):
    """Text is black or white by the cell's luminance: WCAG contrast >= 4.5 in every cell,
    the largest mistakes included (they were drawn white on white), and the cell is drawn in
    the colour it is given."""
    from PySide6.QtGui import QPalette

    from app.widgets.training.results import contrast

    if dark:
        pal = view.palette()
        pal.setColor(QPalette.ColorRole.Base, QColor(30, 30, 30))
        pal.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
        view.setPalette(pal)
    event = _big_mistakes(10)
    view.show_result(event, None, [str(i) for i in range(10)])
    t = view.confusion
    qtbot.wait(1)
    drawn = t.viewport().grab().toImage()
    ratios = {}
    for i in range(10):
        for j in range(10):
            item = t.item(i, j)
            cell, ink = item.background().color(), item.foreground().color()
            assert cell.isValid() and ink.isValid()
            ratios[i, j] = contrast(ink, cell)
            corner = t.visualItemRect(item).topLeft()
            pixel = drawn.pixelColor(corner.x() + 3, corner.y() + 3)
            assert max(abs(pixel.red() - cell.red()), abs(pixel.green() - cell.green()),
                       abs(pixel.blue() - cell.blue())) <= 2, (i, j, pixel.name(), cell.name())
    assert min(ratios.values()) >= 4.5, min(ratios.items(), key=lambda kv: kv[1])
    big = t.item(3, 5).background().color()
    assert big.red() > big.green() + 100  # the largest mistake is the reddest cell, readable
    shoot(qtbot, view, f"results-big-mistakes-{'dark' if dark else 'light'}.png")


@pytest.mark.parametrize("k", [10, 26])
def test_accuracy_per_class_labels_do_not_overlap(qtbot, view, k):
    view.resize(900, 420)
    names = [chr(65 + i) for i in range(k)]
    view.show_result(_big_mistakes(k), None, names)
    qtbot.wait(1)
    shoot(qtbot, view, f"results-{k}-classes-900x420.png")
    rects = sorted((label.sceneBoundingRect() for label in view._bar_labels), key=lambda r: r.top())
    text = view.fontMetrics().height()
    assert len(rects) == k and all(r.height() >= text for r in rects)
    assert all(below.top() >= above.top() + text for above, below in zip(rects, rects[1:]))
    vb = view.bars.getViewBox()  # the class names on the axis get as much room as the figures
    row = vb.mapViewToScene(pg_point(0, 1)).y() - vb.mapViewToScene(pg_point(0, 0)).y()
    assert abs(row) >= text


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)
