"""The training panel: choose the data and the settings, start / pause / stop a run that
trains in its own process, and watch it: curves, filters, activations, layer health, decision
boundaries, results; each snapshot shown goes to the canvas too (``insight_changed``)."""

from __future__ import annotations

import sqlite3
import time
from html import escape
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...engine import config, snapshots
from ...engine.datasets import Dataset
from ...engine.errors import NetCanvasError
from ...engine.runs.recorder import RunRecorder
from ...engine.runs.store import RunStore, store_path_for
from ...engine.session.budget import drawing_duty, snapshot_seconds
from ...engine.session.commands import SetSetting
from ...engine.session.weights import UNSAVED_WEIGHTS_DAYS, RunOutcome, load_model
from ..document import Document
from ..settings_form import SettingsForm
from .activations import ActivationsView
from .curves import CurvesView
from .data_view import DataPreview, DatasetLoader
from .devices import DeviceChoice
from .filters import FiltersView
from .insight import InsightTabs, local_activations
from .results import ResultsView
from .session import TrainingSession, warm_worker_wanted

# dataset keys that only some datasets read
_DATASET_ROWS = {"path": ("mnist", "fashion_mnist", "csv", "image_folder"), "images": ("idx",),
                 "labels": ("idx",), "label_column": ("csv",), "samples": config.SYNTHETIC + config.SEQUENCES,
                 "noise": config.SYNTHETIC, "test_fraction": None}
# snapshots (filters, activations) are pulled by the panel, paced by wall time and by what
# drawing them costs, never by minibatch count: a small model runs hundreds of steps a second;
# and only while a view that draws them is on screen, or the canvas draws them (live nodes): each
# costs the child a forward pass and the editor a redraw, so nobody's CPU goes on views nobody sees
SNAPSHOT_MIN_SECONDS = snapshot_seconds()  # 0.5 s, or 1 s where training takes every CPU
DEVICES_DELAY_MS = 300  # the devices are listed this long after the panel is built: after the first paint
# the warm training worker (it imports torch: seconds of a core) starts this long after the
# event loop does, so that it never delays the editor's first paint; then Train starts at once
WARM_DELAY_MS = 1500
PREPARE_DELAY_MS = 1000  # an Input's new shape is told to the warm worker once edits pause
SNAPSHOT_DUTY = drawing_duty()  # the share of the GUI thread the snapshot views may draw for
# no ETA before this share of the first epoch (or two epochs) and this many seconds of
# minibatches have passed: it is measured from the run's own throughput
ETA_FIRST_EPOCH_SHARE = 0.2
ETA_MIN_SECONDS = 1.0


class TrainingPanel(QWidget):
    """Signal ``training_active(bool)``: the main window locks editing while a run lasts;
    ``insight_changed(CanvasInsight | None)``: a snapshot (live, or of the weights held) was
    shown, for the canvas (None: nothing to show, the project changed)."""

    training_active = Signal(bool)
    start_weights_changed = Signal()  # what the next run starts from changed (the status bar shows it)
    runs_changed = Signal()  # a run was recorded, or ended: the Runs view reads the store again
    insight_changed = Signal(object)

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.session = TrainingSession(self)
        self.loader = DatasetLoader(self)
        self.dataset: Dataset | None = None
        self.sample: np.ndarray | None = None
        self.local_model = None  # the weights held (doc.weights), compiled, for the views
        self.run_store: RunStore | None = None  # where this project's runs are recorded
        self.recorder: RunRecorder | None = None  # the run being recorded
        self._not_recorded = ""  # why the run in progress is not recorded
        self._last_progress = 0.0
        self._rate_from: tuple[int, float] | None = None  # (steps done, time) when the first minibatch came
        self._paused_at: float | None = None  # the ETA leaves pauses out
        self._paused_seconds = 0.0  # paused since _rate_from
        self.ask_before_replacing = True  # a run's held-back weights: ask whether they replace those in place
        self._last_batch = None
        self._last_snapshot = None  # the run's last SnapshotEvent
        self._drawn_snapshot: dict[int, object] = {}  # which views have drawn it (by id)
        self.live_nodes = False  # View > Live nodes: snapshots are pulled for the canvas, tab or not
        self._build()
        self._wire()
        self._snapshot_timer = QTimer(self, singleShot=True, interval=int(SNAPSHOT_MIN_SECONDS * 1000))
        self._snapshot_timer.timeout.connect(self._pull_snapshot)
        self._snapshot_pending = False
        self._reload_timer = QTimer(self, singleShot=True, interval=300)
        self._reload_timer.timeout.connect(self.load_data)
        self._prepare_timer = QTimer(self, singleShot=True, interval=PREPARE_DELAY_MS)
        self._prepare_timer.timeout.connect(self._prepare_warm)
        if warm_worker_wanted():  # the delay counts from the event loop's start (after the first paint)
            QTimer.singleShot(0, self, lambda: QTimer.singleShot(WARM_DELAY_MS, self, self._warm_up))
        # the data's load waits for the next turn of the event loop, or, in a window (wait_for),
        # for its first paint: the loader thread imports torch
        self._data_held, self._paint_pending = True, False
        self._shut_down = False
        self.project_changed()
        QTimer.singleShot(0, self, lambda: None if self._paint_pending else self._release_data())

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        self.data_form = SettingsForm(config.DATASET_FIELDS, labels={"name": "dataset"})
        fields = tuple(p for p in config.TRAINING_FIELDS if p.name != "device")
        self.training_form = SettingsForm(fields)
        # the devices are listed in a thread once the editor has painted (devices.py says why)
        self.devices = DeviceChoice(self)
        self.device_combo, self.gpus_box = self.devices.combo, self.devices.gpus_box
        QTimer.singleShot(DEVICES_DELAY_MS, self.devices, self.devices.fill)
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("start_from")
        self.start_combo.addItem("the weights held", "held")
        self.start_combo.addItem("a fresh initialization", "fresh")
        self.kernels_note = self.devices.kernels_note

        data_box = QGroupBox("Data")
        QVBoxLayout(data_box).addWidget(self.data_form)
        settings_box = QGroupBox("Training")
        settings = QVBoxLayout(settings_box)
        device_row = QFormLayout()
        device_row.addRow("device", self.device_combo)
        device_row.addRow("GPUs", self.gpus_box)
        device_row.addRow("start from", self.start_combo)
        settings.addLayout(device_row)
        settings.addWidget(self.kernels_note)
        settings.addWidget(self.training_form)

        self.start_button = QPushButton("Train")
        self.start_button.setObjectName("start")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setFormat("")
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QWidget()
        c = QVBoxLayout(controls)
        c.setContentsMargins(0, 0, 0, 0)
        c.addLayout(buttons)
        c.addWidget(self.progress)
        c.addWidget(self.status)

        left_inner = QWidget()
        left_layout = QVBoxLayout(left_inner)
        left_layout.addWidget(controls)
        left_layout.addWidget(data_box)
        left_layout.addWidget(settings_box)
        left_layout.addStretch(1)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the forms fit its width
        left.setMinimumSize(left_inner.minimumSizeHint().width() + left.verticalScrollBar().sizeHint().width() + 4,
                            140)

        self.preview = DataPreview()
        self.curves = CurvesView()
        self.filters = FiltersView()
        self.activations = ActivationsView()
        self.results = ResultsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.filters, "Filters")
        self.tabs.addTab(self.activations, "Activations")
        self.insight = InsightTabs(self.tabs, self.curves)  # Health and Boundary
        self.health_view, self.boundary_view = self.insight.health, self.insight.boundary
        self.tabs.addTab(self.results, "Results")
        self.tabs.addTab(self.preview, "Data")
        self.tabs.currentChanged.connect(self._tab_changed)
        # the views' own minimum sizes would squeeze the canvas: the dock may be made small
        self.tabs.setMinimumSize(240, 140)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([left.minimumWidth(), 900])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)
        self._set_state("idle")

    def _wire(self) -> None:
        self.doc.reset.connect(self.project_changed)
        self.doc.settings_changed.connect(self._settings_changed)
        self.doc.analyzed.connect(lambda a: self._reload_timer.start() if self.dataset is None else None)
        self.doc.analyzed.connect(self.insight.follow)
        self.doc.analyzed.connect(lambda _a: self._prepare_timer.start())
        self.doc.path_changed.connect(self._project_saved)
        self.data_form.edited.connect(lambda n, v: self._edit("dataset", n, v))
        self.training_form.edited.connect(lambda n, v: self._edit("training", n, v))
        self.start_combo.activated.connect(self._start_chosen)
        self.device_combo.activated.connect(lambda i: self._edit("training", "device", self.device_combo.itemData(i)))
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.loader.loaded.connect(self._data_loaded)
        self.loader.failed.connect(self._data_failed)
        self.activations.sample_changed.connect(self._sample_changed)
        s = self.session
        s.ready.connect(self._ready)
        s.batches.connect(self._batches)
        s.epoch.connect(self.curves.add_epoch)
        s.snapshot.connect(self._snapshot)
        s.finished.connect(self._finished)
        s.failed.connect(self._failed)
        s.state_changed.connect(self._set_state)

    # -- settings --------------------------------------------------------------------------
    def _edit(self, section: str, name: str, value) -> None:
        if getattr(self.doc.project, section).get(name) != value:
            self.doc.push(SetSetting(self.doc.model, section, name, value))

    def project_changed(self) -> None:
        """A project was opened: show its settings, its data, and its saved weights."""
        self._show_settings()
        self.dataset = None
        self.sample = None  # a sample of the previous network does not fit this one
        self.local_model = None  # (the document's weights were reset with it)
        self._close_store()  # its runs are recorded elsewhere
        self.results.clear()
        self.filters.clear()
        self.insight.clear(self.doc.analysis)
        self.insight_changed.emit(None)
        self.curves.clear()  # runs of another network are no comparison
        self.progress.reset()
        self.progress.setFormat("")
        self.status.setText("Ready.")
        self.load_data()
        self._inspect_saved_weights()  # held from the start: the first run starts from them
        self.refresh_start()

    def _settings_changed(self, section: str) -> None:
        self._show_settings()
        self.refresh_start()  # training.init_weights decides it when set
        if section == "dataset":
            self._reload_timer.start()

    def _show_settings(self) -> None:
        p = self.doc.project
        self.data_form.show_values(p.dataset)
        name = p.dataset.get("name")
        for key, names in _DATASET_ROWS.items():
            visible = names is None or name in names
            if key == "test_fraction":
                visible = name not in ("mnist", "fashion_mnist")
            self.data_form.set_row_visible(key, visible)
        self.training_form.show_values(p.training)
        self.devices.set_device(p.training.get("device", "auto"))

    # -- data ------------------------------------------------------------------------------
    def wait_for(self, first_paint) -> None:
        """Hold the data's load and the device list until ``first_paint`` (a ``FirstPaint``) has
        seen the window painted: the loader thread imports torch, which took the CPU from the
        first paint; a window that is never painted loads it a little later all the same."""
        self.devices.wait_for(first_paint)
        if first_paint.hold(self, self._release_data):
            self._data_held = self._paint_pending = True

    def _release_data(self) -> None:
        if self._data_held:
            self._data_held = False
            self.load_data()

    def load_data(self) -> None:
        a = self.doc.analysis
        if not a.inputs or a.shapes.get(a.inputs[0]) is None:
            self.loader.cancel()  # a load still on its way is for another graph
            self.preview.show_error("the graph has no Input with a known shape yet")
            return
        self.preview.info.setText("Loading the data…")
        if self._data_held:  # _release_data loads it
            return
        base = self.doc.project.path.parent if self.doc.project.path else None
        self._prepare_warm()
        self.loader.load(dict(self.doc.project.dataset), base, a.shapes[a.inputs[0]], a.inputs[0])

    def _data_loaded(self, data: Dataset) -> None:
        self.dataset = data
        self.preview.show_dataset(data)
        test = data.test if len(data.test) else data.train
        self.activations.set_samples(test.x[:200].numpy(), test.y[:200].numpy(), data.class_names)
        if data.mean is not None:
            self.activations.set_normalization(data.mean.numpy(), data.std.numpy())
        if self.local_model is not None:
            self._show_local_model()  # the activations need the data's samples
        else:
            self._inspect_saved_weights()

    def _data_failed(self, message: str) -> None:
        self.dataset = None
        self.preview.show_error(message)
        self.status.setText(f"<span style='color:#d03030'>{escape(message, quote=False)}</span>")

    # -- the warm training worker ------------------------------------------------------------
    def _warm_up(self) -> None:
        """Keep a training process waiting with torch imported and the data loaded: Train
        hands it the run (``TrainingSession.warm_up``)."""
        if not self._shut_down:  # (a window closed before its timer came)
            self.session.warm_up()
            self._prepare_warm()

    def _prepare_warm(self) -> None:
        """Tell the warm worker the data the next run trains on (sent only when it changed:
        the project, its dataset settings, its folder or its Input's shape)."""
        a = self.doc.analysis
        if self._shut_down or not a.inputs or a.shapes.get(a.inputs[0]) is None:
            return  # no run can start: nothing to load ahead
        base = self.doc.project.path.parent if self.doc.project.path else None
        self.session.prepare(dict(self.doc.project.dataset), base, a.shapes[a.inputs[0]], a.inputs[0])

    # -- saved weights, inspected without training ------------------------------------------
    def _inspect_saved_weights(self) -> None:
        path = self.doc.weights.saved_file()
        # weights held that the saved file does not have (a run's, a recovery's) stay held
        if self.session.running or path is None or self.doc.weights.unsaved_file is not None:
            return
        self.adopt_weights(path, f"Trained weights loaded from {path.name}.")

    def adopt_weights(self, path: Path, message: str) -> bool:
        """Hold the weights at ``path`` (saved, or imported with a model): their filters and
        activations are shown, exports use them, and the first save copies them beside the
        project file."""
        try:
            self.local_model = self.doc.weights.load(self.doc.graph, self.doc.analysis, path)
        except NetCanvasError as e:
            self.status.setText(f"<span style='color:#d03030'>Weights not loaded: {escape(str(e), quote=False)}</span>")
            return False
        self.status.setText(escape(message, quote=False))
        self._show_local_model()
        self.refresh_start()
        return True

    def _show_local_model(self) -> None:
        """What the views show of the weights held here (saved or just trained)."""
        model, a = self.local_model, self.doc.analysis
        self._last_snapshot = None  # older than these weights: a tab switch must not bring it back
        self.filters.show_filters(snapshots.conv_filters(model, self.doc.graph), a.order)
        self.insight.show_local(model, self.doc.graph, a, self.dataset, self.doc.project.training)
        self._show_local_activations()

    def _show_local_activations(self) -> None:
        a = self.doc.analysis
        acts = local_activations(self.local_model, a, self.sample)
        if acts:
            self._show_activations(acts)
        step = self._last_batch.step if self._last_batch is not None else 0
        target = self.doc.project.training.get("target", "labels")
        self.insight_changed.emit(self.insight.insight(acts, a, self.dataset, step, self.doc.graph, target))

    def _sample_changed(self, sample: np.ndarray) -> None:
        self.sample = sample
        if self.session.running:
            self._snapshot_pending = True
            self.session.request_snapshot(sample)
        elif self.local_model is not None:
            self._show_local_activations()

    # -- what a run starts from ---------------------------------------------------------------
    def refresh_start(self) -> None:
        """Show what the next run starts from: the weights held (the default: imported,
        opened with the project, or the last run's) or a fresh initialization; the
        project's ``training.init_weights`` decides when set."""
        weights = self.doc.weights
        named = self.doc.project.training.get("init_weights")
        held = weights.file
        self.start_combo.setCurrentIndex(self.start_combo.findData(weights.start_from))
        self.start_combo.setItemText(0, f"the weights held ({held.name})" if held else "the weights held (none yet)")
        self.start_combo.setEnabled(bool(held) and not named and not self.session.running)
        if named:
            tip = (f"The project's setting \"start from weights\" (training.init_weights) names {named}: "
                   "runs start from it. Clear the setting to choose here.")
        elif not held:
            tip = ("No weights are held yet: the first run starts from a fresh initialization (the seed "
                   "decides it). Later runs can continue from the weights a run leaves, or start afresh.")
        else:
            tip = (f"Runs start from {held} by default: every node whose parameter shapes did not change "
                   "keeps its weights, the others are initialized (the status bar says which). Choose a "
                   "fresh initialization to compare settings from the same start.")
        self.start_combo.setToolTip(tip)
        self.start_weights_changed.emit()

    def _start_chosen(self, index: int) -> None:
        self.doc.weights.start_from = self.start_combo.itemData(index)
        self.refresh_start()

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.session.running:
            return
        a = self.doc.analysis
        if not a.ok:
            self.status.setText("<span style='color:#d03030'>Fix the graph's errors before training "
                                "(see the Issues list).</span>")
            return
        project = self.doc.project
        try:
            weights = self.doc.weights.run_target()
        except OSError as e:  # a never-saved project's: the weights held are copied there first
            self.status.setText(f"<span style='color:#d03030'>Not started: the weights held here could not "
                                f"be copied for the run to be compared with them "
                                f"({escape(str(e), quote=False)}).</span>")
            return
        self._last_batch = None
        self._last_snapshot, self._drawn_snapshot = None, {}
        self.results.clear()
        self.health_view.clear()  # the sparklines follow this run
        self.tabs.setCurrentWidget(self.curves)
        self._rate_from, self._paused_at, self._paused_seconds = None, None, 0.0
        self.status.setText("Starting the training process…")
        self.devices.fill_now()  # (how many GPUs: the list may still be on its way)
        on_gpus = str(project.training.get("device", "auto")) in ("auto", "cuda")
        nproc = self.gpus_box.value() if self.gpus_box.isEnabled() and on_gpus else 1
        self._not_recorded = self._record(project, weights)
        self.session.start(project, weights_path=str(weights), overrides=self.doc.weights.start_overrides(),
                           project_dir=str(project.path.parent) if project.path else None,
                           snapshot_samples=self.sample, nproc=nproc if nproc > 1 else None)
        self.curves.start_run(self.session.supervisor.metrics)  # drawn from the store the run fills
        QTimer.singleShot(0, self, self.runs_changed.emit)  # a never-saved project's store is known from now on
        self.training_active.emit(True)

    def toggle_pause(self) -> None:
        if self.session.paused:
            self.session.resume()
        else:
            self.session.pause()

    def stop(self) -> None:
        """Stop the run: after the current minibatch, or at once while it starts (the
        session ends the starting process; ``finished`` says so)."""
        if self.session.running:
            self.status.setText("Stopping after this minibatch…")
            self.session.stop()

    def _set_state(self, state: str) -> None:
        running = state in ("starting", "running", "paused", "stopping")
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(state in ("running", "paused"))
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(state in ("starting", "running", "paused"))  # at once from Train on
        self.curves.set_running(running)
        now = time.perf_counter()
        if state == "paused" and self._paused_at is None:
            self._paused_at = now
        elif state != "paused" and self._paused_at is not None:
            self._paused_seconds += now - self._paused_at
            self._paused_at = None
        for w in (self.data_form, self.training_form, self.device_combo):
            w.setEnabled(not running)
        if running:
            self.start_combo.setEnabled(False)
        else:
            self.refresh_start()
        self.gpus_box.setEnabled(not running and self.devices.gpus > 1)
        if state == "paused":
            self.status.setText("Paused. Resume or Stop; snapshots still answer.")
            if self._last_batch is not None:  # the bar shows where it really stopped
                self._show_progress(self._last_batch, time.perf_counter())

    # -- events from the run -------------------------------------------------------------------
    def watching(self) -> bool:
        """Whether snapshots are wanted: a view that shows them (filters, activations, health,
        boundary) is on screen, or the canvas draws them (``live_nodes``)."""
        views = (self.filters, self.activations, self.health_view, self.boundary_view)
        return self.live_nodes or (self.tabs.currentWidget() in views and self.tabs.isVisible())

    def _pull_snapshot(self) -> None:
        if not self.session.running or (self.session.info or {}).get("nproc"):  # no live snapshots there
            return
        if self.session.state == "paused" or not self.watching():  # nothing new to show, or to nobody:
            self._snapshot_timer.start()  # look again in a moment (a tab switch pulls at once)
        elif not self._snapshot_pending:
            self._snapshot_pending = True
            self.session.request_snapshot(self.sample)

    def _record(self, project, weights: Path) -> str:
        """Record the run about to start in the project's run store (beside ``weights``);
        returns why it cannot be recorded ("" when it is): the run trains all the same."""
        path = store_path_for(weights)
        if self.recorder is not None:
            self.recorder.detach()  # an earlier run that was killed: marked crashed
            self.recorder = None
        try:
            if self.run_store is None or self.run_store.path != path:
                self._close_store()
                self.run_store = RunStore(path)
                self.run_store.fail_stale()  # runs whose process is gone (the editor was killed) crashed
            self.recorder = RunRecorder(self.run_store, self.session.supervisor, project, weights)
        except (NetCanvasError, sqlite3.Error, OSError) as e:
            self.recorder = None
            return f"This run is not recorded: {e}"
        return ""

    def _close_store(self, why: str | None = None) -> None:
        if self.recorder is not None:
            self.recorder.detach(why)
            self.recorder = None
        if self.run_store is not None:
            self.run_store.close()
            self.run_store = None

    def _ready(self, info: dict) -> None:
        QTimer.singleShot(0, self, self.runs_changed.emit)  # after the recorder has begun the run
        self._snapshot_pending = False
        if info.get("nproc"):
            self.pause_button.setEnabled(False)
        self._pull_snapshot()  # the filters and activations before the first step, when shown
        said = [*info.get("notes", []), *([self._not_recorded] if self._not_recorded else [])]
        notes = "".join(f"<br><i>{escape(n, quote=False)}</i>" for n in said)
        self.status.setText(f"Training on {info.get('device')}.{notes}")

    def _batches(self, events: list) -> None:
        self.curves.add_batches(events)
        event = self._last_batch = events[-1]
        now = time.perf_counter()
        if self._rate_from is None:  # the ETA's throughput is measured from here: start-up left out
            self._rate_from, self._paused_seconds = (_steps_done(event), now), 0.0
        if now - self._last_progress < 0.5:  # twice a second (the run's end shows its last batch)
            return
        self._last_progress = now
        self._show_progress(event, now)

    def _show_progress(self, event, now: float) -> None:
        epochs = self.doc.project.training["epochs"]
        done = _steps_done(event)
        total = epochs * event.batches
        text = f"epoch {event.epoch}/{epochs} · batch {event.batch}/{event.batches}"
        eta = self.eta_seconds(event, now)
        if eta is not None:
            text += f" · ETA {_duration(eta)}"
        bar = self.progress
        bar.setUpdatesEnabled(False)  # setValue would repaint at once; one repaint, later, instead
        bar.setMaximum(total)
        bar.setValue(done)
        bar.setFormat(text)
        bar.setUpdatesEnabled(True)

    def eta_seconds(self, event, now: float) -> float | None:
        """Seconds the run still needs, from the throughput measured since its first
        minibatch came (start-up and pauses left out); None until 20 % of the first epoch
        (or two epochs, where epochs are a few minibatches) and ETA_MIN_SECONDS have passed:
        the first minibatches, slower, would make a nonsense of it."""
        if self._rate_from is None:
            return None
        steps, since = self._rate_from
        done = _steps_done(event)
        paused = self._paused_seconds + (now - self._paused_at if self._paused_at is not None else 0.0)
        seconds = now - since - paused
        measured = done - steps
        enough = measured >= max(1.0, ETA_FIRST_EPOCH_SHARE * event.batches) or event.epoch > 2
        if not enough or measured <= 0 or seconds < ETA_MIN_SECONDS:
            return None
        total = self.doc.project.training["epochs"] * event.batches
        return seconds / measured * max(0, total - done)

    def _snapshot(self, event) -> None:
        start = time.perf_counter()
        self._last_snapshot, self._drawn_snapshot = event, {}
        self.insight.record(event, self.doc.graph, self.doc.analysis)
        self._show_snapshot()
        target = self.doc.project.training.get("target", "labels")
        self.insight_changed.emit(self.insight.insight(event.activations, self.doc.analysis, self.dataset, event.step,
                                                       self.doc.graph, target))
        self._snapshot_pending = False
        if self.session.running:
            cost = time.perf_counter() - start
            self._snapshot_timer.start(int(1000 * max(SNAPSHOT_MIN_SECONDS, cost / SNAPSHOT_DUTY)))

    def _show_snapshot(self) -> None:
        """Draw the last snapshot into the view on screen; the other one draws it when shown."""
        event, view = self._last_snapshot, self.tabs.currentWidget()
        if event is None or self._drawn_snapshot.get(id(view)) is event:
            return
        if view is self.filters:
            self.filters.show_filters(event.filters, self.doc.analysis.order)
        elif view is self.activations:
            self._show_activations(event.activations)
        elif view is self.boundary_view and event.boundary is not None:
            self.boundary_view.show_boundary(event.boundary, event.step)
        else:
            return
        self._drawn_snapshot[id(view)] = event

    def _tab_changed(self) -> None:
        self._show_snapshot()
        if self.watching():
            self._pull_snapshot()

    def _show_activations(self, acts: dict) -> None:
        a = self.doc.analysis
        names = self.dataset.class_names if self.dataset else [str(i) for i in range(10)]
        sink = self.doc.graph.nodes.get(a.output) if a.output else None
        self.activations.set_target(self.doc.project.training.get("target", "labels"),
                                    sink is not None and sink.type == "Sigmoid")
        self.activations.show_activations(acts, a.order, a.output, names)

    def _finished(self, event) -> None:
        QTimer.singleShot(0, self, self.runs_changed.emit)  # after the recorder has closed the run
        self.training_active.emit(False)
        if self._last_batch is not None:  # where the run really ended
            self._show_progress(self._last_batch, time.perf_counter())
        self.progress.setFormat({"completed": "done", "early_stopping": "stopped early",
                                 "diverged": "diverged"}.get(event.reason, "stopped"))
        test_x = self.dataset.test.x.numpy() if self.dataset is not None and len(self.dataset.test) else None
        names = self.dataset.class_names if self.dataset else []
        self.results.show_result(event, test_x, names)
        self.curves.flush()
        outcome = self.doc.weights.run_finished(event)
        if outcome.what == "ask":
            outcome = self._ask_about_run_weights(outcome)
        self.refresh_start()
        if outcome.what not in ("none", "held-back"):
            self._show_weights(outcome.file)
        note = _weights_note(outcome)
        if not event.ok:
            self.status.setText(f"<span style='color:#d03030'><b>Training stopped:</b> "
                                f"{escape(event.message, quote=False)}</span>{note}")
            return
        acc = "" if event.test_accuracy is None else f" Test accuracy {event.test_accuracy:.2%}."
        self.status.setText(f"{escape(_sentence(event.message), quote=False)}{acc}{note}")
        if event.steps:  # a run stopped while it started has no results to show
            self.tabs.setCurrentWidget(self.results)

    def _ask_about_run_weights(self, outcome: RunOutcome) -> RunOutcome:
        """Ask whether this run's held-back weights replace those in place; the default keeps
        them (and so does a window that closes: nobody is left to answer)."""
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        answer = no
        if self.ask_before_replacing:
            if outcome.unsaved_project:  # the files are the editor's own, in its recovery folder
                place, kept = ("the weights trained earlier in this session", "this run's weights are kept "
                               f"for {UNSAVED_WEIGHTS_DAYS} days in the editor's recovery folder")
            else:
                place, kept = f"the weights in {outcome.target}", f"this run's weights stay in {outcome.run_file}"
            answer = QMessageBox.question(
                self, "Replace the weights in place?",
                f"{_sentence(outcome.held_back)}\n\nReplace {place} with this run's?\n\nNo keeps them; {kept}.",
                yes | no, no)
        return self.doc.weights.replace_with_run(outcome) if answer == yes else self.doc.weights.keep(outcome)

    def _show_weights(self, path: Path | None) -> None:
        """End the views on the weights at ``path`` (those held)."""
        self.local_model = None
        if path is None:
            return
        try:
            self.local_model = load_model(self.doc.graph, self.doc.analysis, path)
        except NetCanvasError:
            return
        self._show_local_model()  # the views end on the final weights

    def _failed(self, message: str) -> None:
        QTimer.singleShot(0, self, self.runs_changed.emit)  # after the recorder has marked it crashed
        self.training_active.emit(False)
        self.progress.setFormat("failed")
        self.status.setText(f"<span style='color:#d03030'><b>Training failed:</b> {escape(message, quote=False)}</span>")

    def _project_saved(self, path: str) -> None:
        """Weights trained before the first save move beside the project file."""
        try:
            self.doc.weights.project_saved(path)
        except OSError as e:
            self.status.setText(f"<span style='color:#d03030'>The weights could not be saved beside the "
                                f"project: {escape(str(e), quote=False)}</span>")
        self.refresh_start()

    def shutdown(self) -> None:
        self._shut_down = True  # no warm worker after this, whatever timer comes
        self._prepare_timer.stop()
        self.session.cool_down()  # the warm worker ends with the editor (a run in progress: below)
        if self.session.running:
            self.session.kill()
        self._close_store("the editor was closed during the run")


def _weights_note(outcome: RunOutcome) -> str:
    """What the status line says about a finished run's weights (HTML, "" for nothing)."""
    what, error = outcome.what, outcome.error
    run_file = escape(str(outcome.run_file), quote=False)
    note = ""
    if what == "held-back":  # nothing in place to replace (a diverged first run): nothing to choose
        note = f" {escape(_sentence(outcome.held_back), quote=False)} This run's weights are in {run_file}."
    elif what == "adopted" and outcome.failure:  # saved (or renamed) while it trained: not copied beside it
        note = (f" <span style='color:#d03030'>The weights could not be saved beside the project: "
                f"{escape(outcome.failure, quote=False)}</span>")
    elif what == "adopted":
        note = (" Save the project to keep the trained weights beside it." if outcome.unsaved_project
                else f" Weights saved to {escape(outcome.file.name, quote=False)}.")
    elif what == "replaced":
        note = f" This run's weights replaced those in {escape(outcome.file.name, quote=False)}."
    elif what == "replace-failed":
        note = (f" <span style='color:#d03030'>This run's weights could not replace those in "
                f"{escape(outcome.target.name, quote=False)}: {escape(outcome.failure, quote=False)}; they are in "
                f"{run_file}.</span>")
    elif what == "kept":
        note = f" The weights in {escape(outcome.target.name, quote=False)} were kept; this run's are in {run_file}."
    if error:  # they could not be written where they go
        note += f" <span style='color:#d03030'>{escape(_sentence(error), quote=False)}</span>"
    return note


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _steps_done(event) -> int:
    return (event.epoch - 1) * event.batches + event.batch


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m {seconds % 60:02d}s"
