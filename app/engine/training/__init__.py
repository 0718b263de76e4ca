"""Training without a screen: objective, trainer, events.

The names below load their module on first use (PEP 562): ``netcanvas check`` imports
``training.multinode``, which needs no torch, and must not pay for the trainer's imports.
"""

from __future__ import annotations

import importlib

_HOMES = {"BatchEvent": "events", "EpochEvent": "events", "FinishedEvent": "events", "SnapshotEvent": "events",
          "as_dict": "events", "Objective": "objective", "make_objective": "objective", "Trainer": "trainer",
          "TrainingRun": "trainer", "prepare_run": "trainer"}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
