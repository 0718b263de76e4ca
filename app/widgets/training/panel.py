"""The training panel: choose the data and the settings, start / pause / stop a run that
trains in its own process, and watch it: curves, filters, activations, layer health, decision
boundaries, results; each snapshot shown goes to the canvas too (``insight_changed``). What it does
for a run once started (its record, its events, its end) is in panel_run.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
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
from ...engine.runs.store import RunStore
from ...engine.session.commands import SetSetting
from ..document import Document
from ..settings_form import SettingsForm
from ..threads import run_in_thread, settle_garbage
from .activations import ActivationsView
from .curves import CurvesView
from .data_view import DataPreview, DatasetLoader
from .devices import DeviceChoice
from .filters import FiltersView
from .insight import InsightTabs, local_activations, measure_local
from .panel_run import SNAPSHOT_MIN_SECONDS, PanelRun
from .results import ResultsView
from .session import TrainingSession, warm_worker_wanted

# dataset keys that only some datasets read
_DATASET_ROWS = {"path": ("mnist", "fashion_mnist", "csv", "image_folder"), "images": ("idx",),
                 "labels": ("idx",), "label_column": ("csv",), "samples": config.SYNTHETIC + config.SEQUENCES,
                 "noise": config.SYNTHETIC, "test_fraction": None}
DEVICES_DELAY_MS = 300  # the devices are listed this long after the panel is built: after the first paint
# the warm training worker (it imports torch: seconds of a core) starts this long after the
# event loop does, so that it never delays the editor's first paint; then Train starts at once
WARM_DELAY_MS = 1500
PREPARE_DELAY_MS = 1000  # an Input's new shape is told to the warm worker once edits pause


class TrainingPanel(PanelRun, QWidget):
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
        self._local_job: Future | None = None  # their health and activations, being measured
        self._model_lock = threading.Lock()  # one forward pass of them at a time (hooks)
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
        self._local_job = None  # what a worker measures of the last one's is not shown
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
        """What the views show of the weights held here (saved or just trained): their filters
        at once; their health, boundary and activations from a worker thread, which runs the
        model (at the end of a run, on the GUI thread, that froze the editor for 0.2-0.3 s)."""
        model, a, graph = self.local_model, self.doc.analysis, self.doc.graph
        self._last_snapshot = None  # older than these weights: a tab switch must not bring it back
        self.filters.show_filters(snapshots.conv_filters(model, graph), a.order)
        dataset, training, sample, lock = self.dataset, dict(self.doc.project.training), self.sample, self._model_lock

        def measure():  # (plain objects only: no Qt object in a worker, see threads.py)
            with lock:
                return (*measure_local(model, graph, a, dataset, training), local_activations(model, a, sample))

        self._local_job = run_in_thread(measure, self, lambda future: self._local_measured(future, graph, a),
                                        name="netcanvas-weights-held")

    def _local_measured(self, future: Future, graph, analysis) -> None:
        if future is not self._local_job:  # other weights held since, or another project
            return
        self._local_job = None
        stats, maps, acts = future.result()
        self.insight.show_local(stats, maps, graph, analysis)
        self._show_local_activations(acts)

    def _show_local_activations(self, acts: dict | None = None) -> None:
        """The activations of the weights held for the sample shown (``acts``: measured already)."""
        a = self.doc.analysis
        if acts is None:
            with self._model_lock:  # (a worker may be measuring the same model: its hooks)
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
        settle_garbage()  # the collections while it trains skip what was there before it
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
