"""Run > Profile: the per-node profile of the project as it is now, drawn on the canvas.

The profile runs in a child process (``engine.session.profiling``); a timer on the GUI thread
picks its result up, so the editor never waits. The overlay shows the nodes' share of time,
memory or FLOPs (``Profiling.metric``); it is of the graph that was profiled, so the first
edit after it clears it, and an edit while it runs makes the result be dropped with a word.
Only the top level of the project has a profile: inside an open block the overlay is hidden.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ..engine.session.profiling import ProfileJob, ProfileOutcome

METRICS = {"time": "Time", "memory": "Memory", "flops": "FLOPs"}
POLL_MS = 100


class Profiling(QObject):
    """``message(str)``: what to say in the status bar; ``busy_changed(bool)``;
    ``failed(str)``: why a profile could not be made. ``show(profile | None, metric)`` draws
    (the scene's ``set_profile``); ``project()``, ``scope()`` and ``analysis()`` read the document."""

    message = Signal(str)
    busy_changed = Signal(bool)
    failed = Signal(str)

    def __init__(self, parent: QObject, project: Callable, scope: Callable[[], tuple],
                 show: Callable[[dict | None, str], None], analysis: Callable = lambda: None):
        super().__init__(parent)
        self._project, self._scope, self._show, self._current = project, scope, show, analysis
        self.job: ProfileJob | None = None
        self.profile: dict | None = None
        self.metric = "time"
        self._edits = 0  # edits seen; a profile of an older graph is dropped
        self._analysis = None  # the last analysis seen: a move keeps it (nothing analyzed changed)
        self._started_at_edit = 0
        self._timer = QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(self) -> None:
        if self.job is not None:
            self.message.emit("A profile is already running.")
            return
        self.job = ProfileJob(self._project())
        self._started_at_edit = self._edits
        self._analysis = self._current()
        self._timer.start()
        self.busy_changed.emit(True)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self._end()

    def set_metric(self, metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown profile metric {metric!r}; choose from {', '.join(METRICS)}")
        self.metric = metric
        self.refresh()

    def clear(self) -> None:
        self.profile = None
        self.refresh()

    def graph_edited(self, analysis=None) -> None:
        """The graph was analyzed again (``analysis``): unless nothing analyzed changed (a node
        moved), a shown profile no longer describes it."""
        if analysis is not None and analysis is self._analysis:
            return
        self._analysis = analysis
        self._stale("the graph changed")

    def settings_edited(self, section: str) -> None:
        """The project's ``section`` settings changed: the training settings are measured too
        (the batch, the kernels, the loss)."""
        if section == "training":
            self._stale("the training settings changed")

    def _stale(self, why: str) -> None:
        self._edits += 1  # (a profile running now is dropped when it arrives)
        if self.profile is not None:
            self.clear()
            self.message.emit(f"Profile cleared: {why} (Run > Profile measures it again).")

    def refresh(self) -> None:
        self._show(self.profile if not self._scope() else None, self.metric)

    def _poll(self) -> None:
        outcome: ProfileOutcome | None = self.job.poll() if self.job else None
        if outcome is None:
            return
        self._end()
        if outcome.error is not None:
            self.failed.emit(outcome.error)
        elif self._edits != self._started_at_edit:
            self.message.emit("The graph changed while it was profiled: Run > Profile again to see it.")
        else:
            self.profile = outcome.profile
            self.refresh()
            self.message.emit(summary(outcome.profile))

    def _end(self) -> None:
        self._timer.stop()
        self.job = None
        self.busy_changed.emit(False)


def summary(profile: dict) -> str:
    """One line for the status bar: the step's time split and the slowest node."""
    nodes = profile.get("nodes") or []
    top = max(nodes, key=lambda n: n["forward_ms"] + n["backward_ms"], default=None)
    text = (f"Profiled on {profile.get('device')}, batch {profile.get('batch_size')}: forward "
            f"{profile.get('forward_ms', 0):.2f} ms, backward {profile.get('backward_ms', 0):.2f} ms, "
            f"{profile.get('total_flops', 0) / 1e6:,.1f} MFLOPs")
    if top is not None:
        text += f"; slowest: {top['id']} ({top['forward_ms'] + top['backward_ms']:.2f} ms)"
    return text
