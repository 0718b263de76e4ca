"""How a run ends: divergence, and whether its weights may replace the weights in place.

``RunOutcome`` is mixed into ``Trainer`` (trainer.py), which writes the weights (``_save``)
and asks these methods: ``_diverged``/``_weights_diverged`` (the run diverged: a sentence,
or None), ``_held_back`` (why this run's weights must not replace the ones in place, or
None), ``_set_aside`` (where nobody can be asked: the weights in place move to the runs
folder) and ``_metadata`` (what is recorded with the weights). They read the trainer's
``run_spec``, ``model``, ``step``, ``run_id`` and ``evaluate``, and set its ``_first_loss``
and ``_incomparable``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from ..errors import WeightsError
from ..weights import apply_weights, read_metadata, read_weights, run_weights_path
from .events import FinishedEvent

MAX_WEIGHT = 1e6  # a weight above this in magnitude means the run diverged
LOSS_GROWTH = 10  # ... and so does an epoch's mean loss above 10 times the first epoch's


class RunOutcome:
    """How a run ends, for ``Trainer``: divergence, and where its weights may go."""

    # -- divergence --------------------------------------------------------------------
    def _diverged(self, epoch: int, train_loss: float) -> str | None:
        """Why the run diverged by the end of ``epoch`` (a sentence), or None: the epoch's
        mean loss above LOSS_GROWTH times the first epoch's, or weights out of bounds."""
        if self._first_loss is None:
            self._first_loss = train_loss
        first = self._first_loss
        if not math.isfinite(train_loss) or (first > 0 and train_loss > LOSS_GROWTH * first):
            return (f"the mean loss of epoch {epoch} ({train_loss:.4g}) is more than {LOSS_GROWTH} "
                    f"times the first epoch's ({first:.4g}){self._lr_hint()}")
        grown = self._weights_diverged()
        return f"{grown} in epoch {epoch}{self._lr_hint()}" if grown else None

    def _weights_diverged(self) -> str | None:
        """A phrase when a weight is NaN, infinite or above MAX_WEIGHT in magnitude."""
        def largest(tensors) -> float:
            values = [t.detach().abs().max().float() for t in tensors if t.numel() and t.is_floating_point()]
            return float(torch.stack(values).max()) if values else 0.0

        weight, buffer = largest(self.model.parameters()), largest(self.model.buffers())
        if not (math.isfinite(weight) and math.isfinite(buffer)):
            return "the weights became NaN or infinite"
        if weight > MAX_WEIGHT:
            return f"a weight grew to {weight:.3g} (more than {MAX_WEIGHT:g} in magnitude)"
        return None

    def _lr_hint(self) -> str:
        lr = self.run_spec.settings["lr"]
        return f"; the learning rate {lr:g} is probably too high: try {_lower_lr(lr)} or lower"

    # -- whether the weights may replace those in place ---------------------------------
    def _set_aside(self, event: FinishedEvent, target: Path) -> None:
        """A completed run whose weights cannot be compared with those in place (another
        dataset, another network, no validation split) takes their place, and they move to
        the runs folder: nothing is lost, and the project's weights fit its network."""
        aside = run_weights_path(target, f"before-{self.run_id}")
        try:
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, aside)
        except OSError:
            return  # they stay, and this run's weights go to the runs folder
        event.weights_set_aside = f"{event.weights_held_back}; the weights that were in place moved to {aside}"
        event.weights_held_back = None

    def _held_back(self, event: FinishedEvent, target: Path) -> str | None:
        """Why this run's weights must not replace the ones at ``target``, or None. They are
        compared like with like: by the metrics recorded with the weights in place when they
        were trained on this run's dataset, else by evaluating them on this run's validation
        split; weights that cannot be compared that way are not replaced either (then
        ``self._incomparable`` is True)."""
        self._incomparable = False
        if event.reason == "diverged":
            return "the run diverged"
        if not target.exists():
            return None
        if event.reason == "stopped":
            return "the run was stopped by the user"
        old, name = read_metadata(target), self.run_spec.dataset.name
        if old.get("dataset", name) != name:
            self._incomparable = True
            return (f"the weights in place were trained on {old['dataset']}, this run on {name}: "
                    "they cannot be compared")
        classes = json.dumps(self.run_spec.dataset.class_names)
        if old.get("class_names", classes) != classes:  # dataset.classes picked others
            self._incomparable = True
            return (f"the weights in place were trained on the classes {_class_list(old['class_names'])}, "
                    f"this run on {_class_list(classes)}: they cannot be compared")
        acc, loss = event.val_accuracy, event.val_loss
        if loss is None:
            self._incomparable = True
            return ("this run has no validation split to compare it with the weights in place on: "
                    "they cannot be compared")
        old_acc, old_loss = _number(old.get("val_accuracy")), _number(old.get("val_loss"))
        if (old_acc if acc is not None else old_loss) is None:  # not recorded: measure them
            try:
                old_loss, old_acc = self._evaluate_file(target)
            except WeightsError as e:
                self._incomparable = True
                return f"the weights in place do not fit this network ({e}): they cannot be compared"
        if acc is not None and old_acc is not None:
            if acc < old_acc:
                new, was = _percentages(acc, old_acc)
                return f"validation accuracy {new} is below the {was} of the weights in place"
            return None
        if old_loss is not None and loss > old_loss:
            return f"validation loss {loss:.4g} is above the {old_loss:.4g} of the weights in place"
        return None

    def _evaluate_file(self, path: Path) -> tuple[float | None, float | None]:
        """Validation loss and accuracy of the weights at ``path`` on this run's validation
        split (this run's own weights are put back afterwards). Raises ``WeightsError`` when
        they cannot be read or do not fit the network."""
        tensors = read_weights(path)
        own = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        try:
            apply_weights(self.model, tensors, str(path))
            return self.evaluate(self.run_spec.dataset.val)
        finally:
            apply_weights(self.model, own)

    def _metadata(self, event: FinishedEvent) -> dict[str, str]:
        data = self.run_spec.dataset
        meta = {"steps": str(self.step), "reason": event.reason, "dataset": data.name, "run_id": self.run_id,
                "class_names": json.dumps(data.class_names), **_normalization_metadata(data)}
        if event.val_accuracy is not None:
            meta["val_accuracy"] = repr(float(event.val_accuracy))
        if event.val_loss is not None:
            meta["val_loss"] = repr(float(event.val_loss))
        return meta


def _class_list(text: str) -> str:
    """Class names recorded as JSON, as a message shows them (the text itself when it is not a list)."""
    try:
        names = json.loads(text)
    except ValueError:
        return text
    return ", ".join(map(str, names)) if isinstance(names, list) else text


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _percentages(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` as percentages, with as many decimals as it takes to tell them apart."""
    for digits in range(1, 7):
        x, y = f"{a * 100:.{digits}f} %", f"{b * 100:.{digits}f} %"
        if x != y:
            break
    return x, y


def _normalization_metadata(data) -> dict[str, str]:
    """The training split's normalization, so whoever runs the weights later (predict,
    export, the activation pad) can prepare raw inputs the same way."""
    if data.mean is None:
        return {}
    return {"input_mean": json.dumps(data.mean.flatten().tolist()),
            "input_std": json.dumps(data.std.flatten().tolist()),
            "input_shape": json.dumps(list(data.sample_shape))}


def _lower_lr(lr: float) -> str:
    return f"{min(lr / 10, 0.01):g}"
