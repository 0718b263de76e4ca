"""How long the editor's training run takes to start (python bench/start_time.py).

From ``TrainingSession.start`` (the Train button) to the run's "ready" message and to its
first minibatch, for a few examples, each started ``--rounds`` times in a fresh child
process as the panel does (with ``--load N``, beside N CPU-bound processes at normal
priority). Then, in a fresh interpreter each, where the child's start goes:
Python itself, importing the worker (torch and the engine), and ``prepare_run`` (checking
the graph and loading the data). Compare runs on the same machine only: these are noisy.

With ``--warm``, each start is also measured as the editor makes it: handed to a warm
worker that has imported torch and loaded the data ahead (``TrainingSession.warm_up`` and
``prepare``), cold and warm side by side, with their ratio, and where the warm start's
time goes (the run's own "seconds": prepare, model; then ready -> first minibatch).
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
sys.path.insert(0, str(ROOT / "bench"))  # bench/training.py, also under python -P

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


def session_start(app, example: str, session=None) -> tuple[float, float, dict]:
    """Seconds from ``start`` to "ready" and to the first minibatch, and the ready info;
    in a fresh process, or handed to ``session``'s warm worker (waited for first)."""
    from PySide6.QtCore import QEventLoop, QTimer

    from app.engine.examples import load_example
    from app.widgets.training.session import TrainingSession

    if session is None:
        session = TrainingSession()
    elif not session.supervisor.wait_warm(300):
        raise RuntimeError(f"{example}: the warm worker did not get ready")
    marks: dict[str, float] = {}
    infos: list[dict] = []
    session.ready.connect(infos.append)
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
    for signal in (session.ready, session.batches, session.failed, session.finished):
        signal.disconnect()
    if "failed" in marks or "batch" not in marks:
        raise RuntimeError(f"{example}: the run did not start: {marks.get('failed')}")
    return marks["ready"] - start, marks["batch"] - start, infos[0]


def warm_session(example: str):
    """A session keeping a warm worker that has been told the example's data."""
    from app.engine.examples import load_example
    from app.engine.inference import analyze
    from app.widgets.training.session import TrainingSession

    project = load_example(example)
    analysis = analyze(project.graph)
    session = TrainingSession()
    session.warm_up()
    session.prepare(project.dataset, project.path.parent if project.path else None,
                    analysis.shapes[analysis.inputs[0]], analysis.inputs[0])
    return session


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
    parser.add_argument("--warm", action="store_true",
                        help="also start each run in a warm worker (the editor's way), side by side")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    print(f"the run: {use_priority(args.nice, args.policy)}", flush=True)

    app = QApplication.instance() or QApplication([])
    median = statistics.median
    for example in args.examples.split(","):
        starts, warm_starts = [], []
        warm = warm_session(example) if args.warm else None
        for _ in range(args.rounds):  # alternated: the machine's noise falls on both alike
            with Load(args.load):
                starts.append(session_start(app, example))
                if warm is not None:
                    warm_starts.append(session_start(app, example, warm))
        if warm is not None:
            warm.supervisor.shutdown()
        for name, runs in (("cold", starts), ("warm", warm_starts)):
            if not runs:
                continue
            print(f"{example}: {name + ': ' if args.warm else ''}Train -> ready {median(s[0] for s in runs):.2f} s, "
                  f"-> first minibatch {median(s[1] for s in runs):.2f} s (median of {args.rounds}; "
                  f"{', '.join(f'{s[1]:.2f}' for s in runs)})", flush=True)
        if warm_starts:
            seconds = [s[2].get("seconds") or {} for s in warm_starts]
            cached = sum(bool(s[2].get("dataset_cached")) for s in warm_starts)
            print(f"{' ' * len(example)}  warm / cold, to the first minibatch: "
                  f"{median(s[1] for s in warm_starts) / median(s[1] for s in starts):.3f}; in the warm start: "
                  f"prepare_run {median(s.get('prepare', 0.0) for s in seconds):.3f} s, the model "
                  f"{median(s.get('model', 0.0) for s in seconds):.3f} s, ready -> first minibatch "
                  f"{median(s[1] - s[0] for s in warm_starts):.3f} s; data loaded ahead in {cached} of "
                  f"{len(warm_starts)}", flush=True)
        if args.no_parts:
            continue
        split = [parts(example) for _ in range(args.rounds)]
        print(f"{' ' * len(example)}  fresh interpreter: python {median(p[0] for p in split):.2f} s, "
              f"importing the worker {median(p[1] for p in split):.2f} s, "
              f"prepare_run {median(p[2] for p in split):.2f} s", flush=True)


if __name__ == "__main__":
    main()
