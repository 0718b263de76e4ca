"""Training data: load what a project's ``dataset`` settings name, split, normalize, and
shape it for the model's Input.

    data = load_dataset(project.dataset, base_dir=project_folder, input_shape=(1, 28, 28))
    for x, y in batches(data.train, 64, shuffle=True): ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import DATASET_FIELDS, DATASET_NAMES, defaults
from ..errors import DatasetError
from .base import Dataset, RawData, Split, batch_count, batches, check_input_dtype, fit_raw, fit_to_input, prepare
from .sources import load_raw
from .subsets import select_classes

__all__ = ["DATASET_NAMES", "Dataset", "RawData", "Split", "batch_count", "batches", "check_input_dtype",
           "describe", "fit_to_input", "load_dataset", "load_raw", "prepare"]


def load_dataset(settings: dict, base_dir: Path | None = None, input_shape: tuple[int, ...] | None = None,
                 input_id: str = "input") -> Dataset:
    """The ``Dataset`` (train / val / test splits of float32 samples or int64 token ids,
    and int64 labels) that the ``dataset`` settings describe; settings missing from
    ``settings`` take their defaults. Relative ``path`` / ``images`` / ``labels`` resolve against ``base_dir``. With
    ``input_shape`` (no batch dimension) the samples are fitted to the Input ``input_id``.
    Raises ``DatasetError`` for anything wrong with the data, including unexpected failures
    of third-party readers (reported with the file they were reading)."""
    settings = {**defaults(DATASET_FIELDS), **settings}
    try:
        raw = load_raw(settings, base_dir, tuple(input_shape) if input_shape is not None else None)
    except DatasetError:
        raise
    except Exception as e:  # a reader's own bug or an odd file: a message, never a traceback
        files = [str(settings[k]) for k in ("path", "images", "labels") if settings.get(k)]
        what = "reading " + " and ".join(files) if files else "making the data"
        raise DatasetError(f"dataset {settings['name']!r}: {what} failed: {type(e).__name__}: {e}") from e
    raw = select_classes(raw, settings.get("classes"), settings["name"])
    if input_shape is not None:
        raw = fit_raw(raw, settings["name"], tuple(input_shape), input_id)
    return prepare(raw, settings["name"], settings)


def describe(data: Dataset) -> dict[str, Any]:
    """What the CLI prints and the training panel shows about ``data``, as plain JSON
    values: name, description, sample_shape, num_classes, class_names, image, normalized,
    split_sizes ``{train, val, test}``, class_counts ``{train, val, test}`` (lists of
    ``num_classes`` ints) and notes."""
    splits = ("train", "val", "test")
    return {
        "name": data.name,
        "description": data.description,
        "sample_shape": list(data.sample_shape),
        "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "image": data.image,
        "normalized": data.mean is not None,
        "split_sizes": {s: len(getattr(data, s)) for s in splits},
        "class_counts": {s: data.class_counts(s) for s in splits},
        "notes": list(data.notes),
    }
