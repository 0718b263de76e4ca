"""Render the README's screenshots: python docs/make_screenshots.py [OUT_DIR].

Runs offscreen (no display needed): the empty editor, the LeNet-5 example, the
residual-net example with an error (an Add of two shapes that differ) selected, ResNet-50
written with blocks (whole, and one bottleneck opened), the training panel paused mid-run
on LeNet-5 (curves; filters; activations of a test digit) and on the ViT example, and the
Runs view comparing three runs of the MLP, and what the canvas shows while a network learns
(live nodes on LeNet-5, the health badges of a deep sigmoid MLP, the XOR and spirals decision
boundaries, the profile overlay on the ResNet example). ``--only NAME`` renders one group:
runs, live, health, boundary, profile, or insight (the last four).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolTip, QWidget  # noqa: E402

from app.engine.examples import example_path  # noqa: E402
from app.engine.project import Project  # noqa: E402
from app.widgets.main_window import MainWindow  # noqa: E402


def render(window, app: QApplication, out: Path) -> None:
    """``window``: the main window, or any widget of it (a panel)."""
    for _ in range(3):
        app.processEvents()
    window.grab().save(str(out))
    print(out)


def wait(app: QApplication, condition, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the screenshot script waited too long")
        app.processEvents()
        time.sleep(0.005)


def training_shots(window: MainWindow, app: QApplication, out: Path) -> None:
    """LeNet-5 on digits28, paused half-way through its epochs."""
    window.resize(1500, 1000)
    window.open_file(example_path("lenet5"), example=True, ask=False)
    panel = window.training
    window.doc.project.training["epochs"] = 12
    wait(app, lambda: panel.dataset is not None)
    panel.activations.set_index(3)
    epochs = []
    panel.session.epoch.connect(epochs.append)
    window.train()
    wait(app, lambda: len(epochs) >= 6)
    panel.pause_button.click()
    wait(app, lambda: panel.session.paused)
    snapshots = []
    panel.session.snapshot.connect(snapshots.append)
    panel.session.request_snapshot(panel.sample)
    wait(app, lambda: snapshots)
    panel.curves.flush()
    window.scene.select_nodes(["conv2"])
    panel.tabs.setCurrentWidget(panel.curves)
    render(window, app, out / "training_curves.png")
    panel.tabs.setCurrentWidget(panel.filters)
    panel.filters.select_layer("conv1")
    render(panel, app, out / "training_filters.png")
    panel.tabs.setCurrentWidget(panel.activations)
    panel.activations.select_node("conv1")
    render(panel, app, out / "training_activations.png")
    finished = []
    panel.session.finished.connect(finished.append)
    panel.stop()
    wait(app, lambda: finished)


def block_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """torchvision's ResNet-50 written with blocks (tests/zoo), one bottleneck opened."""
    zoo = Path(__file__).resolve().parents[1] / "tests" / "zoo" / "resnet50.netcanvas.json"
    window.resize(1400, 860)
    window.open_file(str(zoo), ask=False)
    render(window, app, out / "resnet50_blocks.png")
    window.doc.open_block("layer2_0")
    app.processEvents()
    window.scene.select_nodes(["conv2"])
    window.view.fit()
    render(window, app, out / "block_opened.png")
    window.doc.set_scope(())


def vit_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """The ViT example training on digits28, paused after a few epochs."""
    window.resize(1500, 1000)
    window.open_file(example_path("vit"), example=True, ask=False)
    panel = window.training
    wait(app, lambda: panel.dataset is not None)
    epochs = []
    panel.session.epoch.connect(epochs.append)
    window.train()
    wait(app, lambda: len(epochs) >= 4, timeout=600)
    panel.pause_button.click()
    wait(app, lambda: panel.session.paused)
    panel.curves.flush()
    window.scene.select_nodes(["encoder"])
    panel.tabs.setCurrentWidget(panel.curves)
    render(window, app, out / "vit_training.png")
    finished = []
    panel.session.finished.connect(finished.append)
    panel.stop()
    wait(app, lambda: finished)


def imported_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """An ONNX file opened in the editor (the residual-net example, exported first)."""
    from app.engine.examples import load_example
    from app.engine.export.onnx_export import export_onnx

    onnx_file = Path(tempfile.mkdtemp()) / "small_resnet.onnx"
    export_onnx(load_example("resnet"), onnx_file)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)  # the first-run layout
    window.resize(1400, 1000)
    window.show()
    window.open_file(str(onnx_file), ask=False)
    wait(app, lambda: window.training.dataset is not None)
    window.scene.select_nodes(["b1_add"])
    window.view.fit()
    render(window, app, out / "imported_onnx.png")
    window.doc.history.set_clean()
    window.close()


def runs_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """The MLP example, saved to a scratch folder, trained three times (learning rates 0.01,
    0.05 and 0.3, 4 epochs each, every run from a fresh initialization), the three runs
    selected in the Runs view: their curves overlaid."""
    folder = Path(tempfile.mkdtemp())
    shutil.copyfile(example_path("mlp"), folder / "mlp.netcanvas.json")
    window.resize(1500, 1000)
    window.open_file(folder / "mlp.netcanvas.json", ask=False)
    panel = window.training
    panel.ask_before_replacing = False
    window.doc.weights.start_from = "fresh"  # three starts alike: only the learning rate differs
    for lr in (0.01, 0.05, 0.3):
        window.doc.project.training.update(epochs=4, lr=lr)
        finished = []
        panel.session.finished.connect(finished.append)
        window.train()
        wait(app, lambda: finished, timeout=600)
        panel.session.finished.disconnect(finished.append)
    wait(app, lambda: window.runs.store is not None and len(window.runs.store.runs()) == 3)
    window.runs.refresh()
    dock = window._docks["runs"]
    dock.raise_()
    window.resizeDocks([dock], [560], Qt.Orientation.Vertical)
    window.runs.select([r.id for r in window.runs.store.runs()])
    render(window, app, out / "runs_view.png")
    window.doc.history.set_clean()


def _train_paused(window: MainWindow, app: QApplication, name: str, epochs: int, until,
                  tab=None, timeout: float = 600) -> list:
    """Open the example ``name``, train it for ``epochs`` (its dataset kept), the panel's ``tab``
    shown (its snapshots are pulled then), until ``until(snapshots, epochs_seen)`` holds, then
    pause; returns the snapshot events that came."""
    window.open_file(example_path(name), example=True, ask=False)
    panel = window.training
    panel.ask_before_replacing = False
    window.doc.set_section("training", {**window.doc.project.training, "epochs": epochs})
    wait(app, lambda: panel.dataset is not None)
    snapshots, seen = [], []
    panel.session.snapshot.connect(snapshots.append)
    panel.session.epoch.connect(seen.append)
    window.train()
    if tab is not None:
        panel.tabs.setCurrentWidget(tab)
    try:
        wait(app, lambda: until(snapshots, seen), timeout=timeout)
    except TimeoutError:
        raise TimeoutError(f"{name}: the run is {panel.session.state} after {len(seen)} epochs and "
                           f"{len(snapshots)} snapshots ({_health_steps(snapshots)} with health)") from None
    panel.toggle_pause()
    wait(app, lambda: panel.session.paused or not panel.session.running)
    if not panel.session.paused:
        raise RuntimeError(f"{name}: the run ended before it could be paused; give it more epochs")
    wait(app, lambda: panel.pause_button.text() == "Resume")  # the panel shows the pause too
    panel.session.epoch.disconnect(seen.append)
    panel.session.snapshot.disconnect(snapshots.append)
    return snapshots


def _stop(window: MainWindow, app: QApplication) -> None:
    panel = window.training
    finished = []
    panel.session.finished.connect(finished.append)
    panel.stop()
    wait(app, lambda: finished)
    panel.session.finished.disconnect(finished.append)


def _health_steps(snapshots: list) -> int:
    """How many health measurements the ``snapshots`` brought."""
    return len({e.health_step for e in snapshots if e.health})


def render_with_tooltip(window: MainWindow, app: QApplication, anchor: QWidget, at: QPoint, text: str,
                        out: Path) -> None:
    """Render ``window`` with the tooltip ``text`` drawn on it where hovering ``at`` (``anchor``'s
    coordinates) shows it (a tooltip is a window of its own: a grab of the window misses it)."""
    QToolTip.showText(anchor.mapToGlobal(at), text, anchor)
    for _ in range(3):
        app.processEvents()
    tips = [w for w in QApplication.topLevelWidgets() if w.inherits("QTipLabel") and w.isVisible()]
    if not tips:
        raise RuntimeError("no tooltip showed")
    tip = tips[0].grab()
    image = window.grab()
    spot = anchor.mapTo(window, at) + QPoint(12, 18)
    spot.setX(min(spot.x(), image.width() - tip.width() - 4))
    spot.setY(min(spot.y(), image.height() - tip.height() - 4))
    painter = QPainter(image)
    painter.drawPixmap(spot, tip)
    painter.end()
    image.save(str(out))
    QToolTip.hideText()
    print(out)


def live_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """LeNet-5 training with View > Live Nodes on: each node's output for the chosen test digit."""
    window.resize(1400, 880)
    window.set_live_nodes(True)
    # (epochs to spare: the run is paused once it has them; on a fast machine 12 are over in 2 s)
    _train_paused(window, app, "lenet5", 300, lambda snaps, ep: len(ep) >= 5 and len(snaps) >= 3)
    window.training.curves.flush()
    window.resizeDocks([window._docks["training"]], [300], Qt.Orientation.Vertical)
    app.processEvents()
    window.view.fit()
    render(window, app, out / "live_nodes.png")
    _stop(window, app)
    window.set_live_nodes(False)


def health_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """deep_sigmoid (eight sigmoid layers) after a little training: the vanishing-gradient
    badges on the canvas and the Health table's flags."""
    window.resize(1400, 880)
    panel = window.training
    _train_paused(window, app, "deep_sigmoid", 400, lambda snaps, ep: _health_steps(snaps) >= 3,
                  tab=panel.health_view, timeout=240)
    window.view.fit()
    node = window.scene.nodes["fc2"]  # hovering its badge: the flag's explanation
    badge = node.mapToScene(node.boundingRect().topRight() + QPointF(-10, 10))
    render_with_tooltip(window, app, window.view.viewport(), window.view.mapFromScene(badge),
                        node.tooltip(), out / "health.png")
    _stop(window, app)


def boundary_shots(window: MainWindow, app: QApplication, out: Path) -> None:
    """The Boundary tab mid-training: XOR paused as soon as it can be (of many epochs: it must not end first),
    spirals after ~40 of its 150."""
    window.resize(1400, 880)
    panel = window.training
    for name, epochs, at in (("xor", 500, 1), ("spirals", 150, 40)):
        _train_paused(window, app, name, epochs, lambda snaps, ep, at=at: len(ep) >= at, tab=panel.boundary_view)
        snapshots = []
        panel.session.snapshot.connect(snapshots.append)
        panel.session.request_snapshot(panel.sample)  # the boundary of the weights it paused on
        wait(app, lambda: snapshots)
        panel.session.snapshot.disconnect(snapshots.append)
        window.resizeDocks([window._docks["training"]], [560], Qt.Orientation.Vertical)
        render(panel, app, out / f"boundary_{name}.png")  # the panel alone: the maps larger
        _stop(window, app)


def profile_shot(window: MainWindow, app: QApplication, out: Path) -> None:
    """Run > Profile on the ResNet example: each node tinted by its share of the step's time."""
    window.resize(1400, 880)
    window.open_file(example_path("resnet"), example=True, ask=False)
    app.processEvents()
    window.view.arrange("LR")  # rows as wide as the canvas: the whole net at a readable zoom
    window.view.fit(arrange=False)
    window.profiling.start()
    wait(app, lambda: not window.profiling.busy, timeout=600)
    if window.profiling.profile is None:
        raise RuntimeError("the profile of the resnet example failed")
    render(window, app, out / "profile_resnet.png")


INSIGHT_SHOTS = {"live": live_shot, "health": health_shot, "boundary": boundary_shots, "profile": profile_shot}


def main() -> None:
    only = None
    if "--only" in sys.argv:
        at = sys.argv.index("--only")
        only = sys.argv[at + 1]
        del sys.argv[at:at + 2]
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "images")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    scratch = tempfile.mkdtemp()  # fresh settings: the first-run layout, not a remembered one
    settings = QSettings(str(Path(scratch) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(1400, 860)
    window.show()

    if only == "runs":
        runs_shot(window, app, out)
        window.close()
        return
    if only in INSIGHT_SHOTS or only == "insight":
        for name, shot in INSIGHT_SHOTS.items():
            if only in (name, "insight"):
                shot(window, app, out)
        window.doc.history.set_clean()
        window.close()
        return
    window.set_project(Project(name="Untitled"))
    render(window, app, out / "empty.png")

    window.open_file(example_path("lenet5"), example=True, ask=False)
    window.scene.select_nodes(["conv2"])
    window.view.fit()
    render(window, app, out / "lenet5.png")

    window.open_file(example_path("resnet"), example=True, ask=False)
    window.editor.set_params("b2_conv2", {"out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False})
    window.scene.select_nodes(["b2_add"])
    window.focus_node("b2_add")
    window.view.zoom_by(0.75 / window.view.zoom)
    window.view.centerOn(window.scene.nodes["b2_add"])
    render(window, app, out / "resnet_error.png")

    block_shot(window, app, out)
    training_shots(window, app, out)
    vit_shot(window, app, out)
    imported_shot(window, app, out)
    runs_shot(window, app, out)
    for shot in INSIGHT_SHOTS.values():
        shot(window, app, out)
    help_dir = Path(__file__).resolve().parents[1] / "resources" / "help"  # Help > Getting started
    for name in ("lenet5.png", "training_curves.png", "training_filters.png", "training_activations.png"):
        shutil.copyfile(out / name, help_dir / name)

    window.doc.history.set_clean()
    window.close()


if __name__ == "__main__":
    main()
