"""Optuna plumbing for sweeps: the storage (the run store's SQLite file, or a database URL
that workers on several machines share), with a heartbeat so that a killed worker's trial
turns FAIL, never RUNNING forever; samplers, the default pruner, and the study.

Optuna warns (ExperimentalWarning) about the heartbeat and ``fail_stale_trials``; those
warnings are silenced here, at the call, and nowhere else.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage

from ..errors import NetCanvasError
from .space import SweepParam

SAMPLERS = ("tpe", "random", "grid")
METRICS = ("val_accuracy", "val_loss")
HEARTBEAT_SECONDS = 2
SQLITE_TIMEOUT = 60.0  # seconds a connection waits for another process's write (workers take turns)
DIRECTIONS = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}


class SweepError(NetCanvasError):
    """A sweep that cannot start: its storage, its study, its settings."""


def quiet_optuna() -> None:
    """Optuna logs every trial (a failed one with its traceback); the sweep prints its own
    lines, with a failed trial's message."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of an SQLite file (absolute: workers may start elsewhere)."""
    return "sqlite:///" + str(Path(path).resolve())


def default_direction(metric: str) -> str:
    """"maximize" for an accuracy, "minimize" for a loss."""
    return "maximize" if metric.endswith("accuracy") else "minimize"


def open_storage(url: str, heartbeat_interval: int = HEARTBEAT_SECONDS,
                 grace_period: int | None = None) -> RDBStorage:
    """An RDBStorage for ``url`` with a heartbeat every ``heartbeat_interval`` seconds (a
    trial silent for ``grace_period``, default twice that, is stale). SQLite connections
    wait up to SQLITE_TIMEOUT for another writer. Raises ``SweepError`` when the database
    cannot be opened."""
    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_interval,
                              grace_period=grace_period)
    except Exception as e:  # SQLAlchemy's and the drivers' errors have no common base we can name
        raise SweepError(f"cannot open the Optuna storage: {type(e).__name__}: {_first_line(e)}", url) from None


def make_sampler(name: str, params: list[SweepParam], seed: int | None = None):
    """The Optuna sampler ``name`` (tpe, random, grid: over the lists of ``params``)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler({p.name: list(p.choices) for p in params}, seed=seed)
    raise SweepError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")


def default_pruner(epochs: int):
    """Median pruning on the per-epoch validation metric: once 4 trials have completed, a
    trial whose metric is worse than the median of the others' at the same epoch stops, from
    the middle of its ``epochs`` on (early epochs say little: a slow start is no bad run)."""
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 2))


def create_or_load(storage: RDBStorage, name: str, direction: str, *, join: bool) -> optuna.Study:
    """A new study ``name`` (``join``: an existing one, or a new one when there is none).
    Raises ``SweepError`` for a name taken (not joining) or an existing study that goes the
    other way."""
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if name not in existing:
        try:
            return optuna.create_study(study_name=name, storage=storage, direction=direction)
        except optuna.exceptions.DuplicatedStudyError:  # another machine made it a moment ago
            pass
    if not join:
        raise SweepError(f"a study named {name!r} exists already in {storage.url}; join it with --study")
    study = optuna.load_study(study_name=name, storage=storage)
    if study.direction.name.lower() != direction:
        raise SweepError(f"study {name!r} goes {study.direction.name.lower()}, not {direction}: "
                         "give the same --metric and --direction as it was started with")
    return study


def fail_stale(study: optuna.Study) -> None:
    """Mark FAIL the trials whose worker stopped beating (killed, or its machine gone)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
