"""How much of the GUI thread the live views (curves, filters, activations) may spend
drawing while a run trains, and how often a run is read.

Training uses one thread per core (torch's default). Where that leaves a CPU to spare, the
editor draws on it and costs the run nothing: the views may draw often. Where it does not
(a 2-core laptop, a small VM), every millisecond the editor draws is taken from a training
thread, and since the others wait for it at the end of each parallel operation, the run
loses more than the editor uses. There the views draw several times less often, and the
curves give the minibatch loss every other turn. ``python bench/training.py`` measures what
the panel keeps of the headless throughput with either budget.
"""

from __future__ import annotations

import os

SPARE_DUTY = 0.08  # a CPU to spare: the views draw every ~60 ms
BUSY_DUTY = 0.01  # training takes every CPU
# How often the editor reads what a run sends (and the run sends its minibatches). Each
# wake-up of the editor costs CPU, taken from training where it takes every CPU. The views
# draw a few times a second there, and the progress bar twice, so reading 5 times a second
# loses nothing that shows.
SPARE_TICK = 0.05
BUSY_TICK = 0.2
# The shortest time between two snapshots (filters, activations) of a run: each costs the
# run a forward pass and the editor a redraw of the view on screen.
SPARE_SNAPSHOT = 0.5
BUSY_SNAPSHOT = 1.0


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def training_threads() -> int:
    """The threads a training run uses: torch's intra-op threads, as the child will set them
    (the same environment as here), worked out as torch does without importing it (the
    panel asks at the editor's start): the physical cores, or fewer where OMP_NUM_THREADS
    (else MKL_NUM_THREADS) asks for fewer; torch never takes more (tests/engine/session/
    test_budget.py compares with torch)."""
    cores = physical_cores()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return min(int(value), cores)
    return cores


def physical_cores() -> int:
    """Cores, not hardware threads: /proc/cpuinfo's distinct (physical id, core id) pairs on
    Linux; elsewhere the CPU count."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return os.cpu_count() or 1
    cores, physical = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            cores.add((physical, value.strip()))
    return len(cores) or os.cpu_count() or 1


def cpu_to_spare(cpus: int | None = None, threads: int | None = None) -> bool:
    """Whether training leaves a CPU to the editor."""
    cpus = usable_cpus() if cpus is None else cpus
    threads = training_threads() if threads is None else threads
    return cpus > threads


def drawing_duty(cpus: int | None = None, threads: int | None = None) -> float:
    """The share of the GUI thread's time the live views may spend drawing."""
    return SPARE_DUTY if cpu_to_spare(cpus, threads) else BUSY_DUTY


def tick_seconds(cpus: int | None = None, threads: int | None = None) -> float:
    """How often a run's messages are read (and its minibatches sent)."""
    return SPARE_TICK if cpu_to_spare(cpus, threads) else BUSY_TICK


def snapshot_seconds(cpus: int | None = None, threads: int | None = None) -> float:
    """The shortest time between two snapshots the panel asks of a run."""
    return SPARE_SNAPSHOT if cpu_to_spare(cpus, threads) else BUSY_SNAPSHOT
