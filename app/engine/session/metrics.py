"""Training metrics as plain arrays: growable typed columns, a run's minibatch and epoch
tables (what the run supervisor and the curves view fill), exponential smoothing, a min/max
pyramid that hands a plot about two points per pixel however long the run, and CSV export."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np

F8, I8 = np.float64, np.int64
BATCH_COLUMNS = (("step", F8), ("epoch", I8), ("batch", I8), ("batches", I8), ("loss", F8),
                 ("smoothed_loss", F8), ("accuracy", F8), ("smoothed_accuracy", F8), ("lr", F8))
EPOCH_COLUMNS = (("epoch", I8), ("step", F8), ("train_loss", F8), ("train_accuracy", F8),
                 ("val_loss", F8), ("val_accuracy", F8), ("lr", F8), ("seconds", F8))
_serials = itertools.count(1)
STEP_CSV = ("step", "epoch", "loss", "smoothed_loss", "accuracy", "lr")
EPOCH_CSV = ("epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class Columns:
    """Named numpy columns of one length that grow by doubling (appends are amortised O(1)).
    ``columns[name]`` is a view of the filled part."""

    def __init__(self, spec, capacity: int = 256):
        self._data = {name: np.empty(capacity, dtype) for name, dtype in spec}
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name][:self.n]

    def _reserve(self, n: int) -> None:
        capacity = len(next(iter(self._data.values())))
        if n > capacity:
            capacity = max(n, 2 * capacity)
            for name, old in self._data.items():
                new = np.empty(capacity, old.dtype)
                new[:self.n] = old[:self.n]
                self._data[name] = new

    def append(self, **values) -> None:
        self._reserve(self.n + 1)
        for name, value in values.items():
            self._data[name][self.n] = value
        self.n += 1

    def extend(self, **arrays) -> None:
        m = len(next(iter(arrays.values())))
        self._reserve(self.n + m)
        for name, values in arrays.items():
            self._data[name][self.n:self.n + m] = values
        self.n += m


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """The exponential moving average of ``values`` (same length; NaN where a value is NaN,
    which leaves the average as it was)."""
    values = np.asarray(values, dtype=F8)
    out = np.full(len(values), np.nan)
    ok = np.isfinite(values)
    v = values[ok]
    if not len(v):
        return out
    try:
        from scipy.signal import lfilter  # optional dependency (not installed everywhere): fast on long runs
    except ImportError:
        s, smoothed = v[0], np.empty(len(v))
        for i, x in enumerate(v.tolist()):
            s = weight * s + (1 - weight) * x
            smoothed[i] = s
    else:
        smoothed = lfilter([1 - weight], [1, -weight], v, zi=[weight * v[0]])[0]
    out[ok] = smoothed
    return out


class RunMetrics:
    """Everything one run reported, as arrays: ``batches`` (one row per step, columns
    ``BATCH_COLUMNS``) and ``epochs`` (one row per epoch, ``EPOCH_COLUMNS``). Missing values
    (accuracy None, no validation split) are NaN."""

    def __init__(self, smoothing: float = 0.9):
        self.batches = Columns(BATCH_COLUMNS)
        self.epochs = Columns(EPOCH_COLUMNS)
        self.serial = next(_serials)  # tells runs apart where an id() could be reused
        self.smoothing = smoothing
        self.has_accuracy = False
        self._loss_state: float | None = None
        self._acc_state: float | None = None
        self.lr_min, self.lr_max = math.inf, -math.inf

    def __bool__(self) -> bool:
        return bool(len(self.batches) or len(self.epochs))

    def _smooth(self, state, x):
        if not math.isfinite(x):
            return state, math.nan
        state = x if state is None else self.smoothing * state + (1 - self.smoothing) * x
        return state, state

    def add_batch(self, e) -> None:
        self.add_batches([e])

    def add_batches(self, events) -> None:
        """BatchEvents, in order: one append of every column for all of them."""
        rows = {name: [] for name, _ in BATCH_COLUMNS}
        loss_state, acc_state = self._loss_state, self._acc_state
        for e in events:
            loss = float(e.loss)
            acc = math.nan if e.accuracy is None else float(e.accuracy)
            self.has_accuracy |= e.accuracy is not None
            loss_state, smoothed_loss = self._smooth(loss_state, loss)
            acc_state, smoothed_acc = self._smooth(acc_state, acc)
            for name, value in (("step", e.step), ("epoch", e.epoch), ("batch", e.batch), ("batches", e.batches),
                                ("loss", loss), ("smoothed_loss", smoothed_loss), ("accuracy", acc),
                                ("smoothed_accuracy", smoothed_acc), ("lr", float(e.lr))):
                rows[name].append(value)
        if not rows["step"]:
            return
        self._loss_state, self._acc_state = loss_state, acc_state
        self.lr_min, self.lr_max = min(self.lr_min, *rows["lr"]), max(self.lr_max, *rows["lr"])
        self.batches.extend(**rows)

    def add_epoch(self, e) -> None:
        steps = self.batches["step"]
        step = float(steps[-1]) if len(steps) else float(e.epoch)  # the step where it ended
        nan = lambda v: math.nan if v is None else float(v)  # noqa: E731
        self.has_accuracy |= e.train_accuracy is not None or e.val_accuracy is not None
        self.epochs.append(epoch=e.epoch, step=step, train_loss=nan(e.train_loss),
                           train_accuracy=nan(e.train_accuracy), val_loss=nan(e.val_loss),
                           val_accuracy=nan(e.val_accuracy), lr=float(e.lr), seconds=float(e.seconds))

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        b = self.batches
        for raw, name in (("loss", "smoothed_loss"), ("accuracy", "smoothed_accuracy")):
            b[name][:] = ema(b[raw], weight)
        finite = lambda a: next((float(v) for v in a[::-1] if math.isfinite(v)), None)  # noqa: E731
        self._loss_state, self._acc_state = finite(b["smoothed_loss"]), finite(b["smoothed_accuracy"])


class Decimator:
    """A min/max pyramid over one growing series, so drawing any range of it costs about the
    plot's width in points, never the run's length. Level k groups ``8 * 4**k`` samples;
    ``update`` only reduces the samples that arrived since the last call."""

    FIRST, FAN = 8, 4

    def __init__(self):
        self.levels: list[Columns] = []

    def size(self, k: int) -> int:
        return self.FIRST * self.FAN ** k

    def update(self, y: np.ndarray) -> None:
        lo = hi = y
        group, k = self.FIRST, 0
        while True:
            if k == len(self.levels):
                if len(lo) < group:
                    return
                self.levels.append(Columns((("lo", F8), ("hi", F8)), capacity=max(64, len(lo) // group)))
            level = self.levels[k]
            done, complete = len(level), len(lo) // group
            if complete > done:
                span = slice(done * group, complete * group)
                level.extend(lo=np.fmin.reduce(lo[span].reshape(-1, group), axis=1),
                             hi=np.fmax.reduce(hi[span].reshape(-1, group), axis=1))
            lo, hi, group, k = level["lo"], level["hi"], self.FAN, k + 1

    def points(self, x: np.ndarray, y: np.ndarray, i0: int, i1: int, buckets: int,
               peak: bool) -> tuple[np.ndarray, np.ndarray]:
        """(xs, ys) drawing samples ``[i0, i1)`` in ``buckets / 2`` to ``2 * buckets`` groups: raw
        samples when few enough; else per group its min and max (``peak``, for noisy curves)
        or their middle."""
        if i1 - i0 <= 2 * buckets or not self.levels:
            return x[i0:i1], y[i0:i1]
        k = 0
        while k + 1 < len(self.levels) and (i1 - i0) / self.size(k) > 2 * buckets:
            k += 1
        pos = i0 - i0 % self.size(k)
        xs, ys = [], []
        for j in range(k, -1, -1):  # whole groups of level k, then the tail from finer levels
            size, level = self.size(j), self.levels[j]
            b0, b1 = pos // size, min(len(level), -(-i1 // size))
            if b1 > b0:
                first = x[np.arange(b0, b1) * size]
                last = x[np.minimum(np.arange(b0 + 1, b1 + 1) * size, len(x)) - 1]
                mid, lo, hi = (first + last) / 2, level["lo"][b0:b1], level["hi"][b0:b1]
                xs.append(np.repeat(mid, 2) if peak else mid)
                ys.append(np.column_stack((lo, hi)).ravel() if peak else (lo + hi) / 2)
                pos = b1 * size
            if pos >= i1:
                break
        if pos < i1:
            xs.append(x[pos:i1])
            ys.append(y[pos:i1])
        else:  # the last sample itself, so the curve ends where the data does
            xs.append(x[i1 - 1:i1])
            ys.append(y[i1 - 1:i1])
        start = i0 - i0 % self.size(k)
        return np.concatenate([x[start:start + 1]] + xs), np.concatenate([y[start:start + 1]] + ys)


def epochs_csv_path(path) -> Path:
    """Where ``write_csv`` puts the per-epoch table for ``path``: ``<stem>-epochs<suffix>``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-epochs{path.suffix or '.csv'}")


def write_csv(run: RunMetrics, path) -> tuple[Path, Path]:
    """Write ``run`` per step to ``path`` (columns ``STEP_CSV``) and per epoch to
    ``<stem>-epochs<suffix>`` beside it (``EPOCH_CSV``); non-finite values as empty cells.
    Returns both paths."""
    path = Path(path)
    epochs_path = epochs_csv_path(path)
    cell = lambda v: "" if not math.isfinite(v) else repr(v)  # noqa: E731
    b, e = run.batches, run.epochs
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(STEP_CSV)
        cols = [b[name].tolist() for name in STEP_CSV]
        for step, epoch, loss, smoothed, acc, lr in zip(*cols):
            out.writerow((int(step), epoch, cell(loss), cell(smoothed), cell(acc), cell(lr)))
    with open(epochs_path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(EPOCH_CSV)
        cols = [e[name].tolist() for name in EPOCH_CSV]
        for epoch, step, *rest in zip(*cols):
            out.writerow((epoch, int(step), *(cell(v) for v in rest)))
    return path, epochs_path
