"""What NetCanvas' ONNX exporter records in a model's metadata, read back on import.

The exporter copies the weights' training metadata (the input normalization ``input_mean``
/ ``input_std`` / ``input_shape`` the trainer saves, and ``class_names``) and the project's
dataset settings (``netcanvas.dataset``) into the file's ``metadata_props``. On import the
normalization and class names go back into the imported weights' metadata, where
``predict`` reads them, and the dataset settings back into the project, from which the
training panel (and its activation pad) normalizes samples: the imported project prepares
inputs as the exported one did. Values are parsed with ``json`` under a size limit, each
checked (numbers finite, one per input value, std non-zero); what does not fit is left out
with a note.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .. import config

DATASET_KEY = "netcanvas.dataset"
WEIGHTS_KEYS = ("input_mean", "input_std", "input_shape", "class_names")
_MAX_VALUE = 16 * 1024 * 1024


def _flat_list(text: str) -> list | None:
    """A JSON list with no nested containers (bounded: no deep nesting to recurse into)."""
    if len(text) > _MAX_VALUE or text.count("[") != 1 or "{" in text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list) else None


def _numbers(text: str | None, size: int) -> list[float] | None:
    value = _flat_list(text) if text is not None else None
    if value is None or len(value) != size:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def imported_metadata(props: dict[str, str], input_shapes: list[tuple[int, ...]]) -> tuple[
        dict[str, str], dict[str, Any] | None, list[str]]:
    """From a model's ``metadata_props``: the metadata for the imported weights, the
    dataset settings to restore (None when none are recorded or usable), and notes."""
    notes: list[str] = []
    meta: dict[str, str] = {}
    if "input_mean" in props or "input_std" in props:
        if len(input_shapes) != 1:
            notes.append("the input normalization recorded in the file was left out: the model has "
                         f"{len(input_shapes)} inputs")
        else:
            size = math.prod(input_shapes[0])
            mean = _numbers(props.get("input_mean"), size)
            std = _numbers(props.get("input_std"), size)
            if mean is None or std is None or any(s == 0 for s in std):
                notes.append(f"the input normalization recorded in the file was left out: it is not "
                             f"{size} finite numbers (std non-zero), one per value of the input "
                             f"{list(input_shapes[0])}")
            else:
                meta.update(input_mean=json.dumps(mean), input_std=json.dumps(std),
                            input_shape=json.dumps(list(input_shapes[0])))
    names = _flat_list(props["class_names"]) if "class_names" in props else None
    if names is not None and all(isinstance(n, str) for n in names):
        meta["class_names"] = json.dumps(names)
    return meta, _dataset(props.get(DATASET_KEY), notes), notes


def _dataset(text: str | None, notes: list[str]) -> dict[str, Any] | None:
    if text is None:
        return None
    value = None
    if len(text) <= 64 * 1024 and "[" not in text:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
    settings, problems = config.check_section("dataset", value, config.DATASET_FIELDS)
    if problems:
        notes.append(f"the dataset settings recorded in the file were left out ({problems[0][0]}: "
                     f"{problems[0][1]})")
        return None
    if settings["name"] in config.DATASET_REQUIRES:
        notes.append(f"the model was exported from a project trained on {settings['name']!r} data "
                     "from files; choose the data to train it again")
        return None
    return settings


def exported_metadata(dataset: dict[str, Any], weights_metadata: dict[str, str]) -> dict[str, str]:
    """What the exporter records: the weights' normalization and class names, and the
    project's dataset settings."""
    out = {k: weights_metadata[k] for k in WEIGHTS_KEYS if k in weights_metadata}
    out[DATASET_KEY] = json.dumps({k: v for k, v in dataset.items() if v is not None})
    return out
