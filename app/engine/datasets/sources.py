"""One loader per dataset name, each returning ``RawData``.

The bundled and synthetic sets live here; the file formats have their own modules
(``idx.py`` for MNIST-style IDX files, ``tabular.py`` for CSV, ``images.py`` for image
folders). ``load_raw`` picks the loader for a project's ``dataset`` settings.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..config import DATASET_NAMES, DATASET_REQUIRES
from ..errors import DatasetError
from .base import RawData
from .idx import load_idx, load_mnist
from .images import load_image_folder
from .sequences import make_sorted_digits
from .tabular import load_csv

DEFAULT_SAMPLES = 200
DEFAULT_NOISE = 0.1
DIGIT_CLASSES = [str(i) for i in range(10)]


def load_digits() -> RawData:
    """``digits``: scikit-learn's 1,797 handwritten digits (bundled, offline), ``x`` float32
    ``[1797, 1, 8, 8]`` in [0, 1], 10 classes."""
    pixels, labels = _digits_table()
    x = (pixels.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # pixel values are 0..16
    return RawData(x, labels.astype(np.int64), list(DIGIT_CLASSES),
                   "scikit-learn's 1,797 handwritten digits, 8x8 grayscale (offline, a small stand-in for MNIST)",
                   image=True)


def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    """The digits' ``[1797, 64]`` pixels and ``[1797]`` labels, read straight from the file
    scikit-learn ships (``digits.csv.gz``: 64 pixels then the label per row) without importing
    scikit-learn, which takes seconds: a training run's first minibatch waited on it."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec else []
    table = next((Path(f) / "datasets" / "data" / "digits.csv.gz" for f in folders
                  if (Path(f) / "datasets" / "data" / "digits.csv.gz").is_file()), None)
    if table is not None:
        try:
            data = np.loadtxt(table, delimiter=",", dtype=np.float64)
            if data.ndim == 2 and data.shape[1] == 65:
                return data[:, :64], data[:, 64]
        except (OSError, ValueError):
            pass  # a changed file: scikit-learn's own loader knows it
    from sklearn.datasets import load_digits as sk_digits  # seconds to import: only when the file is not found

    d = sk_digits()
    return d.data, d.target


def load_digits28() -> RawData:
    """``digits28``: the ``digits`` upscaled bilinearly to 20x20 and zero-padded to 28x28,
    the way MNIST centres a 20x20 digit in 28x28: ``x`` float32 ``[1797, 1, 28, 28]`` in [0, 1]."""
    raw = load_digits()
    m = bilinear_matrix(8, 20)
    big = (m @ raw.x[:, 0] @ m.T).astype(np.float32)  # separable: rows, then columns, of each image
    x = np.zeros((len(big), 1, 28, 28), dtype=np.float32)
    x[:, 0, 4:24, 4:24] = big
    return RawData(x, raw.y, raw.class_names,
                   "scikit-learn's 1,797 handwritten digits upscaled to 20x20 and centred in 28x28 "
                   "(offline, shaped like MNIST)", image=True)


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of 1-d linear interpolation with torch's
    ``align_corners=False`` convention (pixel centres, edges clamped); applied along both
    axes it equals ``F.interpolate(mode="bilinear", align_corners=False)``."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, None)  # torch clamps negative source coordinates to 0
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] += 1 - frac
    m[np.arange(n_out), hi] += frac
    return m


def load_iris() -> RawData:
    """``iris``: scikit-learn's iris table, ``x`` float32 ``[150, 4]``, 3 named classes."""
    from sklearn.datasets import load_iris as sk_iris  # seconds to import: only for this dataset

    d = sk_iris()
    return RawData(d.data.astype(np.float32), d.target.astype(np.int64), [str(n) for n in d.target_names],
                   "scikit-learn's iris flowers: 150 samples of 4 measurements (sepal and petal length and "
                   "width, cm), 3 species")


def make_xor(samples: int = DEFAULT_SAMPLES, noise: float = DEFAULT_NOISE, seed: int = 0) -> RawData:
    """``xor``: points around the corners (0,0), (0,1), (1,0), (1,1) (equally many each)
    with gaussian noise; the label is the XOR of the corner's bits. ``x`` float32 ``[samples, 2]``."""
    rng = np.random.default_rng(seed)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])[rng.permutation(np.arange(samples) % 4)]
    x = corners + rng.normal(0.0, noise, size=(samples, 2))
    y = corners[:, 0] ^ corners[:, 1]
    return RawData(x.astype(np.float32), y.astype(np.int64), ["0", "1"],
                   f"XOR: {samples} points around the four corners of the unit square (noise {noise}), "
                   "the label is x XOR y")


def make_moons(samples: int = DEFAULT_SAMPLES, noise: float = DEFAULT_NOISE, seed: int = 0) -> RawData:
    """``moons``: scikit-learn's two interleaving half circles, ``x`` float32 ``[samples, 2]``."""
    from sklearn.datasets import make_moons as sk_moons  # seconds to import: only for this dataset

    x, y = sk_moons(n_samples=samples, noise=noise, random_state=seed % 2**32)  # it takes 32 bits
    return RawData(x.astype(np.float32), y.astype(np.int64), ["upper moon", "lower moon"],
                   f"two moons: {samples} points on two interleaving half circles (noise {noise})")


def make_spirals(samples: int = DEFAULT_SAMPLES, noise: float = DEFAULT_NOISE, seed: int = 0) -> RawData:
    """``spirals``: two interleaved spirals of 1.5 turns each (radius 0.1 to 1, the second
    rotated by half a turn) with gaussian noise; ``x`` float32 ``[samples, 2]``."""
    rng = np.random.default_rng(seed)
    y = np.arange(samples) % 2
    t = rng.uniform(0.0, 1.0, samples)
    radius = 0.1 + 0.9 * t
    angle = 3 * np.pi * t + np.pi * y
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise, size=x.shape)
    return RawData(x.astype(np.float32), y.astype(np.int64), ["spiral 0", "spiral 1"],
                   f"two spirals: {samples} points on two interleaved spirals (noise {noise})")


def load_raw(settings: dict, base_dir: Path | None = None,
             input_shape: tuple[int, ...] | None = None) -> RawData:
    """The ``RawData`` that the ``dataset`` settings name. Relative paths resolve against
    ``base_dir`` (the project's folder); ``input_shape`` only matters to ``image_folder``
    (it converts and resizes to it). Raises ``DatasetError`` for an unknown name, a missing
    setting, or data that cannot be read."""
    name = settings.get("name")
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown dataset {name!r}; choose one of " + ", ".join(DATASET_NAMES))
    for key, what in DATASET_REQUIRES.get(name, {}).items():
        if not settings.get(key):
            raise DatasetError(f"dataset {name!r} needs {key}: {what}")

    def path(key: str) -> Path:
        p = Path(settings[key]).expanduser()
        return p if p.is_absolute() or base_dir is None else Path(base_dir) / p

    samples = settings.get("samples") or DEFAULT_SAMPLES
    noise = DEFAULT_NOISE if settings.get("noise") is None else settings["noise"]
    seed = settings.get("seed", 0)
    if name in ("xor", "moons", "spirals") and samples < 4:
        raise DatasetError(f"dataset {name!r} needs at least 4 samples, received {samples}")
    loaders = {
        "digits": lambda: load_digits(),
        "digits28": lambda: load_digits28(),
        "iris": lambda: load_iris(),
        "mnist": lambda: load_mnist(path("path")),
        "fashion_mnist": lambda: load_mnist(path("path"), fashion=True),
        "idx": lambda: load_idx(path("images"), path("labels")),
        "csv": lambda: load_csv(path("path"), settings.get("label_column")),
        "image_folder": lambda: load_image_folder(path("path"), input_shape),
        "xor": lambda: make_xor(samples, noise, seed),
        "moons": lambda: make_moons(samples, noise, seed),
        "spirals": lambda: make_spirals(samples, noise, seed),
        "sorted_digits": lambda: make_sorted_digits(settings.get("samples"), seed),
    }
    return loaders[name]()
