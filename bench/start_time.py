"""How long the editor's training run takes to start (python bench/start_time.py).

From ``TrainingSession.start`` (the Train button) to the run's "ready" message and to its
first minibatch, for a few examples, each started ``--rounds`` times in a fresh child
process as the panel does (with ``--load N``, beside N CPU-bound processes at normal
priority). Then, in a fresh interpreter each, where the child's start goes:
Python itself, importing the worker (torch and the engine), and ``prepare_run`` (checking
the graph and loading the data). Compare runs on the same machine only: these are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARTS = """
import time, sys
t0 = time.perf_counter()
import app.engine.training.worker
t1 = time.perf_counter()
from app.engine.examples import load_example
from app.engine.training import prepare_run
prepare_run(load_example(sys.argv[1]), device="cpu")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


from training import Load, use_priority  # noqa: E402  (bench/training.py, beside this file)


def session_start(app, example: str) -> tuple[float, float]:
    """Seconds from ``start`` to "ready" and to the first minibatch."""
    from PySide6.QtCore import QEventLoop, QTimer

    from app.engine.examples import load_example
    from app.widgets.training.session import TrainingSession

    session = TrainingSession()
    marks: dict[str, float] = {}
    loop = QEventLoop()
    session.ready.connect(lambda _info: marks.setdefault("ready", time.perf_counter()))
    session.batches.connect(lambda _events: (marks.setdefault("batch", time.perf_counter()), loop.quit()))
    session.failed.connect(lambda message: (marks.setdefault("failed", message), loop.quit()))
    session.finished.connect(lambda _event: loop.quit())
    QTimer.singleShot(300_000, loop.quit)
    start = time.perf_counter()
    session.start(load_example(example), overrides={"device": "cpu", "epochs": 1000})
    loop.exec()
    session.kill()
    if "failed" in marks or "batch" not in marks:
        raise RuntimeError(f"{example}: the run did not start: {marks.get('failed')}")
    return marks["ready"] - start, marks["batch"] - start


def parts(example: str) -> tuple[float, float, float]:
    """Seconds of a fresh interpreter: its start, importing the worker, prepare_run."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PARTS, example], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    total = time.perf_counter() - start
    imports, prepare = (float(x) for x in done.stdout.split())
    return total - imports - prepare, imports, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", default="xor,lenet5")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nice", type=int, default=None, help="the run at this nice (default: the session's)")
    parser.add_argument("--policy", choices=("normal", "batch"), default=None,
                        help="the run under this Linux policy (default: the session's)")
    parser.add_argument("--no-parts", action="store_true", help="leave out the fresh interpreters' split")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="N CPU-bound processes at normal priority run beside each start")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    print(f"the run: {use_priority(args.nice, args.policy)}", flush=True)

    app = QApplication.instance() or QApplication([])
    for example in args.examples.split(","):
        starts = []
        for _ in range(args.rounds):
            with Load(args.load):
                starts.append(session_start(app, example))
        median = statistics.median
        print(f"{example}: Train -> ready {median(s[0] for s in starts):.2f} s, -> first minibatch "
              f"{median(s[1] for s in starts):.2f} s (median of {args.rounds}; "
              f"{', '.join(f'{s[1]:.2f}' for s in starts)})", flush=True)
        if args.no_parts:
            continue
        split = [parts(example) for _ in range(args.rounds)]
        print(f"{' ' * len(example)}  fresh interpreter: python {median(p[0] for p in split):.2f} s, "
              f"importing the worker {median(p[1] for p in split):.2f} s, "
              f"prepare_run {median(p[2] for p in split):.2f} s", flush=True)


if __name__ == "__main__":
    main()
