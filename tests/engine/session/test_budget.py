"""The live views' drawing budget and the read interval follow whether training leaves the
editor a CPU."""

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
