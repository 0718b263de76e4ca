"""The main window's first paint: what waits for it, and when it came.

Work the first paint does not need (the device list, which imports torch; the Runs view)
starts once the window is on screen (issue 20). ``NETCANVAS_FIRST_PAINT=FILE`` makes the
editor write the time of its first paint into FILE (``bench/cli.py`` measures the start-up
with it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

FIRST_PAINT_VARIABLE = "NETCANVAS_FIRST_PAINT"
HELD_MS = 3000  # what waits for a paint that never comes (a window never shown) goes ahead after this


class FirstPaint(QObject):
    """Watches ``window`` until its first Paint event (an event filter, removed then).

    ``painted`` is emitted once that paint pass is over (the frame is complete, the canvas
    and the docks included); ``done`` is True from then on and ``at`` holds its
    ``time.time()``, also written to the file ``NETCANVAS_FIRST_PAINT`` names (when set)."""

    painted = Signal()

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.window = window
        self.done = False
        self.at: float | None = None
        self._seen = False
        window.installEventFilter(self)

    def after(self, callback) -> None:
        """Call ``callback()`` once the first paint is over: at once when it already is."""
        if self.done:
            callback()
        else:
            self.painted.connect(callback)

    def hold(self, owner: QObject, release) -> bool:
        """Call ``release()`` on the turn of the event loop after the first paint (after
        whatever else waits for it), or after HELD_MS if no paint comes, whichever is first
        (``release`` must do nothing the second time); both calls go with ``owner``. Returns
        whether anything was held: False once the window has been painted."""
        if self.done:
            return False
        self.painted.connect(lambda: QTimer.singleShot(0, owner, release))
        QTimer.singleShot(HELD_MS, owner, release)
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Paint and not self._seen:
            self._seen = True
            self.window.removeEventFilter(self)
            # the children paint after the window, in the same pass: the frame is complete
            # once control is back in the event loop
            QTimer.singleShot(0, self, self._finished)
        return False

    def _finished(self) -> None:
        self.at = time.time()
        self.done = True
        target = os.environ.get(FIRST_PAINT_VARIABLE)
        if target:
            part = Path(target + ".part")  # renamed once written: a reader never sees half of it
            try:
                part.write_text(f"{self.at!r}\n", encoding="utf-8")
                os.replace(part, target)
            except OSError:
                pass  # a benchmark's file that cannot be written: the editor goes on regardless
        self.painted.emit()
