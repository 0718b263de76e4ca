"""Work off the GUI thread, done so that no Qt object is ever destroyed there.

PySide destroys a QObject in whichever thread drops its last Python reference, or in whichever
thread Python's cyclic garbage collector happens to run. A QObject destroyed off the GUI thread
while the GUI thread deletes another one deadlocks: the worker waits for the GIL inside Qt's
destructor, the GUI thread holds the GIL and waits for the object mutex the worker holds. Two
rules keep that from happening:

- ``GuiGarbageCollector``: Python's automatic collection is switched off while the editor runs
  and done on the GUI thread instead, on a timer, with the same thresholds (a worker thread that
  allocates a lot, an ONNX export, no longer collects a closed window's widgets). What survives
  a full collection is frozen (``gc.freeze``): with torch loaded, a full collection looks at
  every long-lived object (30-130 ms of the GUI thread, measured during a run); the next ones
  look only at what came since. A closed window or project, and ten minutes, thaw
  them (``thaw_garbage``) so that cycles among what was frozen are freed too;
- ``run_in_thread``: a worker runs a plain callable that holds no Qt object and leaves its
  result in a ``concurrent.futures.Future``; a timer on the GUI thread picks it up.

What no switch can stop: a library that calls ``gc.collect()`` itself, in a worker thread.
None that the workers call does so today (an ONNX export was checked).
"""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import Future
from typing import Callable

import shiboken6
from PySide6.QtCore import QObject, QTimer, SignalInstance

COLLECT_INTERVAL_MS = 500  # often enough that garbage never piles up for long, rarely enough to cost nothing
THAW_SECONDS = 600.0  # the longest between two full collections that look at every object
POLL_INTERVAL_MS = 50  # how soon finished work is noticed; the poll itself costs microseconds


def emit_if_alive(owner: QObject, signal: SignalInstance, *args) -> bool:
    """Emit ``signal`` of ``owner`` unless ``owner`` has been deleted; True when emitted."""
    if not shiboken6.isValid(owner):
        return False
    try:
        signal.emit(*args)
    except RuntimeError:  # deleted between the check and the emit
        return False
    return True


class GuiGarbageCollector(QObject):
    """Switches Python's automatic garbage collection off and collects on the GUI thread every
    ``COLLECT_INTERVAL_MS``, generation by generation as the interpreter's thresholds say
    (calibre does the same, for the same reason). ``stop()`` switches automatic collection
    back on, as it was."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = COLLECT_INTERVAL_MS):
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        self.threshold = gc.get_threshold()
        self._thawed_at = time.monotonic()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> int:
        """Collect the generations whose counts passed their thresholds; the objects freed."""
        counts, freed = gc.get_count(), 0
        if counts[0] > self.threshold[0]:
            freed += gc.collect(0)
            if counts[1] > self.threshold[1]:
                freed += gc.collect(1)
                if counts[2] > self.threshold[2]:
                    if time.monotonic() - self._thawed_at > THAW_SECONDS:
                        self._thawed_at = time.monotonic()
                        thaw_garbage()
                    freed += gc.collect(2)
                    gc.freeze()  # what survived it is long-lived: the next full ones skip it
        return freed

    def stop(self) -> None:
        self.timer.stop()
        thaw_garbage()
        if self._was_enabled:
            gc.enable()


def settle_garbage() -> None:
    """What the program holds now is long-lived (a window just built, a run about to begin):
    the youngest generation is collected and the rest frozen, so that the collections during
    what follows look only at what it allocates. (A new window's objects, young when a run
    began, made collections of the young generations take 90-130 ms during the run.)"""
    gc.collect(0)
    gc.freeze()


def thaw_garbage() -> None:
    """Let the next full collection look at every object again, those frozen included (a
    window or a project was closed: its cycles are garbage now)."""
    gc.unfreeze()


def start_thread(work: Callable[[], object], name: str) -> Future:
    """Run ``work()`` in a daemon thread (an unfinished one never holds up quitting); its
    result, or the exception it raised, lands in the returned future. ``work`` must hold no Qt
    object (see the module's docstring)."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as e:  # noqa: BLE001 - handed to the GUI thread, which reports it
            future.set_exception(e)

    threading.Thread(target=run, daemon=True, name=name).start()
    return future


def when_done(future: Future, owner: QObject, callback: Callable[[Future], None],
              interval_ms: int = POLL_INTERVAL_MS) -> QTimer:
    """Call ``callback(future)`` on the GUI thread once ``future`` is done, unless ``owner``
    has been deleted by then (the timer, its child, goes with it). Returns the timer."""
    timer = QTimer(owner)
    timer.setInterval(interval_ms)

    def poll() -> None:
        if future.done():
            timer.stop()
            timer.deleteLater()
            callback(future)

    timer.timeout.connect(poll)
    timer.start()
    return timer


def run_in_thread(work: Callable[[], object], owner: QObject, callback: Callable[[Future], None],
                  name: str = "netcanvas-work") -> Future:
    """``start_thread`` and ``when_done`` together: ``callback(future)`` runs on the GUI thread."""
    future = start_thread(work, name)
    when_done(future, owner, callback)
    return future
