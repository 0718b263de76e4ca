"""What a training run reports, as plain data (picklable, JSON-friendly through as_dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class BatchEvent:
    """One minibatch: its loss and accuracy (None when accuracy has no meaning)."""

    epoch: int
    batch: int
    batches: int
    step: int
    loss: float
    accuracy: float | None
    samples_per_second: float
    lr: float
    kind: str = "batch"


@dataclass
class EpochEvent:
    """The end of an epoch: training averages and validation metrics."""

    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    lr: float
    kind: str = "epoch"


@dataclass
class SnapshotEvent:
    """Filters of every conv (and first image Linear) node, and every node's activations
    for the chosen samples. ``health``: per node id the layer health (``health.HealthProbe.measure``:
    mean, std, dead, saturated, grad_norm, weight_norm, update_ratio, flags), measured at step
    ``health_step``; the trainer measures it only every so often (``health.HealthPacer``), and a
    snapshot in between carries the last measurement again (same ``health_step``); None before the
    first. ``boundary``: the decision boundary (``boundary.boundary_maps``) for a model with two
    input features, else None."""

    step: int
    filters: dict[str, np.ndarray]
    activations: dict[str, np.ndarray]
    health: dict[str, dict] | None = None
    boundary: dict | None = None
    health_step: int | None = None
    kind: str = "snapshot"


@dataclass
class FinishedEvent:
    """The end of a run. ``reason``: completed, stopped, early_stopping or diverged;
    ``message`` says what happened in a sentence. Test metrics are None when the run did
    not get that far or the test split is empty. ``weights_target``: where the project's
    weights live; ``weights_path``: the file this run's weights were written to (None when
    none were); ``weights_held_back``: why they were not put in place at the target (a
    sentence: "the run was stopped by the user", "the run diverged", "validation accuracy
    35.0 % is below the 97.8 % of the weights in place", "the weights in place were trained on
    xor, this run on moons: they cannot be compared", or the target could not be written),
    None when they were. ``weights_error``: set when writing failed (the sentence says where
    the weights were kept instead, or that they are lost). ``weights_set_aside``: set when a
    completed run that could not be compared with the weights in place replaced them, where
    nobody could be asked (the CLI), saying why and where those went. ``val_loss`` / ``val_accuracy``:
    of the final weights (after early stopping, of the best epoch's, which it restores).
    ``run_id``: the run's id (``Trainer.run_id``; None for a run stopped before it began)."""

    reason: str
    message: str
    epochs_run: int
    steps: int
    seconds: float
    test_loss: float | None = None
    test_accuracy: float | None = None
    confusion: list[list[int]] | None = None
    per_class_accuracy: list[float | None] | None = None
    misclassified: list[tuple[int, int, int]] = field(default_factory=list)  # (index, true, predicted)
    weights_path: str | None = None
    weights_target: str | None = None
    weights_held_back: str | None = None
    weights_error: str | None = None
    weights_set_aside: str | None = None  # why the weights in place moved to the runs folder, and where
    val_loss: float | None = None
    val_accuracy: float | None = None
    run_id: str | None = None  # the Trainer's (the id the run store records it under)
    kind: str = "finished"

    @property
    def ok(self) -> bool:
        return self.reason != "diverged"


Event = BatchEvent | EpochEvent | SnapshotEvent | FinishedEvent


def as_dict(event: Any) -> dict[str, Any]:
    """The event as JSON-ready data (arrays, at any depth, become nested lists)."""
    return _plain(asdict(event))


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
