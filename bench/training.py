"""Training with the panel live versus headless, measured side by side in one run
(python bench/training.py).

1. Throughput: the same project (LeNet-5 on the bundled digits28 by default, 30 epochs),
   trained by the headless ``netcanvas train`` and by the editor's training panel (its own
   child process, with live views drawn in the editor), both in each round, which one goes
   first alternating from round to round. During each panel run the views change every
   ``--switch`` seconds, as a user would look around: Curves, then Filters, then
   Activations (only the view on screen draws); with ``--live``, View > Live Nodes is on
   (every node's glyph on the canvas, health badges, snapshots fetched all along) and the
   Health tab (and Boundary, for two-feature data) join the views. Throughput = training samples per second of
   the epochs (the trainer's own epoch timings, so process start-up and imports are left
   out of both). Goal: panel / headless >= 0.95.
   With ``--load N``, each round is measured twice: on the idle machine, and with N
   CPU-bound processes at normal priority running beside both contenders (started before
   and stopped after each measurement, so that headless and panel see the same load), as
   a browser tab or a build would on a user's desktop. Goal there: >= 0.90.
2. The editor's event-loop latency while the panel trains: a probe timer in the GUI thread,
   re-armed after a random 50-150 ms each time (random, so it samples every phase of the
   editor's own timers), records how late it fires; p50, p99 and max over the whole run.
   Goal: p99 <= 50 ms. (A probe is load too: each wake-up of the editor costs ~0.4 ms of CPU
   on a small VM; a 10 ms probe took 1.5 % of a core, more than the panel's own message
   handling.)

The editor runs offscreen (QT_QPA_PLATFORM=offscreen), so it draws everything a user would
see, minus the final blit to a screen. Compare ratios, not absolute times: these machines
are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def headless(example: str, epochs: int, out_dir: str) -> float:
    """Samples per second of ``netcanvas train --json`` (epochs' own timings)."""
    from app.engine.examples import load_example
    from app.engine.training import prepare_run

    cmd = [sys.executable, "-m", "app", "train", example, "--json", "--epochs", str(epochs),
           "--device", "cpu", "--out", out_dir]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    seconds = sum(line["seconds"] for line in lines if "epoch" in line)
    print("  headless epoch seconds", [line["seconds"] for line in lines if "epoch" in line], flush=True)
    train = len(prepare_run(load_example(example), device="cpu").dataset.train)
    return train * epochs / seconds


STALL_S = 0.1  # a probe this late is printed with when it came


class PanelRun:
    """One training run from the panel of a real main window, with a latency probe."""

    def __init__(self, app, example: str, epochs: int, switch: float = 2.0, live: bool = False):
        from PySide6.QtCore import QSettings, Qt, QTimer

        from app.engine.examples import example_path
        from app.widgets.main_window import MainWindow

        self.app = app
        self.settings_dir = tempfile.TemporaryDirectory()
        settings = QSettings(str(Path(self.settings_dir.name) / "s.ini"), QSettings.Format.IniFormat)
        self.window = MainWindow(settings=settings)
        self.window.resize(1400, 900)
        self.window.show()
        assert self.window.open_file(example_path(example), example=True, ask=False)
        self.window.doc.project.training["epochs"] = epochs
        self.window.doc.project.training["device"] = "cpu"
        self.panel = self.window.training
        self.epoch_seconds: list[float] = []
        self.lateness: list[float] = []
        self.stalls: list[tuple[float, float, str, int]] = []  # (lateness, s after the first batch, tab, batches)
        self._first_batch = 0.0
        self.finished = None
        self.panel.session.epoch.connect(lambda e: self.epoch_seconds.append(e.seconds))
        self.panel.session.finished.connect(lambda e: setattr(self, "finished", e))
        self.panel.session.failed.connect(lambda m: setattr(self, "finished", m))
        self.timer = QTimer(singleShot=True, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self._due = None
        self._random = random.Random(0)
        self.batches = 0
        self.panel.session.batches.connect(self._batches)
        self.views = [self.panel.curves, self.panel.filters, self.panel.activations]
        if live:
            self.window.set_live_nodes(True)
            self.views.append(self.panel.health_view)
            if self.panel.tabs.isTabEnabled(self.panel.tabs.indexOf(self.panel.boundary_view)):
                self.views.append(self.panel.boundary_view)
        self.shown: list[str] = []
        self.switcher = QTimer(interval=int(switch * 1000))
        self.switcher.timeout.connect(self._switch)

    def _switch(self) -> None:
        tabs = self.panel.tabs
        view = self.views[(self.views.index(tabs.currentWidget()) + 1) % len(self.views)
                          if tabs.currentWidget() in self.views else 0]
        tabs.setCurrentWidget(view)
        self.shown.append(type(view).__name__)

    def _batches(self, events: list) -> None:
        if not self.batches:  # the run shows its curves first
            self._first_batch = time.perf_counter()
            self._switch_to_first()
        self.batches += len(events)

    def _switch_to_first(self) -> None:
        self.panel.tabs.setCurrentWidget(self.views[0])
        self.shown.append(type(self.views[0]).__name__)
        self.switcher.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._due is not None and self.batches and self.finished is None:  # while minibatches stream in
            late = max(0.0, now - self._due)
            self.lateness.append(late)
            if late > STALL_S:  # when, and beside what, to find its cause
                tab = self.panel.tabs.currentWidget()
                self.stalls.append((late, now - self._first_batch, type(tab).__name__, self.batches))
        self._arm()

    def _arm(self) -> None:
        ms = self._random.randint(50, 150)
        self._due = time.perf_counter() + ms / 1000
        self.timer.start(ms)

    def run(self) -> None:
        wait_until(lambda: self.panel.dataset is not None, 60)  # the preview, as a user sees it first
        self.window.train()
        self._arm()
        wait_until(lambda: self.finished is not None, 600)
        self.timer.stop()
        self.switcher.stop()
        if not hasattr(self.finished, "ok") or not self.finished.ok:
            raise RuntimeError(f"the panel's run failed: {self.finished}")
        self.window.doc.history.set_clean()
        self.window.close()
        # gone for good before the next round: a closed window's timers would still run
        from PySide6.QtCore import QCoreApplication, QEvent

        self.window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def wait_until(condition, timeout: float) -> None:
    """Run a real event loop (as the app does) until ``condition()``, checked every 200 ms
    (with the editor's own tick, not a wake-up of its own)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, check = QEventLoop(), QTimer(interval=200)
    deadline = time.perf_counter() + timeout
    check.timeout.connect(lambda: loop.quit() if condition() or time.perf_counter() > deadline else None)
    check.start()
    if not condition():
        loop.exec()
    check.stop()


def panel_run(app, example: str, epochs: int, switch: float, live: bool) -> tuple[float, list[float]]:
    from app.engine.examples import load_example
    from app.engine.training import prepare_run

    run = PanelRun(app, example, epochs, switch, live)
    run.run()
    print("  panel views shown in turn:", " > ".join(run.shown), flush=True)
    for late, at, tab, batches in run.stalls:
        print(f"  a probe {late * 1e3:.0f} ms late, {at:.2f} s after the first minibatch ({batches} in), "
              f"{tab} shown", flush=True)
    train = len(prepare_run(load_example(example), device="cpu").dataset.train)
    return train * epochs / sum(run.epoch_seconds), run.lateness


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def use_priority(nice: int | None, policy: str | None) -> str:
    """Make the editor's training runs use ``nice`` / ``policy`` (None: the supervisor's own);
    returns them in words."""
    from app.engine.session import supervisor

    if nice is not None:
        supervisor.TRAINING_NICE = nice
    if policy is not None:
        supervisor.TRAINING_POLICY = policy  # "normal": not "batch"
    return f"nice {supervisor.TRAINING_NICE}, policy {supervisor.TRAINING_POLICY or 'normal'}"


class Load:
    """``n`` CPU-bound processes at the bench's own (normal) priority, as a browser tab or a
    build beside the editor: started before a measurement, stopped after it."""

    def __init__(self, n: int):
        self.n = n
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "Load":
        code = "while True: pass"
        self.processes = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait()
        self.processes = []


def measure(app, args, load: int, out: str, head: list, live: list, lateness: list, r: int) -> None:
    """One round under ``load`` competing processes: headless and panel, the first one
    alternating from round to round (the machine's speed drifts)."""
    for side in ("headless", "panel") if r % 2 == 0 else ("panel", "headless"):
        with Load(load):
            if side == "headless":
                head.append(headless(args.example, args.epochs, out))
            else:
                rate, late = panel_run(app, args.example, args.epochs, args.switch, args.live)
                live.append(rate)
                lateness += late
    label = f"load {load}" if load else "idle"
    print(f"round {r + 1}, {label}: headless {head[-1]:8.0f} samples/s   panel {live[-1]:8.0f} samples/s   "
          f"ratio {live[-1] / head[-1]:.3f}", flush=True)


def report(label: str, head: list, live: list, lateness: list, goal: float) -> None:
    ratios = [p / h for p, h in zip(live, head)]
    ms = [v * 1000 for v in lateness] or [float("nan")]
    print(f"{label}: throughput panel / headless (median of per-round ratios "
          f"{', '.join(f'{x:.3f}' for x in ratios)}): {statistics.median(ratios):.3f}   (goal >= {goal:.2f})")
    print(f"{' ' * len(label)}  event-loop lateness while training, {len(lateness)} probes 50-150 ms apart: "
          f"p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms   "
          f"(goal p99 <= 50 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", default="lenet5")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--switch", type=float, default=2.0, help="seconds each live view stays on screen")
    parser.add_argument("--live", action="store_true",
                        help="View > Live Nodes on, and the Health (and Boundary) tabs among the views shown")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="also measure each round with N CPU-bound processes at normal priority "
                             "running beside both (the idle figures come too)")
    parser.add_argument("--nice", type=int, default=None,
                        help="the panel's run at this nice (default: the supervisor's TRAINING_NICE)")
    parser.add_argument("--policy", choices=("normal", "batch"), default=None,
                        help="the panel's run under this Linux policy (default: the supervisor's TRAINING_POLICY)")
    args = parser.parse_args()
    if args.load < 0:
        parser.error(f"--load must be 0 or more, not {args.load}")

    from app.gui import prepare_qt

    prepare_qt()  # as the editor starts
    from PySide6.QtWidgets import QApplication

    print(f"the panel's run: {use_priority(args.nice, args.policy)}", flush=True)
    app = QApplication.instance() or QApplication([])
    from app.widgets.threads import GuiGarbageCollector

    collector = GuiGarbageCollector(app)  # as the editor runs (app/gui.py)
    loads = [0, args.load] if args.load else [0]
    figures = {load: ([], [], []) for load in loads}
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.rounds):
            for load in loads:
                measure(app, args, load, out, *figures[load], r)
    collector.stop()
    live = ", live nodes and health on" if args.live else ""
    print(f"\n{args.example}, {args.epochs} epochs, {args.rounds} rounds, CPU, {os.cpu_count()} cores{live}")
    for load in loads:
        report("idle" if not load else f"{load} competing process{'es' if load > 1 else ''}", *figures[load],
               goal=0.95 if not load else 0.90)


if __name__ == "__main__":
    main()
