"""Saves killed mid-write leave no hidden temporary files for good; names that UTF-8
cannot encode do not break the exports."""

from __future__ import annotations

import ast
import io
import json
import os
import time
from pathlib import Path

from app.engine import cli
from app.engine.examples import example_path, load_example
from app.engine.export.python_export import export_python
from app.engine.project import load_project, save_project
from app.engine.stale_temps import STALE_AFTER, remove_stale_temps, temp_pattern

HOUR = 3600.0


def leftover(folder: Path, name: str, age: float, random: str = "k3_x9q2a", size: int = 1000) -> Path:
    """A temporary file as ``atomic_write`` names it, last written ``age`` seconds ago."""
    p = folder / f".{name}.{random}.tmp"
    p.write_bytes(bytes(size))
    t = time.time() - age
    os.utime(p, (t, t))
    return p


def test_the_pattern_is_the_one_atomic_write_uses(tmp_path, monkeypatch):
    """Whatever names mkstemp gives, the clean-up recognizes them (and only for that target)."""
    import tempfile

    from app.engine import files

    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        fd, path = real(*args, **kwargs)
        made.append(Path(path).name)
        return fd, path

    monkeypatch.setattr(files.tempfile, "mkstemp", spy)
    target = tmp_path / "net.netcanvas.json"
    for _ in range(20):
        files.atomic_write(target, b"{}")
    assert len(made) == 20 and all(temp_pattern(target).fullmatch(n) for n in made), made
    assert not any(temp_pattern(tmp_path / "net.netcanvas").fullmatch(n) for n in made)
    assert not any(temp_pattern(tmp_path / "other.json").fullmatch(n) for n in made)


def test_stale_temporary_files_of_the_target_are_removed_and_nothing_else(tmp_path):
    name = "net.netcanvas.json"
    stale = [leftover(tmp_path, name, HOUR), leftover(tmp_path, name, STALE_AFTER + 5, "abcdefgh")]
    keep = [
        leftover(tmp_path, name, 10, "fresh___"),  # a save under way in another process
        leftover(tmp_path, "other.netcanvas.json", HOUR),  # another file's
        leftover(tmp_path, "net.safetensors", HOUR),
        leftover(tmp_path, name, HOUR, "toolong12"),  # not mkstemp's 8 characters
        leftover(tmp_path, name, HOUR, "ABCDEFGH"),  # not its alphabet
    ]
    mine = tmp_path / f".{name}.notes"
    mine.write_text("the user's own hidden file")
    old = time.time() - HOUR
    os.utime(mine, (old, old))
    folder_like = tmp_path / f".{name}.zzzzzzzz.tmp"
    folder_like.mkdir()
    os.utime(folder_like, (old, old))
    link = tmp_path / f".{name}.linklink.tmp"
    link.symlink_to(keep[1])

    removed = remove_stale_temps(tmp_path / name)
    assert sorted(removed) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep) and mine.exists() and folder_like.is_dir() and link.is_symlink()


def test_the_clean_up_never_fails_a_save(tmp_path):
    assert remove_stale_temps(tmp_path / "missing_folder" / "x.json") == []
    assert remove_stale_temps(tmp_path / "x.json") == []


def test_saving_a_project_removes_what_a_killed_save_left_behind(tmp_path):
    """The next save of the same file cleans up (files.atomic_write calls remove_stale_temps)."""
    path = tmp_path / "xor.netcanvas.json"
    save_project(load_example("xor"), path)
    killed = leftover(tmp_path, path.name, HOUR, size=200_000)
    running = leftover(tmp_path, path.name, 1, "running_")
    save_project(load_project(path), path)
    assert not killed.exists() and running.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, running.name])


# ---------------------------------------------------------------- names with lone surrogates

BAD_NAME = "LeNet \udcff on d\ud800igits"


def test_export_python_escapes_lone_surrogates_in_the_project_name(tmp_path):
    project = load_example("xor")
    project.name = BAD_NAME
    report = export_python(project, tmp_path)
    for file in ("model.py", "train.py", "README.md"):
        text = (tmp_path / file).read_bytes().decode("utf-8")  # strict: valid UTF-8
        assert "\\udcff" in text and "\\ud800" in text, file
    model = (tmp_path / "model.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(model))
    assert doc is not None and doc.startswith("LeNet \\udcff on d\\ud800igits")
    assert report.class_name == "LeNet" and report.max_difference <= 1e-5


def test_cli_export_python_of_a_file_whose_name_holds_a_lone_surrogate(tmp_path):
    data = json.loads(example_path("xor").read_text(encoding="utf-8"))
    data["name"] = BAD_NAME
    path = tmp_path / "bad.netcanvas.json"
    path.write_text(json.dumps(data), encoding="ascii")  # JSON spells the surrogate \udcff
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["export", str(path), "--python", str(tmp_path / "out")], out, err) == 0, err.getvalue()
    assert "wrote" in out.getvalue()
    (tmp_path / "out" / "model.py").read_bytes().decode("utf-8")
