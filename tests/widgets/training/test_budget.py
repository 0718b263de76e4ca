"""The live views' drawing budget follows whether training leaves the editor a CPU."""

from app.widgets.training.budget import BUSY_DUTY, SPARE_DUTY, drawing_duty, training_threads, usable_cpus


def test_views_draw_less_where_training_takes_every_cpu():
    assert drawing_duty(cpus=2, threads=2) == BUSY_DUTY
    assert drawing_duty(cpus=16, threads=16) == BUSY_DUTY
    assert drawing_duty(cpus=16, threads=8) == SPARE_DUTY  # hyperthreads: torch takes the cores
    assert drawing_duty(cpus=4, threads=3) == SPARE_DUTY
    assert BUSY_DUTY < SPARE_DUTY


def test_the_machine_is_read_as_it_is():
    import torch

    assert usable_cpus() >= 1 and training_threads() == torch.get_num_threads()
    expected = SPARE_DUTY if usable_cpus() > torch.get_num_threads() else BUSY_DUTY
    assert drawing_duty() == expected


def test_the_editor_reads_a_run_less_often_where_training_takes_every_cpu():
    from app.widgets.training.budget import BUSY_TICK, SPARE_TICK, cpu_to_spare, tick_seconds
    from app.widgets.training.session import TICK_MS

    assert tick_seconds(cpus=2, threads=2) == BUSY_TICK and tick_seconds(cpus=4, threads=3) == SPARE_TICK
    assert SPARE_TICK < BUSY_TICK <= 0.5  # the progress bar moves twice a second
    assert TICK_MS == round(1000 * (SPARE_TICK if cpu_to_spare() else BUSY_TICK))


def test_snapshots_come_less_often_where_training_takes_every_cpu():
    from app.widgets.training import panel
    from app.widgets.training.budget import BUSY_SNAPSHOT, SPARE_SNAPSHOT, cpu_to_spare, snapshot_seconds

    assert snapshot_seconds(cpus=2, threads=2) == BUSY_SNAPSHOT > SPARE_SNAPSHOT == snapshot_seconds(cpus=8, threads=4)
    assert panel.SNAPSHOT_MIN_SECONDS == (SPARE_SNAPSHOT if cpu_to_spare() else BUSY_SNAPSHOT)
