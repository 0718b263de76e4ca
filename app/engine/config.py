"""The ``dataset`` and ``training`` sections of a project, declared as parameter schemas.

The same ``Param`` declarations that describe layer parameters describe these settings,
so the file format, validation and the training panel's form all read one source.
"""

from __future__ import annotations

import re
from typing import Any

from . import optimizers
from .params import INT64_MAX, Param, show

# Ranges: every setting has one that torch (and numpy, for the data) can represent, and
# that makes sense for the app: sizes and seeds within a C int, rates within float32.
MAX_SAMPLES = 1_000_000  # points of a synthetic set (2-d points: 8 MB of float32)
MAX_BATCH = 1_000_000
MAX_EPOCHS = 100_000

DATASET_NAMES = ("digits", "digits28", "iris", "mnist", "fashion_mnist", "idx", "csv",
                 "image_folder", "xor", "moons", "spirals", "sorted_digits")
SYNTHETIC = ("xor", "moons", "spirals")
# generated sequences of int64 token ids (a NetCanvas addition, docs/FORMAT_EXTENSIONS.md):
# they read ``samples`` and ``seed``, never ``noise``
SEQUENCES = ("sorted_digits",)
# what ``training.target`` may say: class labels, the input itself (autoencoders), or the
# input's pixels above MASK_THRESHOLD (segmentation; both additions of NetCanvas)
TARGETS = ("labels", "input", "mask")
MASK_THRESHOLD = 0.5  # on the data's own scale (images in [0, 1]), before normalization

DATASET_FIELDS: tuple[Param, ...] = (
    Param("name", "choice", "digits", "Which data to train on.", choices=DATASET_NAMES),
    Param("path", "string", None, "Folder (mnist, fashion_mnist, image_folder) or file (csv).", nullable=True),
    Param("images", "string", None, "IDX images file (for idx).", nullable=True),
    Param("labels", "string", None, "IDX labels file (for idx).", nullable=True),
    Param("label_column", "column", None, "CSV column holding the label (default: the first).", nullable=True),
    Param("samples", "int", None, "Number of points of a synthetic set, or of sequences.", 4, MAX_SAMPLES,
          nullable=True),
    Param("noise", "float", None, "Noise of a synthetic set (standard deviation).", 0.0, 100.0, nullable=True),
    Param("validation_fraction", "float", 0.1, "Share of the training data held out for validation.", 0.0, 0.9),
    Param("test_fraction", "float", 0.2, "Share held out for testing when the data has no test split.", 0.0, 0.9),
    Param("normalize", "bool", True, "Standardize with the training split's mean and std."),
    # NetCanvas additions (docs/FORMAT_EXTENSIONS.md): a subset of the classes, and few shots
    Param("classes", "any", None, "Only these classes (a list of class indices of the data, "
          "e.g. [5, 6, 7, 8, 9]), numbered from 0 in the order given.", nullable=True),
    Param("samples_per_class", "int", None, "Keep only this many training samples of each class "
          "(the first ones of the training split); validation and test stay whole.", 1, MAX_SAMPLES,
          nullable=True),
    Param("seed", "int", 0, "Data split seed: decides which samples go to training, validation and "
          "test (and a synthetic set's points). Same seed, same split. The training settings' "
          "initialization seed is a separate one.", 0, INT64_MAX, label="data split seed", wide=True),
)

# which keys a dataset needs, and what each names
DATASET_REQUIRES = {
    "mnist": {"path": "a folder with the four MNIST IDX files"},
    "fashion_mnist": {"path": "a folder with the four Fashion-MNIST IDX files"},
    "idx": {"images": "an IDX images file", "labels": "an IDX labels file"},
    "csv": {"path": "a CSV file"},
    "image_folder": {"path": "a folder with one sub-folder of images per class"},
}

OPTIMIZERS = tuple(optimizers.OPTIMIZERS)
LOSSES = ("CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss", "BCELoss")
DEVICE_PATTERN = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)\Z")

TRAINING_FIELDS: tuple[Param, ...] = (
    Param("optimizer", "choice", "SGD", "Update rule.", choices=OPTIMIZERS),
    Param("lr", "float", 0.01, "Learning rate.", minimum=1e-12),
    Param("momentum", "float", 0.9, "Momentum (SGD, RMSprop).", 0.0, 1.0),
    Param("weight_decay", "float", 0.0, "L2 penalty.", minimum=0.0),
    Param("batch_size", "int", 64, "Samples per minibatch.", 1, MAX_BATCH),
    Param("epochs", "int", 10, "Passes over the training data.", 1, MAX_EPOCHS),
    Param("drop_last", "bool", False, "Drop the last, smaller minibatch of each epoch."),
    Param("loss", "choice", "CrossEntropyLoss", "What training minimizes.", choices=LOSSES),
    Param("schedule", "choice", None, "Learning-rate schedule.", choices=tuple(optimizers.SCHEDULES), nullable=True),
    Param("step_size", "int", 10, "Epochs between learning-rate drops (step schedule).", 1, MAX_EPOCHS),
    Param("gamma", "float", 0.1, "Factor of each drop (step schedule).", minimum=1e-6, maximum=1.0),
    Param("early_stopping_patience", "int", None, "Stop after this many epochs without a better validation loss.",
          1, MAX_EPOCHS, nullable=True),
    Param("seed", "int", 0, "Initialization seed: decides the initial weights, the order of the "
          "minibatches and dropout. Same seed, same run. Which samples are used for training is "
          "the dataset's data split seed.", 0, INT64_MAX, label="initialization seed", wide=True),
    Param("device", "string", "auto", "auto, cpu, cuda, cuda:N or mps."),
    Param("kernels", "choice", "auto", "Fused GPU kernels.", choices=("auto", "on", "off")),
    Param("init_weights", "string", None, "Start from this weights file (relative to the project's "
          "folder) instead of a fresh initialization: nodes whose parameter shapes fit take its "
          "weights, the others are initialized.", nullable=True, label="start from weights"),
    Param("target", "choice", "labels", "What the output is compared with: the labels, the "
          "input itself (autoencoders), or a mask of the input's pixels above 0.5 "
          "(segmentation).", choices=TARGETS),
)


def defaults(fields: tuple[Param, ...]) -> dict[str, Any]:
    return {p.name: p.default for p in fields}


def check_section(section: str, value: Any, fields: tuple[Param, ...]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate one section: returns the complete settings (defaults filled) and a list of
    ``(field path, message)`` problems."""
    settings = defaults(fields)
    if not isinstance(value, dict):
        return settings, [(section, f"expected an object, received {show(value)}")]
    problems: list[tuple[str, str]] = []
    index = {p.name: p for p in fields}
    for key, v in value.items():
        p = index.get(key)
        if p is None:
            problems.append((f"{section}.{key}", f"unknown key; {section} takes: " + ", ".join(index)))
            continue
        try:
            settings[key] = p.check(v)
        except ValueError as e:
            problems.append((f"{section}.{key}", str(e)))
    if section == "training" and isinstance(settings["device"], str) and not DEVICE_PATTERN.match(settings["device"]):
        problems.append(("training.device",
                         f"expected auto, cpu, cuda, cuda:N or mps, received {show(settings['device'])}"))
    if section == "dataset" and "classes" in value and not any(k == "dataset.classes" for k, _ in problems):
        problem = _classes_problem(settings["classes"])
        if problem:
            problems.append(("dataset.classes", problem))
    if section == "dataset" and not problems:
        for key, what in DATASET_REQUIRES.get(settings["name"], {}).items():
            if settings[key] is None:
                problems.append((f"dataset.{key}", f"dataset {settings['name']!r} needs {key}: {what}"))
    return settings, problems


MAX_CLASSES = 100_000


def _classes_problem(value: Any) -> str | None:
    """Why ``dataset.classes`` is not a non-empty list of distinct class indices, or None."""
    if value is None:
        return None
    shown = show(value)
    if not isinstance(value, list) or not value:
        return f"expected a non-empty list of class indices (integers >= 0) or null, received {shown}"
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < MAX_CLASSES]
    if bad:
        return (f"expected class indices (integers from 0 to {MAX_CLASSES - 1}), received {show(bad[0])} "
                f"in {shown}")
    if len(set(value)) != len(value):
        twice = next(v for v in value if value.count(v) > 1)
        return f"class {twice} is listed twice in {shown}"
    return None
