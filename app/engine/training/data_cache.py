"""The data a warm training worker loads before its run is handed to it (``DataCache``),
kept under a key of what it was loaded from (``data_key``): the run takes it only when it
trains on exactly that, else it loads its data as usual."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..config import DATASET_FIELDS, defaults
from ..datasets import Dataset, load_dataset
from ..errors import NetCanvasError
from ..inference import analyze
from ..project import Project

DATA_FILE_KEYS = ("path", "images", "labels")  # dataset settings that name files or folders
STAMP_LIMIT = 20_000  # files of a folder whose times go into a data key (more: the data is not reused)


class DataCache:
    """The dataset a warm worker loaded before its run was handed to it, with the key it
    was loaded under (``data_key``); ``loads`` counts the loads."""

    def __init__(self):
        self.key: str | None = None
        self.dataset: Dataset | None = None
        self.loads = 0

    def prepare(self, settings: dict, base_dir: str | None, input_shape, input_id: str = "input") -> dict:
        """Load the data ``settings`` describe for an Input ``input_id`` of ``input_shape``
        (kept until a prepare with another key), unless what is held has the same key.
        Returns what the "prepared" message says: name, loaded (False: the data held was
        still good), seconds, loads, and error (why it could not be loaded: the run then
        loads it as usual and reports that itself; None when it was)."""
        start = time.perf_counter()
        answer = {"name": str(settings.get("name")) if isinstance(settings, dict) else None, "loaded": False,
                  "error": None}
        try:
            key = data_key(settings, base_dir, input_shape, input_id)
            if key != self.key:
                self.key = self.dataset = None  # its memory goes before the next is read
                dataset = load_dataset(settings, Path(base_dir) if base_dir else None, tuple(input_shape),
                                       input_id)
                self.loads += 1
                answer["loaded"] = True
                if data_key(settings, base_dir, input_shape, input_id) == key:  # no file changed meanwhile
                    self.key, self.dataset = key, dataset
        except NetCanvasError as e:
            answer["error"] = str(e)
        except Exception as e:  # bad settings from a newer parent, an odd file: the run reports it
            answer["error"] = f"{type(e).__name__}: {e}"
        answer.update(seconds=time.perf_counter() - start, loads=self.loads)
        return answer

    def take(self, project: Project) -> Dataset | None:
        """The data held, when ``project``'s run trains on exactly that (its dataset
        settings, folder, Input and files); None otherwise. Given once: the run owns it."""
        if self.dataset is None:
            return None
        analysis = analyze(project.graph)
        if not analysis.ok or not analysis.inputs or analysis.shapes.get(analysis.inputs[0]) is None:
            return None  # prepare_run says what is wrong
        input_id = analysis.inputs[0]
        base = str(project.path.parent) if project.path else None
        try:
            key = data_key(project.dataset, base, analysis.shapes[input_id], input_id)
        except (TypeError, ValueError):
            return None
        held, held_key = self.dataset, self.key
        self.dataset = self.key = None
        return held if key == held_key else None


def data_key(settings: dict, base_dir: str | Path | None, input_shape, input_id: str = "input") -> str:
    """What data loaded by ``load_dataset(settings, base_dir, input_shape, input_id)`` was
    loaded from: the settings (with their defaults), the base folder, the Input, and the
    size and modification time of each file the settings name (of every file under a folder
    they name; past STAMP_LIMIT files, a key no other equals). Raises TypeError for settings that
    are not JSON values."""
    full = {**defaults(DATASET_FIELDS), **settings}
    base = os.path.abspath(base_dir) if base_dir else None
    files = {}
    for name in DATA_FILE_KEYS:
        if full.get(name):
            path = Path(str(full[name])).expanduser()
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            files[name] = _stamp(path)
    return json.dumps([full, base, [int(d) for d in input_shape], str(input_id), files], sort_keys=True)


def _stamp(path: Path) -> list:
    """(size, modification time) of ``path``, or of every file under it (a folder)."""
    try:
        info = path.stat()
    except OSError:
        return ["missing"]
    if not path.is_dir():
        return [info.st_size, info.st_mtime_ns]
    stamps = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            try:
                item = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            stamps.append([os.path.relpath(os.path.join(folder, name), path), item.st_size, item.st_mtime_ns])
            if len(stamps) >= STAMP_LIMIT:  # too many to vouch for: a key no later one equals (never reused)
                return ["not stamped", time.time_ns(), os.getpid()]
    return stamps
