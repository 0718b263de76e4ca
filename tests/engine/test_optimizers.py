"""The optimizer and schedule table (app/engine/optimizers.py): the Trainer and the
exported train.py build the same optimizer and schedule from it for every choice."""

from __future__ import annotations

import ast

import numpy as np
import pytest
import torch

from app.engine import config
from app.engine.datasets.base import RawData, prepare
from app.engine.export.train_script import SETTINGS, train_source
from app.engine.optimizers import OPTIMIZERS, SCHEDULES, keyword_arguments, optimizer_states, script_source
from app.engine.project import Project
from app.engine.training import Trainer, prepare_run
from tests.helpers import chain


def _run(**training):
    g = chain(("input", "Input", {"shape": [2]}), ("fc", "Linear", {"out_features": 2}))
    project = Project(g, "tiny")
    project.training.update({"epochs": 4, "device": "cpu", "batch_size": 4, **training})
    rng = np.random.default_rng(0)
    raw = RawData(rng.standard_normal((40, 2)).astype(np.float32), (np.arange(40) % 2).astype(np.int64),
                  ["a", "b"], "tiny")
    return prepare_run(project, dataset=prepare(raw, "tiny", {}))


def _script_functions(run, model):
    """train.py's make_optimizer / make_scheduler (as ``export_python`` writes them for
    ``run``), run with its own constants."""
    tree = ast.parse(train_source(run.project, run, "Model"))
    settings = {s.upper() for s in SETTINGS}
    kept = [n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id in settings
            or isinstance(n, ast.FunctionDef) and n.name in ("make_optimizer", "make_scheduler")]
    namespace = {"torch": torch}
    exec(compile(ast.Module(kept, type_ignores=[]), "train.py", "exec"), namespace)
    optimizer = namespace["make_optimizer"](model, run.settings["lr"])
    return optimizer, namespace["make_scheduler"](optimizer, run.settings["epochs"])


def test_the_table_offers_what_the_settings_accept():
    assert tuple(OPTIMIZERS) == config.OPTIMIZERS
    schedule = next(p for p in config.TRAINING_FIELDS if p.name == "schedule")
    assert tuple(SCHEDULES) == tuple(schedule.choices)


@pytest.mark.parametrize("schedule", [None, *SCHEDULES])
@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
def test_the_trainer_and_train_py_build_the_same_optimizer_and_schedule(optimizer, schedule):
    run = _run(optimizer=optimizer, schedule=schedule, momentum=0.5, weight_decay=0.01, lr=0.03)
    trainer = Trainer(run)
    ours, our_schedule = trainer.optimizer, trainer.scheduler
    theirs, their_schedule = _script_functions(run, trainer.model)
    assert type(ours) is type(theirs) is getattr(torch.optim, optimizer)
    assert ours.defaults == theirs.defaults
    assert ours.defaults["lr"] == 0.03 and ours.defaults["weight_decay"] == 0.01
    assert type(our_schedule) is type(their_schedule)
    if schedule is not None:
        assert our_schedule.state_dict() == their_schedule.state_dict()


def test_an_unknown_optimizer_in_train_py_is_an_error_not_another_optimizer():
    namespace = {"torch": torch, "OPTIMIZER": "Lion", "SCHEDULE": None}
    exec(script_source({"momentum": "0.0", "weight_decay": "0.0", "step_size": "1", "gamma": "0.1",
                        "epochs": "1"}), namespace)
    with pytest.raises(ValueError, match="unknown optimizer 'Lion'"):
        namespace["make_optimizer"](torch.nn.Linear(1, 1), 0.1)


@pytest.mark.parametrize("settings,states", [
    ({"optimizer": "SGD", "momentum": 0}, 0), ({"optimizer": "SGD", "momentum": 0.9}, 1),
    ({"optimizer": "Adam", "momentum": 0.9}, 2), ({"optimizer": "AdamW"}, 2),
    ({"optimizer": "RMSprop", "momentum": 0}, 1), ({"optimizer": "RMSprop", "momentum": 0.5}, 2),
    ({}, 0), ({"optimizer": "Lion"}, 2),
])
def test_optimizer_states_count_the_tensors_kept_per_parameter(settings, states):
    assert optimizer_states(settings) == states


@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
def test_the_state_count_matches_what_torch_keeps(optimizer):
    model = torch.nn.Linear(3, 2)
    settings = {"optimizer": optimizer, "momentum": 0.9, "weight_decay": 0.0, "lr": 0.01}
    choice = OPTIMIZERS[optimizer]
    built = getattr(torch.optim, choice.cls)(model.parameters(), lr=0.01, **keyword_arguments(choice, settings))
    model(torch.randn(4, 3)).sum().backward()
    built.step()
    kept = {k for k, v in built.state[model.weight].items() if torch.is_tensor(v) and v.shape == model.weight.shape}
    assert len(kept) == optimizer_states(settings), kept
