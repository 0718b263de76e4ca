"""Temporary files that a killed save left behind.

``files.atomic_write`` writes ``.NAME.XXXXXXXX.tmp`` beside ``NAME`` (``XXXXXXXX``: the 8
random characters of ``tempfile.mkstemp``) and renames it over ``NAME``. A process killed
between the two leaves that hidden, often full-size, file forever. ``remove_stale_temps``
removes such leftovers of one target on its next save: only files named exactly in that
pattern for that target, only regular files (no links, no folders), and only ones nobody
has written to for ``STALE_AFTER`` seconds, so a save still under way in another process
is never touched.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

STALE_AFTER = 300.0  # seconds without a write: no live save pauses that long
_RANDOM = "[a-z0-9_]{8}"  # tempfile's names: 8 of "abcdefghijklmnopqrstuvwxyz0123456789_"


def temp_pattern(target: str | os.PathLike) -> re.Pattern[str]:
    """The names ``atomic_write`` gives its temporary files for ``target``."""
    return re.compile(rf"\.{re.escape(Path(target).name)}\.{_RANDOM}\.tmp")


def remove_stale_temps(target: str | os.PathLike, older_than: float = STALE_AFTER,
                       now: float | None = None) -> list[Path]:
    """Remove the temporary files of earlier, interrupted saves of ``target`` (see the
    module's doc) last modified more than ``older_than`` seconds before ``now``; the
    paths removed. Never raises for a file it cannot inspect or remove: the save that
    calls it matters more than the clean-up."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    pattern = temp_pattern(target)
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime <= older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
