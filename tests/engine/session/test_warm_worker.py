"""The warm training worker: a child that has imported torch and loaded the data ahead
("prepare"), handed the next run; its data is reused only when nothing it was loaded from
changed; Stop ends it at once while its run starts; it never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.engine.examples import load_example
from app.engine.inference import analyze
from app.engine.session.supervisor import STOPPED_WHILE_STARTING, RunSupervisor
from app.engine.training.data_cache import DataCache
from tests.helpers import gone

TIMEOUT = 90.0  # a fresh process imports torch (and the worker warms up) before it is ready
ROOT = Path(__file__).resolve().parents[3]
QUICK = {"device": "cpu", "epochs": 2}
LONG = {"device": "cpu", "epochs": 100_000}


def input_of(project) -> tuple[list[int], str]:
    analysis = analyze(project.graph)
    return analysis.shapes[analysis.inputs[0]], analysis.inputs[0]


def prepare_for(supervisor: RunSupervisor, project) -> None:
    shape, input_id = input_of(project)
    supervisor.prepare(project.dataset, project.path.parent if project.path else None, shape, input_id)


def until(condition, supervisor: RunSupervisor | None = None, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        if supervisor is not None:
            supervisor.poll()
        time.sleep(0.01)


@pytest.fixture
def warm():
    s = RunSupervisor(tick_seconds=0.05, keep_warm=True)
    yield s
    s.shutdown()


def test_a_run_handed_to_the_warm_worker_trains_on_the_data_loaded_ahead_as_a_fresh_process_would(warm):
    project = load_example("xor")
    prepare_for(warm, project)
    assert warm.wait_warm(TIMEOUT), warm.warm_info
    said = warm.warm_info["prepared"]
    assert said["loaded"] and said["loads"] == 1 and said["error"] is None and said["name"] == "xor"
    prepare_for(warm, project)  # the same data again: not sent, nothing to wait for
    assert warm.warm_info["pending"] == 0 and warm.warm_ready
    first = warm.warm_pid
    warm.start(project, overrides=QUICK, threads=1)
    assert warm.pid == first
    finished = warm.wait(TIMEOUT)
    assert finished is not None and finished.reason == "completed"
    info = warm.info
    assert info["pid"] == first and info["warm"] and info["dataset_cached"]
    assert set(info["seconds"]) == {"prepare", "model"}

    # the same run in a fresh process (no warm worker, the data loaded by the run): the same result
    cold = RunSupervisor(tick_seconds=0.05)
    try:
        cold.start(load_example("xor"), overrides=QUICK, threads=1)
        reference = cold.wait(TIMEOUT)
        assert not cold.info["warm"] and not cold.info["dataset_cached"]
    finally:
        cold.shutdown()
    assert reference.reason == "completed" and (reference.steps, reference.epochs_run) == (finished.steps, 2)
    assert reference.test_loss == finished.test_loss and reference.confusion == finished.confusion
    assert cold.info["dataset"] == info["dataset"]

    # the next warm worker is told the same data as soon as it is made
    second = warm.warm_pid
    assert second not in (None, first)
    assert warm.wait_warm(TIMEOUT) and warm.warm_info["prepared"]["loaded"]

    # a run on other data (another noise) loads its own: the data held is not used
    other = load_example("xor")
    other.dataset = {**other.dataset, "noise": 0.31}
    warm.start(other, overrides={"device": "cpu", "epochs": 1}, threads=1)
    assert warm.wait(TIMEOUT).reason == "completed"
    assert warm.info["pid"] == second and warm.info["warm"] and not warm.info["dataset_cached"]
    assert warm.info["dataset"]["description"] != info["dataset"]["description"]


def write_csv(path: Path, rows: list[tuple[float, float, int]]) -> None:
    path.write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))


def test_the_data_held_is_used_only_while_its_settings_input_and_files_are_unchanged(tmp_path):
    rows = [(i * 0.1, (i % 3) * 0.5, i % 2) for i in range(40)]
    write_csv(tmp_path / "data.csv", rows)
    project = load_example("xor")
    project.dataset = {"name": "csv", "path": "data.csv", "label_column": "label"}
    project.path = tmp_path / "project.netcanvas"
    shape, input_id = input_of(project)
    cache = DataCache()

    said = cache.prepare(project.dataset, str(tmp_path), shape, input_id)
    assert said["loaded"] and said["error"] is None and cache.loads == 1
    assert cache.prepare(dict(project.dataset), str(tmp_path), list(shape), input_id)["loaded"] is False
    held = cache.dataset
    assert cache.take(project) is held and cache.dataset is None  # given once: the run owns it

    cache.prepare(project.dataset, str(tmp_path), shape, input_id)
    stat = (tmp_path / "data.csv").stat()
    write_csv(tmp_path / "data.csv", [(a, b, 1 - c) for a, b, c in rows])  # same size, other labels
    os.utime(tmp_path / "data.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert cache.take(project) is None  # the file changed since: the run loads it again

    cache.prepare(project.dataset, str(tmp_path), shape, input_id)
    project.dataset = {**project.dataset, "test_fraction": 0.3}
    assert cache.take(project) is None  # other settings

    cache.prepare(project.dataset, str(tmp_path / "elsewhere"), shape, input_id)
    assert cache.loads == 3 and cache.dataset is None  # no such file there: nothing held ...
    said = cache.prepare(project.dataset, str(tmp_path / "elsewhere"), shape, input_id)
    assert said["error"] and "data.csv" in said["error"]  # ... and said why (the run will say it too)

    cache.prepare({"name": "xor"}, None, [2], input_id)
    project.dataset, project.path = {"name": "xor"}, None
    assert cache.take(project) is not None
    cache.prepare({"name": "xor"}, None, [2], input_id)
    project.graph.nodes[input_id].params["shape"] = [1, 2]  # another Input: fitted otherwise
    assert analyze(project.graph).ok and cache.take(project) is None


def test_stop_ends_a_run_handed_to_a_warm_worker_at_once_and_a_new_one_waits(warm):
    seen = []
    warm.finished.connect(seen.append)
    warm.failed.connect(lambda message: pytest.fail(message))
    project = load_example("xor")
    prepare_for(warm, project)
    for ready_first in (False, True):  # still importing torch; then ready with the data loaded
        if ready_first:
            assert warm.wait_warm(TIMEOUT)
        first = warm.warm_pid
        warm.start(project, overrides=LONG, threads=1)
        assert warm.pid == first and warm.state == "starting"
        warm.stop()
        assert not warm.running and warm.state == "idle"
        assert seen[-1].reason == "stopped" and seen[-1].message == STOPPED_WHILE_STARTING
        until(lambda: gone(first), warm)  # ended and reaped: no zombie
        assert warm.warm_pid not in (None, first)
    assert len(seen) == 2
    assert warm.wait_warm(TIMEOUT)  # and the new one serves the next run
    warm.start(project, overrides={"device": "cpu", "epochs": 1}, threads=1)
    assert warm.wait(TIMEOUT).reason == "completed" and warm.info["dataset_cached"]


def test_the_warm_worker_ends_with_its_supervisor_and_when_its_parent_dies():
    supervisor = RunSupervisor(tick_seconds=0.05, keep_warm=True)
    pid = supervisor.warm_pid
    supervisor.shutdown()
    assert gone(pid) and supervisor.warm_pid is None

    supervisor = RunSupervisor(tick_seconds=0.05)
    supervisor.warm_up()
    pid = supervisor.warm_pid
    assert pid is not None
    supervisor.cool_down()  # the editor turns it off: ended now
    assert gone(pid) and supervisor.warm_pid is None and not supervisor.keep_warm

    # a parent killed outright cannot end it: the worker sees its pipe close and exits
    script = ("import sys, time\n"
              "from app.engine.session.supervisor import RunSupervisor\n"
              "s = RunSupervisor(keep_warm=True)\n"
              "assert s.wait_warm(120)\n"
              "print(s.warm_pid, flush=True)\n"
              "time.sleep(300)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        warm_pid = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        until(lambda: gone(warm_pid) or _zombie_or_gone(warm_pid))
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()


def _zombie_or_gone(pid: int) -> bool:
    """The process has exited (a zombie until whoever adopted it reaps it) or is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_folder_of_more_files_than_are_stamped_never_gives_the_same_key(tmp_path, monkeypatch):
    from app.engine.training import data_cache

    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(3):
        (folder / f"{k}.png").write_bytes(b"x")
    settings = {"name": "image_folder", "path": str(folder)}
    assert data_cache.data_key(settings, None, [1, 8, 8]) == data_cache.data_key(settings, None, [1, 8, 8])
    monkeypatch.setattr(data_cache, "STAMP_LIMIT", 2)  # a change past the files stamped would go unseen
    assert data_cache.data_key(settings, None, [1, 8, 8]) != data_cache.data_key(settings, None, [1, 8, 8])
