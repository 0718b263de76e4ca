"""The message protocol of a training run, and the sender that batches its minibatches.

Every message is a tuple whose first item names it. The same tuples go through a pipe
(a child process), a queue (a run in a thread of this process), and from process 0 of a
distributed run to the process that launched it; ``RunSupervisor`` decodes them.

run -> supervisor
    ("ready", info)          the run is checked and the model built; ``info``: device,
                             dataset (``datasets.describe``), notes, input_shape,
                             num_classes, settings, pid (a run across N processes adds
                             nproc, device_type, backend, per_process_batch, and a
                             last note on what is not served in that mode); a run in
                             one process adds run_id, warm (a warm worker took it),
                             dataset_cached (it trains on data that worker loaded
                             ahead) and seconds {prepare, model} (checking the project
                             and getting its data; building the model)
    ("event", event)         a BatchEvent, EpochEvent, SnapshotEvent or FinishedEvent
    ("bunch", [message, ...]) several of these messages, in order, in one: BatchEvents
                             are sent together every BATCH_SECONDS (other messages at
                             once, with the BatchEvents before them; the first BatchEvent
                             at once too), so that a small model's hundreds of
                             minibatches a second wake neither side each time
    ("dropped", n)           n BatchEvents were left out here because the parent read too
                             slowly (only BatchEvents are ever dropped)
    ("paused", step)         training now waits (acknowledges "pause"; no BatchEvent
                             follows until "resumed")
    ("resumed", step)        training goes on
    ("done",)                the last message of a run that ended normally (after its
                             FinishedEvent); exit code 0
    ("error", message)       a NetCanvasError (bad project, data, device, settings): the
                             last message; exit code 0
    ("crash", traceback)     any other exception: the last message; exit code 1

warm worker -> supervisor, before its run (the supervisor reads them while it waits)
    ("warm", {pid})          torch is imported: a run handed over now starts at once
    ("prepared", answer)     answers each "prepare": {name, loaded (False: the data held
                             still had that key), seconds, loads (how many times this
                             worker has loaded data), error (None, or why the data could
                             not be loaded: the run then loads it and reports that itself)}

supervisor -> run
    ("pause",)  ("resume",)  ("stop",)  ("snapshot", samples: np.ndarray | None)
    ("abort",)               a run in a thread of the supervisor's process only: end now
                             (a distributed run ends its processes, saving nothing)
    ("run", project_data, options)  to a warm worker only: the run it waits for
    ("prepare", dataset_settings, base_dir, input_shape, input_id)  to a warm worker
                             only, before "run": load that data now (``load_dataset``'s
                             arguments; base_dir a str or None) and keep it, keyed by
                             them and the size and time of each file they name; the run
                             trains on it when its project gives the same key, else it
                             loads its data as usual (``data_cache.DataCache``)
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable

from .events import BatchEvent, SnapshotEvent

QUEUE_SIZE = 256  # BatchEvents waiting for the sender; more are dropped and counted
BATCH_SECONDS = 0.05  # BatchEvents go in bunches, at most this often (other messages at once)
FLUSH_SECONDS = 30.0  # how long the last messages may take to reach a parent that reads slowly
LAST_WORDS = ("done", "error", "crash")  # a run's last message


def outbox_settings(options: dict) -> tuple[float, int]:
    """How often BatchEvents go, and how many may wait: QUEUE_SIZE for every BATCH_SECONDS
    between bunches, so that a longer interval drops no more of a fast run's minibatches."""
    batch_seconds = float(options.get("batch_seconds") or BATCH_SECONDS)
    queue_size = int(options.get("queue_size") or round(QUEUE_SIZE * max(1.0, batch_seconds / BATCH_SECONDS)))
    return batch_seconds, queue_size


def bunch(messages: list) -> tuple:
    """One message for ``messages`` (sent in order): the message itself when alone."""
    return messages[0] if len(messages) == 1 else ("bunch", messages)


def unbunch(message: tuple) -> list:
    """The messages in ``message``, in order (a bunch's, or itself)."""
    return list(message[1]) if message[0] == "bunch" else [message]


def is_snapshot(message: tuple) -> bool:
    """Whether ``message`` is or holds a SnapshotEvent."""
    return any(m[0] == "event" and isinstance(m[1], SnapshotEvent) for m in unbunch(message))


class Outbox:
    """Messages for the parent, sent in order by one thread so that a parent that reads
    slowly never blocks training. BatchEvents are sent in bunches, at most every
    ``BATCH_SECONDS`` (any other message goes at once, with the BatchEvents before it): a
    small model trains hundreds of minibatches a second, and a wake-up of the sender (and of
    the parent) for each of them takes the CPU from the training threads. Only BatchEvents
    are dropped, when more than ``limit`` wait; a ("dropped", n) message then takes their
    place in the stream."""

    def __init__(self, send: Callable[[tuple], None], limit: int, batch_seconds: float | None = None,
                 send_many: Callable[[list], None] | None = None):
        self._send = send
        self._send_many = send_many  # sends several messages at once (one pipe message, one wake-up)
        self._limit = max(1, limit)
        self._interval = BATCH_SECONDS if batch_seconds is None else batch_seconds
        self._items: collections.deque = collections.deque()
        self._batches = 0  # BatchEvents in _items
        self._dropped = 0  # dropped since the last message that was queued
        self._urgent = False  # a message that is not a BatchEvent waits: send now
        self._due = 0.0  # when waiting BatchEvents go (monotonic clock)
        self._first_sent = False  # the first BatchEvent has been queued (it goes at once)
        self._cond = threading.Condition()
        self._closed = False
        self.failure: BaseException | None = None
        self.on_broken: Callable[[], None] = lambda: None
        self.dropped_total = 0
        self._thread = threading.Thread(target=self._loop, name="netcanvas-sender", daemon=True)
        self._thread.start()

    def event(self, event: Any) -> None:
        self.put(("event", event), droppable=isinstance(event, BatchEvent))

    def put(self, message: tuple, droppable: bool = False) -> None:
        with self._cond:
            if self.failure is not None:
                return
            if droppable:
                if self._batches >= self._limit:
                    self._dropped += 1
                    self.dropped_total += 1
                    return
                self._batches += 1
                if not self._first_sent:  # the first minibatch goes at once: the curve starts
                    self._first_sent = self._urgent = True
            if self._dropped:
                self._items.append(("dropped", self._dropped))
                self._dropped = 0
            self._items.append(message)
            if not droppable:
                self._urgent = True
            if self._urgent:  # else the sender finds it when it next looks (every BATCH_SECONDS)
                self._cond.notify()

    def close(self, timeout: float) -> bool:
        """Send what waits (up to ``timeout`` seconds); True when all of it went."""
        with self._cond:
            if self._dropped:
                self._items.append(("dropped", self._dropped))
                self._dropped = 0
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed and not self._items:
                        return
                    wait = self._due - time.monotonic()
                    if self._items and (self._urgent or self._closed or wait <= 0):
                        break
                    # BatchEvents do not wake this thread: it looks every BATCH_SECONDS
                    self._cond.wait(wait if self._items else self._interval)
                messages = list(self._items)
                self._items.clear()
                self._batches = 0
                self._urgent = False
            try:
                if self._send_many is not None:
                    self._send_many(messages)
                else:
                    for message in messages:
                        self._send(message)
            except BaseException as e:  # the parent is gone (or ``send`` failed): stop sending
                with self._cond:
                    self.failure = e
                    self._items.clear()
                    self._batches = 0
                self.on_broken()
                return
            self._due = time.monotonic() + self._interval
