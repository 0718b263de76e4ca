"""The health view: rows in graph order with their figures, sparkline histories that stop at
HISTORY points, the flags' explanations in the tooltips, and how it looks (a PNG for a person)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QStyleOptionViewItem

from app.engine import health
from app.widgets.training.health_view import (
    COLUMNS,
    FIRST_METRIC,
    FLAGGED_ROLE,
    HISTORY,
    SPARK_ROLE,
    HealthView,
    format_value,
    sparkline_points,
)
from tests.helpers import dark, shown

SHOTS = Path(os.environ.get("NETCANVAS_SHOTS", "/tmp/training-shots"))
ORDER = ["input", "conv1", "relu1", "pool1", "fc1", "relu2", "fc2"]
TYPES = {"input": "Input", "conv1": "Conv2d", "relu1": "ReLU", "pool1": "MaxPool2d", "fc1": "Linear",
         "relu2": "ReLU", "fc2": "Linear"}
DEAD_EXPLAIN = "Lower the learning rate, use LeakyReLU"


def figures(step: int = 0, dead: float = 0.1) -> dict[str, dict]:
    """A LeNet-like measurement as the engine sends it (its own flags function decides the
    flags: relu2's dead share above the threshold is flagged)."""
    rng = np.random.default_rng(step)
    out = {}
    for i, node in enumerate(ORDER[1:]):
        kind = TYPES[node]
        weights = kind in ("Conv2d", "Linear")
        stats = {"mean": float(0.2 + 0.1 * np.sin(step / 5 + i)), "std": float(1 + 0.1 * rng.normal()),
                 "dead": (dead if node == "relu2" else 0.05) if kind == "ReLU" else None, "saturated": None,
                 "grad_norm": float(10 ** -(i / 2) * np.exp(-step / 40)) if weights else None,
                 "weight_norm": 3.0 if weights else None,
                 "update_ratio": float(1e-3 * np.exp(rng.normal(0, 0.3))) if weights else None}
        stats["flags"] = health.flags(kind, stats)
        out[node] = stats
    return out


def cell(view: HealthView, node: str, key: str, role=Qt.ItemDataRole.DisplayRole):
    column = FIRST_METRIC + [c.key for c in COLUMNS].index(key) if key != "node" else 0
    return view.model.data(view.model.index(view.rows().index(node), column), role)


@pytest.fixture
def view(qtbot):
    return shown(qtbot, HealthView(), 1000, 400)


def test_rows_follow_the_graph_and_cells_say_the_latest_figures(view):
    assert view.stack.currentWidget() is view.placeholder  # nothing measured yet
    stats = figures()
    view.show_health(stats, ORDER, TYPES, step=10)
    assert view.rows() == ORDER[1:]  # graph order, the Input left out (the engine sends none)
    assert view.stack.currentWidget() is view.table
    assert cell(view, "relu2", "dead") == "10 %"
    assert cell(view, "fc1", "grad_norm") == format_value(stats["fc1"]["grad_norm"], "log")
    assert cell(view, "pool1", "grad_norm") == "–"  # no weights: no gradient
    assert cell(view, "conv1", "mean") == f"{stats['conv1']['mean']:.3g}"
    saturated = FIRST_METRIC + [c.key for c in COLUMNS].index("saturated")
    assert view.table.isColumnHidden(saturated)  # no sigmoid or tanh here: no room taken
    assert not view.table.isColumnHidden(FIRST_METRIC)
    assert "Step 10" in view.status.text() and "Nothing flagged" in view.status.text()
    assert "mean" in view.headline.text() and "sparkline" in view.headline.text()


def test_sparkline_histories_keep_the_last_HISTORY_snapshots(view):
    for step in range(HISTORY + 50):
        view.show_health(figures(step), ORDER, TYPES, step=step)
    history = view.model.history("conv1", "mean")
    assert len(history) == HISTORY
    assert history[-1] == pytest.approx(figures(HISTORY + 49)["conv1"]["mean"])
    assert history[0] == pytest.approx(figures(50)["conv1"]["mean"])  # the oldest ones went
    spark = cell(view, "conv1", "grad_norm", SPARK_ROLE)
    assert len(spark) == HISTORY and np.all(np.diff(spark) < 0)  # drawn on a log scale: log10 of a decay
    assert len(cell(view, "pool1", "grad_norm", SPARK_ROLE)) == 0
    gone = figures(HISTORY + 50)
    gone["conv1"]["grad_norm"] = 0.0  # a gradient that vanished entirely: a decade under the rest
    view.show_health(gone, ORDER, TYPES, step=HISTORY + 50)
    spark = cell(view, "conv1", "grad_norm", SPARK_ROLE)
    assert cell(view, "conv1", "grad_norm") == "0" and spark[-1] == pytest.approx(spark[:-1].min() - 1)
    # the trainer resends its last measurement with the snapshots between two: no new point
    view.show_health(figures(HISTORY + 50), ORDER, TYPES, step=HISTORY + 50)
    assert len(view.model.history("relu2", "dead")) == HISTORY
    assert view.model.history("relu2", "dead")[-1] == pytest.approx(0.1)


def test_a_flag_shows_an_icon_tints_its_cell_and_explains_itself(view):
    view.show_health(figures(dead=0.8), ORDER, TYPES, step=5)
    flags = view.model.flags_of("relu2")
    assert [f["code"] for f in flags] == ["dead_units"]
    assert not cell(view, "relu2", "node", Qt.ItemDataRole.DecorationRole).isNull()  # the warning icon
    assert cell(view, "relu1", "node", Qt.ItemDataRole.DecorationRole) is None
    node_tip = cell(view, "relu2", "node", Qt.ItemDataRole.ToolTipRole)
    assert "Dead ReLUs: 80 %" in node_tip and DEAD_EXPLAIN in node_tip and "(ReLU)" in node_tip
    assert cell(view, "relu2", "dead", FLAGGED_ROLE) and not cell(view, "relu2", "mean", FLAGGED_ROLE)
    assert cell(view, "relu2", "dead", Qt.ItemDataRole.BackgroundRole) is not None
    assert DEAD_EXPLAIN in cell(view, "relu2", "dead", Qt.ItemDataRole.ToolTipRole)
    assert "No flags" in cell(view, "relu1", "node", Qt.ItemDataRole.ToolTipRole)
    assert "1 node flagged" in view.status.text() and "relu2" in view.status.text()
    header_tip = view.model.headerData(FIRST_METRIC + 4, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert "gradient" in header_tip
    assert view.current()["relu2"]["flags"] == flags


def test_a_probe_of_the_weights_held_keeps_the_run_s_gradient_figures_and_flags(view):
    live = figures(step=3)
    live["fc2"]["grad_norm"], live["fc2"]["weight_norm"] = 1e-9, 3.0
    live["fc2"]["flags"] = health.flags("Linear", live["fc2"])
    assert [f["code"] for f in live["fc2"]["flags"]] == ["vanishing_gradient"]
    view.show_health(live, ORDER, TYPES, step=3)
    forward_only = {n: dict(s, grad_norm=None, update_ratio=None, flags=[]) for n, s in figures(step=4).items()}
    view.show_health(forward_only, ORDER, TYPES)  # after the run: the weights held, no step
    assert [f["code"] for f in view.current()["fc2"]["flags"]] == ["vanishing_gradient"]
    assert cell(view, "fc2", "grad_norm") == "1e-09"
    assert len(view.model.history("fc2", "grad_norm")) == 1 and len(view.model.history("fc2", "mean")) == 2
    assert "The weights held" in view.status.text()
    view.show_health(None, ORDER, TYPES, step=9)  # a snapshot without health changes nothing
    assert len(view.model.history("fc2", "mean")) == 2
    view.clear()
    assert view.rows() == [] and view.current() is None and view.stack.currentWidget() is view.placeholder


def test_sparkline_points_span_the_cell_and_skip_what_is_not_finite():
    rect = QRect(10, 0, 101, 21)
    xs, ys = sparkline_points(np.array([0.0, np.nan, 1.0, 2.0]), rect)
    assert xs.tolist() == [10.0, 60.0, 110.0]
    assert ys.tolist() == [20.0, 10.0, 0.0]  # higher is up
    assert sparkline_points(np.array([3.0, 3.0]), rect)[1].tolist() == [10.0, 10.0]
    assert sparkline_points(np.array([0.0, 0.5]), rect, (0.0, 1.0))[1].tolist() == [20.0, 10.0]
    assert len(sparkline_points(np.array([1.0]), rect)[0]) == 0


def test_the_delegate_paints_the_figure_and_its_sparkline(view):
    for step in range(30):
        view.show_health(figures(step), ORDER, TYPES, step=step)
    index = view.model.index(view.rows().index("conv1"), FIRST_METRIC + 4)  # grad norm: a clear decay
    image = QImage(240, 30, QImage.Format.Format_RGB32)
    background = view.palette().color(QPalette.ColorRole.Base)
    image.fill(background)
    option = QStyleOptionViewItem()
    option.initFrom(view.table)
    option.rect = QRect(0, 0, 240, 30)
    painter = QPainter(image)
    view.delegate.paint(painter, option, index)
    painter.end()
    pixels = np.frombuffer(image.constBits(), np.uint32).reshape(30, -1)[:, :240]
    inked = pixels != QColor(background).rgb()
    text_part, spark_part = inked[:, : view.delegate.text_width + 4], inked[:, view.delegate.text_width + 10:]
    assert text_part.any() and spark_part.any()
    columns = np.flatnonzero(spark_part.any(axis=0))
    assert columns.max() - columns.min() > 150  # the line runs across the cell
    first, last = (np.flatnonzero(spark_part[:, c]).mean() for c in (columns.min(), columns.max()))
    assert first < last  # a decay: the line starts high and ends low (y grows downwards)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_how_the_health_table_looks(qtbot, theme):
    """A LeNet-like table mid-training with a flagged row, in both themes (look at the PNGs)."""
    view = HealthView()
    if theme == "dark":
        dark(view)
    shown(qtbot, view, 1000, 360)
    for step in range(80):
        view.show_health(figures(step, dead=min(0.9, 0.2 + step / 80)), ORDER, TYPES, step=step * 25)
    assert [f["code"] for f in view.model.flags_of("relu2")] == ["dead_units"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    image = view.grab().toImage()
    assert image.save(str(SHOTS / f"health_{theme}.png"))
    assert view.table.horizontalScrollBar().maximum() == 0  # every column fits at this width
