"""A sweep run as a child process (``netcanvas sweep FILE ... --json``), its JSON lines read
as they come.

The editor never runs Optuna in its own process: a sweep is K worker processes that may
take hours, and a crash or a Cancel must not take the editor with it. The runner reads the
child's stdout line by line (RUNSTORE_API.md, "Additions": one object per finished trial,
then one ``{"done": true, ...}`` line); anything else it prints, and all of stderr, is log.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QProcess, QProcessEnvironment, QTimer, Signal

GRACE_MS = 5000  # how long a cancelled sweep gets to stop its workers before they are killed
POSIX = os.name == "posix"
STATES = ("complete", "pruned", "failed")
PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder holding the ``app`` package
LOG_LINE_LIMIT = 2000  # characters of one log line kept (a runaway line is cut, not stored whole)


def default_command() -> list[str]:
    """How this installation starts ``netcanvas``: the frozen executable itself, else this
    Python with ``-m app``."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "app"]


def parse_line(text: str) -> tuple[str, object]:
    """What one line of ``sweep --json`` output is: ``("trial", dict)``, ``("done", dict)``
    or ``("log", str)`` (not JSON, or JSON that is not one of the contract's objects: shown
    as text, never trusted). Raises nothing."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            if data.get("done") is True:
                return "done", _clean_done(data)
            trial = _clean_trial(data)
            if trial is not None:
                return "trial", trial
    return "log", text[:LOG_LINE_LIMIT]


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean_best(best) -> dict | None:
    if not isinstance(best, dict) or not _is_index(best.get("trial")):
        return None
    params = best.get("params")
    return {"trial": best["trial"], "value": _number(best.get("value")),
            "params": params if isinstance(params, dict) else {}}


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _clean_trial(data: dict) -> dict | None:
    if not _is_index(data.get("trial")) or not isinstance(data.get("params"), dict):
        return None
    state = data.get("state")
    run_id = data.get("run_id")
    return {"trial": data["trial"], "run_id": run_id if isinstance(run_id, str) else None,
            "state": state if state in STATES else "failed", "params": data["params"],
            "value": _number(data.get("value")), "best": _clean_best(data.get("best"))}


def _clean_done(data: dict) -> dict:
    def text(key):
        return data[key] if isinstance(data.get(key), str) else None

    return {"done": True, "study": text("study"), "storage": text("storage"),
            "best": _clean_best(data.get("best")),
            "trials": data["trials"] if _is_index(data.get("trials")) else None}


class SweepRunner(QObject):
    """Runs ``command + args`` (``command`` defaults to ``default_command()``; tests give a
    script that prints the contract's lines).

    Signals: ``trial(dict)`` per finished trial and ``done(dict)`` for the last line (both
    cleaned: the keys of the contract, wrong types replaced by None); ``log(str)`` for every
    other line of stdout and every line of stderr; ``ended(str)`` once the process is gone:
    "" after a ``done`` line and exit code 0, else a sentence saying what happened (cancelled,
    crashed, exit code N with the last line of stderr, could not start)."""

    trial = Signal(object)  # object, not dict: a QVariantMap would sort the params
    done = Signal(object)
    log = Signal(str)
    ended = Signal(str)

    def __init__(self, command: list[str] | None = None, parent: QObject | None = None, *,
                 grace_ms: int = GRACE_MS):
        super().__init__(parent)
        self.command = list(command) if command is not None else default_command()
        self.grace_ms = grace_ms
        self.process: QProcess | None = None
        self.result: dict | None = None  # the done line, once read
        self.trials: list[dict] = []
        self._buffers = {"out": b"", "err": b""}
        self._last_error = ""
        self._cancelled = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)
        app = QCoreApplication.instance()
        if app is not None:
            # quitting the editor must not leave a sweep's workers behind (QProcess's own
            # clean-up kills the process alone, and its workers are in their own session)
            app.aboutToQuit.connect(self.kill)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, args: list[str], cwd: str | Path | None = None) -> None:
        """Start the process with ``args`` after the command; raises RuntimeError when one
        is running already."""
        if self.running:
            raise RuntimeError("a sweep is running already")
        self.result, self.trials = None, []
        self._buffers = {"out": b"", "err": b""}
        self._last_error, self._cancelled = "", False
        if self.process is not None:
            self.process.deleteLater()  # the last sweep's, ended
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        # a pipe is block-buffered: without this the lines would come all at once at the end
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("PYTHONIOENCODING", "utf-8")
        if not getattr(sys, "frozen", False):
            # ``-m app`` finds this package from any working folder, installed or not
            paths = [str(PACKAGE_ROOT), *filter(None, [env.value("PYTHONPATH")])]
            env.insert("PYTHONPATH", os.pathsep.join(paths))
        process.setProcessEnvironment(env)
        if POSIX:
            # its own session (and process group): a kill reaches the sweep's workers too
            process.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
        if cwd is not None:
            process.setWorkingDirectory(str(cwd))
        process.readyReadStandardOutput.connect(lambda: self._read("out"))
        process.readyReadStandardError.connect(lambda: self._read("err"))
        process.errorOccurred.connect(self._error)
        process.finished.connect(self._finished)
        self.process = process
        process.start(self.command[0], [*self.command[1:], *[str(a) for a in args]])

    def cancel(self) -> None:
        """Ask the process to end and kill it (with its workers) if it is still there after
        the grace period. Nothing happens when none runs. On POSIX the request is SIGINT,
        what ``netcanvas sweep`` handles by stopping its workers (it is Ctrl+C)."""
        if not self.running:
            return
        self._cancelled = True
        pid = self.process.processId()
        if POSIX and pid > 0:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        else:
            self.process.terminate()
        self._kill_timer.start(self.grace_ms)

    def wait_ended(self, msecs: int) -> bool:
        """Block until the process is gone (closing the editor); True when it is."""
        if self.process is None:
            return True
        return self.process.waitForFinished(msecs) or not self.running

    def kill(self) -> None:
        """End the process now, and on POSIX every process of its group (its workers)."""
        if not self.running:
            return
        pid = self.process.processId()
        if POSIX and pid > 0:
            try:
                os.killpg(pid, signal.SIGKILL)  # the session leader's pid is its group's id
            except (ProcessLookupError, PermissionError):
                pass
        self.process.kill()

    def _kill(self) -> None:
        self.kill()

    def _read(self, channel: str) -> None:
        if self.process is None:
            return
        read = self.process.readAllStandardOutput if channel == "out" else self.process.readAllStandardError
        data = self._buffers[channel] + bytes(read().data())
        *lines, rest = data.split(b"\n")
        self._buffers[channel] = rest
        for line in lines:
            self._line(channel, line)

    def _line(self, channel: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text.strip():
            return
        if channel == "err":
            self._last_error = text.strip()[:LOG_LINE_LIMIT]
            self.log.emit(text[:LOG_LINE_LIMIT])
            return
        kind, value = parse_line(text)
        if kind == "trial":
            self.trials.append(value)
            self.trial.emit(value)
        elif kind == "done":
            self.result = value
            self.done.emit(value)
        else:
            self.log.emit(value)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            # no finished signal follows a failed start
            self.ended.emit(f"could not start the sweep ({' '.join(self.command)}): {self.process.errorString()}")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        for channel in ("out", "err"):
            self._read(channel)
            rest, self._buffers[channel] = self._buffers[channel], b""
            self._line(channel, rest)  # a last line without its newline
        self.ended.emit(self._outcome(code, status))

    def _outcome(self, code: int, status: QProcess.ExitStatus) -> str:
        if self._cancelled:
            return f"cancelled after {len(self.trials)} finished trial{'s' * (len(self.trials) != 1)}"
        detail = f": {self._last_error}" if self._last_error else ""
        if status == QProcess.ExitStatus.CrashExit:
            return f"the sweep process crashed{detail}"
        if code != 0:
            return f"the sweep process ended with exit code {code}{detail}"
        if self.result is None:
            return "the sweep process ended without its final result line"
        return ""

