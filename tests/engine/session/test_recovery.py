"""Recovery copies without a screen: written and read back, found only when their process
is gone, forgotten, and the files of earlier versions still found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.engine.examples import load_example
from app.engine.project import load_project
from app.engine.session.recovery import Recovery, RecoveryCopy, forget, pending_recoveries, process_alive


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def written_by(copy: RecoveryCopy, pid: int) -> None:
    """As if process ``pid`` had written ``copy``."""
    meta = json.loads(copy.meta.read_text("utf-8"))
    meta["pid"] = pid
    copy.meta.write_text(json.dumps(meta), "utf-8")


def crashed(copy: RecoveryCopy) -> None:
    """As if the process that wrote ``copy`` had crashed: its meta names a process that is gone."""
    written_by(copy, dead_pid())


@pytest.fixture
def project():
    project = load_example("lenet5")
    project.graph.nodes["conv1"].params["out_channels"] = 9
    return project


def test_a_copy_round_trips_and_is_pending_once_its_process_is_gone(project, tmp_path):
    copy = RecoveryCopy(lambda: tmp_path)
    copy.write(project, tmp_path / "unsaved-1.safetensors")
    assert copy.file.name == f"{copy.id}.netcanvas.json" and copy.meta.name == f"{copy.id}.meta.json"
    assert load_project(copy.file).graph.nodes["conv1"].params["out_channels"] == 9
    written_by(copy, os.getppid())
    assert pending_recoveries(tmp_path) == []  # another editor that still runs: not a crash
    crashed(copy)
    [found] = pending_recoveries(tmp_path)
    assert found.path == copy.file and found.name == project.name and found.original == str(project.path)
    assert found.weights == tmp_path / "unsaved-1.safetensors" and found.saved_at > 0
    forget(found)
    assert not copy.file.exists() and not copy.meta.exists() and pending_recoveries(tmp_path) == []


def test_a_never_saved_project_without_weights_records_neither(project, tmp_path):
    project.path = None
    copy = RecoveryCopy(lambda: tmp_path)
    copy.write(project)
    meta = json.loads(copy.meta.read_text("utf-8"))
    assert meta["original"] is None and "weights" not in meta and meta["pid"] == os.getpid()
    crashed(copy)
    [found] = pending_recoveries(tmp_path)
    assert found.original is None and found.weights is None


def test_files_of_earlier_versions_are_found_newest_first(project, tmp_path):
    """Meta files written before the weights were recorded (and by other ids) still count."""
    pid = dead_pid()
    for name, saved_at in (("aaaaaaaaaaaa", 100.0), ("bbbbbbbbbbbb", 200.0)):
        (tmp_path / f"{name}.netcanvas.json").write_text("{}", "utf-8")
        (tmp_path / f"{name}.meta.json").write_text(json.dumps(
            {"original": "/home/u/net.netcanvas.json", "pid": pid, "saved_at": saved_at, "name": name}), "utf-8")
    found = pending_recoveries(tmp_path)
    assert [r.name for r in found] == ["bbbbbbbbbbbb", "aaaaaaaaaaaa"]
    assert found[0] == Recovery(tmp_path / "bbbbbbbbbbbb.netcanvas.json", "/home/u/net.netcanvas.json", 200.0,
                                "bbbbbbbbbbbb")


def test_broken_or_orphaned_meta_files_are_passed_over(tmp_path):
    pid = dead_pid()
    (tmp_path / "bad.meta.json").write_text("{not json", "utf-8")
    (tmp_path / "list.meta.json").write_text("[]", "utf-8")
    (tmp_path / "list.netcanvas.json").write_text("{}", "utf-8")
    (tmp_path / "orphan.meta.json").write_text(json.dumps({"pid": pid}), "utf-8")  # its project is gone
    assert pending_recoveries(tmp_path) == []


def test_discard_removes_the_copy_and_tolerates_none(project, tmp_path):
    copy = RecoveryCopy(lambda: tmp_path)
    copy.discard()  # nothing written yet
    copy.write(project)
    copy.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_copy_that_cannot_be_written_raises(project, tmp_path):
    folder = tmp_path / "file"
    folder.write_bytes(b"x")
    with pytest.raises(OSError):
        RecoveryCopy(lambda: folder).write(project)


def test_process_alive():
    assert not process_alive(os.getpid())  # a file naming us was left by an earlier process with our id
    assert not process_alive(None) and not process_alive("123")
    assert not process_alive(dead_pid())
    assert process_alive(os.getppid())


def test_copies_have_ids_of_their_own(tmp_path):
    assert RecoveryCopy(lambda: tmp_path).id != RecoveryCopy(lambda: tmp_path).id
    assert RecoveryCopy(lambda: Path("/x"), "abc").file == Path("/x/abc.netcanvas.json")
