"""Generated sequence tasks: int64 token ids for models that start with an Embedding.

``sorted_digits`` (a NetCanvas addition, docs/FORMAT_EXTENSIONS.md): sequences of
``SEQUENCE_LENGTH`` digits 0-9; is the sequence sorted (non-decreasing)? Half the samples
are sorted. Most unsorted ones are hard negatives, sorted sequences broken in exactly one
place, so that a model must compare every pair of neighbours rather than spot disorder at
a glance. Deterministic: the same ``samples`` and ``seed`` give the same sequences.
"""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError
from .base import RawData

SEQUENCE_LENGTH = 12
VOCABULARY = 10  # the digits 0..9: an Embedding needs num_embeddings >= 10
DEFAULT_SEQUENCES = 6000
MIN_SEQUENCES = 10
SORTED_CLASSES = ["unsorted", "sorted"]


def make_sorted_digits(samples: int | None = None, seed: int = 0) -> RawData:
    """``sorted_digits``: ``x`` int64 ``[samples, SEQUENCE_LENGTH]`` of digits 0..9 and
    ``y`` int64 ``[samples]``, 1 where the sequence is non-decreasing ("sorted") and 0
    otherwise. Of the unsorted half: 1/2 are a sorted sequence with two neighbours of
    different value swapped, 1/4 a sorted sequence with one digit replaced by one that breaks
    the order, 1/4 uniformly random sequences (rejected if sorted by chance). Raises
    ``DatasetError`` for fewer than MIN_SEQUENCES samples."""
    n = DEFAULT_SEQUENCES if samples is None else int(samples)
    if n < MIN_SEQUENCES:
        raise DatasetError(f"dataset 'sorted_digits' needs at least {MIN_SEQUENCES} samples, received {n}")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.integers(0, VOCABULARY, size=(n, SEQUENCE_LENGTH)), axis=1)
    kinds = rng.permutation(np.arange(n) % 8)  # 0-3 sorted, 4-5 swap, 6 replace, 7 random
    for i in np.flatnonzero(kinds >= 4):
        x[i] = _unsorted(x[i], int(kinds[i]), rng)
    y = np.all(np.diff(x, axis=1) >= 0, axis=1).astype(np.int64)
    return RawData(x.astype(np.int64), y, list(SORTED_CLASSES),
                   f"sorted digits: {n} sequences of {SEQUENCE_LENGTH} digits (token ids 0-9); is the "
                   "sequence non-decreasing? Half are; most others are sorted ones broken in one place",
                   tokens=True)


def _unsorted(row: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """An unsorted sequence made from the sorted ``row``: ``kind`` 4-5 swaps two neighbours
    of different value, 6 replaces one digit so that it breaks the order, 7 draws at random."""
    row = row.copy()
    if kind < 7 and row[0] == row[-1]:  # one repeated digit: nothing to swap, nothing to break
        row[rng.integers(0, SEQUENCE_LENGTH)] = (row[0] + rng.integers(1, VOCABULARY)) % VOCABULARY
        if np.all(np.diff(row) >= 0):  # the changed digit landed at an end, in order
            row = row[::-1].copy()
        return row
    if kind in (4, 5):
        steps = np.flatnonzero(np.diff(row) > 0)  # neighbours of different value
        j = int(rng.choice(steps))
        row[j], row[j + 1] = row[j + 1], row[j]
        return row
    if kind == 6:
        while True:
            j = int(rng.integers(0, SEQUENCE_LENGTH))
            low = row[j - 1] if j > 0 else 0
            high = row[j + 1] if j < SEQUENCE_LENGTH - 1 else VOCABULARY - 1
            wrong = [v for v in range(VOCABULARY) if v < low or v > high]
            if wrong:
                row[j] = int(rng.choice(wrong))
                return row
    while True:
        row = rng.integers(0, VOCABULARY, size=SEQUENCE_LENGTH)
        if not np.all(np.diff(row) >= 0):
            return row
