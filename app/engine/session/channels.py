"""Where a supervised run goes on, read alike: a child process and its pipe (``ChildRun``),
or a thread of this process and its queues (``InlineRun``). Each reads the run's messages
without blocking (``readable``/``recv``), waits for the next one (``wait``), sends it
commands, and ends it."""

from __future__ import annotations

import os
import queue
import select
import threading
import time
import traceback
from typing import Any

from ..project import Project


class ChildRun:
    """A run in a child process, seen through the parent's end of its pipe."""

    def __init__(self, process, conn, options: dict | None = None):
        self.process = process
        self.conn = conn
        self.options = options or {}
        self.pid = process.pid
        self.eof = False  # the pipe is closed: nothing more will come
        self.over_since: float | None = None  # when the run said its last word
        self.checked = 0.0  # when alive() last asked
        # a poll object made once: Connection.poll(0) builds a selector on every call
        self._poller = None
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(conn.fileno(), select.POLLIN)

    def readable(self) -> bool:
        """A message (or the end of the pipe) waits; never blocks."""
        if self._poller is None:
            return self.conn.poll(0)
        return bool(self._poller.poll(0))

    def wait(self, timeout: float) -> None:
        """Block until a message (or the end) comes, at most ``timeout`` seconds."""
        try:
            self.conn.poll(timeout)
        except (OSError, ValueError):
            pass

    def recv(self):
        """The next message; raises EOFError (or OSError) once the pipe is closed."""
        return self.conn.recv()

    def alive(self) -> bool:
        self.checked = time.perf_counter()
        try:
            return self.process.is_alive()  # also reaps an exited child (no zombie)
        except ValueError:  # already closed
            return False

    def terminate(self) -> None:
        """Ask the process to end now (SIGTERM); ``alive`` and ``end`` reap it."""
        self.over_since = time.perf_counter()
        try:
            self.process.terminate()
        except (ValueError, OSError, AttributeError):
            pass  # closed already, or never started

    def send(self, message: tuple) -> bool:
        try:
            self.conn.send(message)
            return True
        except (OSError, ValueError):
            return False

    def end(self) -> int | None:
        """Terminate (then kill) the process if it still runs, reap it and close the pipe.
        Returns its exit code."""
        code = None
        try:
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(3)
                if self.process.is_alive():
                    self.process.kill()
            self.process.join(3)
            code = self.process.exitcode
            self.process.close()
        except (ValueError, OSError, AssertionError):
            pass  # closed already, or never started
        try:
            self.conn.close()
        except OSError:
            pass
        return code


class InlineRun:
    """A run in a thread of this process (``run_inline``), read like a child: its messages
    come through a queue; ``terminate`` and ``end`` ask it to end at once ("abort")."""

    _END = object()  # the thread has returned: nothing more will come

    def __init__(self, project: Project, options: dict):
        self.options = options
        self.pid = os.getpid()
        self.eof = False
        self.over_since: float | None = None
        self.checked = 0.0
        self.code: int | None = None
        self._messages: queue.Queue = queue.Queue()
        self._commands: queue.Queue = queue.Queue()
        self._next: Any = None  # a message taken by ``wait``, not yet read
        self._thread = threading.Thread(target=self._run, args=(project,), name="netcanvas-inline-run",
                                        daemon=True)
        self._thread.start()

    def _run(self, project: Project) -> None:
        try:
            from ..training.worker import run_inline  # torch loads with it: here, not at the editor's start

            self.code = run_inline(project, self.options, self._messages.put, self._commands, bunched=True)
        except BaseException:  # a bug in the sending itself: reported like a child's crash
            self.code = 1
            self._messages.put(("crash", traceback.format_exc()))
        finally:
            self._messages.put(self._END)

    def readable(self) -> bool:
        return self._next is not None or not self._messages.empty()

    def wait(self, timeout: float) -> None:
        if self._next is None:
            try:
                self._next = self._messages.get(timeout=timeout)
            except queue.Empty:
                pass

    def recv(self):
        message, self._next = self._next, None
        if message is None:
            message = self._messages.get_nowait()
        if message is self._END:
            raise EOFError
        return message

    def alive(self) -> bool:
        self.checked = time.perf_counter()
        return self._thread.is_alive()

    def terminate(self) -> None:
        self.over_since = time.perf_counter()
        self.send(("abort",))

    def send(self, message: tuple) -> bool:
        if self._thread.is_alive():
            self._commands.put(message)
        return True

    def end(self) -> int | None:
        """Ask the run to end now; the thread ends with it (a daemon: never waited for)."""
        self.send(("abort",))
        return self.code


def end_all(children: list) -> None:
    while children:
        children.pop().end()
