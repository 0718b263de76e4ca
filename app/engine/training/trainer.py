"""The training loop: no Qt, reports through a callback, pausable and stoppable.

    run = prepare_run(project)               # checks everything; raises NetCanvasError
    result = Trainer(run, callback=print).run()

The callback receives ``BatchEvent`` per minibatch, ``EpochEvent`` per epoch,
``SnapshotEvent`` when asked, and one ``FinishedEvent``. ``pause``/``resume``/``stop`` and
``request_snapshot`` may be called from any thread; they act between minibatches. A snapshot
also carries the layer health (``health.py``: measured on the step before it, when the pacer
allows; costs nothing while no snapshot is wanted) and, for two input features, the decision
boundary (``boundary.py``). How a run ends (divergence, and whether its weights may replace
the ones in place) is in ``outcome.py``.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import fx

from .. import boundary, footprint, snapshots
from ..compiler import compile_graph, input_dtype
from ..datasets import Dataset, batch_count, batches, check_input_dtype, fit_to_input, load_dataset
from ..devices import resolve_device
from ..errors import GraphError, TrainingError
from ..health import HealthPacer, HealthProbe, probe_batch
from ..inference import Analysis, analyze
from ..optimizers import OPTIMIZERS, SCHEDULES, keyword_arguments
from ..project import Project
from ..weights import (PartialLoad, check_writable, init_weights_path, load_partial, new_run_id, run_weights_path,
                       safe_places, save_weights)
from .events import BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent
from .objective import Objective, make_objective
from .outcome import RunOutcome, _lower_lr


@dataclass
class TrainingRun:
    """Everything a run needs, checked: the project, its analysis, the data (fitted to the
    Input), the objective, and the settings (the project's, with overrides applied)."""

    project: Project
    analysis: Analysis
    dataset: Dataset
    objective: Objective
    settings: dict
    notes: list[str] = field(default_factory=list)


def prepare_run(project: Project, dataset: Dataset | None = None, **overrides) -> TrainingRun:
    """Check the graph, load the data and match it to the Input, and check the loss against
    the output. Raises ``GraphError``, ``DatasetError`` or ``TrainingError`` before any
    training starts. ``overrides`` replace training settings (epochs=3, device='cpu')."""
    analysis = analyze(project.graph)
    if not analysis.ok:
        raise GraphError(analysis.errors)
    settings = {**project.training, **{k: v for k, v in overrides.items() if v is not None}}
    input_id = analysis.inputs[0]
    input_shape = analysis.shapes[input_id]
    if dataset is None:
        base = project.path.parent if project.path else None
        dataset = load_dataset(project.dataset, base, input_shape, input_id)
    else:
        dataset = fit_to_input(dataset, input_shape, input_id)
    check_input_dtype(dataset, input_dtype(analysis, input_id), input_id)
    if settings["drop_last"] and len(dataset.train) < settings["batch_size"]:
        raise TrainingError(f"batch_size {settings['batch_size']} is larger than the {len(dataset.train)} "
                            "training samples, and drop_last drops that one short batch: lower the "
                            "batch size or turn drop_last off")
    objective = make_objective(project.graph, analysis, settings, dataset.num_classes, input_shape,
                               dataset.mean, dataset.std)
    return TrainingRun(project, analysis, dataset, objective, settings,
                       dataset.notes + objective.notes)


class Trainer(RunOutcome):
    """Trains ``run`` on its device. ``weights_path``: where the project's weights live
    (safetensors; checked writable here, before anything is allocated): a run's final
    weights go there, unless the run was stopped, diverged or ended worse (by validation
    accuracy, else validation loss; weights in place without recorded metrics are evaluated
    on this run's validation split, and weights that cannot be compared with this run's,
    trained on other data or not fitting the network, are not replaced) than the weights
    already there: then they go to
    ``NAME.runs/<run id>.safetensors`` beside it (see ``FinishedEvent.weights_held_back``);
    ``checkpoint_dir``: a checkpoint per epoch; ``initial_weights``: start
    from these instead of a fresh initialization (default: the project's
    ``training.init_weights``, see ``init_weights_path``), loaded partially: nodes whose
    parameter shapes fit take them, the others are initialized, and ``start_weights`` (a
    ``PartialLoad``) and a note of the run say which; ``snapshot_every``: a SnapshotEvent
    every N minibatches for ``snapshot_samples`` (default: the first 8 test samples);
    ``on_pause(paused, step)``: called from the training thread when the loop really stops
    between minibatches for a pause, and again when it goes on; ``run_id``: the run's id
    (default ``new_run_id()``), in its FinishedEvent, its weights' metadata and the name
    of the file its held-back weights go to."""

    def __init__(self, run: TrainingRun, callback: Callable[[object], None] | None = None, *,
                 weights_path: str | Path | None = None, checkpoint_dir: str | Path | None = None,
                 initial_weights: str | Path | None = None, snapshot_every: int = 0,
                 snapshot_samples: torch.Tensor | None = None,
                 on_pause: Callable[[bool, int], None] | None = None, set_aside_incomparable: bool = False,
                 run_id: str | None = None):
        self.run_spec = run
        # where nobody can be asked (the CLI): a completed run whose weights cannot be compared
        # with those in place replaces them, and they move to the runs folder
        self.set_aside_incomparable = set_aside_incomparable
        self._incomparable = False
        self.on_pause = on_pause
        self.callback = callback or (lambda event: None)
        self.weights_path = Path(weights_path) if weights_path else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.snapshot_every = snapshot_every
        self.snapshot_samples = snapshot_samples
        s = run.settings
        self.device = resolve_device(s["device"])
        self.run_id = run_id or new_run_id()
        if self.weights_path is not None:
            check_writable(self.weights_path)
        self._check_memory(run)
        torch.manual_seed(s["seed"])
        graph = run.project.graph
        self.model: fx.GraphModule = compile_graph(graph, run.analysis, device=self.device)
        initial_weights = initial_weights or init_weights_path(run.project, s)
        self.start_weights: PartialLoad | None = None
        if initial_weights:
            self.start_weights = load_partial(self.model, initial_weights)
            run.notes.append("weights: " + self.start_weights.summary())
        # the loss may read the logits before a final Softmax, and the kernels setting may fuse
        # layers: a second module for the training steps, same weights (self.model stays
        # unfused: snapshots, checkpoints and weights files read it)
        out_id, kernels = run.objective.loss_node, s.get("kernels", "off")
        self.train_model = self.model
        if out_id != run.analysis.output or kernels != "off":
            other = compile_graph(graph, run.analysis, output=out_id, modules=self.model, kernels=kernels)
            if out_id != run.analysis.output or getattr(other, "fused", None):
                self.train_model = other
            run.notes.extend(n for n in getattr(other, "kernel_notes", []) if n not in run.notes)
        # layer health (health.py): measured on the snapshots the pacer allows, on a fixed probe
        # batch of training samples; the weights are copied only on the step before such a snapshot
        self._probe = HealthProbe(self.model, graph, run.analysis)
        self._probe_x: torch.Tensor | None = None  # made at the first measurement: most runs take none
        self._pacer = HealthPacer()
        self._health: dict | None = None
        self._health_step: int | None = None
        # the decision boundary: a model with two input features trained on class labels
        self._boundary = boundary.applies(run.analysis) and s.get("target", "labels") == "labels"
        self._frame: boundary.Frame | None = None  # its ranges and points, computed once
        # what the training steps call: train_model itself, or a wrapper such as
        # DistributedDataParallel (training/distributed.py); evaluation calls train_model
        self.step_model = self.train_model
        self.optimizer = _optimizer(self.model, s)
        self.scheduler = _scheduler(self.optimizer, s)
        self._paused = threading.Event()
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._snapshot_wanted: torch.Tensor | None = None
        self._lock = threading.Lock()
        self.step = 0
        self._first_loss: float | None = None
        self._val_at: tuple[int, float | None, float | None] | None = None  # (step, loss, accuracy)

    def _check_memory(self, run: TrainingRun) -> None:
        """Refuse a model that cannot fit the device, before its parameters are allocated."""
        batch = min(int(run.settings["batch_size"]), max(1, len(run.dataset.train)))
        need = footprint.estimate(run.analysis, run.settings, batch)
        if self.device.type == "cuda":
            try:
                available, where = torch.cuda.mem_get_info(self.device)[0], f"free memory of {self.device}"
            except RuntimeError:
                available, where = footprint.available_memory(str(self.device))
        else:
            available, where = footprint.system_available_memory(), "available memory (RAM)"
        problem = footprint.too_big(need, available, where)
        if problem:
            raise TrainingError(problem)

    # -- control, from any thread ------------------------------------------------------
    def pause(self) -> None:
        self._wake.clear()
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def request_snapshot(self, samples: torch.Tensor | None = None) -> None:
        """Ask for a SnapshotEvent between the next minibatches (also while paused)."""
        with self._lock:
            self._snapshot_wanted = samples if samples is not None else self._default_samples()
        self._wake.set()

    # -- the loop --------------------------------------------------------------------
    def run(self) -> FinishedEvent:
        """Train; returns (and reports) the FinishedEvent. Never raises for a diverging run."""
        s, data = self.run_spec.settings, self.run_spec.dataset
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(s["seed"])
        n_batches = self._batch_count()
        best, best_state, stale, epoch = math.inf, None, 0, 0
        reason, message = "completed", f"trained {s['epochs']} epoch{'' if s['epochs'] == 1 else 's'}"
        for epoch in range(1, s["epochs"] + 1):
            epoch_start = time.perf_counter()
            outcome = self._epoch(epoch, n_batches, generator)
            if outcome is not None:
                reason, message = outcome
                break
            train_loss, train_acc = self._last_epoch_stats
            val_loss, val_acc = self.evaluate(data.val)
            lr = self.optimizer.param_groups[0]["lr"]
            self._val_at = (self.step, val_loss, val_acc)
            self.callback(EpochEvent(epoch, s["epochs"], train_loss, train_acc, val_loss, val_acc,
                                     time.perf_counter() - epoch_start, lr))
            diverged = self._diverged(epoch, train_loss)
            if diverged:
                reason, message = "diverged", diverged
                break
            if self.checkpoint_dir:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                save_weights(self.model, self.checkpoint_dir / f"epoch-{epoch:03d}.safetensors",
                             {"epoch": str(epoch), "val_loss": str(val_loss)})
            if self._stopped.is_set():
                reason, message = "stopped", f"stopped by the user after epoch {epoch}"
                break
            if self.scheduler is not None:
                self.scheduler.step()
            patience = s.get("early_stopping_patience")
            if patience and val_loss is not None:
                if math.isinf(best) or val_loss < best - 1e-4 * abs(best):  # relative: losses differ in scale
                    best, stale = val_loss, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    stale += 1
                    if stale >= patience:
                        if best_state is not None:
                            self.model.load_state_dict(best_state)
                            self._val_at = None
                        reason = "early_stopping"
                        message = (f"stopped early after epoch {epoch}: validation loss did not improve "
                                   f"for {patience} epochs; kept the best weights (val loss {best:.4f})")
                        break
        return self._finish(reason, message, epoch, started)

    def _epoch(self, epoch: int, n_batches: int, generator: torch.Generator):
        """One pass over the training split. Returns None, or (reason, message) when the run
        must end: stopped by the user, or diverged (a NaN or infinite loss)."""
        s, objective = self.run_spec.settings, self.run_spec.objective
        self.model.train()
        self.train_model.train()  # fused modules are not self.model's: set their mode too
        total_loss = total_correct = seen = 0.0
        last = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        for i, (x, y) in enumerate(self._train_batches(epoch, generator), 1):
            if not self._wait_if_paused():
                return "stopped", f"stopped by the user in epoch {epoch}, minibatch {i}"
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            out = self.step_model(x)
            loss = objective.loss(out, x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if objective.correct is not None:
                right = objective.correct(out.detach(), y, x).float()
                loss_value, correct = torch.stack([loss.detach().float(), right]).tolist()
            else:
                loss_value, correct = loss.item(), None
            self.step += 1
            if not self._all_finite(loss_value):
                shown = loss_value if not math.isfinite(loss_value) else "NaN or infinite in another process"
                return "diverged", (
                    f"the loss became {shown} at epoch {epoch}, minibatch {i} (step {self.step}); "
                    f"the learning rate {s['lr']:g} is probably too high: try {_lower_lr(s['lr'])} or "
                    "lower")
            if self.snapshot_every and self.step % self.snapshot_every == 0 and self._snapshot_wanted is None:
                self.request_snapshot(self.snapshot_samples)
            # a snapshot is wanted and health is due: bracket this step (the snapshot follows it)
            measuring = self._snapshot_wanted is not None and self._pacer.due(time.monotonic())
            if measuring:
                self._probe.before_step(self.model)
            self.optimizer.step()
            if measuring:
                self._probe.after_step(self.model)
            n = len(y)
            total_loss += loss_value * n
            seen += n
            if correct is not None:
                total_correct += correct
            now = time.perf_counter()
            self.callback(BatchEvent(epoch, i, n_batches, self.step, loss_value,
                                     None if correct is None else correct / n,
                                     n / max(now - last, 1e-9), lr))
            last = now
            self._maybe_snapshot()
        self._last_epoch_stats = _means(*self._epoch_totals(total_loss, total_correct, seen), objective)
        return None

    # -- what a distributed run changes (training/distributed.py overrides these) ----------
    def _train_batches(self, epoch: int, generator: torch.Generator):
        """The minibatches of the training split for ``epoch``, shuffled by ``generator``."""
        s = self.run_spec.settings
        return batches(self.run_spec.dataset.train, s["batch_size"], shuffle=True,
                       drop_last=s["drop_last"], generator=generator)

    def _batch_count(self) -> int:
        s = self.run_spec.settings
        return batch_count(len(self.run_spec.dataset.train), s["batch_size"], s["drop_last"])

    def _all_finite(self, loss_value: float) -> bool:
        """Whether this step's loss is finite (in every process, when there are several)."""
        return math.isfinite(loss_value)

    def _epoch_totals(self, total_loss: float, total_correct: float, seen: float) -> tuple[float, float, float]:
        """The epoch's sums of loss, right predictions and samples (over every process)."""
        return total_loss, total_correct, seen

    def _wait_if_paused(self) -> bool:
        """Block while paused (still serving snapshot requests); False once stopped."""
        if not self._paused.is_set() or self._stopped.is_set():
            return not self._stopped.is_set()
        if self.on_pause:
            self.on_pause(True, self.step)
        while self._paused.is_set() and not self._stopped.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            self._maybe_snapshot()
        going_on = not self._stopped.is_set()
        if going_on and self.on_pause:
            self.on_pause(False, self.step)
        return going_on

    def _maybe_snapshot(self) -> None:
        with self._lock:
            samples, self._snapshot_wanted = self._snapshot_wanted, None
        if samples is None:
            return
        self.callback(self.snapshot(samples))

    def snapshot(self, samples: torch.Tensor) -> SnapshotEvent:
        """Filters and activations for ``samples``; the layer health (measured now when the
        last step was measured for it, or when there is none yet; else the last measurement)
        and the decision boundary where it applies."""
        filters = snapshots.conv_filters(self.model, self.run_spec.project.graph)
        # samples come as float32 from the editor: token ids go back to the Input's int64
        x = samples.to(self.device, dtype=self.model.input_dtypes[0])
        acts = snapshots.activations(self.model, self.run_spec.analysis, x)
        if self._probe.fresh or self._health is None:
            started, stepped = time.monotonic(), self._probe.fresh
            if self._probe_x is None:
                s = self.run_spec.settings
                self._probe_x = probe_batch(self.run_spec.dataset.train, s["batch_size"], s["seed"])
            probe = self._probe_x.to(self.device, dtype=self.model.input_dtypes[0])
            self._health, self._health_step = self._probe.measure(self.model, probe), self.step
            if stepped:  # one without a step (before the first) leaves the first step's due at once
                now = time.monotonic()
                self._pacer.measured(now, now - started + self._probe.step_seconds)
        else:
            self._pacer.served()
        maps = None
        if self._boundary:
            data = self.run_spec.dataset
            self._frame = self._frame or boundary.frame(data)
            maps = boundary.boundary_maps(self.model, self.run_spec.analysis, data, loss=self.run_spec.settings["loss"],
                                          fixed=self._frame)
        return SnapshotEvent(self.step, filters, acts, health=self._health, boundary=maps,
                             health_step=self._health_step)

    def _default_samples(self) -> torch.Tensor:
        data = self.run_spec.dataset
        split = data.test if len(data.test) else data.train
        return split.x[:8]

    @torch.no_grad()
    def evaluate(self, split, *, details: bool = False):
        """Mean loss and accuracy over ``split`` in eval mode (None, None when empty); with
        ``details`` also the predictions ``[N]`` (None when accuracy has no meaning)."""
        if len(split) == 0:
            return (None, None, None) if details else (None, None)
        objective = self.run_spec.objective
        self.model.eval()
        self.train_model.eval()
        total_loss = total_correct = 0.0
        predictions = []
        for x, y in batches(split, max(256, self.run_spec.settings["batch_size"])):
            x, y = x.to(self.device), y.to(self.device)
            out = self.train_model(x)
            total_loss += float(objective.loss(out, x, y)) * len(y)
            if objective.correct is not None:
                total_correct += float(objective.correct(out, y, x))
                if details and objective.predict is not None:
                    predictions.append(objective.predict(out).cpu())
        self.model.train()
        self.train_model.train()
        n = len(split)
        accuracy = total_correct / n if objective.correct is not None else None
        if details:
            return total_loss / n, accuracy, torch.cat(predictions) if predictions else None
        return total_loss / n, accuracy

    def _finish(self, reason: str, message: str, epochs_run: int, started: float) -> FinishedEvent:
        if reason != "diverged" and self.step > 0:
            grown = self._weights_diverged()
            if grown:
                reason, message = "diverged", f"{grown} by the end of the run{self._lr_hint()}"
        event = FinishedEvent(reason, message, epochs_run, self.step, 0.0, run_id=self.run_id)
        if reason != "diverged":
            data = self.run_spec.dataset
            event.test_loss, event.test_accuracy, predicted = self.evaluate(data.test, details=True)
            if predicted is not None:
                _confusion(event, data.test.y, predicted, data.num_classes)
            if self._val_at is not None and self._val_at[0] == self.step:
                event.val_loss, event.val_accuracy = self._val_at[1:]
            else:
                event.val_loss, event.val_accuracy = self.evaluate(data.val)
        if self.weights_path and self.step > 0:  # no step taken: keep the weights already there
            self._save(event)
        event.seconds = time.perf_counter() - started
        self.callback(event)
        return event

    # -- where the weights go (whether they may replace those in place: outcome.py) ------
    def _save(self, event: FinishedEvent) -> None:
        """Write the weights: to the target, or to the runs folder beside it when the run
        must not replace what is there; anywhere safe when writing fails (said in the event)."""
        target = self.weights_path
        event.weights_target = str(target)
        event.weights_held_back = self._held_back(event, target)
        if event.weights_held_back and self._incomparable and self.set_aside_incomparable:
            self._set_aside(event, target)
        dest = target if event.weights_held_back is None else run_weights_path(target, self.run_id)
        metadata = self._metadata(event)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            save_weights(self.model, dest, metadata)
            event.weights_path = str(dest)
            return
        except OSError as e:
            problem = f"the weights could not be written to {dest} ({e.strerror or e})"
        for safe in safe_places(f"{target.name[:-len(target.suffix) or None]}-{self.run_id}.safetensors"):
            try:
                safe.parent.mkdir(parents=True, exist_ok=True)
                save_weights(self.model, safe, metadata)
            except OSError as e:
                problem += f", nor to {safe} ({e.strerror or e})"
                continue
            event.weights_path = str(safe)
            event.weights_error = f"{problem}; they were kept in {safe} instead"
            break
        else:
            event.weights_error = f"{problem}: this run's weights are lost"
        event.weights_held_back = event.weights_held_back or event.weights_error


def _means(total_loss, total_correct, seen, objective: Objective):
    if not seen:
        return float("nan"), None
    return total_loss / seen, (total_correct / seen if objective.correct is not None else None)


def _confusion(event: FinishedEvent, truth: torch.Tensor, predicted: torch.Tensor, k: int) -> None:
    k = max(k, int(predicted.max()) + 1)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (truth.numpy(), predicted.numpy()), 1)
    event.confusion = matrix.tolist()
    rows = matrix.sum(axis=1)
    event.per_class_accuracy = [float(matrix[i, i] / rows[i]) if rows[i] else None for i in range(k)]
    wrong = np.nonzero(truth.numpy() != predicted.numpy())[0]
    event.misclassified = [(int(i), int(truth[i]), int(predicted[i])) for i in wrong[:100]]


def _optimizer(model, s) -> torch.optim.Optimizer:
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise TrainingError("the model has no trainable parameters; add a Linear or Conv layer, "
                            "or set trainable on a frozen one")
    choice = OPTIMIZERS[s["optimizer"]]
    return getattr(torch.optim, choice.cls)(trainable, lr=s["lr"], **keyword_arguments(choice, s))


def _scheduler(optimizer, s):
    choice = SCHEDULES.get(s["schedule"])
    if choice is None:
        return None
    return getattr(torch.optim.lr_scheduler, choice.cls)(optimizer, **keyword_arguments(choice, s))
