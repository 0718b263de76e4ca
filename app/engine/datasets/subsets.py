"""``dataset.classes`` (a NetCanvas addition, docs/FORMAT_EXTENSIONS.md): some classes of
the data, for transfer learning (``dataset.samples_per_class`` is applied in ``prepare``,
``base.first_per_class``, once the training split is known)."""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError
from .base import RawData


def select_classes(raw: RawData, classes: list[int] | None, name: str) -> RawData:
    """``raw`` with only the samples of ``classes`` (indices into ``raw.class_names``),
    relabelled 0, 1, ... in the order of ``classes`` and keeping their names (digits 5-9
    are classes 0-4 named "5" to "9"). ``None``: ``raw`` itself. Raises ``DatasetError``
    naming ``dataset.classes`` for a class the data does not have."""
    if classes is None:
        return raw
    n = len(raw.class_names)
    missing = [c for c in classes if c >= n]
    if missing:
        raise DatasetError(f"dataset.classes: class {missing[0]} does not exist: {name} has {n} classes "
                           f"(0 to {n - 1})")
    lookup = np.full(n, -1, dtype=np.int64)
    lookup[list(classes)] = np.arange(len(classes))

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        new = lookup[np.asarray(y, dtype=np.int64)]
        chosen = new >= 0
        return x[chosen], new[chosen]

    x, y = keep(raw.x, raw.y)
    if len(x) == 0:
        raise DatasetError(f"dataset.classes: {name} holds no sample of the classes {list(classes)}")
    test = None if raw.test is None else keep(*raw.test)
    names = [raw.class_names[c] for c in classes]
    note = (f"classes {', '.join(names)} of {name} only ({len(x)} of {len(raw.x)} samples), "
            f"numbered 0 to {len(classes) - 1} here")
    return RawData(x, y, names, raw.description, test, raw.image, raw.notes + [note], raw.tokens)
