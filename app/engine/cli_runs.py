"""The ``runs`` command: the runs recorded in a project's run store (``NAME.runs.sqlite``
beside its weights, found as ``train`` finds the weights: beside the project file, an
example's in the current folder, or in ``--out``).

    netcanvas runs FILE [--json]          the table, oldest first (newest last)
    netcanvas runs FILE --show ID [--json]  one run: settings, per-epoch metrics, test results
    netcanvas runs FILE --use ID          that run's weights become the project's (atomically)
    netcanvas runs FILE --delete ID       the run, its metrics and its weights file
    netcanvas runs FILE --note ID TEXT | --tag ID TAG | --untag ID TAG

An ID may be shortened to any prefix that names one run. Exit codes: 0; 1 no store, an
unknown id, or weights that cannot be used; 2 a project or store that cannot be read.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TextIO

from .cli_io import open_or_report, weights_file
from .errors import NetCanvasError
from .project import Project, project_to_dict
from .runs.changes import changes
from .runs.store import RunNotFound, RunRecord, RunStore, StoreError, store_path_for, use_run_weights

COMMANDS: tuple[str, ...] = ("runs",)
ORDER = "oldest first"  # the table's order, said in its header and in --json


def add_parsers(sub) -> None:
    """Add the ``runs`` sub-command to ``sub`` (argparse sub-parsers)."""
    runs = sub.add_parser("runs", help="list, show, use or delete the recorded runs of a project")
    runs.add_argument("file", help="a project file, or the name of a bundled example")
    runs.add_argument("--out", help="the folder train --out wrote the weights to (default: beside the project "
                                    "file; an example's: the current folder)")
    runs.add_argument("--json", action="store_true", help="print one JSON object")
    action = runs.add_mutually_exclusive_group()
    action.add_argument("--show", metavar="ID", help="one run: its settings, changes, per-epoch metrics and results")
    action.add_argument("--use", metavar="ID", help="make that run's weights the project's")
    action.add_argument("--delete", metavar="ID", help="delete the run, its metrics and its weights file")
    action.add_argument("--note", nargs=2, metavar=("ID", "TEXT"), help="set the run's note ('' clears it)")
    action.add_argument("--tag", nargs=2, metavar=("ID", "TAG"), help="add a tag to the run")
    action.add_argument("--untag", nargs=2, metavar=("ID", "TAG"), help="remove a tag from the run")


def run(args, out: TextIO, err: TextIO) -> int:
    """Run the ``runs`` command parsed into ``args``; returns the exit code."""
    opened = open_or_report(args.file, err)
    if opened is None:
        return 2
    project, is_example = opened
    weights = weights_file(args.file, project, is_example, args.out)
    path = store_path_for(weights)
    if not path.exists():
        err.write(f"error: no runs recorded for {args.file}: {path} does not exist (netcanvas train "
                  f"{args.file}{' --out ' + args.out if args.out else ''} records one)\n")
        return 1
    try:
        store = RunStore(path)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 2
    try:
        store.fail_stale()
        return _act(args, project, store, weights, out, err)
    except RunNotFound as e:
        err.write(f"error: {e}\n")
        return 1
    except StoreError as e:
        err.write(f"error: {e}\n")
        return 2
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    finally:
        store.close()


def _act(args, project: Project, store: RunStore, weights: Path, out: TextIO, err: TextIO) -> int:
    if args.show:
        return _show(args, store, _find(store, args.show), out)
    if args.use:
        run_id = _find(store, args.use)
        target, aside = use_run_weights(store, run_id, weights)
        if aside is not None:
            out.write(f"note: the weights that were in place are kept in {aside} (no recorded run had them)\n")
        out.write(f"the weights of run {run_id} are now the project's: {target}\n")
        graph = changes(_graph_of(store.get(run_id).project), _graph_of(project_to_dict(project)))
        if graph:
            err.write(f"note: the project's graph has changed since run {run_id} ({'; '.join(graph)}): its "
                      "weights fit the run's graph (the editor's Runs view restores it)\n")
        return 0
    if args.delete:
        run_id = _find(store, args.delete)
        store.delete(run_id)
        out.write(f"deleted run {run_id} (its metrics and its weights file) from {store.path}\n")
        return 0
    if args.note:
        run_id = _find(store, args.note[0])
        store.set_note(run_id, args.note[1])
        out.write(f"run {run_id}: note {'set' if args.note[1] else 'cleared'}\n")
        return 0
    if args.tag or args.untag:
        run_id = _find(store, (args.tag or args.untag)[0])
        tag = (args.tag or args.untag)[1]
        tags = store.get(run_id).tags
        tags = [*tags, tag] if args.tag else [t for t in tags if t != tag]
        store.set_tags(run_id, tags)
        out.write(f"run {run_id}: tags {', '.join(dict.fromkeys(tags)) or 'none'}\n")
        return 0
    return _table(args, store, out)


def _graph_of(data: dict) -> dict:
    """Only what decides which weights fit: the graph and its block definitions."""
    return {"graph": data.get("graph"), "blocks": data.get("blocks")}


def _find(store: RunStore, prefix: str) -> str:
    """The id of the one run whose id is ``prefix`` or starts with it. Raises
    ``RunNotFound`` naming the id and the store (and the candidates when several match)."""
    ids = [r.id for r in store.runs()]
    if prefix in ids:
        return prefix
    matches = [i for i in ids if i.startswith(prefix)] if prefix else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RunNotFound(f"has {len(matches)} runs whose id starts with {prefix!r} ({', '.join(sorted(matches)[:5])}"
                          f"{', ...' if len(matches) > 5 else ''}): give more of the id", str(store.path))
    raise RunNotFound(f"has no run {prefix!r} (netcanvas runs FILE lists them)", str(store.path))


# -- the table ----------------------------------------------------------------------------------
def _table(args, store: RunStore, out: TextIO) -> int:
    records = list(reversed(store.runs()))  # oldest first: a log, the newest at the bottom
    previous: list[RunRecord | None] = [None, *records[:-1]]
    if args.json:
        items = []
        for before, record in zip(previous, records):
            item = _record_dict(record, store)
            item["changes"] = changes(before.project, record.project) if before else []
            items.append(item)
        json.dump(_finite({"store": str(store.path), "order": ORDER, "runs": items}), out)
        out.write("\n")
        return 0
    if not records:
        out.write(f"no runs in {store.path}\n")
        return 0
    header = ("id", "status", "started", "duration", "best val acc", "test acc", "changes since the previous run")
    rows = []
    for before, record in zip(previous, records):
        lines = changes(before.project, record.project) if before else []
        what = "; ".join(lines) if before else "first run"
        what = what or "same settings"
        if record.sweep is not None:
            what = f"sweep {record.sweep} trial {record.trial}: {what}"
        if record.tags:
            what += f"  [{', '.join(record.tags)}]"
        if record.note:
            what += f"  \u2014 {record.note}"
        rows.append((record.id, record.status, _when(record.started), _duration(record.duration),
                     _pct(record.best_val_accuracy), _pct(record.test_accuracy), what))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    right = (False, False, False, True, True, True)
    out.write(f"{len(records)} run{'s' if len(records) != 1 else ''} in {store.path} ({ORDER}, the newest last)\n")
    for row in [header, *rows]:
        cells = [row[i].rjust(widths[i]) if right[i] else row[i].ljust(widths[i]) for i in range(len(widths))]
        out.write("  ".join(cells + [row[-1]]).rstrip() + "\n")
    return 0


def _show(args, store: RunStore, run_id: str, out: TextIO) -> int:
    record = store.get(run_id)
    ordered = list(reversed(store.runs()))
    index = [r.id for r in ordered].index(run_id)
    before = ordered[index - 1] if index else None
    lines = changes(before.project, record.project) if before else []
    epochs = store.epochs(run_id)
    if args.json:
        item = _record_dict(record, store)
        item.update(changes=lines, previous=before.id if before else None, batches=store.batches(run_id))
        json.dump(_finite(item), out)
        out.write("\n")
        return 0
    w = out.write
    w(f"run {record.id}: {record.status}\n")
    w(f"  {record.message}\n" if record.message else "")
    w(f"started   {_when(record.started)}, ran {_duration(record.duration)}"
      f"{'' if record.ended else ' (still running)'}\n")
    w(f"device    {record.device or '?'} on {record.host or '?'} (pid {record.pid})\n")
    versions = record.versions
    w(f"versions  NetCanvas {versions.get('netcanvas', '?')}, torch {versions.get('torch', '?')}, "
      f"Python {versions.get('python', '?')}\n")
    data = record.dataset
    sizes = data.get("split_sizes") if isinstance(data.get("split_sizes"), dict) else {}
    w(f"dataset   {data.get('name', '?')} ({sizes.get('train', '?')} train / {sizes.get('val', '?')} val / "
      f"{sizes.get('test', '?')} test, {data.get('num_classes', '?')} classes)\n")
    if record.sweep is not None:
        w(f"sweep     {record.sweep}, trial {record.trial}: "
          f"{', '.join(f'{k}={v}' for k, v in record.params.items()) or 'no parameters'}\n")
    if record.tags:
        w(f"tags      {', '.join(record.tags)}\n")
    if record.note:
        w(f"note      {record.note}\n")
    since = f"{'; '.join(lines) or 'same settings'} (since run {before.id})" if before else "first run"
    w(f"changes   {since}\n")
    w("settings  " + ", ".join(f"{k}={_plain(v)}" for k, v in record.settings.items()) + "\n")
    if epochs["epoch"]:
        w("epoch  train loss  train acc  val loss  val acc        lr  seconds\n")
        for i, epoch in enumerate(epochs["epoch"]):
            w(f"{epoch:>5}  {_num(epochs['train_loss'][i]):>10}  {_pct(epochs['train_accuracy'][i]):>9}  "
              f"{_num(epochs['val_loss'][i]):>8}  {_pct(epochs['val_accuracy'][i]):>7}  "
              f"{_plain(epochs['lr'][i]):>8}  {_num(epochs['seconds'][i], 2):>7}\n")
    else:
        w("no epoch was completed\n")
    w(f"best val  accuracy {_pct(record.best_val_accuracy)}, loss {_num(record.best_val_loss)}\n")
    w(f"test      accuracy {_pct(record.test_accuracy)}, loss {_num(record.test_loss)}\n")
    if record.confusion:
        w("confusion (rows: true class, columns: predicted)\n")
        names = data.get("class_names") if isinstance(data.get("class_names"), list) else []
        width = max([len(str(v)) for row in record.confusion for v in row] + [len(str(n)) for n in names] + [3])
        if names and len(names) == len(record.confusion):
            w(" " * (width + 2) + " ".join(str(n)[:width].rjust(width) for n in names) + "\n")
        for i, row in enumerate(record.confusion):
            label = str(names[i])[:width] if i < len(names) else str(i)
            w(f"{label.rjust(width)}  " + " ".join(str(v).rjust(width) for v in row) + "\n")
    exists = record.weights and Path(record.weights).is_file()
    w(f"weights   {record.weights if exists else 'none kept'}{'' if exists or not record.weights else ' (missing)'}\n")
    return 0


# -- formatting ---------------------------------------------------------------------------------
def _record_dict(record: RunRecord, store: RunStore) -> dict:
    item = dict(vars(record))
    item["duration"] = record.duration
    item["weights_exists"] = bool(record.weights and Path(record.weights).is_file())
    item["epoch_metrics"] = store.epochs(record.id)
    return item


def _finite(value):
    """JSON-ready: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _when(t: float | None) -> str:
    return "?" if not t else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def _num(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _plain(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "none"
    return str(v) if not isinstance(v, (list, dict)) else json.dumps(v)
