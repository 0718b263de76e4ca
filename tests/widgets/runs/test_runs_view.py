"""The Runs view on a real run store filled through its API: the table lists, sorts and
filters the runs; three selected runs are overlaid with a legend; their settings are
compared with the differences highlighted; restore is one undo step; "Use these weights"
copies the file; delete removes the row and the weights file; the CSV holds the table."""

from __future__ import annotations

import csv
import io
import math
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.engine.compiler import compile_graph
from app.engine.examples import load_example
from app.engine.graph import Edge, Node
from app.engine.inference import analyze
from app.engine.project import dumps_project, project_to_dict
from app.engine.runs.store import RunRecord, RunStore, store_path_for
from app.engine.weights import save_weights
from app.widgets.document import Document
from app.widgets.runs.table import COLUMNS, RunsFilterModel, RunsTableModel, column
from app.widgets.runs.view import RunsView, store_path_of

IDS = ("20261203-060000-0001", "20261203-060100-0002", "20261203-060200-0003")
NAMES = [str(i) for i in range(10)]


def lenet(lr=0.01, conv1=6, dropout=False):
    p = load_example("lenet5")
    p.training = {**p.training, "lr": lr, "epochs": 3}
    p.graph.nodes["conv1"].params["out_channels"] = conv1
    if dropout:
        p.graph.add_node(Node("drop9", "Dropout", {"p": 0.3}, (5.0, 6.0)))
        p.graph.remove_edge(Edge("relu4", "fc3"))
        p.graph.add_edge(Edge("relu4", "drop9"))
        p.graph.add_edge(Edge("drop9", "fc3"))
    return p


def record_run(store: RunStore, run_id: str, project, *, seed: int, status="finished", weights=True,
               sweep=None, trial=None, val=(0.5, 0.7, 0.8), test=0.75):
    """One run as the recorder writes it: begin, 3 epochs of 20 minibatches, finish (with a
    weights file of the run's graph when ``weights``)."""
    settings = dict(project.training)
    store.begin(run_id, project, settings, {"name": "digits", "class_names": NAMES,
                                            "split_sizes": {"train": 1200, "val": 150, "test": 300}}, "cpu",
                sweep=sweep, trial=trial, params={"lr": settings["lr"]} if sweep else None)
    step = 0
    for epoch, acc in enumerate(val, start=1):
        rows = []
        for _ in range(20):
            step += 1
            rows.append((step, epoch, 2.3 * math.exp(-step / (15 + 5 * seed)) + 0.05 * ((step * 7) % 5), 0.5, 0.01))
        store.log_batches(run_id, rows)
        store.log_epoch(run_id, epoch, 1.0 / epoch, acc - 0.05, 1.1 / epoch, acc, 0.01, 0.5)
    path = None
    if weights:
        model = compile_graph(project.graph, analyze(project.graph))
        path = store.runs_dir / f"{run_id}.safetensors"
        store.runs_dir.mkdir(parents=True, exist_ok=True)
        save_weights(model, path, {"run_id": run_id})
    confusion = [[30 if i == j else (2 if j == (i + seed) % 10 else 0) for j in range(10)] for i in range(10)]
    store.finish(run_id, status, f"Run {run_id} {status}.", test_loss=0.6, test_accuracy=test, confusion=confusion,
                 weights=str(path) if path else None, epochs=len(val), steps=step, seconds=12.0 + seed)


@pytest.fixture
def doc(qtbot, tmp_path):
    d = Document(lenet(), scratch_dir=lambda: tmp_path / "scratch")
    d.save(tmp_path / "lenet.netcanvas.json")
    return d


@pytest.fixture
def store(doc):
    s = RunStore(store_path_for(doc.weights.run_target()))
    record_run(s, IDS[0], lenet(), seed=0, val=(0.5, 0.7, 0.8), test=0.75)
    record_run(s, IDS[1], lenet(lr=0.05), seed=1, val=(0.6, 0.85, 0.9), test=0.88, sweep="sweep-a", trial=2)
    record_run(s, IDS[2], lenet(lr=0.05, conv1=8, dropout=True), seed=2, status="stopped", val=(0.4, 0.6),
               test=None)
    yield s
    s.close()


@pytest.fixture
def view(qtbot, doc, store):
    v = RunsView(doc)
    qtbot.addWidget(v)
    v.resize(1200, 500)
    v.set_store(store_path_of(doc))
    v.show()
    qtbot.waitExposed(v)
    return v


def cells(view, key):
    """Column ``key`` as the table shows it, top to bottom."""
    c = column(key)
    return [view.proxy.index(r, c).data() for r in range(view.proxy.rowCount())]


def test_the_table_lists_every_run_with_its_changes_accuracies_and_sweep(view, store):
    assert store_path_of(view.doc) == view.store_path and view.store_path.name == "lenet.runs.sqlite"
    assert view.proxy.rowCount() == 3 and view.count.text() == "3 runs"
    assert cells(view, "run") == list(reversed(IDS))  # newest first
    assert cells(view, "status") == ["stopped", "finished", "finished"]
    changes = cells(view, "changes")
    assert changes[2] == "first run" and changes[1] == "lr 0.01 -> 0.05"
    assert "conv1 out_channels 6 -> 8" in changes[0] and "drop9" in changes[0] and "lr" not in changes[0]
    assert cells(view, "val") == ["60.00%", "90.00%", "80.00%"]
    assert cells(view, "test") == ["", "88.00%", "75.00%"]
    assert cells(view, "sweep") == ["", "sweep-a #2", ""]
    assert cells(view, "duration") == ["14 s", "13 s", "12 s"]
    assert not view.empty.isVisible()
    # a column wide enough for what it shows: the id (beside its colour swatch) is never cut short
    fm = view.table.fontMetrics()
    assert view.table.columnWidth(column("run")) >= fm.horizontalAdvance(IDS[0]) + 16 + 16


def test_sorting_by_a_column_and_filtering_by_words_and_status(view, qtbot):
    view.table.sortByColumn(column("val"), Qt.SortOrder.AscendingOrder)
    assert cells(view, "val") == ["60.00%", "80.00%", "90.00%"]
    view.table.sortByColumn(column("test"), Qt.SortOrder.DescendingOrder)
    assert cells(view, "test") == ["88.00%", "75.00%", ""]  # no value last, either way
    view.table.sortByColumn(column("test"), Qt.SortOrder.AscendingOrder)
    assert cells(view, "test") == ["75.00%", "88.00%", ""]

    view.filter.setText("0.05")  # matches the changes column of one run
    assert cells(view, "run") == [IDS[1]]
    view.filter.setText("SWEEP-A")  # case-insensitive, any column
    assert cells(view, "run") == [IDS[1]]
    view.filter.setText("")
    view.status_filter.setCurrentIndex(view.status_filter.findData("stopped"))
    assert cells(view, "run") == [IDS[2]] and view.count.text() == "1 of 3 runs"
    view.status_filter.setCurrentIndex(view.status_filter.findData("crashed"))
    assert view.proxy.rowCount() == 0
    view.status_filter.setCurrentIndex(0)
    assert view.proxy.rowCount() == 3


def test_a_new_run_takes_its_place_in_the_sorted_table_on_refresh(view, store):
    view.table.sortByColumn(column("val"), Qt.SortOrder.DescendingOrder)
    assert cells(view, "val") == ["90.00%", "80.00%", "60.00%"]
    record_run(store, "20261203-060300-0004", lenet(lr=0.02), seed=3, val=(0.7, 0.95), weights=False)
    record_run(store, "20261203-060400-0005", lenet(lr=0.03), seed=4, val=(0.1, 0.2), weights=False)
    view.refresh()
    assert cells(view, "val") == ["95.00%", "90.00%", "80.00%", "60.00%", "20.00%"]
    view.set_note(IDS[0], "zzz")  # an edit: the next sort reads the new note
    view.table.sortByColumn(column("note"), Qt.SortOrder.DescendingOrder)
    assert cells(view, "run")[0] == IDS[0]


def test_three_runs_overlaid_draw_three_curves_with_a_legend(view, qtbot, tmp_path):
    assert view.compare.curves.message.isVisible()  # nothing selected: it says what to do
    view.select(list(IDS))
    curves = view.compare.curves
    assert set(curves.curves) == set(IDS)
    loss_entries = curves.legend_entries(curves.loss_plot)
    acc_entries = curves.legend_entries(curves.accuracy_plot)
    assert sorted(loss_entries) == sorted([IDS[0], f"{IDS[1]} (trial 2)", IDS[2]]) == sorted(acc_entries)
    drawn = [i for i in curves.loss_plot.getPlotItem().listDataItems() if i.name()]
    assert len(drawn) == 3 and len(curves.accuracy_plot.getPlotItem().listDataItems()) == 3
    colours = {i.name(): i.opts["pen"].color().name() for i in drawn}
    assert len(set(colours.values())) == 3  # a colour per run, shown beside its id in the table too
    swatch = view.model.index(view.model.row_of(IDS[0]), column("run")).data(Qt.ItemDataRole.DecorationRole)
    assert swatch.name() == colours[IDS[0]]
    x, y = {i.name(): i for i in drawn}[IDS[0]].getData()
    assert len(x) == 60 and all(math.isfinite(v) for v in y)
    acc = {i.name(): i.getData()[1].tolist() for i in curves.accuracy_plot.getPlotItem().listDataItems()}
    assert acc[IDS[2]] == pytest.approx([0.4, 0.6])
    assert not curves.message.isVisible()
    assert curves.legends[curves.loss_plot].isVisible()  # at 1200 x 500 the plots have room for it
    # the confusion matrices, one a run, in the run's colour
    matrices = view.compare.confusion.matrices
    assert [m.title.split(" ")[0] for m in matrices] == list(reversed(IDS))
    assert int(matrices[0].matrix[0, 0]) == 30
    view.grab().save(str(tmp_path / "runs.png"))  # paints without error


def test_the_settings_comparison_highlights_what_differs(view):
    view.select([IDS[0], IDS[2]])
    s = view.compare.settings
    assert {"training.lr", "conv1.out_channels", "drop9", "drop9.p"} <= s.differing
    assert "training.batch_size" not in s.differing and "conv2.out_channels" not in s.differing
    assert s.is_highlighted("training.lr") and s.is_highlighted("conv1.out_channels")
    assert not s.is_highlighted("training.batch_size")
    assert s.keys[: len(s.differing)] == [k for k in s.keys if k in s.differing]  # differences first
    lr = s.keys.index("training.lr")
    assert [s.table.item(lr, j).text() for j in range(2)] == ["0.05", "0.01"]
    drop = s.keys.index("drop9")
    assert [s.table.item(drop, j).text() for j in range(2)] == ["Dropout", "—"]
    s.only_differences.setChecked(True)
    assert s.table.isRowHidden(s.keys.index("training.batch_size")) and not s.table.isRowHidden(lr)
    assert "differ" in s.summary.text()


def test_restore_is_one_undo_step_bringing_back_graph_and_settings(view, doc, qtbot):
    before = dumps_project(doc.project)
    record = view.store.get(IDS[2])
    view.select([IDS[2]])
    assert view.buttons["restore"].isEnabled()
    with qtbot.waitSignal(view.restored) as sig:
        view.buttons["restore"].click()
    assert sig.args == [IDS[2]]
    assert doc.history.count == 1 and doc.history.undo_text == f"Restore run {IDS[2]}"
    assert doc.project.training["lr"] == 0.05 and doc.graph.nodes["conv1"].params["out_channels"] == 8
    assert project_to_dict(doc.project)["graph"] == record.project["graph"]
    doc.model.undo()
    assert dumps_project(doc.project) == before
    doc.model.redo()
    assert "drop9" in doc.graph.nodes


def test_use_these_weights_copies_the_run_file_over_the_project_weights(view, doc, store, qtbot, monkeypatch):
    target = doc.weights.run_target()
    run_file = store.runs_dir / f"{IDS[0]}.safetensors"
    with qtbot.waitSignal(view.weights_chosen) as sig:
        assert view.use_weights(IDS[0]) == target
    assert sig.args == [target] and target.read_bytes() == run_file.read_bytes()
    # run 3 trained another graph: its weights do not fit; declining changes nothing
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Cancel)
    assert view.use_weights(IDS[2]) is None
    assert asked and "do not fit" in asked[0] and target.read_bytes() == run_file.read_bytes()
    assert doc.history.count == 0
    # accepting restores the run's graph (one undo step) and then uses its weights
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert view.use_weights(IDS[2]) == target
    assert target.read_bytes() == (store.runs_dir / f"{IDS[2]}.safetensors").read_bytes()
    assert doc.history.count == 1 and "drop9" in doc.graph.nodes


def test_delete_asks_then_removes_the_row_and_the_weights_file(view, store, monkeypatch):
    weights = store.runs_dir / f"{IDS[1]}.safetensors"
    assert weights.exists()
    view.select([IDS[1]])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    view.buttons["delete"].click()
    assert view.proxy.rowCount() == 3 and weights.exists()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    view.buttons["delete"].click()
    assert cells(view, "run") == [IDS[2], IDS[0]]
    assert not weights.exists() and [r.id for r in store.runs()] == [IDS[2], IDS[0]]
    assert view.selected_ids() == []


def test_note_and_tags_are_edited_in_the_table_and_kept_in_the_store(view, store, qtbot):
    row = view.model.row_of(IDS[0])
    view.model.setData(view.model.index(row, column("note")), "baseline\nfrom the example")
    view.set_tags(IDS[0], ["base", "lenet"])
    assert store.get(IDS[0]).note == "baseline\nfrom the example"
    assert store.get(IDS[0]).tags == ["base", "lenet"]
    assert view.model.index(row, column("tags")).data() == "base, lenet"
    assert view.model.index(row, column("note")).data() == "baseline from the example"
    view.filter.setText("lenet base")
    assert cells(view, "run") == [IDS[0]]
    view.refresh()  # read back from the store
    assert cells(view, "tags") == ["base, lenet"]


def test_export_csv_writes_the_rows_shown_atomically(view, tmp_path):
    view.filter.setText("finished")
    out = view.export_csv(tmp_path / "runs.csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == [IDS[1], IDS[0]]
    second = rows[0]
    assert second["status"] == "finished" and second["changes"] == "lr 0.01 -> 0.05"
    assert float(second["best_val_accuracy"]) == pytest.approx(0.9) and float(second["test_accuracy"]) == 0.88
    assert second["sweep"] == "sweep-a" and second["trial"] == "2" and second["params"] == '{"lr": 0.05}'
    assert second["started"].endswith("Z") and float(second["duration_s"]) == 13.0
    assert rows[1]["changes"] == "first run" and rows[1]["weights"].endswith(f"{IDS[0]}.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".runs.csv")]  # no temporary left


def test_no_store_yet_lists_nothing_and_leaves_no_file(qtbot, doc, tmp_path):
    v = RunsView(doc)
    qtbot.addWidget(v)
    path = store_path_of(doc)
    v.set_store(path)
    assert v.proxy.rowCount() == 0 and "No runs recorded yet" in v.empty.text()
    assert not path.exists()  # looking does not create the store beside the project
    v.set_store(None)
    assert "No project" in v.empty.text()
    s = RunStore(path)  # the first run creates it; refresh then lists it
    record_run(s, IDS[0], lenet(), seed=0)
    v.set_store(path)
    assert v.proxy.rowCount() == 1
    s.close()


def test_a_broken_store_file_is_said_in_the_view_not_raised(qtbot, doc):
    path = store_path_of(doc)
    path.write_bytes(b"this is not sqlite" * 100)
    v = RunsView(doc)
    qtbot.addWidget(v)
    v.set_store(path)
    assert v.proxy.rowCount() == 0 and "cannot be read" in v.empty.text() and str(path) in v.empty.text()


def test_a_thousand_runs_load_sort_and_filter_quickly(qtbot):
    project = project_to_dict(lenet())
    records = []
    for i in range(1000):
        p = project if i % 2 else {**project, "training": {**project["training"], "lr": 0.001 * (i + 1)}}
        records.append(RunRecord(
            id=f"20261203-{i:06d}-abcd", status=("finished", "stopped", "crashed")[i % 3], started=1e9 + i,
            ended=1e9 + i + 30, project=p, settings={}, dataset={}, device="cpu", versions={}, note="",
            tags=["t%d" % (i % 7)], sweep=None, trial=None, params={}, best_val_accuracy=(i % 97) / 97,
            best_val_loss=None, test_accuracy=None if i % 5 == 0 else (i % 89) / 89, test_loss=None,
            confusion=None, message="", weights=None, epochs=3, steps=60, seconds=None, host="h", pid=1))
    model, proxy = RunsTableModel(), RunsFilterModel()
    proxy.setSourceModel(model)
    start = time.perf_counter()
    model.set_runs(records)
    proxy.sort(column("changes"))  # works out every run's changes once
    proxy.sort(column("test"), Qt.SortOrder.DescendingOrder)
    proxy.set_text("t3")
    proxy.set_status("crashed")
    elapsed = time.perf_counter() - start
    assert proxy.rowCount() == len([r for r in records if r.status == "crashed" and "t3" in r.tags[0]])
    assert elapsed < 5.0, f"1,000 runs took {elapsed:.2f} s to list, sort and filter"
    assert len(COLUMNS) == model.columnCount()


def test_refresh_keeps_the_selection_and_a_training_run_locks_restore(view, doc):
    view.select([IDS[0]])
    view.refresh()
    assert view.selected_ids() == [IDS[0]] and set(view.compare.curves.curves) == {IDS[0]}
    menu = {a.text(): a.isEnabled() for a in view.context_menu().actions() if a.text()}
    assert menu["Restore"] and menu["Use these weights"] and menu["Export CSV…"]
    view.set_editing_locked(True)  # a run trains the graph: it cannot be replaced under it
    assert not view.buttons["restore"].isEnabled() and not view.buttons["use"].isEnabled()
    assert not view.restore(IDS[0]) and view.use_weights(IDS[0]) is None and doc.history.count == 0
    view.set_editing_locked(False)
    assert view.buttons["restore"].isEnabled()
