"""The ``sweep`` command: a hyper-parameter search with Optuna, each trial a run in the store.

    netcanvas sweep FILE --trials N [--workers K] --param NAME=SPEC ... [--sampler tpe|random|grid]
        [--metric val_accuracy|val_loss] [--direction max|min] [--storage URL] [--study NAME]
        [--epochs E] [--repeats R] [--out DIR] [--json]

Prints one line per trial as it finishes (``--json``: one object per line), the best last.
``--repeats R`` trains each trial R times (seeds ``training.seed``, +1, ...) and judges it
by the mean of their final metrics.
Exit codes: 0 when a trial completed; 1 when none did (or the weights folder cannot be
written); 2 for a file that cannot be read, or a parameter, option or storage that is wrong.
"""

from __future__ import annotations

import json
import os
from typing import TextIO

from .cli_io import open_or_report, weights_file
from .cli_types import integer_in
from .config import MAX_EPOCHS
from .errors import NetCanvasError
from .runs.space import SweepSpecError, parse_param

COMMANDS: tuple[str, ...] = ("sweep",)
MAX_TRIALS = 100_000
MAX_WORKERS = max(64, os.cpu_count() or 1)
MAX_REPEATS = 100  # as runs.sweep.MAX_REPEATS (not imported here: that module imports torch and Optuna)


def add_parsers(sub) -> None:
    """Add the sub-commands to ``sub`` (argparse sub-parsers)."""
    p = sub.add_parser("sweep", help="search training settings and node parameters with Optuna; "
                                     "each trial is a run in the run store")
    p.add_argument("file", help="a project file, or the name of a bundled example")
    p.add_argument("--trials", type=integer_in(1, MAX_TRIALS), required=True, metavar="N",
                   help="how many trials this command runs (shared by the workers)")
    p.add_argument("--workers", type=integer_in(1, MAX_WORKERS), default=1, metavar="K",
                   help="worker processes on this machine, each training one trial at a time (default 1)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=SPEC",
                   help="a dimension of the search: NAME a training setting (lr, batch_size, optimizer...) or "
                        "NODE.PARAM (conv1.out_channels); SPEC LOW:HIGH, LOW:HIGH:log or A,B,C")
    p.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe", help="default tpe")
    p.add_argument("--metric", choices=("val_accuracy", "val_loss"), default="val_accuracy",
                   help="what each trial is judged by (default val_accuracy)")
    p.add_argument("--direction", choices=("max", "min"),
                   help="default: max for val_accuracy, min for val_loss")
    p.add_argument("--storage", metavar="URL",
                   help="the Optuna storage (an SQLAlchemy URL such as postgresql://...; default the run "
                        "store's SQLite file beside the weights) that workers on other machines can join")
    p.add_argument("--study", metavar="NAME",
                   help="the study's name: join it when it exists (default a new sweep id)")
    p.add_argument("--epochs", type=integer_in(1, MAX_EPOCHS), help="each trial's epochs (default the project's)")
    p.add_argument("--repeats", type=integer_in(1, MAX_REPEATS), default=1, metavar="R",
                   help="runs per trial, with the seeds training.seed, +1, ... +R-1; a trial is judged by the mean "
                        "of their final metrics (default 1)")
    p.add_argument("--out", help="folder of the weights, the run store and the runs (default: beside the "
                                 "project file; an example's: the current folder)")
    p.add_argument("--json", action="store_true", help="one JSON object per trial, then the summary")


def run(args, out: TextIO, err: TextIO) -> int:
    """Run the command parsed into ``args``; returns the exit code."""
    opened = open_or_report(args.file, err)
    if opened is None:
        return 2
    project, is_example = opened
    if not args.param:
        err.write("error: --param: a sweep needs at least one NAME=SPEC (lr=1e-4:1e-1:log, "
                  "conv1.out_channels=4,8,16)\n")
        return 2
    try:
        params = [parse_param(text, project) for text in args.param]
    except SweepSpecError as e:
        err.write(f"error: --param {e}\n")
        return 2
    if args.repeats > 1 and any(p.name == "seed" for p in params):
        err.write(f"error: --repeats {args.repeats} with --param seed: each repeat sets the seed itself (seed, "
                  "seed+1...); search the seed or repeat the trials, not both\n")
        return 2
    # here: the sweep imports torch and Optuna; `check` and `examples` start without them
    from .runs.sweep import Sweep
    from .weights import check_writable

    try:
        weights = weights_file(args.file, project, is_example, args.out)
        check_writable(weights)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    try:
        sweep = Sweep(project, params, weights, storage=args.storage, study=args.study, join=bool(args.study),
                      sampler=args.sampler, metric=args.metric, direction=args.direction, epochs=args.epochs,
                      repeats=args.repeats)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 2
    if not args.json:
        space = "; ".join(p.describe() for p in sweep.params)
        repeats = f", {args.repeats} runs per trial (seeds from training.seed)" if args.repeats > 1 else ""
        out.write(f"Sweep {sweep.study_name}: {args.trials} trials{repeats}, {args.workers} worker(s), {args.sampler}, "
                  f"{'maximize' if sweep.direction == 'maximize' else 'minimize'} {args.metric}; {space}\n"
                  f"runs: {sweep.store_path}; study: {sweep.storage_url}\n")
        out.flush()

    def on_trial(trial, best) -> None:
        if args.json:
            out.write(json.dumps({**trial.as_dict(), "best": _best(best)}) + "\n")
        else:
            out.write(trial_line(trial, args.metric, best) + "\n")
        out.flush()

    try:
        result = sweep.run(args.trials, args.workers, on_trial=on_trial)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 2
    except KeyboardInterrupt:
        err.write("interrupted: the workers were ended; their trials turn FAIL once their heartbeats are overdue\n")
        return 130
    err.writelines(f"note: {note}\n" for note in sweep.notes)
    if args.json:
        out.write(json.dumps(result.as_dict()) + "\n")
    elif result.best is None:
        out.write("no trial completed\n")
    else:
        b = result.best
        mean = "mean " if len(b.values) > 1 else ""
        out.write(f"best: trial {b.number} {mean}{args.metric} {b.value:.4f} {_params(b.params)} "
                  f"({_runs(b.run_ids or [b.run_id])})\n")
    return 0 if result.best is not None else 1


def trial_line(trial, metric: str, best) -> str:
    """One human line for a finished trial, with the best so far; a trial of several runs
    (repeats) shows the mean and each run's value."""
    value = f"{metric} {trial.value:.4f}" if trial.value is not None else trial.state
    if len(trial.values) > 1 or (trial.values and trial.value is None):
        each = ", ".join(f"{v:.4f}" for v in trial.values)
        value = f"{value} (mean of {each})" if trial.value is not None else f"{value} (finished: {each})"
    line = f"trial {trial.number:>3} {trial.state:<8} {value:<22} {_params(trial.params)}"
    if trial.run_ids or trial.run_id:
        line += "  " + _runs(trial.run_ids or [trial.run_id])
    if trial.message and trial.state == "failed":
        line += f"  ({trial.message})"
    if best is not None:
        line += f"  [best: trial {best.number}, {best.value:.4f}]"
    return line


def _params(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _runs(ids: list[str]) -> str:
    return ("run " if len(ids) == 1 else "runs ") + ", ".join(ids)


def _best(best) -> dict | None:
    return None if best is None else {"trial": best.number, "value": best.value, "params": best.params}
