"""Atomic writes: a crash mid-save never leaves a broken or half-written file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .stale_temps import remove_stale_temps


def read_bytes(path: Path, error: type[Exception], kind: str) -> bytes:
    """The bytes of the file at ``path``; ``error(message, str(path))`` when it is missing,
    a folder or unreadable (``kind`` names what was expected: "a project file")."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error("no such file", str(path)) from None
    except IsADirectoryError:
        raise error(f"is a folder, not {kind}", str(path)) from None
    except OSError as e:
        raise error(f"cannot be read: {e.strerror or e}", str(path)) from None


@contextmanager
def temporary_beside(target: Path, folder: Path | None = None) -> Iterator[tuple[int, str]]:
    """A new temporary file in ``folder`` (default: ``target``'s), named as
    ``remove_stale_temps`` finds it: yields its open descriptor and path, and removes it when
    the block raises (the block renames it over ``target`` when done)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder or target.parent)
    try:
        yield fd, tmp
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed and
    fsynced, then renamed over the target (an atomic step on POSIX and Windows)."""
    target = Path(os.path.realpath(path))  # a link keeps pointing at the file it names
    folder = target.parent if str(target.parent) else Path(".")
    remove_stale_temps(target)  # what earlier saves of this file, killed mid-write, left behind
    with temporary_beside(target, folder) as (fd, tmp):
        with os.fdopen(fd, "wb") as f:
            try:  # mkstemp makes 0600 files; keep the usual mode (where the file system has modes)
                os.fchmod(f.fileno(), _mode_for(target))
            except (OSError, AttributeError):
                pass
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    try:
        _fsync_folder(folder)
    except OSError:  # the file is saved; only the rename's durability is not assured
        pass


def _read_umask() -> int:
    umask = os.umask(0o022)  # read once, at import: changing it later would race other threads
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _mode_for(target: Path) -> int:
    """The existing file's permissions, or what a plain ``open`` would create."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
