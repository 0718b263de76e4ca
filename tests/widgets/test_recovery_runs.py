"""The runs of a never-saved project held back beside its weights file in the recovery folder
(unsaved-NAME.runs/RUN.safetensors: stopped, diverged, worse) are pruned like the file itself."""

from __future__ import annotations

import os
import time

from app.widgets.recovery import UNSAVED_WEIGHTS_DAYS, prune_unsaved_weights, recovery_dir


def test_held_back_runs_of_unsaved_projects_do_not_pile_up():
    folder = recovery_dir()
    runs, recent_runs = folder / "unsaved-0001.runs", folder / "unsaved-0002.runs"
    runs.mkdir()
    recent_runs.mkdir()
    old, recent = runs / "20261101-120000-aaaa.safetensors", recent_runs / "20261202-120000-bbbb.safetensors"
    other = folder / "imported-0003.safetensors"
    for path in (old, recent, other):
        path.write_bytes(b"x")
    long_ago = time.time() - (UNSAVED_WEIGHTS_DAYS + 1) * 86400
    for path in (old, other):
        os.utime(path, (long_ago, long_ago))
    assert prune_unsaved_weights() == [old]
    assert not runs.exists()  # the emptied folder goes too
    assert recent.exists() and other.exists()
