"""The layer palette (app/widgets/palette.py), driven through real key and mouse events."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt
from PySide6.QtGui import QColor, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication

from app.engine.layers import CATALOGUE, CATEGORIES
from app.widgets.mime import LAYER_MIME, layer_type
from app.widgets.palette import LayerTree, Palette, mime_data_for
from tests.helpers import shown

SHOTS = Path("/tmp/widgets-shots")


@pytest.fixture
def palette(qtbot):
    p = shown(qtbot, Palette(), 260, 640)
    p.activateWindow()
    return p


def item_named(palette: Palette, type_name: str):
    return next(i for i in palette.layer_items() if i.text(0) == type_name)


def plain(rich: str) -> str:
    doc = QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


def test_lists_every_catalogue_type_under_its_category(palette):
    shown = {}
    for cat in palette.categories():
        for j in range(cat.childCount()):
            item = cat.child(j)
            assert item.data(0, Qt.ItemDataRole.UserRole) == item.text(0)
            shown[item.text(0)] = cat.text(0)
    assert shown == {t: spec.category for t, spec in CATALOGUE.items()}
    used = [c for c in CATEGORIES if any(s.category == c for s in CATALOGUE.values())]
    assert [c.text(0) for c in palette.categories()] == used
    assert all(c.isExpanded() for c in palette.categories())
    assert palette.search.placeholderText() == "Search layers"


def test_search_filters_by_name_case_insensitively(qtbot, palette):
    qtbot.keyClicks(palette.search, "CONV")
    shown = palette.visible_layers()
    assert {"Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"} <= set(shown)
    assert "Linear" not in shown and "ReLU" not in shown
    assert item_named(palette, "Linear").parent().isHidden()  # the Dense category
    assert not item_named(palette, "Conv2d").parent().isHidden()
    assert item_named(palette, "Conv2d").parent().isExpanded()
    # what the tree draws: hidden rows have no place in the viewport
    assert palette.tree.visualItemRect(item_named(palette, "Linear")).isEmpty()
    assert not palette.tree.visualItemRect(item_named(palette, "Conv2d")).isEmpty()


def test_search_matches_category_and_doc_and_clearing_shows_all(qtbot, palette):
    qtbot.keyClicks(palette.search, "pooling")
    pools = [name for name, spec in CATALOGUE.items() if spec.category == "Pooling"]
    assert palette.visible_layers()[:len(pools)] == pools  # the category, in catalogue order
    assert "Linear" not in palette.visible_layers()
    palette.search.selectAll()
    qtbot.keyClicks(palette.search, "learned upsampling")  # only in the transposed convolutions' docs
    assert palette.visible_layers() == ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
    palette.search.selectAll()
    qtbot.keyClick(palette.search, Qt.Key.Key_Backspace)
    assert sorted(palette.visible_layers()) == sorted(CATALOGUE)
    qtbot.keyClicks(palette.search, "no such layer")
    assert palette.visible_layers() == []
    assert all(c.isHidden() for c in palette.categories())
    qtbot.keyClick(palette.search, Qt.Key.Key_Escape)
    assert palette.search.text() == ""
    assert len(palette.visible_layers()) == len(CATALOGUE)


def test_down_arrow_moves_to_the_first_visible_layer(qtbot, palette):
    palette.search.setFocus()
    qtbot.keyClicks(palette.search, "norm")
    qtbot.keyClick(palette.search, Qt.Key.Key_Down)
    assert palette.tree.currentItem().text(0) == "BatchNorm1d"
    qtbot.waitUntil(palette.tree.hasFocus)
    # and Enter there adds it
    with qtbot.waitSignal(palette.layer_activated) as blocker:
        qtbot.keyClick(palette.tree, Qt.Key.Key_Return)
    assert blocker.args == ["BatchNorm1d"]


def test_enter_in_search_activates_first_visible_layer(qtbot, palette):
    qtbot.keyClicks(palette.search, "conv")
    with qtbot.waitSignal(palette.layer_activated) as blocker:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert blocker.args == ["Conv1d"]
    palette.search.clear()
    qtbot.keyClicks(palette.search, "nothing matches this")
    with qtbot.assertNotEmitted(palette.layer_activated):
        qtbot.keyClick(palette.search, Qt.Key.Key_Enter)


def double_click(qtbot, tree, item):
    tree.scrollToItem(item)
    qtbot.waitUntil(lambda: tree.viewport().rect().contains(tree.visualItemRect(item)))
    pos = tree.visualItemRect(item).center()
    # a view takes a double click only on the item the preceding press was on, as with a
    # real mouse (QTest's double click alone does not send that press)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_double_click_activates_a_layer_not_a_category(qtbot, palette):
    tree = palette.tree
    with qtbot.waitSignal(palette.layer_activated) as blocker:
        double_click(qtbot, tree, item_named(palette, "Dropout"))
    assert blocker.args == ["Dropout"]
    category = palette.categories()[0]
    with qtbot.assertNotEmitted(palette.layer_activated):
        double_click(qtbot, tree, category)
    assert not category.isExpanded()  # a double click folds a category instead


def test_mime_data_carries_the_type_name(palette):
    for data in (mime_data_for("Conv2d"), palette.mime_data_for("Conv2d")):
        assert data.hasFormat(LAYER_MIME)
        assert layer_type(data) == "Conv2d"  # what the canvas reads from a drop
    assert layer_type(QMimeData()) is None
    tree = palette.tree
    assert tree.dragEnabled()
    assert tree.mimeTypes() == [LAYER_MIME]
    from_tree = tree.mimeData([item_named(palette, "LSTM")])
    assert layer_type(from_tree) == "LSTM"
    assert tree.mimeData([palette.categories()[0]]) is None
    assert item_named(palette, "LSTM").flags() & Qt.ItemFlag.ItemIsDragEnabled
    assert not palette.categories()[0].flags() & Qt.ItemFlag.ItemIsDragEnabled


def test_dragging_a_layer_starts_a_drag_with_its_type(qtbot, palette, monkeypatch):
    dragged = []
    original = LayerTree.mimeData

    def recording(self, items):
        data = original(self, items)
        dragged.append(bytes(data.data(LAYER_MIME)).decode("utf-8"))
        return data

    monkeypatch.setattr(LayerTree, "mimeData", recording)
    tree = palette.tree
    item = item_named(palette, "Conv2d")
    start = tree.visualItemRect(item).center()
    far = start + QPoint(QApplication.startDragDistance() * 3, 0)
    qtbot.mousePress(tree.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(tree.viewport(), start + QPoint(2, 0))
    qtbot.mouseMove(tree.viewport(), far)  # the drag runs (offscreen it returns at once)
    qtbot.mouseRelease(tree.viewport(), Qt.MouseButton.LeftButton, pos=far)
    assert dragged == ["Conv2d"]


def test_tooltips_give_doc_arity_and_parameters(palette):
    for type_name, spec in CATALOGUE.items():
        text = plain(item_named(palette, type_name).toolTip(0))
        assert spec.doc in text
        assert spec.arity_text() in text
        for p in spec.params:
            assert p.name in text
    conv = plain(item_named(palette, "Conv2d").toolTip(0))
    assert "kernel_size = required" in conv
    assert "stride = 1" in conv and "Step between filter positions." in conv
    assert "No parameters" in plain(item_named(palette, "ReLU").toolTip(0))


def test_screenshots(qtbot, qapp, palette):
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert palette.grab().save(str(SHOTS / "palette.png"))
    qtbot.keyClicks(palette.search, "conv")
    assert palette.grab().save(str(SHOTS / "palette_search_conv.png"))
    light = QPalette(qapp.palette())
    dark = QPalette(light)
    for role, colour in ((QPalette.ColorRole.Window, "#2b2b2b"), (QPalette.ColorRole.Base, "#1e1e1e"),
                         (QPalette.ColorRole.WindowText, "#e0e0e0"), (QPalette.ColorRole.Text, "#e0e0e0")):
        dark.setColor(role, QColor(colour))
    try:
        qapp.setPalette(dark)  # the system going dark: the palette has no colours of its own
        qapp.processEvents()
        assert palette.tree.palette().color(QPalette.ColorRole.Base).name() == "#1e1e1e"
        palette.search.clear()
        assert palette.grab().save(str(SHOTS / "palette_dark.png"))
    finally:
        qapp.setPalette(light)
        qapp.processEvents()
