"""A sweep's worker: a process (or the caller itself) that loads the study and trains its
share of the trials one after another in this process (``RunSupervisor`` inline), each a
run recorded in the run store by a ``RunRecorder``. Each trial reports its validation
metric per epoch; when the pruner says so, the run stops and its record says ``pruned``.

With ``repeats`` R > 1 a trial trains R runs, with the project's initialization seed, +1,
... +R-1, each tagged ``repeat i/R``; its value is the mean of their final metrics (a small
validation split makes one run's a noisy judge). Only the first run reports per-epoch
values to the pruner; a pruned first run skips the others.

A trial's weights go to a scratch file in the runs folder (never the project's weights
file); the recorder copies them to ``NAME.runs/<run id>.safetensors`` and the scratch file
is removed.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from ..errors import NetCanvasError
from ..project import Project, parse_project
from ..session.supervisor import RunSupervisor
from ..weights import runs_dir
from .recorder import RunRecorder
from .space import SweepParam, apply_params, suggest
from .store import RunStore
from .studies import fail_stale, make_sampler, open_storage, quiet_optuna

RUN_ID = "run_id"  # the trial's user attributes: its (first) run, where it ran, and what went wrong
HOST, PID, MESSAGE = "host", "pid", "message"
RUN_IDS, VALUES = "run_ids", "values"  # every repeat's run, and the final metric of each that finished
SCRATCH = "sweeps"  # the runs folder's sub-folder where trials write their weights first


@dataclass
class WorkerPlan:
    """What a worker needs (picklable: it crosses to a spawned process)."""

    storage: str
    study: str
    project: dict  # project_to_dict
    project_path: str | None
    weights_target: str  # the project's weights file: the runs folder and store are beside it
    store: str
    params: list[dict]  # SweepParam.as_dict()
    metric: str = "val_accuracy"
    sampler: str = "tpe"
    trials: int = 1
    epochs: int | None = None
    threads: int = 0  # torch threads of a worker process (0: leave them as they are)
    seed: int | None = None
    pruner: object = None  # an optuna pruner (None: none)
    heartbeat_interval: int = 2
    grace_period: int | None = None
    overrides: dict = field(default_factory=dict)
    repeats: int = 1  # runs per trial, seeds the project's, +1, +2...: the trial's value is their mean
    # another worker of this machine takes the queued trials (the project's own settings):
    # two that took the same one off SQLite's queue at once trained it twice, and the second
    # to finish died on "Cannot tell a COMPLETE trial" with its other trials
    after_queue: bool = False


def scratch_dir(weights_target: Path, study: str) -> Path:
    """Where ``study``'s trials write their weights first: ``NAME.runs/sweeps/<study>``, the
    name made safe for a folder (a study name may say anything, "../x" included)."""
    return runs_dir(weights_target) / SCRATCH / (re.sub(r"[^A-Za-z0-9_-]", "_", study)[:100] or "_")


class TrialFailed(NetCanvasError):
    """A trial whose run could not train or gave no validation metric."""


def worker_main(plan: WorkerPlan) -> None:
    """The entry point of a worker process (``multiprocessing`` spawn): train ``plan.trials``
    trials of the study, then return."""
    warnings.simplefilter("ignore", ExperimentalWarning)
    if plan.threads:
        torch.set_num_threads(plan.threads)
    try:
        run_trials(plan)
    except NetCanvasError as e:  # the storage or the store cannot be opened: said in a line
        sys.stderr.write(f"error: sweep worker {os.getpid()}: {e}\n")
        sys.exit(1)


def run_trials(plan: WorkerPlan) -> None:
    """Train ``plan.trials`` trials of the study in this process (each trial's failure is
    recorded in the study as FAIL, and the next one goes on)."""
    quiet_optuna()
    storage = open_storage(plan.storage, plan.heartbeat_interval, plan.grace_period)
    params = [SweepParam.from_dict(p) for p in plan.params]
    project = parse_project(plan.project, source=plan.project_path or "<project>")
    project.path = Path(plan.project_path) if plan.project_path else None
    store = RunStore(plan.store)
    try:
        with warnings.catch_warnings():  # (the heartbeat and GridSampler's are ExperimentalWarnings)
            warnings.simplefilter("ignore", ExperimentalWarning)
            sampler = make_sampler(plan.sampler, params, plan.seed)
            study = optuna.load_study(study_name=plan.study, storage=storage, sampler=sampler, pruner=plan.pruner)
            fail_stale(study)
            if plan.after_queue:
                _wait_for_queue(study)
            study.optimize(_Objective(plan, project, params, store), n_trials=plan.trials, catch=(Exception,),
                           gc_after_trial=False)
    finally:
        store.close()


QUEUE_WAIT_SECONDS = 120.0  # the longest a worker waits for the queued trials to be taken


def _wait_for_queue(study: optuna.Study, poll: float = 0.1) -> None:
    """Return once the study has no queued (WAITING) trial left, or after QUEUE_WAIT_SECONDS
    (the worker that was to take them may have died)."""
    deadline = time.monotonic() + QUEUE_WAIT_SECONDS
    while time.monotonic() < deadline and study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        time.sleep(poll)


class _Objective:
    """One trial: sample, apply to a copy of the project, train it as a recorded run."""

    def __init__(self, plan: WorkerPlan, project: Project, params: list[SweepParam], store: RunStore):
        self.plan, self.project, self.params, self.store = plan, project, params, store
        self.target = Path(plan.weights_target)

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(HOST, socket.gethostname())
        trial.set_user_attr(PID, os.getpid())
        try:
            return self._train(trial)
        except optuna.TrialPruned:
            raise
        except NetCanvasError as e:
            trial.set_user_attr(MESSAGE, str(e))
            raise
        except Exception as e:  # a bug or a store that failed: the trial fails, the sweep goes on
            trial.set_user_attr(MESSAGE, f"{type(e).__name__}: {e}")
            raise

    def _train(self, trial: optuna.Trial) -> float:
        """Train the trial's ``plan.repeats`` runs (seeds: the project's, +1, +2...) one after
        another; returns the mean of their final metrics. Raises ``optuna.TrialPruned`` when
        the first run is pruned (the others are not trained), ``TrialFailed`` when a run
        gives no metric."""
        values = {p.name: suggest(trial, p) for p in self.params}
        repeats = self.plan.repeats
        base = int(self.project.training.get("seed") or 0)
        run_ids: list[str] = []
        finals: list[float] = []
        for index in range(repeats):
            # the seed goes into the project itself, so that the run's project and settings both say it
            project = apply_params(self.project, values if repeats == 1 else {**values, "seed": base + index})
            finals.append(self._train_once(trial, project, values, index, run_ids))
            trial.set_user_attr(VALUES, list(finals))
        return sum(finals) / len(finals)

    def _train_once(self, trial: optuna.Trial, project: Project, values: dict, index: int,
                    run_ids: list[str]) -> float:
        """One run of the trial (repeat ``index``, counted from 0; its id appended to
        ``run_ids``); returns its final metric. Only the first repeat reports per-epoch values
        to the pruner (Optuna takes one value per step)."""
        repeats = self.plan.repeats
        scratch = scratch_dir(self.target, self.plan.study) / f"{trial.number}-{index}-{os.getpid()}.safetensors"
        supervisor = RunSupervisor()
        recorder = RunRecorder(self.store, supervisor, project, self.target, sweep=self.plan.study,
                               trial=trial.number, params=values)
        pruned, failure, last = [], [], []
        metric = self.plan.metric
        where = f"repeat {index + 1}/{repeats}: " if repeats > 1 else ""

        def on_ready(info: dict) -> None:
            if info.get("run_id"):
                _note_run(trial, run_ids, info["run_id"])

        def on_epoch(event) -> None:
            value = getattr(event, metric)
            if pruned or value is None or not math.isfinite(value):
                return
            last[:] = [float(value)]
            if index:
                return
            trial.report(float(value), event.epoch)
            if trial.should_prune():
                pruned.append(event.epoch)
                supervisor.stop()  # after the minibatch in progress: the run tests and saves as stopped

        supervisor.ready.connect(on_ready)
        supervisor.epoch.connect(on_epoch)
        supervisor.failed.connect(failure.append)
        overrides = {**self.plan.overrides, **({"epochs": self.plan.epochs} if self.plan.epochs else {})}
        try:
            supervisor.start(project, where="inline", weights_path=scratch, overrides=overrides,
                             threads=self.plan.threads or None)
            finished = supervisor.wait()
        finally:
            supervisor.shutdown()
            recorder.detach()
            shutil.rmtree(scratch.parent / (scratch.stem + ".runs"), ignore_errors=True)
            scratch.unlink(missing_ok=True)
        run_id = recorder.run_id or getattr(finished, "run_id", None)
        if run_id:
            _note_run(trial, run_ids, run_id)
            if repeats > 1 and recorder.error is None:
                self.store.set_tags(run_id, [f"repeat {index + 1}/{repeats}"])
        if finished is None:
            raise TrialFailed(where + (failure[0] if failure else "the run ended without a result"))
        if pruned:
            if run_id:
                self.store.set_status(run_id, "pruned", f"pruned by the sweep's pruner after epoch {pruned[0]}")
            raise optuna.TrialPruned(f"pruned after epoch {pruned[0]}")
        value = getattr(finished, metric)
        if value is None and last:  # (a run stopped early reports its last epoch's)
            value = last[0]
        if value is None or not math.isfinite(value):
            raise TrialFailed(f"{where}the run gave no {metric.replace('_', ' ')} (does the dataset have a "
                              f"validation split?): {finished.message}")
        return float(value)


def _note_run(trial: optuna.Trial, run_ids: list[str], run_id: str) -> None:
    """Keep ``run_id`` in the trial's attributes: ``run_id`` the first run, ``run_ids`` all."""
    if run_id in run_ids:
        return
    run_ids.append(run_id)
    trial.set_user_attr(RUN_ID, run_ids[0])
    trial.set_user_attr(RUN_IDS, list(run_ids))
