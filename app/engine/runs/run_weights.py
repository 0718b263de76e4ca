"""A run's weights file and the project's: copying one safely, reading which run a weights
file came from, and making a run's weights the project's (``use_run_weights``, keeping the
weights in place when no run holds them). ``store`` re-exports every name.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NetCanvasError
from ..files import atomic_write, temporary_beside

if TYPE_CHECKING:  # only for the annotations: store imports this module
    from .store import RunStore

MAX_HEADER = 100_000_000  # a safetensors header larger than this is not read


# -- the project's weights ----------------------------------------------------------------
def copy_weights(source: str | Path, dest: Path) -> Path:
    """Copy a weights file to ``dest`` through a temporary file and a rename (a reader never
    sees half a file). Returns ``dest``; raises OSError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with temporary_beside(dest) as (fd, tmp):
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    return dest


def weights_run_id(path: str | Path) -> str | None:
    """The run id a safetensors file's metadata names (the Trainer writes it), or None."""
    try:
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            if size > MAX_HEADER:
                return None
            header = json.loads(f.read(size))
    except (OSError, struct.error, ValueError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    run_id = meta.get("run_id") if isinstance(meta, dict) else None
    return run_id if isinstance(run_id, str) else None


def use_run_weights(store: RunStore, run_id: str, target: Path) -> tuple[Path, Path | None]:
    """Make run ``run_id``'s weights the project's: an atomic copy over ``target``. Weights
    in place that no run of the store keeps (trained before it existed) are first moved to
    ``runs_dir/before-<run id>.safetensors``, never lost. Returns (target, where they
    went or None). Raises ``RunNotFound``, and a NetCanvasError naming the run when it has
    no weights file."""
    record = store.get(run_id)
    own = store.run_weights_path(run_id)
    source = Path(record.weights) if record.weights else own
    if source is None or not source.is_file():
        if record.weights:
            why = f"{source} is missing"
        elif record.status == "running":
            why = "it is still running: its weights come when it ends"
        else:
            why = f"it {record.status} before writing any (its message: {record.message or 'none'})"
        raise NetCanvasError(f"run {run_id} has no weights file to use ({why})", str(store.path))
    target = Path(target)
    aside = None
    if target.exists():
        held = weights_run_id(target)
        kept = store.run_weights_path(held) if held else None
        if kept is None or not kept.is_file():
            aside = store.runs_dir / f"before-{run_id}-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"
            try:
                copy_weights(target, aside)
            except OSError as e:
                raise NetCanvasError(f"the weights in place could not be kept in {aside} before using run "
                                     f"{run_id}'s ({e.strerror or e}); nothing was changed", str(target)) from None
    try:
        atomic_write(target, source.read_bytes())
    except OSError as e:
        raise NetCanvasError(f"cannot be written with run {run_id}'s weights: {e.strerror or e}", str(target)) from None
    return target, aside


def use_weights(store: RunStore, run_id: str, target: Path) -> Path:
    """``use_run_weights`` without saying where unrecorded weights went: returns ``target``."""
    return use_run_weights(store, run_id, target)[0]
