"""The training panel's insight views: the Health and Boundary tabs fed by the snapshots (live,
and of the weights held), the Boundary tab only for two-feature inputs, what is handed to the
canvas (``insight_changed``), and when snapshots are pulled for them (``watching``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.engine import boundary, health, snapshots
from app.engine.compiler import compile_graph
from app.engine.examples import example_path
from app.engine.training.events import SnapshotEvent
from app.widgets.training.boundary_view import UNAVAILABLE
from app.widgets.training.insight import CanvasInsight
from app.widgets.threads import POLL_INTERVAL_MS
from app.widgets.training import panel as panel_module
from app.widgets.training.session import TrainingSession


def measured(insight) -> bool:
    """The insight the weights held send once measured in their worker (a change of sample
    may send one without their health before it)."""
    return insight is not None and insight.health is not None


def open_example(window, name):
    assert window.open_file(example_path(name), example=True, ask=False)
    window._docks["training"].show()
    window._docks["training"].raise_()
    return window.training


def xor_event(panel, step: int, health_step: int | None) -> SnapshotEvent:
    """A snapshot as the trainer sends it for the XOR example (its own engine functions)."""
    doc = panel.doc
    torch.manual_seed(step)
    model = compile_graph(doc.graph, doc.analysis)
    x = panel.dataset.train.x[:8]
    acts = snapshots.activations(model, doc.analysis, x)
    figures = health.HealthProbe(model, doc.graph, doc.analysis).measure(model, x)
    plane = boundary.boundary_maps(model, doc.analysis, panel.dataset, resolution=16)
    return SnapshotEvent(step, {}, acts, health=figures, boundary=plane, health_step=health_step)


def test_the_boundary_tab_is_there_for_two_feature_inputs_only(qtbot, lenet):
    panel = lenet.training
    index = panel.tabs.indexOf(panel.boundary_view)
    assert panel.tabs.tabText(index) == "Boundary" and panel.tabs.tabText(index - 1) == "Health"
    assert not panel.tabs.isTabEnabled(index) and panel.tabs.tabToolTip(index) == UNAVAILABLE
    assert panel.boundary_view.placeholder.text() == UNAVAILABLE
    open_example(lenet, "xor")
    assert panel.tabs.isTabEnabled(index) and panel.tabs.tabToolTip(index) == ""
    panel.tabs.setCurrentWidget(panel.boundary_view)
    lenet.editor.set_params("input", {"shape": [3]})  # three features: no plane to draw
    assert not panel.tabs.isTabEnabled(index) and panel.tabs.currentWidget() is panel.curves


def test_a_snapshot_feeds_health_boundary_and_the_canvas(qtbot, window):
    panel = open_example(window, "xor")
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=30_000)
    panel.tabs.setCurrentWidget(panel.curves)
    event = xor_event(panel, step=40, health_step=40)
    with qtbot.waitSignal(panel.insight_changed) as emitted:
        panel._snapshot(event)
    insight = emitted.args[0]
    assert isinstance(insight, CanvasInsight) and insight.step == 40 and insight.output_node == "sigmoid"
    assert insight.activations["fc1"].shape == (8,)  # the chosen sample's (row 0)
    np.testing.assert_array_equal(insight.activations["tanh"], event.activations["tanh"][0])
    assert insight.health["fc1"]["mean"] == event.health["fc1"]["mean"]
    assert insight.class_names == panel.dataset.class_names
    # health is recorded though its tab is not shown; the boundary waits until its tab is
    assert panel.health_view.rows() == ["fc1", "tanh", "fc2", "sigmoid"]
    assert panel.boundary_view.data is None
    panel.tabs.setCurrentWidget(panel.boundary_view)
    assert panel.boundary_view.data is event.boundary and panel.boundary_view.units.tile_count() > 0
    assert panel.boundary_view.point_counts()[0] == len(event.boundary["points"]["train"])
    # the snapshots between two measurements carry the last one again: no new point
    again = xor_event(panel, step=41, health_step=40)
    panel._snapshot(again)
    assert len(panel.health_view.model.history("fc1", "mean")) == 1
    panel._snapshot(xor_event(panel, step=60, health_step=60))
    assert len(panel.health_view.model.history("fc1", "mean")) == 2
    with qtbot.waitSignal(panel.insight_changed, check_params_cb=lambda i: i is None):
        window.open_file(example_path("mlp"), example=True, ask=False)  # another project: nothing to show
    assert panel.health_view.rows() == []


def test_snapshots_are_pulled_for_health_boundary_and_live_nodes(qtbot, window, monkeypatch):
    panel = open_example(window, "xor")
    asked = []
    monkeypatch.setattr(TrainingSession, "running", property(lambda session: True))
    monkeypatch.setattr(panel.session, "request_snapshot", lambda samples=None: asked.append(samples))
    panel.tabs.setCurrentWidget(panel.curves)
    assert not panel.watching()
    panel.tabs.setCurrentWidget(panel.health_view)
    assert panel.watching() and len(asked) == 1
    panel._snapshot_pending = False
    panel.tabs.setCurrentWidget(panel.boundary_view)
    assert panel.watching() and len(asked) == 2
    panel._snapshot_pending = False
    panel.tabs.setCurrentWidget(panel.curves)
    window._docks["training"].hide()
    assert not panel.watching()
    panel.live_nodes = True  # the canvas draws them: wanted with no tab on screen
    assert panel.watching()
    panel._pull_snapshot()
    assert len(asked) == 3
    panel._snapshot_timer.stop()
    monkeypatch.undo()  # not running after all: closing the window must not ask to stop it


def test_the_weights_held_show_their_health_and_boundary(qtbot, window):
    panel = open_example(window, "xor")
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.sample is not None, timeout=30_000)
    torch.manual_seed(0)
    panel.local_model = compile_graph(window.doc.graph, window.doc.analysis)
    panel.tabs.setCurrentWidget(panel.health_view)
    with qtbot.waitSignal(panel.insight_changed, check_params_cb=measured) as emitted:
        panel._show_local_model()
    rows = panel.health_view.rows()
    assert rows == ["fc1", "tanh", "fc2", "sigmoid"]
    assert panel.health_view.model.latest["tanh"]["saturated"] is not None
    assert panel.health_view.model.latest["fc1"]["grad_norm"] is None  # no step was taken
    assert panel.boundary_view.data is not None and panel.boundary_view.data["probs"].shape[-1] == 1
    insight = emitted.args[0]
    assert set(insight.activations) >= {"fc1", "sigmoid"} and insight.health is not None
    # another sample: the activations again, no new health measurement
    with qtbot.waitSignal(panel.insight_changed):
        panel._sample_changed(panel.sample)
    assert len(panel.health_view.model.history("fc1", "mean")) == 1


def test_the_weights_held_are_measured_off_the_gui_thread_and_a_stale_measure_is_dropped(qtbot, window,
                                                                                        monkeypatch):
    """At the end of a run the health of the final weights was measured on the GUI thread: a
    forward pass with hooks froze the editor for 0.2-0.3 s. A worker measures them now; what
    it finds of weights no longer held (another run's, another project's) is not shown."""
    panel = open_example(window, "xor")
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.sample is not None, timeout=30_000)
    gate, threads, real = threading.Event(), [], panel_module.measure_local

    def measure(*args):
        threads.append(threading.current_thread())
        assert gate.wait(10)
        return real(*args)

    monkeypatch.setattr(panel_module, "measure_local", measure)
    torch.manual_seed(0)
    panel.local_model = compile_graph(window.doc.graph, window.doc.analysis)
    panel._show_local_model()
    qtbot.waitUntil(lambda: bool(threads))
    assert threads[0] is not threading.main_thread()
    assert panel.health_view.rows() == []  # the GUI thread went on
    job = panel._local_job
    panel._show_weights(None)  # those weights are no longer held
    gate.set()
    qtbot.waitUntil(job.done)
    qtbot.wait(3 * POLL_INTERVAL_MS)  # (the poll that would show it)
    assert panel.health_view.rows() == [] and panel.boundary_view.data is None
    panel.local_model = compile_graph(window.doc.graph, window.doc.analysis)
    with qtbot.waitSignal(panel.insight_changed, check_params_cb=measured):
        panel._show_local_model()
    assert panel.health_view.rows() == ["fc1", "tanh", "fc2", "sigmoid"] and panel.boundary_view.data is not None


@pytest.mark.parametrize("tab", ["health", "boundary"])
def test_the_tabs_fit_the_panel_at_the_default_window_size(qtbot, window, tab):
    window.resize(1400, 880)  # the main window's default size
    panel = open_example(window, "xor")
    window.resizeDocks([window._docks["training"]], [420], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=30_000)
    view = panel.health_view if tab == "health" else panel.boundary_view
    panel.tabs.setCurrentWidget(view)
    event = xor_event(panel, step=10, health_step=10)
    for figures in event.health.values():  # every column shown: the widest table
        figures.update(dead=0.1, saturated=0.2, grad_norm=1e-3, update_ratio=1e-3)
    panel._snapshot(event)
    QApplication.processEvents()  # the layouts settle
    if tab == "health":
        assert panel.health_view.table.horizontalScrollBar().maximum() == 0
        assert not any(panel.health_view.table.isColumnHidden(c) for c in range(7))
    else:
        assert panel.boundary_view.plot.width() >= 160 and panel.boundary_view.units.width() >= 120


def test_the_output_is_drawn_as_class_probabilities_only_where_it_scores_the_classes():
    from types import SimpleNamespace

    from app.widgets.training.insight import as_probabilities, class_output

    a = SimpleNamespace(output="out", shapes={"out": (10,)})
    assert class_output(a, [str(i) for i in range(10)], "labels") == "out"
    assert class_output(a, [str(i) for i in range(10)], "input") is None  # an autoencoder's output is no score
    assert class_output(a, ["a", "b", "c"], "labels") is None  # a size that does not match the classes
    assert class_output(SimpleNamespace(output="out", shapes={"out": (1,)}), ["0", "1"], "labels") == "out"
    assert class_output(SimpleNamespace(output="out", shapes={"out": (4, 4)}), ["0", "1"], "labels") is None

    logit = np.array([[0.4]], dtype=np.float32)  # a raw logit inside 0..1 is still a logit
    assert as_probabilities(logit, "Linear")[0, 0] == pytest.approx(1 / (1 + np.exp(-0.4)))
    assert as_probabilities(logit, "Sigmoid")[0, 0] == pytest.approx(0.4)
    scores = np.array([[2.0, 0.0, -1.0]], dtype=np.float32)
    p = as_probabilities(scores, "Linear")
    assert p.sum() == pytest.approx(1.0) and p.argmax() == 0
    assert as_probabilities(np.log(p), "LogSoftmax") == pytest.approx(p)
