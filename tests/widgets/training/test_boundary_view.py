"""The boundary view: the heat map's colours (a diverging map for one sigmoid output, the
class colours mixed by probability otherwise), the points by split and class, the per-unit
maps, the placeholder for inputs that are not two features, and how it looks (PNGs for a
person) for an XOR net mid-training, drawn from the engine's own maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtGui import QColor

from app.engine import boundary
from app.engine.compiler import compile_graph
from app.engine.datasets import load_dataset
from app.engine.examples import load_example
from app.engine.inference import analyze
from app.widgets.training.boundary_view import (
    MAX_TINT,
    UNAVAILABLE,
    WAITING,
    BoundaryView,
    boundary_rgb,
    class_colour,
)
from tests.helpers import dark, shown

SHOTS = Path(os.environ.get("NETCANVAS_SHOTS", "/tmp/training-shots"))
WHITE = QColor("white")


def maps(r: int = 16, k: int = 1, units: bool = True, n_train: int = 40, n_test: int = 12) -> dict:
    """A boundary as the engine sends it (INSIGHT_API): P(class 1) rising along x."""
    xs = (np.arange(r) + 0.5) / r
    p1 = np.tile(xs, (r, 1)).astype(np.float32)
    probs = p1[..., None] if k == 1 else np.stack([1 - p1] + [np.zeros_like(p1)] * (k - 2) + [p1], -1)
    rng = np.random.default_rng(0)
    return {"x_range": (0.0, 1.0), "y_range": (0.0, 2.0), "resolution": r, "classes": ["no", "yes"],
            "probs": probs.astype(np.float32), "predicted": (p1 > 0.5).astype(np.int16),
            "units": {"fc1": rng.normal(size=(8, r, r)).astype(np.float32),
                      "tanh": np.tanh(rng.normal(size=(8, r, r))).astype(np.float32)} if units else {},
            "points": {"train": rng.uniform(0, 1, (n_train, 2)).astype(np.float32),
                       "train_y": rng.integers(0, 2, n_train),
                       "test": rng.uniform(0, 1, (n_test, 2)).astype(np.float32),
                       "test_y": rng.integers(0, 2, n_test)}}


@pytest.fixture
def view(qtbot):
    return shown(qtbot, BoundaryView(), 900, 400)


def test_one_sigmoid_output_is_a_diverging_map_through_the_background():
    probs = np.array([[[0.0], [0.5], [1.0]]], np.float32)  # [1, 3, 1]
    rgb = boundary_rgb(probs, WHITE).astype(int)
    assert tuple(rgb[0, 1]) == (255, 255, 255)  # undecided: the background
    for column, k in ((0, 0), (2, 1)):
        expected = 255 + (np.array(class_colour(k).getRgb()[:3]) - 255) * MAX_TINT
        assert np.abs(rgb[0, column] - expected).max() <= 1


def test_several_classes_mix_their_colours_paler_where_unsure():
    sure = np.eye(3, dtype=np.float32)[None]  # [1, 3, 3]: one class each, certain
    unsure = np.full((1, 1, 3), 1 / 3, np.float32)
    rgb = boundary_rgb(np.concatenate([sure, unsure], 1), WHITE).astype(int)
    for k in range(3):
        expected = 255 + (np.array(class_colour(k).getRgb()[:3]) - 255) * MAX_TINT
        assert np.abs(rgb[0, k] - expected).max() <= 1
    assert rgb[0, 3].min() > 225  # 1/3 each: nearly the background


def test_the_view_draws_the_map_the_points_and_the_units(view):
    data = maps()
    view.show_boundary(data, step=120)
    assert view.stack.currentIndex() == 1
    image = view.image.image
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert (rect.left(), rect.top(), rect.width(), rect.height()) == pytest.approx((0.0, 0.0, 1.0, 2.0))
    # row 0 is the bottom of the plane; P(class 1) rises along x: class 0's colour left, 1's right
    left, right = image[0, 0].astype(int), image[0, -1].astype(int)
    assert np.abs(left - boundary_rgb(np.array([[[1 / 32]]]), view.palette().base().color())[0, 0]).max() <= 1
    assert right[2] > right[0] and left[0] > left[2]  # blue-ish right (class 1), orange-ish left
    assert view.point_counts() == (40, 12)
    train, test = view.train_points.data, view.test_points.data
    assert view.train_points.opts["symbol"] == "o" and view.test_points.opts["symbol"] == "x"
    np.testing.assert_allclose(train["x"], data["points"]["train"][:, 0])
    colours = {QColor(b.color()).name() for b in train["brush"]}
    assert colours == {class_colour(0).name(), class_colour(1).name()}
    first = data["points"]["train_y"][0]
    assert QColor(train["brush"][0].color()) == class_colour(int(first))
    assert view.units.tile_count() == 16 and view.units.isVisibleTo(view)
    assert "yes" in view.caption.text() and "train" in view.caption.text() and "test" in view.caption.text()
    assert "step 120" in view.title.text()


def test_the_same_points_are_not_rebuilt_and_new_ones_are(view):
    data = maps()
    view.show_boundary(data, step=1)
    items = list(view.train_points.points())
    view.show_boundary(dict(data, probs=data["probs"] * 0.5), step=2)  # a later snapshot, same points
    assert list(view.train_points.points()) == items
    view.show_boundary(maps(n_train=7, n_test=3), step=3)
    assert view.point_counts() == (7, 3)


def test_several_classes_without_units_and_the_placeholder(view):
    view.show_boundary(maps(k=3, units=False))
    assert view.image.image.shape == (16, 16, 3)
    assert view.units.tile_count() == 0 and not view.units.isVisibleTo(view)
    assert "the weights held" in view.title.text()
    view.set_available(False)
    assert view.stack.currentIndex() == 0 and view.placeholder.text() == UNAVAILABLE
    view.show_boundary(maps())  # an old snapshot of a two-feature graph: not drawn any more
    assert view.stack.currentIndex() == 0 and view.image.image is None
    view.set_available(True)
    assert view.placeholder.text() == WAITING


def xor_mid_training(epochs: int = 6) -> tuple[dict, int]:
    """The XOR example trained a few epochs (mid-training: the boundary has its shape, not yet
    its sharpness), and its boundary as the engine computes it; the step it got to."""
    project = load_example("xor")
    a = analyze(project.graph)
    data = load_dataset(project.dataset, input_shape=(2,))
    torch.manual_seed(0)
    model = compile_graph(project.graph, a)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    step = 0
    for _ in range(epochs):
        for i in range(0, len(data.train), 16):
            optimizer.zero_grad()
            out = model(data.train.x[i:i + 16]).reshape(-1)
            torch.nn.functional.binary_cross_entropy(out, data.train.y[i:i + 16].float()).backward()
            optimizer.step()
            step += 1
    return boundary.boundary_maps(model, a, data, class_names=data.class_names, loss="BCELoss"), step


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_how_an_xor_boundary_looks_mid_training(qtbot, theme):
    data, step = xor_mid_training()
    view = BoundaryView()
    if theme == "dark":
        dark(view)
    shown(qtbot, view, 1000, 380)
    view.show_boundary(data, step=step)
    units = data["units"]
    assert {"fc1", "tanh"} <= set(units) and view.units.tile_count() == sum(len(u) for u in units.values())
    assert view.point_counts() == (len(data["points"]["train"]), len(data["points"]["test"]))
    predicted = data["predicted"]
    assert 0.2 < predicted.mean() < 0.8  # both classes have their regions
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert view.grab().toImage().save(str(SHOTS / f"boundary_xor_{theme}.png"))
