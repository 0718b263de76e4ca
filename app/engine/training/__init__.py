"""Training without a screen: objective, trainer, events."""

from .events import BatchEvent, EpochEvent, FinishedEvent, SnapshotEvent, as_dict
from .objective import Objective, make_objective
from .trainer import Trainer, TrainingRun, prepare_run

__all__ = ["BatchEvent", "EpochEvent", "FinishedEvent", "Objective", "SnapshotEvent", "Trainer",
           "TrainingRun", "as_dict", "make_objective", "prepare_run"]
