"""Overlays on the canvas (issue 19): live glyphs of each node's output, health badges, and
a profile's tint, figures and fused-group regions; all of them gone when switched off."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from app.engine.examples import example_path
from app.widgets.canvas import scene as scene_module
from app.widgets.canvas.overlays import (GLYPH_RECT, MAX_BARS, MAX_SIDE, GroupRegion, glyph_footprint, make_glyph,
                                         probabilities)

EXPLAIN = "73 % of the units output zero for every sample. Lower the learning rate or use LeakyReLU."


@dataclass
class FakeInsight:
    """What the training panel's CanvasInsight carries (duck-typed by the scene)."""

    activations: dict
    output_node: str | None
    class_names: list = field(default_factory=list)
    health: dict | None = None
    step: int = 0


def lenet_insight(health=None) -> FakeInsight:
    rng = np.random.default_rng(0)
    acts = {"conv1": rng.standard_normal((6, 24, 24)).astype(np.float32),
            "fc1": rng.standard_normal(120).astype(np.float32),
            "relu4": np.maximum(rng.standard_normal(84), 0).astype(np.float32),
            "fc3": np.eye(10, dtype=np.float32)[3] * 5}
    return FakeInsight(acts, "fc3", [f"digit {i}" for i in range(10)], health, 7)


def render(scene, rect: QRectF) -> QImage:
    """``rect`` of the scene drawn at zoom 1 (what the view shows there)."""
    image = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    scene.render(painter, QRectF(image.rect()), rect)
    painter.end()
    return image


def differing(a: QImage, b: QImage) -> int:
    return sum(a.pixel(x, y) != b.pixel(x, y) for x in range(a.width()) for y in range(a.height()))


def glyph_area(item) -> QRectF:
    return item.mapRectToScene(GLYPH_RECT)


def thumbnail_share(scene, item, glyph) -> float:
    """The share of the pixels where ``glyph`` (an image) goes that have its picture's colours
    (other than the node's fill)."""
    shot = render(scene, item.mapRectToScene(glyph_footprint(glyph, GLYPH_RECT)).adjusted(2, 2, -2, -2))
    picture = glyph._image  # (made by the first paint)
    colours = {picture.pixel(x, y) for x in range(picture.width()) for y in range(picture.height())}
    colours.discard(item.fill().rgb())
    hits = sum(shot.pixel(x, y) in colours for x in range(shot.width()) for y in range(shot.height()))
    return hits / (shot.width() * shot.height())


# -- glyphs --------------------------------------------------------------------------------------
def test_glyph_kind_follows_the_shape_and_the_output_node():
    assert make_glyph(np.zeros((6, 24, 24)), False).kind == "image"
    assert make_glyph(np.zeros((2, 4, 8, 8)), False).kind == "image"  # a volume: mean over channels and depth
    assert make_glyph(np.zeros(120), False).kind == "bars"
    assert make_glyph(np.zeros(10), True).kind == "probs"
    assert make_glyph(np.zeros((7, 16)), False).kind == "heat"
    assert make_glyph(np.zeros((1, 28, 28)), True).kind == "image"  # an autoencoder's output is an image
    for nothing in (np.float32(3.0), np.zeros(()), np.zeros((0,)), np.zeros((3, 0, 4)), None, [1, 2],
                    np.array(["a", "b"]), np.zeros(4, dtype=complex)):
        assert make_glyph(nothing, False) is None

    bars = make_glyph(np.arange(120, dtype=np.float32), False).values()
    assert len(bars) == MAX_BARS and bars.max() == pytest.approx(1.0)
    assert list(bars) == sorted(bars)  # pooled in order: runs of the vector, left to right
    big = make_glyph(np.ones((3, 300, 200)), False).values()
    assert max(big.shape) <= MAX_SIDE and big.shape[0] > big.shape[1]  # pooled, aspect kept
    heat = make_glyph(np.zeros((5, 9)), False).values()
    assert heat.shape == (9, 5)  # features down, time across


def test_the_output_glyph_shows_probabilities_and_the_top_class():
    logits = np.array([0.0, 0.0, 4.0, 0.0], dtype=np.float32)
    glyph = make_glyph(logits, True, ["cat", "dog", "bird", "fish"])
    assert glyph.values().sum() == pytest.approx(1.0)
    assert glyph.label().startswith("bird") and glyph.label().endswith("%")
    assert np.allclose(probabilities(np.array([0.2, 0.8])), [0.2, 0.8])  # already a distribution
    assert np.allclose(probabilities(np.array([0.25])), [0.75, 0.25])  # one sigmoid unit: P(class 1)
    assert make_glyph(np.array([3.0]), True, []).label().startswith("1")  # no names: the index


def test_extreme_values_draw_without_errors(lenet):
    scene = lenet.scene
    wild = np.array([np.nan, np.inf, -np.inf, 1e38, -1e38, 0.0], dtype=np.float32)
    huge = np.full((6, 24, 24), 1e308)  # (float64: the mean over channels overflows)
    huge[0, 0, 0] = -1e308
    acts = {"conv1": np.full((6, 24, 24), np.nan, dtype=np.float32), "conv2": huge, "fc1": wild,
            "fc3": np.full(10, np.inf, dtype=np.float32), "relu4": np.zeros(84, dtype=np.float32)}
    scene.live_nodes = True
    scene.set_insight(FakeInsight(acts, "fc3"))
    for node_id in acts:
        values = scene.nodes[node_id].glyph.values()
        assert np.isfinite(values).all()
        render(scene, glyph_area(scene.nodes[node_id]))


def test_live_nodes_draw_a_glyph_in_each_node_and_toggling_off_removes_them(lenet):
    scene = lenet.scene
    conv = scene.nodes["conv1"]
    scene.set_insight(lenet_insight())
    assert all(item.glyph is None for item in scene.nodes.values())  # live nodes off: nothing drawn

    scene.live_nodes = True
    kinds = {node_id: item.glyph.kind for node_id, item in scene.nodes.items() if item.glyph is not None}
    assert kinds == {"conv1": "image", "fc1": "bars", "relu4": "bars", "fc3": "probs"}
    assert scene.nodes["fc3"].glyph.label().startswith("digit 3")
    glyph = conv.glyph
    assert thumbnail_share(scene, conv, glyph) > 0.8  # the thumbnail is on screen

    scene.live_nodes = False
    assert all(item.glyph is None for item in scene.nodes.values())
    assert thumbnail_share(scene, conv, glyph) < 0.05
    scene.live_nodes = True  # the last snapshot comes back
    assert scene.nodes["conv1"].glyph is not None
    scene.set_insight(None)
    assert all(item.glyph is None and not item.flags for item in scene.nodes.values())


@pytest.mark.parametrize("direction", ["TB", "LR"])
def test_a_glyph_keeps_clear_of_the_ports_and_their_labels(lenet, direction):
    scene = lenet.scene
    scene.set_direction(direction)
    scene.live_nodes = True
    scene.set_insight(lenet_insight())
    for node_id in ("conv1", "fc1", "fc3"):
        item = scene.nodes[node_id]
        for ports in (2, 3, 4):  # (the ports of a merge along the side)
            item.set_input_count(ports)
            area = glyph_area(item)
            assert item.box().contains(area)
            for port in (*item.inputs, *item.outputs):
                assert not area.intersects(port.sceneBoundingRect()), (node_id, ports, port.index)
            assert not any(area.intersects(r) for r in item.label_rects())


def test_glyphs_are_computed_once_per_snapshot_not_per_paint(lenet):
    scene = lenet.scene
    scene.live_nodes = True
    scene.set_insight(lenet_insight())
    glyph = scene.nodes["conv1"].glyph
    render(scene, glyph_area(scene.nodes["conv1"]))
    first = glyph._image
    assert first is not None
    render(scene, glyph_area(scene.nodes["conv1"]))
    assert glyph._image is first


def test_switched_off_the_overlays_do_no_work(lenet, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a glyph was made while live nodes are off")

    monkeypatch.setattr(scene_module, "make_glyph", refuse)
    scene = lenet.scene
    scene.set_insight(lenet_insight())
    render(scene, scene.nodes_rect())


# -- health --------------------------------------------------------------------------------------
def test_a_health_flag_shows_a_badge_with_its_explanation_in_the_tooltip(lenet):
    scene = lenet.scene
    item = scene.nodes["relu1"]
    corner = item.mapRectToScene(QRectF(item.box().width() - 30, 2, 28, 22))
    before = render(scene, corner)
    health = {"relu1": {"mean": 0.1, "flags": [{"code": "dead_units", "title": "Dead ReLUs: 73 %", "explain": EXPLAIN}]},
              "conv1": {"flags": "not a list"}, "fc1": None}  # malformed entries are left out
    scene.set_insight(lenet_insight(health))  # badges show whether live nodes are on or not
    assert item.flags == [("Dead ReLUs: 73 %", EXPLAIN)]
    assert scene.nodes["conv1"].flags == [] and scene.nodes["fc1"].flags == []
    tip = item.tooltip()
    assert "Dead ReLUs: 73 %" in tip and "Lower the learning rate or use LeakyReLU." in tip
    after = render(scene, corner)
    warning = scene.theme.warning
    assert any(QColor(after.pixel(x, y)) == warning for x in range(after.width()) for y in range(after.height()))
    assert differing(before, after) > 30

    scene.set_insight(lenet_insight(None))
    assert item.flags == [] and "Dead ReLUs" not in item.tooltip()
    assert differing(before, render(scene, corner)) == 0


# -- profile -------------------------------------------------------------------------------------
def row(node_id, fwd, bwd, output_bytes=1000, flops=10, **extra):
    return {"id": node_id, "type": "?", "forward_ms": fwd, "backward_ms": bwd, "output_bytes": output_bytes,
            "params": 0, "flops": flops, **extra}


def tint(item, theme) -> int:
    """How far the node's fill is from the plain one."""
    a, b = item.fill(), theme.node
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())


def test_a_profile_tints_the_nodes_by_their_share_with_the_figure(lenet):
    scene = lenet.scene
    profile = {"nodes": [row("conv1", 4.0, 6.0, flops=5), row("conv2", 2.0, 3.0, flops=50), row("fc1", 0.5, 0.5)],
               "total_flops": 65}
    scene.set_profile(profile, "time")
    conv1, conv2, fc1 = (scene.nodes[i] for i in ("conv1", "conv2", "fc1"))
    assert tint(conv1, scene.theme) > tint(conv2, scene.theme) > tint(fc1, scene.theme) > 0
    assert tint(scene.nodes["relu1"], scene.theme) == 0  # not in the profile
    assert conv1.heat.figure == "10 ms · 62 %" and fc1.heat.figure == "1 ms · 6 %"
    assert "62 % of the time" in conv1.tooltip()
    before = render(scene, conv1.box())
    scene.set_profile(profile, "flops")
    assert tint(conv2, scene.theme) > tint(conv1, scene.theme)
    assert differing(before, render(scene, conv1.box())) > 0

    scene.set_profile(None, "time")
    assert all(item.heat is None and tint(item, scene.theme) == 0 for item in scene.nodes.values())
    with pytest.raises(ValueError, match="speed"):
        scene.set_profile(profile, "speed")
    with pytest.raises(ValueError, match="nodes"):
        scene.set_profile({"rows": []}, "time")


def test_a_fused_group_is_one_region_behind_its_nodes(lenet):
    scene = lenet.scene
    ids = ["conv1", "relu1", "pool1"]
    profile = {"nodes": [row("conv1", 3.0, 3.0, group=ids), row("conv2", 1.0, 1.0)]}
    scene.set_profile(profile, "time")
    regions = [i for i in scene.items() if isinstance(i, GroupRegion)]
    assert len(regions) == 1
    region = regions[0]
    for node_id in ids:
        assert region.sceneBoundingRect().contains(scene.nodes[node_id].box())
        assert region.zValue() < scene.nodes[node_id].zValue()
    assert not region.sceneBoundingRect().intersects(scene.nodes["conv2"].box())
    assert scene.nodes["conv1"].heat.figure.startswith("6 ms · 75 %")  # the group's figure, once
    assert scene.nodes["relu1"].heat.figure == "" and tint(scene.nodes["relu1"], scene.theme) > 0

    pool = scene.nodes["pool1"]  # a node moved: the region follows
    pool.setPos(pool.pos() + QPointF(400, 0))
    scene.node_item_moved(pool)
    assert region.sceneBoundingRect().contains(pool.box())

    scene.set_profile(None, "time")
    assert not [i for i in scene.items() if isinstance(i, GroupRegion)]


def test_another_project_drops_the_last_ones_overlays(lenet):
    scene = lenet.scene
    scene.live_nodes = True
    scene.set_insight(lenet_insight())
    scene.set_profile({"nodes": [row("conv1", 1.0, 1.0)]}, "memory")
    assert lenet.open_file(example_path("lenet5"), example=True, ask=False)
    scene = lenet.scene
    assert all(i.glyph is None and i.heat is None and not i.flags for i in scene.nodes.values())
    assert scene.live_nodes  # the View setting stays


def test_inside_a_block_the_overlays_wait_for_the_top_level(window):
    # the snapshot and the profile name the project's own nodes; a block's layers have ids
    # of their own (here "relu1" and "conv1" exist in both places)
    assert window.open_file(example_path("resnet_blocks"), example=True, ask=False)
    scene = window.scene
    acts = {"res": np.ones((16, 28, 28), dtype=np.float32), "conv1": np.ones((16, 28, 28), dtype=np.float32)}
    health = {"relu1": {"flags": [{"code": "dead_units", "title": "Dead", "explain": EXPLAIN}]}}
    scene.live_nodes = True
    scene.set_insight(FakeInsight(acts, "fc", [], health))
    scene.set_profile({"nodes": [row("conv1", 1.0, 1.0), row("res", 2.0, 2.0)]}, "time")
    assert scene.nodes["res"].glyph is not None and scene.nodes["res"].heat is not None
    window.doc.open_block("res")
    scene = window.scene
    assert "conv1" in scene.nodes and "relu1" in scene.nodes
    assert all(i.glyph is None and i.heat is None and not i.flags for i in scene.nodes.values())
    window.doc.set_scope(())  # (the window's Run > Profile state sends its own profile again)
    assert window.scene.nodes["res"].glyph is not None
