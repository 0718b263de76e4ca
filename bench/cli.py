"""Whole-process start-up of the everyday commands, each against ``python -c "import torch"``
(python bench/cli.py [--rounds N] [--only check,export]).

Each path runs as a fresh process, as a user runs it: ``netcanvas check lenet5``,
``export lenet5 --onnx``, ``import`` of that ONNX file, ``predict`` on 8 samples, and the
editor (offscreen, settings and recovery folder of its own). The editor's row is the goal's
figure: seconds from just before the process starts to the main window's first paint (the
editor writes that time into the file ``NETCANVAS_FIRST_PAINT`` names; the bench then ends
it); beside it, ``editor whole``: the whole process of ``netcanvas lenet5 --screenshot OUT``
(start, render, save the PNG, exit). The contenders run in turn round by round (``import
torch`` first in each round), medians over the rounds; the ratio to ``import torch`` is the
figure to compare across machines, since these are noisy.
Goals (issue 20): check <= 0.15x (no torch), export <= 1.8x, editor to first paint <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
FIRST_PAINT_TIMEOUT_S = 120  # an editor that has not painted by then has failed


def commands(work: Path) -> dict[str, list[str]]:
    """Each path's command line (the files they read are made by ``prepare``)."""
    app = [PY, "-m", "app"]
    return {
        "import torch": [PY, "-c", "import torch"],
        "check": app + ["check", "lenet5"],
        "export": app + ["export", "lenet5", "--onnx", str(work / "out.onnx")],
        "import": app + ["import", str(work / "lenet5.onnx"), str(work / "imported.netcanvas.json")],
        "predict": app + ["predict", str(work / "model.netcanvas.json"), "--input", str(work / "x.npy"), "--output", str(work / "y.npy")],
        "editor": app + ["lenet5"],
        "editor whole": app + ["lenet5", "--screenshot", str(work / "editor.png")],
    }


def prepare(work: Path) -> None:
    """The ONNX file ``import`` reads, and the project with weights and the samples ``predict``
    reads (LeNet-5 with the exporter's random weights: the bundled example has none)."""
    for step in (["export", "lenet5", "--onnx", str(work / "lenet5.onnx")],
                 ["import", str(work / "lenet5.onnx"), str(work / "model.netcanvas.json")]):
        subprocess.run([PY, "-m", "app", *step], cwd=ROOT, check=True, capture_output=True)
    np.save(work / "x.npy", np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32))


def environment(work: Path) -> dict[str, str]:
    """The contenders' environment: offscreen Qt, and the editor's settings and recovery
    folder in ``work`` (the user's layout, or a recovery question, would change the figure)."""
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(work / "config"),
                XDG_DATA_HOME=str(work / "data"))


def first_paint_seconds(command: list[str], work: Path) -> float:
    """Seconds from just before ``command`` (the editor) starts to its window's first paint
    (the time it writes into ``NETCANVAS_FIRST_PAINT``); the editor, and whatever it started,
    is ended then. Raises RuntimeError when it exits or does not paint in time."""
    mark = work / "first-paint.txt"
    mark.unlink(missing_ok=True)
    env = dict(environment(work), NETCANVAS_FIRST_PAINT=str(mark))
    start = time.time()
    # a session of its own: its warm training worker, if started, ends with it
    editor = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + FIRST_PAINT_TIMEOUT_S
        while not mark.exists():  # (a file, polled: the editor is another process)
            if editor.poll() is not None:
                raise RuntimeError(f"the editor exited ({editor.returncode}) before its first paint: "
                                   f"{editor.stderr.read().decode(errors='replace')[-800:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the editor did not paint within {FIRST_PAINT_TIMEOUT_S} s")
            time.sleep(0.005)
        return float(mark.read_text()) - start
    finally:
        if editor.poll() is None:
            os.killpg(editor.pid, signal.SIGKILL)
        editor.wait()
        editor.stderr.close()


def seconds(command: list[str], work: Path) -> float:
    """Wall seconds of one run of ``command`` (it must succeed)."""
    env = environment(work)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed ({done.returncode}): {done.stderr[-800:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated paths (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netcanvas-bench-") as tmp:
        work = Path(tmp)
        every = commands(work)
        wanted = [p for p in args.only.split(",") if p] or [p for p in every if p != "import torch"]
        unknown = [p for p in wanted if p not in every]
        if unknown:
            parser.error(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(every)}")
        if {"import", "predict"} & set(wanted):
            prepare(work)
        if "editor" in wanted and "editor whole" not in wanted:  # the old figure, beside the goal's
            wanted.insert(wanted.index("editor") + 1, "editor whole")
        times: dict[str, list[float]] = {p: [] for p in ["import torch", *wanted]}
        for _ in range(args.rounds):
            for path in times:
                measure = first_paint_seconds if path == "editor" else seconds
                times[path].append(measure(every[path], work))
    base = statistics.median(times["import torch"])
    print(f"seconds, medians of {args.rounds} rounds (python {sys.version.split()[0]}); whole process, "
          "but editor: from its start to its first paint")
    print(f"{'path':<14}{'median s':>10}{'min s':>8}{'max s':>8}{'x import torch':>16}")
    for path, values in times.items():
        median = statistics.median(values)
        print(f"{path:<14}{median:>10.2f}{min(values):>8.2f}{max(values):>8.2f}{median / base:>16.2f}")


if __name__ == "__main__":
    main()
