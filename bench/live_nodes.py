"""What a live snapshot costs the canvas (python -P bench/live_nodes.py [--examples lenet5,resnet]).

The main window at its default size, offscreen, shows an example; for each of ``--snapshots``
made-up snapshots (every node's output, random, of its real shape) the canvas is given the
snapshot (``CanvasScene.set_insight``, what the training panel does with each one) and
repainted at once. Measured side by side in the same window: with View > Live Nodes off
(the snapshot changes nothing on the canvas: the bare repaint) and on (every node's glyph
made and drawn). Goal: a snapshot's repaint stays a small share of the event loop's 50 ms
budget (issue 19: event-loop p99 <= 50 ms while training with live nodes), so the ratio
on/off and the absolute p90 are both printed. Compare on one machine: these are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def window_on(example: str):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.engine.examples import example_path
    from app.widgets.main_window import MainWindow

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(1400, 880)
    window.show()
    assert window.open_file(example_path(example), example=True, ask=False)
    for _ in range(20):
        QApplication.processEvents()
    return window


def snapshot_repaints(window, live: bool, n: int, seed: int = 0) -> tuple[list[float], list[float]]:
    """Milliseconds of ``set_insight`` and of the repaint right after it, for ``n`` snapshots."""
    import numpy as np

    from app.widgets.training.insight import make_insight

    window.set_live_nodes(live)
    a = window.doc.analysis
    rng = np.random.default_rng(seed)
    viewport = window.view.viewport()
    viewport.repaint()
    give, paint = [], []
    for step in range(n):
        acts = {node: rng.standard_normal((1, *shape)).astype(np.float32)
                for node, shape in a.shapes.items() if shape is not None}
        insight = make_insight(acts, a.output, [str(i) for i in range(10)], None, step)
        start = time.perf_counter()
        window.scene.set_insight(insight)
        given = time.perf_counter()
        viewport.repaint()
        done = time.perf_counter()
        give.append(1000 * (given - start))
        paint.append(1000 * (done - given))
    return give, paint


def p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * len(values))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", default="lenet5,resnet")
    parser.add_argument("--snapshots", type=int, default=60)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    print(f"a snapshot on the canvas, {args.snapshots} snapshots each, offscreen 1400x880 (ms)")
    for example in args.examples.split(","):
        window = window_on(example)
        rows = {}
        for round_ in range(2):  # off and on in turn, twice: the machine's speed drifts
            for live in (False, True):
                give, paint = snapshot_repaints(window, live, args.snapshots // 2, seed=round_)
                rows.setdefault(live, ([], []))
                rows[live][0].extend(give)
                rows[live][1].extend(paint)
        for live, (give, paint) in rows.items():
            print(f"{example:<10} live nodes {'on ' if live else 'off'}  set_insight median "
                  f"{statistics.median(give):6.2f} p90 {p90(give):6.2f}   repaint median "
                  f"{statistics.median(paint):6.2f} p90 {p90(paint):6.2f}")
        off, on = statistics.median(rows[False][1]), statistics.median(rows[True][1])
        print(f"{example:<10} repaint with live nodes / without: {on / off:.2f}x")
        window.doc.history.set_clean()
        window.close()
        window.deleteLater()
        app.processEvents()


if __name__ == "__main__":
    main()
