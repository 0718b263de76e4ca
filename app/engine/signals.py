"""Plain-Python change events: the engine's models announce their changes through these
(DESIGN rule 2); the Qt side turns them into Qt signals where it needs them."""

from __future__ import annotations

from typing import Any, Callable


class Signal:
    """A list of callbacks called in order with the emitted arguments."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)
