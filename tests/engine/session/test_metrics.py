"""The metrics store: typed columns, a run's tables, and the min/max pyramid (no Qt)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.engine.session.metrics import Decimator, RunMetrics, ema
from app.engine.training.events import BatchEvent


def test_the_decimator_keeps_extremes_and_detail_where_zoomed():
    rng = np.random.default_rng(0)
    n = 200_003
    x = np.arange(1, n + 1, dtype=float)
    y = rng.standard_normal(n)
    y[5000:5100] = np.nan
    y[123_457] = 50.0
    pyramid = Decimator()
    for end in (10, 9_999, 150_000, n):  # fed in pieces, as batches arrive
        pyramid.update(y[:end])
    whole = Decimator()
    whole.update(y)
    for a, b in zip(pyramid.levels, whole.levels):
        assert np.array_equal(a["lo"], b["lo"], equal_nan=True) and np.array_equal(a["hi"], b["hi"], equal_nan=True)
    xs, ys = pyramid.points(x, y, 0, n, 500, peak=True)
    assert len(xs) <= 4 * 500 + 16 and np.all(np.diff(xs) >= 0)
    assert np.nanmax(ys) == 50.0 and np.nanmin(ys) == np.nanmin(y)
    assert xs[0] <= 8 and xs[-1] == n  # covers the range, the unfinished tail included
    xs, ys = pyramid.points(x, y, 1000, 1600, 500, peak=True)  # few enough: the samples themselves
    assert np.array_equal(xs, x[1000:1600])
    xs, ys = pyramid.points(x, y, 100_000, 180_000, 500, peak=False)
    assert 250 <= len(xs) <= 1000 and xs[0] <= 100_001 and xs[-1] >= 180_000


def test_minibatches_added_together_equal_one_by_one():
    events = [BatchEvent(1 + i // 7, i % 7 + 1, 7, i + 1, 1.0 / (i + 1) if i != 5 else math.nan,
                         None if i < 3 else i / 20, 100.0, 0.1 * 0.9 ** i) for i in range(20)]
    one, together = RunMetrics(0.8), RunMetrics(0.8)
    for e in events:
        one.add_batch(e)
    together.add_batches(events[:4])
    together.add_batches([])
    together.add_batches(events[4:])
    for name in ("step", "epoch", "batch", "batches", "loss", "smoothed_loss", "accuracy", "smoothed_accuracy", "lr"):
        np.testing.assert_array_equal(together.batches[name], one.batches[name], err_msg=name)
    assert (together.lr_min, together.lr_max, together.has_accuracy) == (one.lr_min, one.lr_max, True)
    assert together.lr_min == pytest.approx(0.1 * 0.9 ** 19) and together.lr_max == pytest.approx(0.1)


def test_ema_matches_the_running_average_and_skips_nan():
    values = np.array([1.0, math.nan, 0.0, 1.0])
    out = ema(values, 0.5)
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == 0.5 and out[3] == 0.75
