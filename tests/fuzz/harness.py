"""Running one fuzz case and saying how it ended.

Every case ends one of four ways:

- ``ok``: the input was accepted (a project that checks, data that loads, ...);
- ``clean``: it was refused with the engine's own error (the ``NetCanvasError`` family), or
  a CLI exit code with a one-line message;
- ``escape``: any other exception (a traceback for the user), a warning (turned into an
  error, as ``pytest``'s ``filterwarnings = error`` does), or output that cannot be written;
- ``hang``: it ran past the time bound (``CASE_SECONDS``, enforced by a timer signal that
  interrupts the case; ``bench/fuzz.py`` also watches from outside the process for a case
  stuck in C code where no signal gets through).

``Tally`` counts outcomes per family and keeps the first example of each distinct escape
(exception type and the place in NetCanvas's code where it was raised).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.engine.errors import NetCanvasError

CASE_SECONDS = 5.0
OUTCOMES = ("ok", "clean", "escape", "hang")
_APP = str(Path(__file__).resolve().parents[2] / "app")


class CaseTimeout(BaseException):
    """Raised inside a case that ran past its time bound. A ``BaseException``, so that the
    code under test, which may catch ``Exception``, cannot swallow it."""


class Clean(Exception):
    """Raised by a runner for a refusal that is not an exception (a CLI exit code)."""


@dataclass
class Outcome:
    kind: str  # one of OUTCOMES
    error: str = ""  # exception type
    message: str = ""
    where: str = ""  # file:line (function) where it was raised, innermost frame in app/
    case: str = ""  # a short description of the input

    @property
    def key(self) -> tuple[str, str]:
        """What makes two escapes the same defect: type and place."""
        return self.error, self.where

    def report(self) -> str:
        return (f"{self.kind.upper()}: {self.error}: {self.message}\n  at {self.where}\n  input: {self.case}")


def _where(tb) -> str:
    """The innermost frame of ``tb`` inside NetCanvas's own code (else the innermost)."""
    frames = traceback.extract_tb(tb)
    if not frames:
        return "?"
    ours = [f for f in frames if f.filename.startswith(_APP)]
    f = (ours or frames)[-1]
    name = os.path.relpath(f.filename, Path(_APP).parent) if f.filename.startswith(_APP) else f.filename
    return f"{name}:{f.lineno} ({f.name})"


def _short(text: str, limit: int = 300) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


@contextlib.contextmanager
def time_bound(seconds: float):
    """Raise ``CaseTimeout`` in this (main) thread once ``seconds`` have passed, and again
    every half second after that: an exception raised where Python ignores it (a garbage
    collector callback, a ``__del__``) is raised anew until it gets through. Where no timer
    signal exists (Windows, or not the main thread) the bound is not enforced here."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CaseTimeout(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        while True:  # the timer may fire once more while it is being stopped
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except CaseTimeout:
                continue


def run_case(runner: Callable[[Any], str | None], case: Any, describe: Callable[[Any], str] = repr,
             seconds: float = CASE_SECONDS) -> Outcome:
    """Run ``runner(case)`` and classify how it ended. ``runner`` returns ``"ok"`` or
    ``"clean"`` (None means ok) or raises; a ``NetCanvasError`` or ``Clean`` is clean."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # as under pytest: a warning is a defect here
            with time_bound(seconds):
                result = runner(case)
        kind = result or "ok"
        if kind.startswith("escape:"):  # a runner that classifies for itself (the ONNX one)
            return Outcome("escape", kind.split(":", 1)[1], "reported by the runner", "?", _short(describe(case)))
        return Outcome(kind)
    except CaseTimeout:
        return Outcome("hang", "Hang", f"over {seconds:g} s (ran {time.perf_counter() - start:.1f} s)",
                       "?", _short(describe(case)))
    except (NetCanvasError, Clean):
        return Outcome("clean")
    except BaseException as e:  # noqa: BLE001 - anything else is what we are looking for
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome("escape", type(e).__name__, _short(str(e).strip().splitlines()[0] if str(e).strip() else ""),
                       _where(e.__traceback__), _short(describe(case)))


@dataclass
class Tally:
    """Counts of outcomes per family and the first example of each distinct escape or hang."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # the cases' own time
    wall: dict[str, float] = field(default_factory=dict)  # with generating them (set by a runner)
    first: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)

    def add(self, family: str, outcome: Outcome, seconds: float = 0.0) -> None:
        c = self.counts.setdefault(family, dict.fromkeys(OUTCOMES, 0))
        c[outcome.kind] += 1
        self.seconds[family] = self.seconds.get(family, 0.0) + seconds
        if outcome.kind in ("escape", "hang"):
            self.first.setdefault((family, *outcome.key), outcome)

    def table(self) -> str:
        rows = [("family", "cases", "ok", "clean errors", "escapes", "hangs", "cases/s")]
        if self.wall:
            rows[0] += ("wall cases/s",)
        total = dict.fromkeys(OUTCOMES, 0)
        for family, c in self.counts.items():
            n = sum(c.values())
            rate = n / self.seconds[family] if self.seconds.get(family) else 0.0
            rows.append((family, str(n), str(c["ok"]), str(c["clean"]), str(c["escape"]), str(c["hang"]),
                         f"{rate:.1f}"))
            if self.wall:
                rows[-1] += (f"{n / self.wall[family]:.1f}" if self.wall.get(family) else "",)
            for k in OUTCOMES:
                total[k] += c[k]
        rows.append(("total", str(sum(total.values())), str(total["ok"]), str(total["clean"]),
                     str(total["escape"]), str(total["hang"]), "") + (("",) if self.wall else ()))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)

    def escapes(self) -> str:
        if not self.first:
            return "no escapes, no hangs"
        out = [f"{len(self.first)} distinct escapes / hangs (first example of each):"]
        for (family, _, _), o in self.first.items():
            out.append(f"[{family}] {o.report()}")
        return "\n".join(out)


class Sandbox:
    """A private scratch folder for a family's files, and the network off (a dataset
    download fails at once, as in the tests), for as long as the process runs."""

    def __init__(self) -> None:
        import atexit
        import shutil

        self.root = Path(tempfile.mkdtemp(prefix="netcanvas-fuzz-"))
        atexit.register(shutil.rmtree, self.root, ignore_errors=True)
        offline()

    def fresh(self, name: str) -> Path:
        """An empty folder ``name`` under the scratch folder (emptied if it was there)."""
        import shutil

        p = self.root / name
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
        p.mkdir(parents=True)
        return p


def offline() -> None:
    import urllib.error

    from app.engine.datasets import download

    def fetch(url, timeout):
        raise urllib.error.URLError("the network is off while fuzzing")

    download.fetch = fetch


def strict_stream():
    """A text stream that fails as a real UTF-8 terminal does on text it cannot encode."""
    import io

    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("import this module; run bench/fuzz.py")
