"""Run > Profile without the editor waiting: ``profiler.profile`` runs in a child process
(spawned, as training's are: torch's threads and the timing stay out of the editor's
process, and a profile that runs out of memory takes only the child down) and sends back the
``profile --json`` object. The editor polls ``ProfileJob.poll`` on a timer."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Any

from ..errors import GraphError, NetCanvasError
from ..project import parse_project, project_to_dict

SPAWN = multiprocessing.get_context("spawn")
REPEATS = 5  # timed runs per figure in the editor (the CLI's default is 10): a few seconds for a ResNet


@dataclass
class ProfileOutcome:
    """What a profile run ended with: ``profile`` (the ``--json`` object) or ``error`` (a
    sentence, with the graph's issues one a line)."""

    profile: dict[str, Any] | None = None
    error: str | None = None


class ProfileJob:
    """One profile in a child process: ``poll()`` is None while it runs, then its outcome."""

    def __init__(self, project, batch_size: int | None = None, device: str = "auto", repeats: int = REPEATS):
        batch = batch_size if batch_size is not None else int(project.training.get("batch_size", 1) or 1)
        self._conn, child = SPAWN.Pipe(duplex=False)
        self.process = SPAWN.Process(target=_child, args=(child, project_to_dict(project), batch, device, repeats),
                                     name="netcanvas-profile", daemon=True)
        self.process.start()
        child.close()  # only the child holds its end: its death reads as EOF here
        self._outcome: ProfileOutcome | None = None

    def poll(self) -> ProfileOutcome | None:
        if self._outcome is not None:
            return self._outcome
        try:
            if not self._conn.poll():
                return None
            kind, value = self._conn.recv()
            self._outcome = ProfileOutcome(profile=value) if kind == "ok" else ProfileOutcome(error=value)
            self.process.join(5)  # it ends once it has sent: no process left behind
        except (EOFError, OSError):
            self.process.join(1)
            self._outcome = ProfileOutcome(error=f"the profiling process ended without a result (exit code "
                                                 f"{self.process.exitcode}); out of memory?")
        self._conn.close()
        return self._outcome

    def cancel(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        if self._outcome is None:
            self._outcome = ProfileOutcome(error="cancelled")
            self._conn.close()


def _child(conn, project_dict: dict, batch: int, device: str, repeats: int) -> None:
    # imported here, in the child: the editor's process never loads torch for a profile
    from ..devices import resolve_device
    from ..profiler import profile

    try:
        project = parse_project(project_dict)
        result = profile(project, batch, resolve_device(device), repeats=repeats)
        conn.send(("ok", result.to_json()))
    except GraphError as e:
        conn.send(("error", "the graph has errors, so it cannot be profiled:\n" + "\n".join(map(str, e.issues))))
    except (NetCanvasError, ValueError) as e:
        conn.send(("error", str(e)))
    except RuntimeError as e:  # out of memory on the device, above all
        conn.send(("error", f"profiling failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"))
    except Exception as e:  # noqa: BLE001 - a profiler bug: said, not "the process ended"
        conn.send(("error", f"profiling failed: unexpected {type(e).__name__}: {e}"))
    finally:
        conn.close()
