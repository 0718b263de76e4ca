"""Editor benchmarks on a generated 2,000-node graph (the size of a ResNet-152 drawn layer by
layer), measured in one run: ``python bench/editor.py`` (``--quick`` for a smoke run,
``--profile`` to cProfile every measurement that misses its goal).

1. Repaint of the canvas right after a pan step and after a zoom step, at zoom 1.0 centred
   on the middle of the graph, at MIN_ZOOM (the furthest out the wheel goes) and at "fit"
   zoom (all nodes visible). Goal <= 16 ms.
2. One undoable edit to updated shape labels: ``Editor.add_layer`` fed by an existing node,
   and ``Editor.set_params`` on a conv in the middle of the graph (its shapes change
   downstream), each timed through the document's analysis, the scene's label updates and
   the event processing (with its paint) that follows, after which the nodes on screen
   must show the new analysis. Goal <= 50 ms. An edit that changes more than the canvas's
   ``DEFER_AT`` items writes those off screen in idle slices: a second row times it until
   every label is written, and says how long the longest slice took.
3. Opening the saved project (``MainWindow.open_file``) until the scene is built and painted
   once. Goal <= 1 s. ``load_project`` and ``analyze`` alone are shown beside it.

The window is a real MainWindow at 1400x880; without a display Qt runs on the offscreen
platform (software raster painting). Settings, recovery files and the project file go to a
temporary folder (on Linux), never the user's.
"""

from __future__ import annotations

import os
import sys

if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import argparse
import cProfile
import gc
import importlib.util
import io
import platform
import pstats
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# keep the user's configuration and data folders out of it (QSettings, recovery files):
# on Linux QStandardPaths and QSettings follow these
_TMP = tempfile.TemporaryDirectory(prefix="netcanvas-bench-")
os.environ["XDG_CONFIG_HOME"] = str(Path(_TMP.name) / "config")
os.environ["XDG_DATA_HOME"] = str(Path(_TMP.name) / "data")

from PySide6 import __version__ as PYSIDE_VERSION  # noqa: E402
from PySide6.QtCore import QPointF, QSettings, qInstallMessageHandler, qVersion  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.engine.incremental import Analyzer  # noqa: E402
from app.engine.inference import analyze, describe_shape  # noqa: E402
from app.engine.layout import layered_layout  # noqa: E402
from app.engine.project import Project, load_project, save_project  # noqa: E402
from app.widgets.canvas.facts import Facts  # noqa: E402
from app.widgets.canvas.items import NODE_H, NODE_W  # noqa: E402
from app.widgets.canvas.view import MIN_ZOOM  # noqa: E402
from app.widgets.main_window import MainWindow  # noqa: E402

N_NODES = 2000
GOAL_PAINT_MS, GOAL_EDIT_MS, GOAL_OPEN_MS = 16.0, 50.0, 1000.0


def _generated_graph(n: int):
    """``generated_graph`` from bench/engine.py (loaded by path: bench is no package)."""
    spec = importlib.util.spec_from_file_location("_bench_engine", ROOT / "bench" / "engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generated_graph(n)


def stats(samples: list[float]) -> tuple[float, float]:
    """Median and p90 in ms of samples in seconds (p90 as bench/engine.py takes it)."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(0.9 * len(ordered))] * 1e3


def _quiet_offscreen(mode, context, message: str) -> None:
    """Drop the offscreen plugin's "does not support propagateSizeHints()" (docks ask it on
    every layout); pass everything else on."""
    if "propagateSizeHints" not in message:
        sys.stderr.write(message + "\n")


class Bench:
    def __init__(self, quick: bool, profile: bool):
        self.quick, self.profile = quick, profile
        self.app = QApplication.instance() or QApplication(sys.argv[:1])
        self.app.setOrganizationName("NetCanvasBench")
        self.app.setApplicationName("NetCanvasBench")
        self.tmp = Path(_TMP.name)
        settings = QSettings(str(self.tmp / "settings.ini"), QSettings.Format.IniFormat)
        self.w = MainWindow(settings=settings)
        self.w.resize(1400, 880)
        self.w.show()
        self.settle()
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.profiles: list[tuple[str, str]] = []

    # -- helpers -----------------------------------------------------------------------------
    def settle(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            self.app.processEvents()

    def reps(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def row(self, name: str, samples: list[float], goal_ms: float | None, note: str = "",
            rerun=None) -> None:
        med, p90 = stats(samples)
        verdict = "" if goal_ms is None else ("ok" if med <= goal_ms and p90 <= goal_ms else
                                              "OVER" if med > goal_ms else "p90 OVER")
        self.rows.append({"name": name, "n": len(samples), "median": med, "p90": p90, "goal": goal_ms,
                          "verdict": verdict, "note": note})
        if self.profile and verdict.endswith("OVER") and rerun is not None:
            self.profiles.append((name, self.cprofile(rerun)))

    @staticmethod
    def cprofile(fn) -> str:
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        out = io.StringIO()
        st = pstats.Stats(prof, stream=out)
        st.sort_stats("tottime").print_stats(14)
        st.sort_stats("cumulative").print_stats(14)
        return out.getvalue()

    @property
    def view(self):
        return self.w.view

    def paint_once(self) -> float:
        start = time.perf_counter()
        self.view.viewport().repaint()
        return time.perf_counter() - start

    # -- 1. pan and zoom ---------------------------------------------------------------------
    def show_generated(self) -> None:
        project = Project(graph=_generated_graph(N_NODES), name=f"generated {N_NODES}")
        assert len(project.graph.nodes) == N_NODES
        self.w.set_project(project)  # lays the nodes out, builds the scene, fits
        self.settle()
        assert len(self.w.scene.nodes) == N_NODES and self.w.doc.analysis.ok, self.w.doc.analysis.errors[:3]
        rect = self.w.scene.nodes_rect()
        vp = self.view.viewport().size()
        self.notes.append(f"graph: {N_NODES} nodes, {len(self.w.doc.graph.edges)} edges, laid out "
                          f"{rect.width():.0f} x {rect.height():.0f} scene px; viewport {vp.width()} x {vp.height()} px")

    def set_zoom_centre(self, zoom: float | None) -> str:
        """``zoom`` centred on the middle of the graph, or every node in view (None: the view's
        fit stops at a readable zoom and scrolls; fit_all shows the whole graph)."""
        v = self.view
        if zoom is None:
            v.fit_all()
        else:  # through the view, as a user's zoom goes: the scene follows (its overview, labels)
            v.zoom_by(zoom / v.zoom)
            v.centerOn(self.w.scene.nodes_rect().center())
        self.settle()
        return f"{v.zoom:.4g}"

    def visible_nodes(self) -> int:
        v = self.view
        area = v.mapToScene(v.viewport().rect()).boundingRect()
        return sum(1 for i in self.w.scene.nodes.values() if i.sceneBoundingRect().intersects(area))

    def pan_case(self, label: str, zoom: float | None, steps: int) -> None:
        z = self.set_zoom_centre(zoom)
        v = self.view
        for _ in range(5):  # warm up the item caches
            self.paint_once()
        # a drag of 15 px per step (the size of a mouse move at 60 Hz while dragging),
        # a run downwards then back up, so new rows of nodes keep entering the view
        dy = 15
        h0, v0 = v.horizontalScrollBar().value(), v.verticalScrollBar().value()

        def run(n: int) -> list[float]:
            out = []
            for i in range(n):
                sign = -1 if (i // 20) % 2 == 0 else 1
                v.pan(sign * 3, sign * dy)
                out.append(self.paint_once())
                self.app.processEvents()  # whatever the scroll posted, outside the timing
            return out

        gc.collect()
        samples = run(steps)
        moved = (v.horizontalScrollBar().value(), v.verticalScrollBar().value()) != (h0, v0) or \
            v.verticalScrollBar().maximum() > 0
        note = f"zoom {z}, ~{self.visible_nodes()} nodes visible" + ("" if moved else "; nothing to scroll at this zoom")
        self.row(f"repaint after pan  [{label}]", samples, GOAL_PAINT_MS, note, rerun=lambda: run(20))

    def zoom_case(self, label: str, zoom: float | None, steps: int) -> None:
        z = self.set_zoom_centre(zoom)
        v = self.view
        start_zoom = v.zoom
        v.zoom_by(1.1)
        ratio = v.zoom / start_zoom
        v.zoom_by(1 / 1.1)
        clamped = abs(ratio - 1.1) > 1e-3
        if clamped:
            # zoom_by clamps to MIN_ZOOM, so from a fit zoom below it one step jumps to
            # MIN_ZOOM; measure the same 1.1 steps with QGraphicsView.scale instead
            self.notes.append(f"zoom_by(1.1) at fit zoom {start_zoom:.4g} jumped to {start_zoom * ratio:.4g} "
                              f"(x{ratio:.1f}; MIN_ZOOM = {MIN_ZOOM}); zoom_by(1/1.1) there also zooms *in*. "
                              "The fit-zoom steps below use view.scale(1.1) instead.")
            self.set_zoom_centre(zoom)

        def step(f: float) -> None:
            if clamped:
                v.scale(f, f)
            else:
                v.zoom_by(f)

        for _ in range(3):
            self.paint_once()

        def run(n: int) -> list[float]:
            out = []
            for i in range(n):
                # in, out, in, out, ...: every step invalidates the node caches
                step(1.1 if i % 2 == 0 else 1 / 1.1)
                out.append(self.paint_once())
                self.app.processEvents()
            return out

        gc.collect()
        samples = run(steps)
        note = f"zoom {z} <-> x1.1, ~{self.visible_nodes()} nodes visible" + (" (view.scale)" if clamped else "")
        self.row(f"repaint after zoom [{label}]", samples, GOAL_PAINT_MS, note, rerun=lambda: run(20))

    # -- 2. edits to labels ------------------------------------------------------------------
    def edit_case(self, name: str, do, check, reps: int, note=lambda: "") -> None:
        """Time ``do()`` (one undoable command) plus the event processing after it (its
        paint): what the user waits for. The nodes on screen must then show the new
        analysis. An edit that changes more items than ``DEFER_AT`` leaves those off screen
        to idle slices (canvas/facts.py): a second row times the edit until every label is
        written, slices included, and says how long the longest slice took. ``check()``
        reads the labels after that, and the edit is undone outside the timing. The note
        says how much of it the engine's analysis (``Analyzer.analysis``) took, and whether
        it ran whole."""
        history, facts = self.w.doc.history, self.w.scene.facts
        spent: list[float] = []
        full: list[int] = []
        slices: list[float] = []
        measured = Analyzer.analysis

        def analysis(analyzer):
            start = time.perf_counter()
            runs = analyzer.full_runs
            try:
                return measured(analyzer)
            finally:
                spent.append(time.perf_counter() - start)
                full.append(analyzer.full_runs - runs)

        def timed_slice():
            start = time.perf_counter()
            try:
                return Facts._slice(facts)
            finally:
                slices.append(time.perf_counter() - start)

        everything: list[float] = []
        deferred: list[tuple[int, float]] = []

        def once() -> float:
            spent.clear()
            full.clear()
            slices.clear()
            start = time.perf_counter()
            result = do()
            self.app.processEvents()
            elapsed = time.perf_counter() - start
            engine.append((sum(spent), sum(full)))
            checked = time.perf_counter()
            self.check_on_screen()
            start += time.perf_counter() - checked  # (the check is not the editor's work)
            while facts.pending:
                self.app.processEvents()
            everything.append(time.perf_counter() - start)
            deferred.append((len(slices), max(slices, default=0.0)))
            check(result)
            history.undo()
            self.settle(1)
            while facts.pending:
                self.app.processEvents()
            return elapsed

        engine: list[tuple[float, int]] = []
        Analyzer.analysis = analysis
        facts._timer.timeout.disconnect()  # (connected to the bound method: timed instead)
        facts._timer.timeout.connect(timed_slice)
        try:
            once()  # warm up
            gc.collect()
            engine.clear()
            everything.clear()
            deferred.clear()
            samples = [once() for _ in range(reps)]
        finally:
            Analyzer.analysis = measured
            facts._timer.timeout.disconnect()
            facts._timer.timeout.connect(facts._slice)
        analysis_ms = statistics.median(e[0] for e in engine) * 1e3
        whole = sum(e[1] for e in engine)
        self.row(name + " on screen", samples, GOAL_EDIT_MS, f"{note()}; analysis {analysis_ms:.2f} ms of it"
                 + (f" ({whole} full runs)" if whole else " (incremental)"), rerun=lambda: [once() for _ in range(5)])
        if any(n for n, _ in deferred):
            longest = max(t for _, t in deferred) * 1e3
            self.row("  ... every label written", everything, None,
                     f"the rest in {statistics.median(n for n, _ in deferred):.0f} idle slices (median), "
                     f"the longest {longest:.1f} ms")

    def check_on_screen(self) -> None:
        """Every node in the viewport shows the document's analysis (its shape line), and
        nothing in it waits for an idle slice (its edges' labels included)."""
        doc, scene, v = self.w.doc, self.w.scene, self.view
        seen = v.mapToScene(v.viewport().rect()).boundingRect()
        for item in scene.nodes_near(seen):
            shape, count = doc.analysis.shapes.get(item.node_id), doc.analysis.param_counts.get(item.node_id, 0)
            want = f"→ {describe_shape(shape)}" + (f" · {count:,} params" if count else "")
            assert item.shape_text == want, (item.node_id, item.shape_text, want)
        nodes, edges = scene.facts._items_in(seen)
        assert not nodes & scene.facts.pending_nodes and not edges & scene.facts.pending_edges

    def edits(self, reps: int) -> None:
        self.set_zoom_centre(1.0)
        scene, doc, editor = self.w.scene, self.w.doc, self.w.editor
        blocks = sum(1 for i in doc.graph.nodes if i.startswith("add"))
        mid = blocks // 2
        source = f"r{mid}"  # a ReLU ending a residual block in the middle of the graph
        self.view.centerOn(scene.nodes[source])
        self.settle()
        where = scene.nodes[source].sceneBoundingRect().center() + QPointF(NODE_W + 60, NODE_H + 50)

        def add():
            return editor.add_layer("Conv2d", where, connect_from=source)

        def check_add(node_id: str) -> None:
            shape = doc.analysis.shapes.get(node_id)
            assert shape is not None, f"no shape inferred for {node_id}"
            text = scene.nodes[node_id].shape_text
            assert text.startswith(f"→ {describe_shape(shape)}"), (node_id, text)
            edge = next(e for e in scene.edges if e.target == node_id)
            assert scene.edges[edge].label.text() == describe_shape(doc.analysis.shapes[source])

        self.edit_case("add_layer (Conv2d fed by a node) -> labels", add, check_add, reps,
                       lambda: f"fed by {source}, in the middle of the graph")

        conv = f"c{mid}a"
        old = dict(doc.graph.nodes[conv].params)
        wider = dict(old, out_channels=32)

        def widen():
            editor.set_params(conv, wider)
            return conv

        def check_widen(_):
            for node_id in (f"c{mid}a", f"b{mid}a", f"r{mid}a"):
                shape = doc.analysis.shapes[node_id]
                assert shape[0] == 32, (node_id, shape)
                assert scene.nodes[node_id].shape_text.startswith(f"→ {describe_shape(shape)}")

        self.edit_case(f"set_params ({conv} 16 -> 32 ch)    -> labels", widen, check_widen, reps,
                       lambda: "3 shapes change (the block's Add keeps the rest)")
        # the same edit on the block's last conv breaks the Add: every shape below it turns
        # unknown (about half the graph), the most label changes one edit makes
        conv_b = f"c{mid}b"
        broken = dict(doc.graph.nodes[conv_b].params, out_channels=32)
        last = next(reversed(doc.graph.nodes))

        def widen_b():
            editor.set_params(conv_b, broken)
            return conv_b

        lost = []

        def check_broken(_):
            lost[:] = [i for i in doc.graph.nodes if doc.analysis.shapes.get(i) is None]
            assert not doc.analysis.ok
            assert scene.nodes[f"add{mid}"].severity == "error"
            shape = doc.analysis.shapes.get(last)
            assert scene.nodes[last].shape_text.startswith(f"→ {describe_shape(shape)}"), scene.nodes[last].shape_text

        self.edit_case(f"set_params ({conv_b}: Add breaks)  -> labels", widen_b, check_broken, reps,
                       lambda: f"{len(lost)} of {len(doc.graph.nodes)} shapes turn unknown")
        assert doc.analysis.ok and doc.graph.nodes[conv].params == old

    # -- 3. opening the file -----------------------------------------------------------------
    def open_case(self, reps: int) -> None:
        project = Project(graph=_generated_graph(N_NODES), name=f"generated {N_NODES}")
        for node_id, pos in layered_layout(project.graph).items():
            project.graph.nodes[node_id].position = pos
        path = save_project(project, self.tmp / f"generated{N_NODES}.netcanvas.json")
        size_kb = path.stat().st_size / 1024

        parts: list[tuple[float, float, float]] = []
        everything: list[float] = []

        def open_once() -> float:
            self.w.doc.history.set_clean()
            gc.collect()
            start = time.perf_counter()
            ok = self.w.open_file(path, ask=False)
            opened = time.perf_counter()
            self.app.processEvents()  # the posted paint of the new scene happens here
            processed = time.perf_counter()
            self.view.viewport().repaint()
            end = time.perf_counter()
            assert ok and len(self.w.scene.nodes) == N_NODES and self.w.doc.analysis.ok
            self.check_on_screen()
            parts.append((opened - start, processed - opened, end - processed))
            checked = time.perf_counter()
            while self.w.scene.facts.pending:  # the labels off screen, in idle slices
                self.app.processEvents()
            everything.append(end - start + time.perf_counter() - checked)
            self.settle(1)
            return end - start

        first = open_once()
        samples = [open_once() for _ in range(reps)]
        split = [statistics.median(p[i] for p in parts[1:]) * 1e3 for i in range(3)]
        self.row("open_file -> scene built and painted", samples, GOAL_OPEN_MS,
                 f"{size_kb:.0f} KiB file; first open {first * 1e3:.0f} ms; median split: open_file "
                 f"{split[0]:.0f} + processEvents {split[1]:.0f} + repaint {split[2]:.0f} ms",
                 rerun=lambda: [open_once() for _ in range(2)])
        self.row("  ... every label written", everything[1:], None, "the labels off screen in idle slices")
        loads, analyses = [], []
        for _ in range(reps * 3):
            start = time.perf_counter()
            loaded = load_project(path)
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            analyze(loaded.graph)
            analyses.append(time.perf_counter() - start)
        self.row("  load_project alone", loads, None)
        self.row("  analyze alone", analyses, None)

    # -- report ------------------------------------------------------------------------------
    def facts(self) -> str:
        screen = self.app.primaryScreen()
        return (f"Qt {qVersion()}, PySide6 {PYSIDE_VERSION}, platform plugin "
                f"{QApplication.platformName()!r}, device pixel ratio {screen.devicePixelRatio() if screen else '?'}; "
                f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
                f"{os.cpu_count()} CPUs")

    def print_table(self) -> None:
        width = max(len(r["name"]) for r in self.rows) + 2
        print(f"{'measurement':<{width}}{'n':>4}{'median ms':>11}{'p90 ms':>9}{'goal ms':>9}  verdict  notes")
        for r in self.rows:
            goal = f"<= {r['goal']:.0f}" if r["goal"] is not None else ""
            print(f"{r['name']:<{width}}{r['n']:>4}{r['median']:>11.2f}{r['p90']:>9.2f}{goal:>9}  "
                  f"{r['verdict']:<7}  {r['note']}")
        for note in self.notes:
            print(f"note: {note}")
        for name, text in self.profiles:
            print(f"\n== cProfile: {name} ==\n{text}")

    def close(self) -> None:
        self.w.doc.history.set_clean()  # no "save changes?" box on close
        self.w.close()
        self.settle()
        self.w.deleteLater()
        self.settle()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--profile", action="store_true", help="cProfile every measurement that misses its goal")
    args = parser.parse_args()
    started = time.perf_counter()
    qInstallMessageHandler(_quiet_offscreen)
    b = Bench(args.quick, args.profile)
    print(b.facts())
    try:
        b.show_generated()
        for label, zoom, steps in (("zoom 1.0", 1.0, b.reps(60, 10)),
                                   (f"zoom {MIN_ZOOM}", MIN_ZOOM, b.reps(40, 8)),
                                   ("fit all", None, b.reps(30, 6))):
            b.pan_case(label, zoom, steps)
            b.zoom_case(label, zoom, steps)
        b.edits(b.reps(25, 4))
        b.open_case(b.reps(7, 2))
        b.print_table()
    finally:
        b.close()
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    code = main()
    _TMP.cleanup()
    sys.exit(code)
