"""Signals emitted from worker threads, whose QObject may be gone by the time they finish
(its window was closed while a dataset loaded or an export ran)."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, SignalInstance


def emit_if_alive(owner: QObject, signal: SignalInstance, *args) -> bool:
    """Emit ``signal`` of ``owner`` unless ``owner`` has been deleted; True when emitted."""
    if not shiboken6.isValid(owner):
        return False
    try:
        signal.emit(*args)
    except RuntimeError:  # deleted between the check and the emit
        return False
    return True
