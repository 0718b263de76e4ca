"""The History dock and the Undo/Redo actions, bound to the engine's history: what they
show as steps are pushed, undone and saved, and a click on a step going back to it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.engine.session.history import Command, History
from app.widgets.history_view import OPENED, SAVED_TIP, HistoryView


class Named(Command):
    def __init__(self, text: str):
        self.text = text


def rows(view: HistoryView) -> list[str]:
    return [view.item(i).text() for i in range(view.count())]


def clean_rows(view: HistoryView) -> list[int]:
    return [i for i in range(view.count()) if view.item(i).toolTip() == SAVED_TIP]


def test_the_view_lists_the_steps_after_the_opened_project_and_selects_the_current(qtbot):
    history = History()
    view = HistoryView(history)
    qtbot.addWidget(view)
    assert rows(view) == [OPENED] and view.currentRow() == 0 and clean_rows(view) == [0]
    history.push(Named("Add ReLU"))
    history.push(Named("Edit conv1"))
    assert rows(view) == [OPENED, "Add ReLU", "Edit conv1"] and view.currentRow() == 2
    assert view.item(2).isSelected() and clean_rows(view) == [0]
    history.undo()
    assert view.currentRow() == 1 and rows(view)[-1] == "Edit conv1"  # still there to redo
    history.set_clean()
    assert clean_rows(view) == [1]
    history.push(Named("Delete"))  # the step that could be redone goes
    assert rows(view) == [OPENED, "Add ReLU", "Delete"] and view.currentRow() == 2
    history.reset_clean()
    assert clean_rows(view) == []
    history.clear()
    assert rows(view) == [OPENED] and clean_rows(view) == [0] and view.currentRow() == 0


def test_a_click_on_a_step_undoes_or_redoes_up_to_it(qtbot):
    history = History()
    for text in ("a", "b", "c"):
        history.push(Named(text))
    view = HistoryView(history)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(view.item(1)).center())
    assert history.index == 1 and view.currentRow() == 1
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(view.item(0)).center())
    assert history.index == 0
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(view.item(3)).center())
    assert history.index == 3 and rows(view) == [OPENED, "a", "b", "c"]


def test_undo_and_redo_actions_follow_the_history(lenet):
    window = lenet
    undo, redo = window.actions_by_name["undo"], window.actions_by_name["redo"]
    assert not undo.isEnabled() and not redo.isEnabled() and undo.text() == "&Undo" and redo.text() == "&Redo"
    window.editor.set_params("conv1", {"out_channels": 7, "kernel_size": 5})
    assert undo.isEnabled() and undo.text() == "&Undo Edit conv1" and not redo.isEnabled()
    undo.trigger()
    assert window.doc.graph.nodes["conv1"].params["out_channels"] == 6
    assert not undo.isEnabled() and redo.isEnabled() and redo.text() == "&Redo Edit conv1"
    redo.trigger()
    assert window.doc.graph.nodes["conv1"].params["out_channels"] == 7 and undo.isEnabled()
    assert window.history.currentRow() == window.doc.history.index == 1


def test_typed_edits_of_one_field_are_one_step_in_the_history_dock(lenet):
    window = lenet
    for typed in (1, 12, 128):
        window.editor.set_params("fc1", {**window.doc.graph.nodes["fc1"].params, "out_features": typed})
    assert rows(window.history) == [OPENED, "Edit fc1"]
