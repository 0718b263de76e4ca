"""The activations view: the sample chooser (data index or a drawing), the node's output
drawn as maps / rows / bars, the class probabilities, and how it looks (PNGs for a person)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QBoxLayout

from app.widgets.training.activations import ActivationsView, class_probabilities
from app.widgets.training.filters import to_diverging
from tests.helpers import shown

from .test_filters import dark_palette

SHOTS = Path(os.environ.get("NETCANVAS_SHOTS", "/tmp/training-shots"))
NAMES = [str(d) for d in range(10)]
MEAN, STD = 0.13, 0.31
LENET_ORDER = ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3",
               "fc2", "relu4", "fc3"]


def digit(seed: int = 0) -> np.ndarray:
    """A soft hand-drawn-looking 7, ``[28, 28]`` in [0, 1]."""
    img = np.zeros((28, 28), np.float32)
    rng = np.random.default_rng(seed)
    jitter = rng.integers(-1, 2, 2)
    for t in np.linspace(0, 1, 60):
        for cy, cx in ((6 + jitter[0], 7 + 13 * t), (7 + 15 * t, 20 - 8 * t + jitter[1])):
            yy, xx = np.mgrid[:28, :28]
            img = np.maximum(img, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.2))
    return img


def lenet_activations(x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output of a seeded LeNet-5 for ``x`` ``[n, 1, 28, 28]``."""
    torch.manual_seed(0)
    nn = torch.nn
    layers = dict(conv1=nn.Conv2d(1, 6, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2), conv2=nn.Conv2d(6, 16, 5),
                  relu2=nn.ReLU(), pool2=nn.MaxPool2d(2), flatten=nn.Flatten(), fc1=nn.Linear(256, 120),
                  relu3=nn.ReLU(), fc2=nn.Linear(120, 84), relu4=nn.ReLU(), fc3=nn.Linear(84, 10))
    out = {"input": x.astype(np.float32)}
    h = torch.from_numpy(out["input"])
    with torch.no_grad():
        for name, layer in layers.items():
            h = layer(h)
            out[name] = h.numpy().copy()
    out["fc3"] = out["fc3"] * 4  # a confident net's logits
    return out


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


@pytest.fixture
def view(qtbot):
    v = shown(qtbot, ActivationsView(), 900, 450)
    return v


@pytest.fixture
def digits():
    x = np.stack([(digit(s) - MEAN) / STD for s in range(5)])[:, None].astype(np.float32)
    return x, np.array([7, 7, 7, 7, 7])


def test_probabilities_from_logits_probabilities_and_one_unit():
    logits = np.array([1.0, -2.0, 3.0, 0.5])
    p, how = class_probabilities(logits)
    assert how == "softmax"
    np.testing.assert_allclose(p, softmax(logits))
    already = np.array([0.1, 0.7, 0.2], np.float32)
    p, how = class_probabilities(already)
    assert how == "probabilities"
    np.testing.assert_allclose(p, already, rtol=1e-6)
    p, how = class_probabilities(np.array([2.0]))
    s = 1 / (1 + np.exp(-2.0))
    assert how == "sigmoid"
    np.testing.assert_allclose(p, [1 - s, s])
    p, how = class_probabilities(np.array([0.8]))  # a Sigmoid node's output: p itself
    np.testing.assert_allclose(p, [0.2, 0.8])


def test_nodes_are_drawn_as_maps_rows_or_bars(view, digits):
    x, _ = digits
    acts = lenet_activations(x[:1])
    view.show_activations(acts, LENET_ORDER, "fc3", NAMES)
    assert [view.node_combo.itemText(i) for i in range(view.node_combo.count())] == LENET_ORDER
    assert view.current_node() == "conv1"  # the first feature maps by default
    assert view.current_kind() == "maps" and view.stack.currentWidget() is view.canvas
    maps = acts["conv1"][0]
    np.testing.assert_array_equal(view.current_values(), maps)
    per_map = np.abs(maps).max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_equal(view.canvas.tiles, to_diverging(maps, per_map))  # each on its own scale
    view.shared_scale.click()
    np.testing.assert_array_equal(view.canvas.tiles, to_diverging(maps, np.abs(maps).max()))
    assert "one scale ±" in view.title.text()

    assert view.select_node("flatten")
    assert view.current_kind() == "bars" and view.stack.currentWidget() is view.plot
    np.testing.assert_array_equal(view.bars.opts["height"], acts["flatten"][0])
    assert "256 values" in view.title.text()

    seq = dict(acts, lstm=np.random.default_rng(0).normal(size=(1, 8, 64)).astype(np.float32))
    view.show_activations(seq, LENET_ORDER + ["lstm"], "fc3", NAMES)
    assert view.current_node() == "flatten"  # kept across refreshes
    view.node_combo.setCurrentIndex(view.node_combo.findData("lstm"))
    view.node_combo.activated.emit(view.node_combo.currentIndex())
    assert view.current_kind() == "rows" and view.canvas.tiles.shape == (8, 1, 64, 3)
    assert not view.select_node("nowhere") and view.current_node() == "lstm"


def test_canvas_selection_before_the_first_snapshot_is_kept(view, digits):
    view.select_node("pool2")
    view.show_activations(lenet_activations(digits[0][:1]), LENET_ORDER, "fc3", NAMES)
    assert view.current_node() == "pool2" and view.current_kind() == "maps"
    assert view.current_values().shape == (16, 4, 4)


def test_class_probabilities_beside_the_view(view, digits):
    x, y = digits
    view.set_samples(x, y, NAMES)
    acts = lenet_activations(x[:1])
    view.show_activations(acts, LENET_ORDER, "fc3", NAMES)
    bars = view.probability_bars
    assert bars.isVisible()
    np.testing.assert_allclose(bars.probabilities, softmax(acts["fc3"][0].astype(np.float64)), rtol=1e-6)
    assert bars.top() == int(acts["fc3"][0].argmax()) and bars.names == NAMES
    assert bars.true_label == "7" and "softmax" in bars.note

    probs = dict(acts, softmax=softmax(acts["fc3"][0].astype(np.float64))[None].astype(np.float32))
    view.show_activations(probs, LENET_ORDER + ["softmax"], "softmax", NAMES)
    np.testing.assert_allclose(bars.probabilities, probs["softmax"][0], rtol=1e-6)  # left alone

    view.show_activations({"input": np.zeros((1, 2), np.float32), "fc": np.array([[-1.5]], np.float32)},
                          ["input", "fc"], "fc", ["negative", "positive"])
    s = 1 / (1 + np.exp(1.5))
    np.testing.assert_allclose(bars.probabilities, [1 - s, s], rtol=1e-6)
    assert bars.names == ["negative", "positive"] and bars.top() == 0

    logits = np.linspace(-3, 3, 100, dtype=np.float32)[None]
    view.show_activations({"input": x[:1], "head": logits}, ["input", "head"], "head", [f"c{k}" for k in range(100)])
    shown = bars.classes_shown()
    assert 5 < len(shown) < 30 and shown[:3] == [99, 98, 97]  # many classes: the likeliest ones

    view.show_activations({"input": x[:1], "decoder": x[:1]}, ["input", "decoder"], "decoder", NAMES)
    assert not bars.isVisible()  # an image out: no classes to show


def test_choosing_a_sample_emits_it(view, qtbot, digits):
    x, y = digits
    with qtbot.waitSignal(view.sample_changed) as first:
        view.set_samples(x, y, NAMES)
    np.testing.assert_array_equal(first.args[0], x[:1])
    assert first.args[0].dtype == np.float32 and "label: <b>7</b>" in view.sample_caption.text()
    assert view.draw_part.isVisible() and (view.pad.h, view.pad.w) == (28, 28)
    view.index_spin.setFocus()
    with qtbot.waitSignal(view.sample_changed) as second:
        qtbot.keyClick(view.index_spin, Qt.Key.Key_Up)
    np.testing.assert_array_equal(second.args[0], x[1:2])
    with qtbot.waitSignal(view.sample_changed) as third:
        view.index_slider.setValue(4)
    np.testing.assert_array_equal(third.args[0], x[4:5])
    assert view.index_spin.value() == 4
    with qtbot.assertNotEmitted(view.sample_changed):
        view.index_spin.setValue(4)  # nothing changed


def draw_seven(qtbot, pad) -> None:
    s = pad.width() / 28
    points = [(7, 6), (14, 6), (20, 6), (18, 12), (15, 18), (12, 24)]
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(int(points[0][0] * s), int(points[0][1] * s)))
    for px, py in points[1:]:
        qtbot.mouseMove(pad, QPoint(int(px * s), int(py * s)))
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(int(points[-1][0] * s), int(points[-1][1] * s)))


def test_drawing_on_the_pad_emits_a_normalized_sample(view, qtbot, digits):
    x, y = digits
    view.set_samples(x, y, NAMES)
    mean = np.full((1, 28, 28), MEAN, np.float32)
    std = np.full((1, 28, 28), STD, np.float32)
    view.set_normalization(mean, std)
    with qtbot.waitSignal(view.sample_changed) as drawn:
        draw_seven(qtbot, view.pad)
    sample = drawn.args[0]
    assert sample.shape == (1, 1, 28, 28) and sample.dtype == np.float32
    raw = sample * STD + MEAN  # back to the pad's [0, 1]
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    assert raw[0, 0, 6, 14] > 0.8 and raw[0, 0, 18, 15] > 0.5  # on the strokes
    assert raw[0, 0, 25, 25] == pytest.approx(0, abs=1e-5) and raw[0, 0, 2, 2] == pytest.approx(0, abs=1e-5)
    assert 0.02 < (raw > 0.5).mean() < 0.25  # strokes, not a blot
    assert view.source == "drawing" and view.true_label() is None
    np.testing.assert_array_equal(view.current_sample(), sample)
    with qtbot.waitSignal(view.sample_changed) as back:
        view.clear_button.click()  # a blank pad: back to the data's sample
    np.testing.assert_array_equal(back.args[0], x[:1])
    assert view.pad.is_blank() and view.source == "dataset"


def test_small_images_get_a_small_pad_and_vectors_none(view, qtbot):
    x = np.random.default_rng(0).random((4, 1, 8, 8)).astype(np.float32)
    view.set_samples(x, np.arange(4), NAMES)
    assert (view.pad.h, view.pad.w) == (8, 8)
    with qtbot.waitSignal(view.sample_changed) as drawn:
        qtbot.mousePress(view.pad, Qt.MouseButton.LeftButton, pos=QPoint(63, 63))  # the middle of pixel (4, 4)
        qtbot.mouseRelease(view.pad, Qt.MouseButton.LeftButton, pos=QPoint(63, 63))
    assert drawn.args[0].shape == (1, 1, 8, 8) and drawn.args[0][0, 0, 4, 4] > 0.5
    view.set_samples(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), np.array([1, 1]), ["0", "1"])
    assert not view.draw_part.isVisible() and not view.sample_image.isVisible()
    assert "x = [0, 1]" in view.sample_caption.text()


def test_narrow_panel_puts_the_sample_chooser_on_top(view, qtbot):
    view.resize(450, 450)
    qtbot.waitUntil(lambda: view.outer.direction() == QBoxLayout.Direction.TopToBottom)
    view.resize(900, 450)
    qtbot.waitUntil(lambda: view.outer.direction() == QBoxLayout.Direction.LeftToRight)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_renders_lenet_activations_for_a_person_to_look_at(view, qtbot, digits, theme):
    if theme == "dark":
        view.setPalette(dark_palette())
    SHOTS.mkdir(parents=True, exist_ok=True)
    x, y = digits
    view.set_samples(x, y, NAMES)
    view.show_activations(lenet_activations(x[:1]), LENET_ORDER, "fc3", NAMES)
    for node, size in [("conv1", (900, 450)), ("pool2", (900, 450)), ("fc1", (900, 450)), ("relu1", (450, 450))]:
        view.select_node(node)
        view.resize(*size)
        qtbot.wait(1)
        path = SHOTS / f"activations_{node}_{size[0]}_{theme}.png"
        assert view.grab().save(str(path))
        assert path.stat().st_size > 1000
    draw_seven(qtbot, view.pad)
    assert view.grab().save(str(SHOTS / f"activations_drawn_{theme}.png"))
