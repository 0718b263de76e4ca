"""The training panel's run once started (``PanelRun``, a part of ``TrainingPanel``): its record
in the project's run store, its events (progress and ETA, snapshots pulled and drawn into the
view on screen) and its end (results, the weights it leaves, the status line)."""

from __future__ import annotations

import sqlite3
import time
from html import escape
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from ...engine.errors import NetCanvasError
from ...engine.runs.recorder import RunRecorder
from ...engine.runs.store import RunStore, store_path_for
from ...engine.session.budget import drawing_duty, snapshot_seconds
from ...engine.session.weights import UNSAVED_WEIGHTS_DAYS, RunOutcome, load_model

# snapshots (filters, activations) are pulled by the panel, paced by wall time and by what
# drawing them costs, never by minibatch count: a small model runs hundreds of steps a second;
# and only while a view that draws them is on screen, or the canvas draws them (live nodes): each
# costs the child a forward pass and the editor a redraw, so nobody's CPU goes on views nobody sees
SNAPSHOT_MIN_SECONDS = snapshot_seconds()  # 0.5 s, or 1 s where training takes every CPU
SNAPSHOT_DUTY = drawing_duty()  # the share of the GUI thread the snapshot views may draw for
# no ETA before this share of the first epoch (or two epochs) and this many seconds of
# minibatches have passed: it is measured from the run's own throughput
ETA_FIRST_EPOCH_SHARE = 0.2
ETA_MIN_SECONDS = 1.0


class PanelRun:
    """``TrainingPanel``'s methods for a run (it holds ``doc``, ``session``, ``dataset``, the views
    and the controls, the run's state and ``_snapshot_timer``; ``_build`` and ``_wire`` connect them)."""

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
        self._local_job = None  # (what a worker measures of the last ones is not shown)
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
