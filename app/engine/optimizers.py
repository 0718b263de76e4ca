"""The optimizers and learning-rate schedules a project can choose: one table that the
Trainer builds from, the exported train.py is written from, and the memory estimate reads.
Adding an optimizer is one entry here (and its name in ``config.OPTIMIZERS``).

Pure data, no torch (the memory estimate of ``netcanvas check`` reads it; it sits outside
``training`` so that reading it does not import the trainer): class names are looked up in
``torch.optim`` (optimizers) and ``torch.optim.lr_scheduler`` (schedules) by whoever builds them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """``cls``: the class name in torch; ``arguments``: keyword argument -> the training
    setting it takes; ``states``: tensors per parameter the optimizer keeps (without
    momentum; one more with a nonzero ``momentum`` setting, where it takes one)."""

    cls: str
    arguments: tuple[tuple[str, str], ...]
    states: int = 0


# the learning rate is passed to every optimizer besides these
OPTIMIZERS: dict[str, Choice] = {
    "SGD": Choice("SGD", (("momentum", "momentum"), ("weight_decay", "weight_decay")), states=0),
    "Adam": Choice("Adam", (("weight_decay", "weight_decay"),), states=2),
    "AdamW": Choice("AdamW", (("weight_decay", "weight_decay"),), states=2),
    "RMSprop": Choice("RMSprop", (("momentum", "momentum"), ("weight_decay", "weight_decay")), states=1),
}

SCHEDULES: dict[str, Choice] = {
    "step": Choice("StepLR", (("step_size", "step_size"), ("gamma", "gamma"))),
    "cosine": Choice("CosineAnnealingLR", (("T_max", "epochs"),)),
}


def keyword_arguments(choice: Choice, settings: dict) -> dict:
    """The keyword arguments ``choice`` takes, read from the training ``settings``."""
    return {argument: settings[setting] for argument, setting in choice.arguments}


def optimizer_states(settings: dict) -> int:
    """Tensors per parameter that ``settings``' optimizer keeps (2 for an unknown one)."""
    choice = OPTIMIZERS.get(settings.get("optimizer", "SGD"))
    if choice is None:
        return 2
    momentum = any(setting == "momentum" for _, setting in choice.arguments) and settings.get("momentum")
    return choice.states + (1 if momentum else 0)


def script_source(variables: dict[str, str]) -> str:
    """``make_optimizer(model, lr)`` and ``make_scheduler(optimizer, epochs)`` as Python
    source for train.py, choosing by its ``OPTIMIZER`` / ``SCHEDULE`` constants.
    ``variables`` names the expression each setting is read from there (``"lr"``,
    ``"MOMENTUM"``)."""

    def call(prefix: str, first: str, choice: Choice, extra: str = "") -> str:
        arguments = [first, *([extra] if extra else []),
                     *(f"{argument}={variables[setting]}" for argument, setting in choice.arguments)]
        return f"{prefix}.{choice.cls}({', '.join(arguments)})"

    lines = ["def make_optimizer(model, lr):", "    params = model.parameters()"]
    for name, choice in OPTIMIZERS.items():
        lines += [f'    if OPTIMIZER == "{name}":',
                  f"        return {call('torch.optim', 'params', choice, 'lr=lr')}"]
    lines += ['    raise ValueError(f"unknown optimizer {OPTIMIZER!r}")', "", "",
              "def make_scheduler(optimizer, epochs):"]
    for name, choice in SCHEDULES.items():
        lines += [f'    if SCHEDULE == "{name}":',
                  f"        return {call('torch.optim.lr_scheduler', 'optimizer', choice)}"]
    lines += ["    return None", ""]
    return "\n".join(lines)
