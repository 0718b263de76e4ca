"""One small interface for every dataset: in-memory tensors split three ways.

A loader (``sources.py``) returns ``RawData``: float32 samples, int64 labels, the class
names and, when the data has one, its own test split. ``prepare`` turns that into a
``Dataset``: deterministic train / validation / test splits, normalization with the
training split's statistics, and samples shaped to fit the model's Input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import DatasetError
from ..lazy import LazyModule

# the editor lists and describes datasets before anything trains: torch loads at the first tensor
torch = LazyModule("torch")


@dataclass
class RawData:
    """What a loader returns. ``x``: float32 ``[N, *sample_shape]`` (images scaled to
    [0, 1]), or int64 token ids when ``tokens``; ``y``: int64 ``[N]`` class indices from 0;
    ``test``: the data's own test split."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    description: str
    test: tuple[np.ndarray, np.ndarray] | None = None
    image: bool = False  # samples are images [C, H, W]: normalize per channel
    notes: list[str] = field(default_factory=list)
    tokens: bool = False  # samples are int64 token ids (for an Embedding): never normalized


@dataclass
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Dataset:
    """Splits ready for training, and what the training panel shows about them."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    description: str
    image: bool = False
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self, split: str = "train") -> list[int]:
        y = getattr(self, split).y
        return torch.bincount(y, minlength=self.num_classes).tolist()

    def reshaped(self, shape: tuple[int, ...]) -> "Dataset":
        """The same data with every sample reshaped to ``shape`` (same number of values)."""

        def r(s: Split) -> Split:
            return Split(s.x.reshape(len(s), *shape), s.y)

        def stat(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.reshape(shape)

        return Dataset(self.name, r(self.train), r(self.val), r(self.test), self.class_names,
                       self.description, len(shape) == 3, stat(self.mean), stat(self.std),
                       self.notes + [f"samples reshaped from {list(self.sample_shape)} to {list(shape)}"])


def prepare(raw: RawData, name: str, settings: dict) -> Dataset:
    """Split and normalize ``raw`` as the project's ``dataset`` settings say."""
    x, y = _check(raw.x, raw.y, name, len(raw.class_names), raw.tokens)
    rng = np.random.default_rng(settings.get("seed", 0))
    if raw.test is not None:
        test_x, test_y = _check(*raw.test, name + " (test split)", len(raw.class_names), raw.tokens)
    else:
        order = rng.permutation(len(x))
        n_test = int(round(len(x) * settings.get("test_fraction", 0.2)))
        test_x, test_y = x[order[:n_test]], y[order[:n_test]]
        x, y = x[order[n_test:]], y[order[n_test:]]
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * settings.get("validation_fraction", 0.1)))
    val_x, val_y = x[order[:n_val]], y[order[:n_val]]
    train_x, train_y = x[order[n_val:]], y[order[n_val:]]
    notes = list(raw.notes)
    train_x, train_y = first_per_class(train_x, train_y, settings.get("samples_per_class"),
                                       len(raw.class_names), notes)
    if len(train_x) == 0:
        raise DatasetError(f"{name}: no samples are left for training after the splits")

    mean = std = None
    if settings.get("normalize", True) and not raw.tokens:  # token ids are names, not amounts
        image = raw.image and train_x.ndim == 4
        axes = (0, 2, 3) if image else (0,)
        mean = train_x.mean(axis=axes, keepdims=True)[0]
        std = train_x.std(axis=axes, keepdims=True)[0]
        if not image:
            # a feature that is almost constant in training (a border pixel of flat MNIST)
            # would blow up unseen values; bound the scaling by a tenth of the typical std
            std = np.maximum(std, 0.1 * float(std.mean()))
        std = np.where(std < 1e-6, 1.0, std).astype(np.float32)
        # statistics of full sample shape, so they reshape with the samples
        sample = train_x.shape[1:]
        mean = np.broadcast_to(mean, sample).astype(np.float32)
        std = np.broadcast_to(std, sample).astype(np.float32)
        train_x, val_x, test_x = ((a - mean) / std for a in (train_x, val_x, test_x))

    kind = np.int64 if raw.tokens else np.float32

    def split(a: np.ndarray, b: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(a, dtype=kind)),
                     torch.from_numpy(np.ascontiguousarray(b, dtype=np.int64)))

    return Dataset(name, split(train_x, train_y), split(val_x, val_y), split(test_x, test_y),
                   list(raw.class_names), raw.description, raw.image,
                   None if mean is None else torch.from_numpy(mean.astype(np.float32)),
                   None if std is None else torch.from_numpy(std.astype(np.float32)), notes)


def _check(x: np.ndarray, y: np.ndarray, name: str, n_classes: int,
           tokens: bool = False) -> tuple[np.ndarray, np.ndarray]:
    if len(x) != len(y):
        raise DatasetError(f"{name}: {len(x)} samples but {len(y)} labels")
    if len(x) == 0:
        raise DatasetError(f"{name}: the data holds no samples")
    x = np.asarray(x, dtype=np.int64 if tokens else np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
        raise DatasetError(f"{name}: sample {bad} holds a NaN or infinite value")
    y = np.asarray(y, dtype=np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        bad = int(np.argmax((y < 0) | (y >= n_classes)))
        raise DatasetError(f"{name}: label {int(y[bad])} of sample {bad} is out of range 0 to {n_classes - 1}")
    return x, y


def fit_to_input(data: Dataset, input_shape: tuple[int, ...], input_id: str = "input") -> Dataset:
    """``data`` with samples of ``input_shape``; raises ``DatasetError`` with the fix when
    they cannot fit (see ``needs_reshape``)."""
    if needs_reshape(data.name, tuple(data.sample_shape), tuple(input_shape), input_id):
        return data.reshaped(tuple(input_shape))
    return data


def check_input_dtype(data: Dataset, dtype: torch.dtype, input_id: str = "input") -> None:
    """Raises ``DatasetError`` when the samples' kind does not suit the Input: token ids
    (int64) for an Input of dtype int64, numbers (float32) for a float32 one."""
    tokens = not data.train.x.is_floating_point()
    if tokens and dtype != torch.int64:
        raise DatasetError(f"dataset {data.name!r} gives int64 token ids, but Input {input_id!r} takes "
                           "float32 values; set the Input's dtype to int64 and feed it to an Embedding")
    if not tokens and dtype == torch.int64:
        raise DatasetError(f"dataset {data.name!r} gives float32 values, but Input {input_id!r} has dtype "
                           "int64 (token ids for an Embedding); set its dtype to float32, or choose a "
                           "dataset of token ids such as sorted_digits")


def fit_raw(raw: RawData, name: str, input_shape: tuple[int, ...], input_id: str = "input") -> RawData:
    """Raw data reshaped to the Input before splitting, so normalization sees the model's
    view of a sample (flat CSV pixels fed to [1, 28, 28] are normalized as an image)."""
    want = tuple(input_shape)
    if not needs_reshape(name, tuple(raw.x.shape[1:]), want, input_id):
        return raw
    test = None if raw.test is None else (raw.test[0].reshape(len(raw.test[0]), *want), raw.test[1])
    return RawData(raw.x.reshape(len(raw.x), *want), raw.y, raw.class_names, raw.description,
                   test, image=len(want) == 3 and not raw.tokens,
                   notes=raw.notes + [f"samples reshaped from {list(raw.x.shape[1:])} to {list(want)}"],
                   tokens=raw.tokens)


def needs_reshape(name: str, have: tuple[int, ...], want: tuple[int, ...], input_id: str) -> bool:
    """False when samples already have the Input's shape, True when they can be reshaped to
    it: a flat sample and a shaped one of the same size ([784] <-> [1, 28, 28]), or shapes
    that differ only in dimensions of size 1. Raises ``DatasetError`` with the fix otherwise."""
    if have == want:
        return False
    same_size = int(np.prod(have)) == int(np.prod(want))
    squeezed = tuple(d for d in have if d != 1) == tuple(d for d in want if d != 1)
    if same_size and (len(have) == 1 or len(want) == 1 or squeezed):
        return True
    raise DatasetError(
        f"dataset {name!r} gives samples of shape {list(have)}, but Input {input_id!r} "
        f"expects {list(want)}; {_fit_hint(name, have, want)}")


def _fit_hint(name: str, have: tuple[int, ...], want: tuple[int, ...]) -> str:
    if name == "digits" and want in ((1, 28, 28), (784,)):
        return "use the dataset digits28 (the same digits at 28x28), or set the Input shape to [1, 8, 8]"
    if name in ("digits28", "mnist", "fashion_mnist") and want in ((1, 8, 8), (64,)):
        return "use the dataset digits (8x8), or set the Input shape to [1, 28, 28]"
    if name == "sorted_digits":
        return f"set the Input shape to {list(have)} (its sequences have {have[-1]} tokens)"
    return f"set the Input shape to {list(have)}"


def batches(split: Split, batch_size: int, *, shuffle: bool = False, drop_last: bool = False,
            generator: torch.Generator | None = None,
            indices: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches of ``split`` by slicing in-memory tensors (much cheaper per batch than a
    DataLoader). ``indices`` restricts to a subset (e.g. one rank's share)."""
    n = len(split) if indices is None else len(indices)
    if shuffle:
        order = torch.randperm(n, generator=generator)
        if indices is not None:
            order = indices[order]
    else:
        order = indices
    stop = n - (n % batch_size) if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield split.x[start : start + batch_size], split.y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield split.x[idx], split.y[idx]


def batch_count(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def first_per_class(x: np.ndarray, y: np.ndarray, per_class: int | None, n_classes: int,
                    notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The first ``per_class`` samples of each class of a (shuffled) training split, in
    their order (``None``: all). Appends to ``notes`` what was kept, and which classes have
    fewer samples than asked."""
    if per_class is None:
        return x, y
    counts = np.zeros(n_classes, dtype=np.int64)
    chosen = np.zeros(len(y), dtype=bool)
    for i, label in enumerate(y):
        if counts[label] < per_class:
            counts[label] += 1
            chosen[i] = True
    notes.append(f"training on {per_class} samples per class ({int(chosen.sum())} of {len(y)}); "
                 "validation and test are whole")
    short = [str(c) for c in range(n_classes) if counts[c] < per_class]
    if short:
        notes.append(f"classes {', '.join(short)} have fewer than {per_class} training samples")
    return x[chosen], y[chosen]
