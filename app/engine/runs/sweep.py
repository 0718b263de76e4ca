"""Hyper-parameter sweeps with Optuna: K worker processes on this machine train the trials
of one study (TPE, random or grid sampling; median pruning on the per-epoch validation
metric), each trial a run in the run store marked with the sweep (``RunRecord.sweep`` is the
study's name, ``trial`` its number, ``params`` its values).

    sweep = Sweep(project, [parse_param("lr=1e-4:1e-1:log", project)], weights_target)
    result = sweep.run(trials=12, workers=2, on_trial=print)

or, from a GUI timer: ``sweep.start(12, 2)``, then ``sweep.poll()`` (the trials finished
since the last poll) until ``sweep.running`` is False, ``sweep.trials()`` for the table.

The study lives in the run store's SQLite file unless ``storage`` names a database (such
as PostgreSQL), which workers on other machines may join with the same study name. A
killed worker's trial turns FAIL once its heartbeat is overdue; its run is marked crashed.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..project import Project, project_to_dict
from ..training.launch import SPAWN
from ..weights import new_run_id
from .space import SweepParam, apply_params, check_space, current_values, grid_size, parse_param
from .store import RunStore, store_path_for
from .studies import (DIRECTIONS, HEARTBEAT_SECONDS, METRICS, SweepError, create_or_load, default_direction,
                      default_pruner, fail_stale, open_storage, quiet_optuna, sqlite_url)
from .sweep_worker import (HOST, MESSAGE, PID, RUN_ID, RUN_IDS, VALUES, WorkerPlan, run_trials, scratch_dir,
                           worker_main)

__all__ = ["Sweep", "SweepParam", "SweepResult", "TrialResult", "apply_params", "parse_param", "study_names",
           "study_trials"]

MAX_REPEATS = 100  # runs per trial
POLL_SECONDS = 0.5  # how often ``run`` looks at the study while no worker exits
STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}


@dataclass
class TrialResult:
    """One trial as the study holds it. ``state``: complete, pruned, failed, running or
    waiting; ``value``: its validation metric (complete trials; with repeats, the mean of
    ``values``, one per repeat that finished); ``run_id``: its (first) run in the store (None
    before its run started, or for a trial recorded elsewhere), ``run_ids`` all its runs;
    ``message``: why it failed."""

    number: int
    state: str
    params: dict
    value: float | None = None
    run_id: str | None = None
    message: str | None = None
    host: str | None = None
    pid: int | None = None
    run_ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        """``{"trial", "run_id", "state", "params", "value", "run_ids", "values"}`` (the CLI's
        --json keys)."""
        return {"trial": self.number, "run_id": self.run_id, "state": self.state, "params": self.params,
                "value": self.value, "run_ids": self.run_ids, "values": self.values}


@dataclass
class SweepResult:
    """What a sweep ended with: the study, where it is stored, every trial of the study, the best."""

    study: str
    storage: str
    metric: str
    direction: str
    trials: list[TrialResult] = field(default_factory=list)
    best: TrialResult | None = None

    def as_dict(self) -> dict:
        """The CLI's last --json line: ``{"done", "study", "storage", "best", "trials"}``."""
        return {"done": True, "study": self.study, "storage": self.storage, "best": best_dict(self.best),
                "trials": len(self.trials)}


def best_dict(best: TrialResult | None) -> dict | None:
    return None if best is None else {"trial": best.number, "value": best.value, "params": best.params}


class Sweep:
    """One study: its space (``params``: SweepParams or ``NAME=SPEC`` texts), sampler, metric
    and direction (default: the metric's: accuracy up, loss down), over ``project`` with
    its weights at ``weights_target`` (the run store and runs folder go beside them; trial
    weights go only to the runs folder). ``storage``: an SQLAlchemy URL (default the run
    store's SQLite file); ``study``: a name (default a new sweep id; with ``join`` an
    existing study of that name is joined). ``epochs``: each trial's (default the
    project's); ``pruner``: an Optuna pruner ("default": ``studies.default_pruner(epochs)``,
    None: none); ``repeats``: runs per trial with the seeds ``training.seed``, +1, ... (the
    trial's value their mean; refused with a searched ``seed``). Raises ``SweepSpecError``/
    ``SweepError`` (NetCanvasErrors) for a bad space, metric, direction, repeats or storage."""

    def __init__(self, project: Project, params: list, weights_target: str | Path, *, storage: str | None = None,
                 study: str | None = None, join: bool = False, sampler: str = "tpe",
                 metric: str = "val_accuracy", direction: str | None = None, epochs: int | None = None,
                 pruner: object = "default", seed: int | None = None,
                 heartbeat_interval: int = HEARTBEAT_SECONDS, grace_period: int | None = None,
                 repeats: int = 1):
        if metric not in METRICS:
            raise SweepError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
        if direction is not None and direction not in DIRECTIONS:
            raise SweepError(f"unknown direction {direction!r}; expected max or min")
        self.project = project
        self.params = [p if isinstance(p, SweepParam) else parse_param(p, project) for p in params]
        check_space(self.params, sampler)
        if not 1 <= repeats <= MAX_REPEATS:
            raise SweepError(f"expected repeats from 1 to {MAX_REPEATS}; received {repeats}")
        if repeats > 1 and any(p.name == "seed" for p in self.params):
            raise SweepError(f"the sweep searches seed, and {repeats} repeats set it themselves (seed, seed+1...): "
                             "search seed or repeat each trial, not both")
        self.repeats = repeats
        self.sampler, self.metric, self.epochs, self.seed = sampler, metric, epochs, seed
        self.direction = DIRECTIONS[direction] if direction else default_direction(metric)
        self.pruner = default_pruner(epochs or project.training["epochs"]) if pruner == "default" else pruner
        self.weights_target = Path(weights_target).resolve()
        self.store_path = store_path_for(self.weights_target)
        self.storage_url = storage or sqlite_url(self.store_path)
        self.study_name = study or "sweep-" + new_run_id()
        self.join = join
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.host = socket.gethostname()
        self.notes: list[str] = []
        self._store: RunStore | None = None
        self._study: optuna.Study | None = None
        self._workers: list = []
        self._seen: set[int] = set()
        self.finished: list[TrialResult] = []  # what ``run`` reported, in order
        self._all_exited: float | None = None

    # -- control -------------------------------------------------------------------------
    def start(self, trials: int, workers: int = 1) -> None:
        """Create (or join) the study and start ``workers`` processes sharing ``trials``
        (each gets its share; torch threads split: cpu_count // workers each).
        ``workers`` 0 trains the trials here, in this thread, before returning (tests, or a
        caller that is itself a worker). Raises ``SweepError`` when the storage or study
        cannot be opened."""
        if trials < 1 or workers < 0:
            raise SweepError(f"expected trials >= 1 and workers >= 0; received {trials} and {workers}")
        quiet_optuna()
        self._store = RunStore(self.store_path)  # the store's tables first, then Optuna's beside them
        storage = open_storage(self.storage_url, self.heartbeat_interval, self.grace_period)
        self._study = create_or_load(storage, self.study_name, self.direction, join=self.join)
        self._seen = {t.number for t in self._study.get_trials(deepcopy=False) if t.state.is_finished()}
        own = current_values(self.project, self.params) if self.sampler != "grid" else None
        if own is not None and not self._study.get_trials(deepcopy=False):
            # the project's own settings first: the sweep's best is then never worse than
            # them by its metric, and the table shows what the search gained over them
            self._study.enqueue_trial(own)
            self.notes.append("trial 0 uses the project's own settings: "
                              + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in own.items()))
        if self.sampler == "grid" and trials > grid_size(self.params):
            self.notes.append(f"the grid has {grid_size(self.params)} points: {grid_size(self.params)} trials, "
                              f"not {trials}")
            trials = grid_size(self.params)
        count = max(workers, 1)
        threads = max(1, (os.cpu_count() or 1) // count)
        shares = [trials // count + (1 if i < trials % count else 0) for i in range(count)]
        plans = [self._plan(share, threads if workers else 0, i) for i, share in enumerate(shares) if share]
        if workers == 0:
            run_trials(plans[0])
            return
        for plan in plans:
            process = SPAWN.Process(target=worker_main, args=(plan,), name="netcanvas-sweep", daemon=True)
            process.start()
            self._workers.append(process)

    def _plan(self, trials: int, threads: int, index: int) -> WorkerPlan:
        return WorkerPlan(
            storage=self.storage_url, study=self.study_name, project=project_to_dict(self.project),
            project_path=str(self.project.path) if self.project.path else None,
            weights_target=str(self.weights_target), store=str(self.store_path),
            params=[p.as_dict() for p in self.params], metric=self.metric, sampler=self.sampler, trials=trials,
            epochs=self.epochs, threads=threads, seed=None if self.seed is None else self.seed + index,
            pruner=self.pruner, heartbeat_interval=self.heartbeat_interval, grace_period=self.grace_period,
            repeats=self.repeats, after_queue=index > 0)

    @property
    def study(self) -> optuna.Study | None:
        """The Optuna study once started (for importance and parallel-coordinate plots)."""
        return self._study

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes of this machine (for a GUI's display, and tests)."""
        return [p.pid for p in self._workers]

    @property
    def running(self) -> bool:
        """True while a worker runs, or a trial of a worker that died still waits for its
        heartbeat to be overdue (bounded: a few heartbeats after the last worker exited)."""
        if any(p.is_alive() for p in self._workers):
            return True
        if not self._workers or self._study is None:
            return False
        now = time.monotonic()
        self._all_exited = self._all_exited or now
        grace = self.grace_period or 2 * self.heartbeat_interval
        if now - self._all_exited > grace + 3 * self.heartbeat_interval:
            return False
        pids = set(self.worker_pids)
        # (a trial whose worker died before saying where it runs is waited for too)
        return any(t.state == "running" and (t.host is None or (t.host == self.host and t.pid in pids))
                   for t in self.trials())

    def stop(self) -> None:
        """End the workers now (their trials turn FAIL once their heartbeats are overdue)."""
        for p in self._workers:
            if p.is_alive():
                p.terminate()
        for p in self._workers:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)

    def close(self) -> None:
        """Stop what still runs, remove the trials' scratch files, and close the store."""
        self.stop()
        if self._study is not None:
            _remove_scratch(self.weights_target, self.study_name)
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- reading -------------------------------------------------------------------------
    def trials(self) -> list[TrialResult]:
        """Every trial of the study now (any worker, any machine), by number."""
        if self._study is None:
            return []
        return [_result(t) for t in self._study.get_trials(deepcopy=False)]

    def best(self, trials: list[TrialResult] | None = None) -> TrialResult | None:
        """The best complete trial (by the direction; of equal values, the lowest number), or None."""
        done = [t for t in (self.trials() if trials is None else trials) if t.state == "complete"]
        if not done:
            return None
        sign = -1 if self.direction == "maximize" else 1
        # (ties are common with small validation splits: the order trials finished in must not decide)
        return min(done, key=lambda t: (sign * t.value, t.number))

    def poll(self) -> list[TrialResult]:
        """The trials finished since the last poll, in the order they finished. Also fails
        the trials of workers that stopped beating, and marks their runs crashed."""
        if self._study is None:
            return []
        fail_stale(self._study)
        for p in self._workers:
            p.is_alive()  # reaps a worker that died: a zombie would still count as running
        if self._store is not None:  # (a live worker's run has a live process: it is left alone)
            self._store.fail_stale()
        frozen = [t for t in self._study.get_trials(deepcopy=False)
                  if t.state.is_finished() and t.number not in self._seen]
        frozen.sort(key=lambda t: (t.datetime_complete.timestamp() if t.datetime_complete else 0.0, t.number))
        self._seen.update(t.number for t in frozen)
        return [_result(t) for t in frozen]

    def _report(self, on_trial) -> None:
        """``on_trial(trial, best so far)`` for each trial finished since the last poll."""
        for t in self.poll():
            self.finished.append(t)
            if on_trial is not None:
                on_trial(t, self.best(self.finished))

    def run(self, trials: int, workers: int = 1,
            on_trial: Callable[[TrialResult, TrialResult | None], None] | None = None,
            timeout: float | None = None) -> SweepResult:
        """``start``, then poll until the workers are done; ``on_trial(trial, best so far)``
        for each trial as it finishes. ``timeout``: stop the workers after that many
        seconds. Returns the SweepResult (every trial of the study)."""
        end = None if timeout is None else time.monotonic() + timeout
        try:
            self.start(trials, workers)
            while True:
                sentinels = [p.sentinel for p in self._workers if p.is_alive()]
                if sentinels:
                    wait_for(sentinels, POLL_SECONDS)
                self._report(on_trial)
                if not self.running:
                    break
                if end is not None and time.monotonic() > end:
                    self.stop()
                    end = None
                if not sentinels:
                    time.sleep(POLL_SECONDS / 5)  # heartbeats overdue are what is waited for
            self.stop()
            self._report(on_trial)
            everything = self.trials()
            return SweepResult(self.study_name, self.storage_url, self.metric, self.direction, everything,
                               self.best(everything))
        finally:
            self.close()


def study_names(storage_url: str) -> list[str]:
    """The studies (sweeps) in an Optuna storage, oldest first. Raises ``SweepError`` when
    it cannot be opened."""
    quiet_optuna()
    storage = open_storage(storage_url)
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def study_trials(storage_url: str, study: str) -> list[TrialResult]:
    """Every trial of ``study`` in an Optuna storage (a sweep run elsewhere, or over).
    Raises ``SweepError`` when the storage cannot be opened or has no such study."""
    quiet_optuna()
    storage = open_storage(storage_url)
    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        raise SweepError(f"no study named {study!r}", storage_url) from None
    return [_result(t) for t in loaded.get_trials(deepcopy=False)]


def _remove_scratch(weights_target: Path, study: str) -> None:
    """Remove this study's scratch folder (what a killed worker's trial left) and the
    sweeps folder once it is empty; run when no worker of ours runs."""
    folder = scratch_dir(weights_target, study)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass  # not empty (another sweep's workers), or already gone


def _result(t) -> TrialResult:
    value = t.value if t.state == TrialState.COMPLETE else None
    if value is not None and not math.isfinite(value):
        value = None
    attrs = t.user_attrs
    run_id = attrs.get(RUN_ID)
    run_ids = list(attrs.get(RUN_IDS) or ([run_id] if run_id else []))
    # (a trial of a sweep without repeats, or recorded before them, has no VALUES: its value is its one run's)
    values = list(attrs.get(VALUES) or ([value] if value is not None else []))
    return TrialResult(t.number, STATES.get(t.state, t.state.name.lower()), dict(t.params), value,
                       run_id, attrs.get(MESSAGE), attrs.get(HOST), attrs.get(PID), run_ids, values)
