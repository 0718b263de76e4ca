"""The main window's status bar (``WindowStatus``, a part of ``MainWindow``): the parameter
count, the errors, how the next run's start weights fit, and the message of a lasting
state (training, an export)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel

from ..engine.counts import param_split
from ..engine.session.weights import init_weights_fit

START_WEIGHTS_DELAY_MS = 150  # after the last edit, the status bar says how the start weights fit


class WindowStatus:
    """``MainWindow``'s status bar (it holds ``doc``, ``scene``, ``issues``, ``inspector``,
    ``blocks``); ``_build_status()`` makes its labels."""

    def _build_status(self) -> None:
        self._state_text: str | None = None  # the status message of a state (training, an export)
        self.params_label, self.errors_label, self.weights_label = QLabel(), QLabel(), QLabel()
        # how the start weights fit is worked out once the edits pause: it compiles the graph
        # (on torch's meta device: ~0.14 s for a ResNet-50), which no edit should wait for
        self._start_weights_timer = QTimer(self, singleShot=True, interval=START_WEIGHTS_DELAY_MS)
        self._start_weights_timer.timeout.connect(self._update_start_weights)
        self.statusBar().addPermanentWidget(self.weights_label)
        self.statusBar().addPermanentWidget(self.errors_label)
        self.statusBar().addPermanentWidget(self.params_label)

    def _state_message(self, text: str) -> None:
        """A status message that lasts as long as the state it describes (training, an
        export): ``""`` when that state ends."""
        if text:
            self._state_text = text
            self.statusBar().showMessage(text)
        else:
            ended, self._state_text = self._state_text, None
            if self.statusBar().currentMessage() == ended:
                self.statusBar().clearMessage()

    def _drop_stale_message(self, *_args) -> None:
        bar = self.statusBar()
        if bar.currentMessage() and bar.currentMessage() != self._state_text:
            bar.clearMessage()

    def _show_analysis(self, a) -> None:
        errors = len(a.errors)
        # with errors, layers after them have no shape and no count: the count is of the rest
        uncounted = sum(1 for node_id in self.doc.graph.nodes if a.shapes.get(node_id) is None)
        trainable, frozen = param_split(self.doc.graph, a)
        frozen_text = f", {frozen:,} frozen" if frozen else ""
        if not uncounted:
            self.params_label.setText(f"{a.total_params:,} parameters{frozen_text}")
            self.params_label.setToolTip(f"Parameters of the whole network: {trainable:,} trainable, "
                                         f"{frozen:,} frozen (kept fixed while training)")
        else:
            self.params_label.setText(f"≥ {a.total_params:,} parameters{frozen_text}" if a.total_params
                                      else "– parameters")
            self.params_label.setToolTip(
                f"Parameters of the layers whose shapes are known ({frozen:,} of them frozen); {uncounted} layer"
                f"{'s' if uncounted > 1 else ''} cannot be counted until the errors are fixed")
        self._start_weights_timer.start()
        self.errors_label.setText("no errors" if not errors else f"{errors} error" + ("s" if errors > 1 else ""))
        self.errors_label.setStyleSheet("" if not errors else f"color: {self.scene.theme.error.name()}")
        self.issues.show_analysis(a)
        # the inspector shows the graph on the canvas: inside an open block, its analysis
        inside = self.doc.current_analysis
        node = self.selected_node()
        self.inspector.refresh(node, inside) if node else self.inspector.set_node(None, inside)
        self.blocks.show_block_params(node)

    def _update_start_weights(self) -> None:
        self._show_start_weights(self.doc.analysis)

    def _show_start_weights(self, a) -> None:
        """The status bar says how the weights that the next run starts from
        (``training.init_weights``, else the weights held unless the panel says "a fresh
        initialization") fit the graph as edited: which nodes keep them, which will be
        initialized."""
        start = self.doc.weights.start_file() if not self.doc.project.training.get("init_weights") else None
        fit = init_weights_fit(self.doc.project, a, start)
        if fit is None:
            self.weights_label.setText("")
            self.weights_label.setToolTip("")
            self.weights_label.setVisible(False)
            return
        self.weights_label.setVisible(True)
        if isinstance(fit, str):
            self.weights_label.setText("start weights missing")
            self.weights_label.setStyleSheet(f"color: {self.scene.theme.error.name()}")
            self.weights_label.setToolTip(fit)
            return
        self.weights_label.setStyleSheet("")
        name = Path(fit.source).name
        initialized = f", {len(fit.initialized)} initialized" if fit.initialized else ""
        self.weights_label.setText(f"from {name}: {len(fit.kept)} kept{initialized}")
        self.weights_label.setToolTip(f"The next run starts from {fit.source}: {fit.summary()}")
