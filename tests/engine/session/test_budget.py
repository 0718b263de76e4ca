"""The live views' drawing budget and the read interval follow whether training leaves the
editor a CPU."""

import json

import torch

from app.engine.session.budget import (BUSY_DUTY, BUSY_SNAPSHOT, BUSY_TICK, SPARE_DUTY, SPARE_SNAPSHOT, SPARE_TICK,
                                       drawing_duty, snapshot_seconds, tick_seconds, training_threads, usable_cpus)


def test_views_draw_less_where_training_takes_every_cpu():
    assert drawing_duty(cpus=2, threads=2) == BUSY_DUTY
    assert drawing_duty(cpus=16, threads=16) == BUSY_DUTY
    assert drawing_duty(cpus=16, threads=8) == SPARE_DUTY  # hyperthreads: torch takes the cores
    assert drawing_duty(cpus=4, threads=3) == SPARE_DUTY
    assert BUSY_DUTY < SPARE_DUTY


def test_the_machine_is_read_as_it_is():
    assert usable_cpus() >= 1 and training_threads() == torch.get_num_threads()
    expected = SPARE_DUTY if usable_cpus() > torch.get_num_threads() else BUSY_DUTY
    assert drawing_duty() == expected


def test_a_run_is_read_less_often_where_training_takes_every_cpu():
    assert tick_seconds(cpus=2, threads=2) == BUSY_TICK and tick_seconds(cpus=4, threads=3) == SPARE_TICK
    assert SPARE_TICK < BUSY_TICK <= 0.5  # the progress bar moves twice a second


def test_snapshots_come_less_often_where_training_takes_every_cpu():
    assert snapshot_seconds(cpus=2, threads=2) == BUSY_SNAPSHOT > SPARE_SNAPSHOT == snapshot_seconds(cpus=8, threads=4)


def test_the_training_threads_are_what_torch_uses_in_a_child_with_the_same_environment():
    """Worked out without torch (the editor asks at its start): equal to what a fresh
    process's torch says, with the default environment and with OMP_NUM_THREADS set."""
    import os
    import subprocess
    import sys

    code = ("import json, torch; from app.engine.session.budget import training_threads; "
            "print(json.dumps([training_threads(), torch.get_num_threads()]))")
    for extra in ({}, {"OMP_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "64"}, {"MKL_NUM_THREADS": "1"}):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        env.update(extra)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        ours, theirs = json.loads(done.stdout)
        assert ours == theirs, (extra, done.stderr[-500:])
