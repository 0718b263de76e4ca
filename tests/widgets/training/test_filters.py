"""The filters view: kernels as tiles on one symmetric scale, the input-channel choice, the
choice kept across the refreshes a run sends, speed, and how it looks (PNGs for a person)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPalette

from app.widgets.training.filters import FiltersView, ImageCanvas, grid_layout, symmetric_grey, to_argb32, to_diverging
from tests.helpers import shown

ORDER = ["input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1"]
SHOTS = Path(os.environ.get("NETCANVAS_SHOTS", "/tmp/training-shots"))


def lenet_filters(seed: int = 0) -> dict[str, np.ndarray]:
    """LeNet-like kernels: smooth oriented edges plus noise, as a trained conv1/conv2 has."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-2:3, -2:3].astype(np.float32)

    def edges(n, c, scale):
        angles = rng.uniform(0, np.pi, (n, c, 1, 1))
        base = np.cos(angles) * xx + np.sin(angles) * yy
        return (scale * (np.tanh(base) + 0.3 * rng.normal(size=base.shape))).astype(np.float32)

    return {"conv1": edges(6, 1, 0.3), "conv2": edges(16, 6, 0.08)}


@pytest.fixture
def view(qtbot):
    v = shown(qtbot, FiltersView(), 900, 450)
    return v


def shown_pixel(view: FiltersView, tile: int, i: int, j: int) -> QColor:
    """The colour on screen of kernel pixel ``(i, j)`` of tile ``tile``."""
    cols, sx, sy, _ = view.canvas._layout()
    h, w = view.canvas.tiles.shape[1:3]
    r, c = divmod(tile, cols)
    return view.canvas.image().pixelColor(c * (w * sx + 1) + j * sx + sx // 2, r * (h * sy + 1) + i * sy + sy // 2)


def test_colour_scale_is_symmetric_with_white_at_zero():
    m = 0.5
    assert tuple(to_diverging(np.float32(0.0), m)) == (255, 255, 255)
    hi, lo = to_diverging(np.array([m, -m], np.float32), m)
    assert hi[0] > 100 > hi[2] and lo[2] > 90 > lo[0]  # +m red, -m blue
    assert tuple(to_diverging(np.float32(9.0), m)) == tuple(hi)  # clipped to the ends
    a, b = to_diverging(np.array([0.2, -0.2], np.float32), m)
    assert a[0] == b[2] or abs(int(a[0]) - int(b[2])) < 40  # the halves mirror each other
    assert tuple(symmetric_grey(np.zeros(3, np.float32), m)) == (128, 128, 128)
    assert grid_layout(16, 5, 5, 900, 400)[:2] == (3, 6)


def test_first_layer_tiles_values_and_symmetric_scale(view):
    f = lenet_filters()
    f["conv1"][2, 0, 1, 3] = 0.0
    m = float(np.abs(f["conv1"]).max())
    view.show_filters(f, ORDER)
    assert [view.layer_combo.itemText(i) for i in range(view.layer_combo.count())] == ["conv1", "conv2"]
    assert view.current_layer() == "conv1"
    assert view.scale() == pytest.approx(m)
    np.testing.assert_array_equal(view.current_tiles(), f["conv1"][:, 0])
    mosaic, cols = view.current_image(), view.canvas.columns
    assert mosaic.shape == (math_rows(6, cols) * 6 - 1, cols * 6 - 1)
    for k in range(6):
        r, c = divmod(k, cols)
        np.testing.assert_array_equal(mosaic[r * 6:r * 6 + 5, c * 6:c * 6 + 5], f["conv1"][k, 0])
    assert np.isnan(mosaic[:, 5]).all()  # the 1-pixel gap
    # what is on screen: the largest weight dark red, zero white, every tile on the same scale
    k, _, i, j = np.unravel_index(np.abs(f["conv1"]).argmax(), f["conv1"].shape)
    extreme = shown_pixel(view, k, i, j)
    if f["conv1"][k, 0, i, j] > 0:
        assert extreme.red() > 100 > extreme.blue()
    else:
        assert extreme.blue() > 90 > extreme.red()
    assert shown_pixel(view, 2, 1, 3) == QColor(255, 255, 255)
    assert "conv1" in view.title.text() and "6×1×5×5" in view.title.text() and f"±{m:.3g}" in view.title.text()
    assert not view.channel_combo.isEnabled()  # one input channel: nothing to choose
    assert view.colour_bar.m == pytest.approx(m)


def math_rows(n: int, cols: int) -> int:
    return -(-n // cols)


def test_channel_average_index_and_rgb(view, qtbot):
    f = lenet_filters()
    view.show_filters(f, ORDER)
    view.select_layer("conv2")
    items = [view.channel_combo.itemData(i) for i in range(view.channel_combo.count())]
    assert items == ["average", 0, 1, 2, 3, 4, 5]
    assert view.current_channel() == "average"
    avg = f["conv2"].mean(axis=1)
    np.testing.assert_allclose(view.current_tiles(), avg, rtol=1e-6)
    assert view.scale() == pytest.approx(float(np.abs(avg).max()))
    # choose channel 1 with the keyboard, as a user would
    view.channel_combo.setFocus()
    qtbot.keyClick(view.channel_combo, Qt.Key.Key_Down)
    qtbot.keyClick(view.channel_combo, Qt.Key.Key_Down)
    assert view.current_channel() == 1
    np.testing.assert_array_equal(view.current_tiles(), f["conv2"][:, 1])
    assert view.scale() == pytest.approx(float(np.abs(f["conv2"]).max()))  # the layer's own m
    assert "input channel 1 of 6" in view.title.text()

    rgb = {"stem": np.random.default_rng(3).normal(0, 0.2, (8, 3, 7, 7)).astype(np.float32)}
    rgb["stem"][0, :, 0, 0] = 0.0
    view.show_filters(rgb)
    assert view.current_layer() == "stem" and view.current_channel() == "rgb"
    assert [view.channel_combo.itemText(i) for i in range(view.channel_combo.count())][:2] == ["RGB", "average"]
    np.testing.assert_array_equal(view.current_tiles(), np.transpose(rgb["stem"], (0, 2, 3, 1)))
    assert view.current_image().shape[-1] == 3
    assert shown_pixel(view, 0, 0, 0) == QColor(128, 128, 128)  # zero is mid-grey
    m = float(np.abs(rgb["stem"]).max())
    np.testing.assert_array_equal(view.canvas.tiles, symmetric_grey(view.current_tiles(), m))
    assert view.colour_bar.grey


def test_layer_and_channel_are_kept_across_refreshes(view):
    f = lenet_filters()
    view.select_layer("conv2")  # the canvas asks before the first snapshot: remembered
    view.show_filters(f, ORDER)
    assert view.current_layer() == "conv2"
    view.set_channel(3)
    later = {k: 2 * v for k, v in lenet_filters(1).items()}
    view.show_filters(later, ORDER)
    assert view.current_layer() == "conv2" and view.current_channel() == 3
    np.testing.assert_array_equal(view.current_tiles(), later["conv2"][:, 3])
    assert not view.select_layer("relu1")  # no kernels: the view stays where it is
    assert view.current_layer() == "conv2"
    assert view.select_layer("conv1") and view.current_channel() == 0
    assert view.select_layer("conv2") and view.current_channel() == 3  # each layer keeps its own
    view.layer_combo.setCurrentIndex(0)
    view.layer_combo.activated.emit(0)
    view.show_filters(f, ORDER)
    assert view.current_layer() == "conv1"


def test_linear_templates_and_clear(view):
    w = np.random.default_rng(0).normal(0, 0.05, (10, 1, 28, 28)).astype(np.float32)
    view.show_filters({"fc": w}, ["input", "flatten", "fc"])
    assert view.current_tiles().shape == (10, 28, 28)
    assert view.canvas._layout()[1] >= 4  # 28x28 templates get at least 4x4 screen pixels each
    view.clear()
    assert view.current_layer() is None and view.current_image() is None
    assert view.canvas.image() is None and view.layer_combo.count() == 0


def test_a_refresh_draws_well_under_20_ms(view):
    cases = [(lenet_filters(), "conv2"),
             ({"fc": np.random.default_rng(0).normal(0, 0.05, (10, 1, 28, 28)).astype(np.float32)}, "fc")]
    for filters, layer in cases:
        view.show_filters(filters, ORDER + ["fc"])
        view.select_layer(layer)
        view.repaint()
        times = []
        for _ in range(10):
            t = time.perf_counter()
            view.show_filters(filters, ORDER + ["fc"])
            view.repaint()  # the paint itself, synchronously
            times.append(time.perf_counter() - t)
        assert np.median(times) < 0.020, f"{layer}: {np.median(times) * 1000:.1f} ms"


def dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in [("Window", "#2b2d31"), ("WindowText", "#e6e6e6"), ("Base", "#1f2023"),
                         ("Text", "#e6e6e6"), ("Button", "#35373c"), ("ButtonText", "#e6e6e6"),
                         ("Highlight", "#3d8ee8"), ("Mid", "#55585e"), ("PlaceholderText", "#8a8d93")]:
        p.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    return p


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_renders_lenet_kernels_for_a_person_to_look_at(view, qtbot, theme):
    if theme == "dark":
        view.setPalette(dark_palette())
    SHOTS.mkdir(parents=True, exist_ok=True)
    f = lenet_filters()
    view.show_filters(f, ORDER)
    for layer, channel, size in [("conv1", 0, (900, 450)), ("conv2", "average", (900, 450)),
                                 ("conv2", 2, (450, 450))]:
        view.select_layer(layer)
        view.set_channel(channel)
        view.resize(*size)
        qtbot.wait(1)
        path = SHOTS / f"filters_{layer}_{channel}_{size[0]}_{theme}.png"
        assert view.grab().save(str(path))
        assert path.stat().st_size > 1000
    gap = view.canvas.image().pixelColor(view.canvas._layout()[1] * 5, 0)  # a gap column
    assert (gap.lightness() < 60) == (theme == "dark")


def test_the_mosaic_is_kept_in_the_windows_pixel_format(qtbot):
    rgba = np.array([[[10, 20, 30, 255], [0, 0, 0, 0]]], np.uint8)
    assert to_argb32(rgba).tolist() == [[0xFF0A141E, 0]]
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(200, 120)
    tiles = np.zeros((3, 4, 4, 3), np.uint8)
    tiles[0] = (250, 10, 10)
    tiles[1] = (10, 250, 10)
    tiles[2] = (10, 10, 250)
    canvas.set_tiles(tiles)
    image = canvas.image()
    # painting it is a copy: no conversion, which Qt would spread over its thread pool
    assert image.format() == QImage.Format.Format_ARGB32_Premultiplied
    assert image.pixelColor(0, 0) == QColor(250, 10, 10)
    assert QColor(image.pixel(image.width() - 1, image.height() - 1)).rgb() in (QColor(10, 10, 250).rgb(), 0)
    rect = canvas.image_rect()
    if rect.width() == image.width():  # drawn 1:1: on whole pixels
        assert rect.x() == int(rect.x()) and rect.y() == int(rect.y())
    shot = canvas.grab().toImage()
    centre = rect.center().toPoint()
    assert shot.pixelColor(centre).alpha() == 255


def test_the_mosaic_upscales_each_tile_and_spaces_them_by_the_gap():
    from app.widgets.training.filters import compose

    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, size=(3, 2, 4, 3), dtype=np.uint8)
    out = compose(tiles, cols=2, sx=3, sy=2, gap=1, gap_rgb=(7, 8, 9))
    th, tw = 2 * 2, 4 * 3
    assert out.shape == (2 * th + 1, 2 * tw + 1) and out.dtype == np.uint32
    argb = lambda r, g, b, a=255: (a << 24) | (int(r) << 16) | (int(g) << 8) | int(b)  # noqa: E731
    for k in range(3):
        top, left = (k // 2) * (th + 1), (k % 2) * (tw + 1)
        for y in range(th):
            for x in range(tw):
                assert out[top + y, left + x] == argb(*tiles[k, y // 2, x // 3])
    assert out[th, 0] == argb(7, 8, 9) and out[0, tw] == argb(7, 8, 9)  # the gaps
    assert (out[th + 1:, tw + 1:] == 0).all()  # no fourth tile: transparent
