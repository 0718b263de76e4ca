"""The headless commands behind ``netcanvas check | train | export | examples``.

Exit codes: 0 success; 1 the graph, data or training has a problem; 2 the file cannot be
read or parsed, or an option is out of its range.

A project's weights live beside its file (``NAME.safetensors``); an example's in the
current folder (``./NAME.safetensors``: the installed package may be read-only). ``train``
writes them there (or into ``--out``), ``export`` and ``predict`` read them from there, and
each says which file it used. ``train`` records each run in the project's run store
(``NAME.runs.sqlite`` beside the weights; ``runs`` lists them, ``sweep`` adds trials).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from . import cli_io, cli_profile, cli_runs, cli_sweep, config
from .cli_io import open_project, open_or_report, weights_file
from .cli_types import integer_in
from .counts import frozen_counts, param_split
from .errors import NetCanvasError, ProjectError
from .examples import example_path, list_examples
from .footprint import check_warning
from .inference import Analysis, analyze, describe_shape
from .project import Project, project_to_dict
from .runs.recorder import RunRecorder
from .runs.store import RunStore, store_path_for
from .training import multinode

COMMANDS = ("check", "train", "examples", "export", *cli_io.COMMANDS, *cli_runs.COMMANDS, *cli_sweep.COMMANDS,
            *cli_profile.COMMANDS)
MAX_NPROC = max(64, os.cpu_count() or 1)
MIN_OPSET = 7  # the oldest ONNX Runtime runs; the newest is the installed onnx package's


def _setting(name: str):
    """An argparse type for the training setting ``name``: its schema's type and range
    (a float also finite and within float32), refused with the valid range."""
    param = next(p for p in config.TRAINING_FIELDS if p.name == name)

    def parse(text: str):
        try:
            value = int(text) if param.kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {param.expected()}; received {text!r}") from None
        if isinstance(value, float) and not (math.isfinite(value) and param.low <= value <= param.high):
            raise argparse.ArgumentTypeError(f"expected a number from {param.low:g} to {param.high:g}; "
                                             f"received {text}")
        try:
            return param.check(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = name
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netcanvas", description="NetCanvas headless commands.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a project and show its shapes and parameters")
    check.add_argument("file", help="a project file, or the name of a bundled example")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--expand", action="store_true",
                       help="also show the layers inside each block node (indented under it)")

    train = sub.add_parser("train", help="train a project without the editor")
    train.add_argument("file", help="a project file, or the name of a bundled example")
    train.add_argument("--epochs", type=_setting("epochs"), help="override the number of epochs (1 or more)")
    train.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    train.add_argument("--dataset", help="train on another dataset (by name)")
    train.add_argument("--lr", type=_setting("lr"), help="override the learning rate (a positive number)")
    train.add_argument("--batch-size", type=_setting("batch_size"), help="override the batch size (1 or more)")
    train.add_argument("--out", help="folder for the weights (default: beside the project file; an "
                                     "example's: the current folder)")
    train.add_argument("--fresh", action="store_true",
                       help="start from a fresh initialization (default: from the project's weights when "
                            "they exist, as the editor does: nodes whose shapes changed are initialized)")
    train.add_argument("--json", action="store_true", help="one JSON line per epoch, then the result")
    train.add_argument("--nproc", type=integer_in(1, MAX_NPROC), default=1, metavar="N",
                       help="train in N local processes with DistributedDataParallel "
                            f"(gloo on the CPU, nccl with one GPU each; 1 to {MAX_NPROC})")
    train.add_argument("--kernels", choices=("auto", "on", "off"),
                       help="fused Triton kernels on a CUDA GPU (auto: only where measured faster); "
                            "default: the project's setting")
    multinode.add_arguments(train)

    export = sub.add_parser("export", help="export a project to ONNX and/or PyTorch code, checked "
                                           "against the compiled graph")
    export.add_argument("file", help="a project file, or the name of a bundled example")
    export.add_argument("--onnx", metavar="OUT", help="the .onnx file to write")
    export.add_argument("--python", metavar="DIR", help="a folder for model.py, weights.safetensors, "
                                                         "data.npz, train.py and README.md")
    export.add_argument("--weights", help="weights to export (default: the project's own, if saved)")
    export.add_argument("--opset", type=integer_in(MIN_OPSET, 10_000), default=18,
                        help=f"ONNX opset version, from {MIN_OPSET} to the installed onnx's newest (default 18)")

    ex = sub.add_parser("examples", help="list the bundled examples, or print one")
    ex.add_argument("name", nargs="?", help="an example to print")
    cli_io.add_parsers(sub)
    cli_runs.add_parsers(sub)
    cli_sweep.add_parsers(sub)
    cli_profile.add_parsers(sub)
    return parser


def main(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    out, err = _Escaping(out), _Escaping(err)
    parser = build_parser()
    args = parser.parse_args(argv)
    for option in ("file", "out", "onnx", "python", "weights", "model", "input", "output"):
        if getattr(args, option, None) == "":
            parser.error(f"{'--' if option not in ('file', 'model') else ''}{option}: expected a path; received ''")
    if args.command == "train" and (problem := multinode.validate(args)):
        parser.error(problem)
    if args.command == "export" and not (args.onnx or args.python):
        parser.error("export needs --onnx OUT, --python DIR, or both")
    if args.command == "export" and args.onnx:
        import onnx  # here: the other commands start without it


        newest = onnx.defs.onnx_opset_version()
        if args.opset > newest:
            parser.error(f"argument --opset: expected an integer from {MIN_OPSET} to {newest}; "
                         f"received {args.opset}")
    for module in (cli_io, cli_runs, cli_sweep, cli_profile):
        if args.command in module.COMMANDS:
            return module.run(args, out, err)
    commands = {"check": _check, "train": _train, "examples": _examples, "export": _export}
    return commands[args.command](args, out, err)


def utf8_safe(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates) written as backslash escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class _Escaping:
    """A text stream that writes what UTF-8 cannot hold (a lone surrogate from a file's name or
    key) as a backslash escape, so a strange name never stops the output."""

    def __init__(self, stream: TextIO):
        self._stream = stream.__dict__.get("_stream", stream) if isinstance(stream, _Escaping) else stream

    def write(self, text: str) -> int:
        return self._stream.write(utf8_safe(text))

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _check(args, out: TextIO, err: TextIO) -> int:
    try:
        project, _ = open_project(args.file)
    except NetCanvasError as e:
        if args.json:
            json.dump({"ok": False, "total_params": 0, "trainable_params": 0, "frozen_params": 0, "nodes": {},
                       "errors": [{"node": None, "message": str(e)}]}, out)
            out.write("\n")
        else:
            err.write(f"error: {e}\n")
        return 2
    a = analyze(project.graph)
    memory = check_warning(a, project.training)
    extra = [memory] if memory else []
    if args.json:
        json.dump(check_report(project, a, extra, expand=args.expand), out)
        out.write("\n")
    else:
        out.write(summary_table(project, a, extra, expand=args.expand))
    return 0 if a.ok else 1


def check_report(project: Project, a: Analysis, extra_warnings: list[str] = (), expand: bool = False) -> dict:
    """The ``check --json`` object; ``extra_warnings``: about the whole model (memory).
    A block node's entry names its ``block`` parameters and ``repeat``; with ``expand``,
    ``inside`` holds the entries of the nodes inside it (of its first copy)."""
    def where(i):
        return "/".join((i.node, *i.path)) if i.node else None

    frozen = frozen_counts(project.graph, a)
    total_frozen = sum(frozen.values())
    return {"ok": a.ok, "total_params": a.total_params, "trainable_params": a.total_params - total_frozen,
            "frozen_params": total_frozen, "nodes": _node_entries(project.graph, a, expand),
            "errors": [{"node": where(i), "message": str(i.message) if not i.param else f"{i.param}: {i.message}"}
                       for i in a.errors],
            "warnings": [{"node": where(i), "message": i.message} for i in a.issues if i.severity != "error"]
            + [{"node": None, "message": m} for m in extra_warnings]}


def _node_entries(graph, a: Analysis, expand: bool) -> dict:
    nodes = {}
    frozen = frozen_counts(graph, a)
    for node in graph.nodes.values():
        shape = a.shapes.get(node.id)
        entry = {"type": node.type, "output_shape": list(shape) if shape else None,
                 "params": a.param_counts.get(node.id, 0)}
        if node.id in frozen:
            entry["frozen_params"] = frozen[node.id]
        if not node.trainable:
            entry["trainable"] = False
        if node.repeat != 1:
            entry["repeat"] = node.repeat
        if node.type in graph.blocks:
            entry["block"] = a.params.get(node.id, {})
            inside = a.expansions.get(node.id)
            if expand and inside is not None:
                entry["inside"] = _node_entries(inside.graph, inside.analysis, expand)
        nodes[node.id] = entry
    return nodes


def summary_table(project: Project, a: Analysis, extra_warnings: list[str] = (), expand: bool = False) -> str:
    """A torchinfo-like table: node (type), output shape, parameters; then totals and issues
    (``extra_warnings``: about the whole model). A block node is one row naming its
    parameters; ``expand`` adds the rows inside it, indented (a repeated block's: of its first copy)."""
    rows = _rows(project.graph, a, expand, "")
    w1 = max([len("Node (type)")] + [len(r[0]) for r in rows]) + 2
    w2 = max([len("Output shape")] + [len(r[1]) for r in rows]) + 2
    w3 = max([len("Params")] + [len(r[2]) for r in rows])
    width = w1 + w2 + w3
    lines = [project.name, "=" * width,
             f"{'Node (type)':<{w1}}{'Output shape':<{w2}}{'Params':>{w3}}", "-" * width]
    lines += [f"{r[0]:<{w1}}{r[1]:<{w2}}{r[2]:>{w3}}" for r in rows]
    trainable, frozen = param_split(project.graph, a)
    lines += ["=" * width, f"Total params: {a.total_params:,}", f"Trainable params: {trainable:,}",
              f"Frozen params: {frozen:,}"]
    if a.output:
        lines.append(f"Output: {a.output} {describe_shape(a.shapes.get(a.output))}")
    errors = a.errors
    lines.append(f"Errors: {len(errors)}" if errors else "Errors: none")
    lines += [f"  {i}" for i in errors]
    warnings = [i for i in a.issues if i.severity != "error"]
    lines += [f"Warning: {i}" for i in warnings]
    lines += [f"Warning: {m}" for m in extra_warnings]
    return utf8_safe("\n".join(lines) + "\n")


def _rows(graph, a: Analysis, expand: bool, indent: str) -> list[tuple[str, str, str]]:
    rows = []
    for n in [graph.nodes[i] for i in a.order] + [n for n in graph.nodes.values() if n.id not in a.order]:
        if indent and n.type == "Input":
            continue  # (a block's Input shows what the block node receives)
        label = n.type
        if n.type in graph.blocks:
            label += "(" + ", ".join(f"{k}={json.dumps(v)}" for k, v in a.params.get(n.id, {}).items()) + ")"
        if n.repeat != 1:
            label += f" x{n.repeat}"
        if not n.trainable:
            label += ", frozen"
        placed = n.id in a.order
        rows.append((f"{indent}{n.id} ({label})", describe_shape(a.shapes.get(n.id)) if placed else "?",
                     f"{a.param_counts.get(n.id, 0):,}" if placed else "0"))
        inside = a.expansions.get(n.id)
        if expand and inside is not None:
            rows += _rows(inside.graph, inside.analysis, expand, indent + "  ")
    return rows


def _train(args, out: TextIO, err: TextIO) -> int:
    opened = open_or_report(args.file, err)
    if opened is None:
        return 2
    project, is_example = opened
    if args.dataset:
        project.dataset = {**project.dataset, "name": args.dataset}
    overrides = {"epochs": args.epochs, "device": args.device, "lr": args.lr, "batch_size": args.batch_size,
                 "kernels": args.kernels}
    # imported here so that `check` and `examples` start without importing torch
    from .session.supervisor import RunSupervisor
    from .training.distributed import INTERRUPTED
    from .weights import check_writable

    try:
        weights = weights_file(args.file, project, is_example, args.out)
        check_writable(weights)  # before any data is loaded or any step taken
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1

    start = None if args.fresh or project.training.get("init_weights") else _start_weights(weights, err)
    if start is not None:
        overrides["init_weights"] = str(start.resolve())
    progress = _Progress(err, enabled=err.isatty() and not args.json)
    replaces = weights.exists()  # before the run writes there
    supervisor = RunSupervisor()
    nodes = multinode.nodes_from_args(args)
    # across machines, node 0 (global rank 0) records the run; the other nodes record nothing
    recorder = _recorder(supervisor, project, overrides, weights, err) if nodes is None or nodes.main else None
    failures: list[str] = []
    supervisor.ready.connect(lambda info: _header(args, project, info, weights, replaces, out, err))
    supervisor.batch.connect(progress.batch)
    supervisor.epoch.connect(lambda event: _epoch(args, event, progress, out))
    supervisor.failed.connect(failures.append)
    supervisor.start(project, where="inline", weights_path=weights, overrides=overrides,
                     nproc=args.nproc if args.nproc > 1 or nodes else None,
                     nodes=nodes.as_option() if nodes else None,
                     set_aside_incomparable=args.nproc <= 1 and nodes is None,
                     batch_events=progress.enabled or recorder is not None)  # the store keeps every minibatch
    try:
        with _Interrupts(supervisor, args.nproc * args.nnodes) as interrupts:
            result = supervisor.wait()
    finally:
        if recorder is not None:
            recorder.detach(INTERRUPTED)  # a run still open was killed: crashed, with what it logged
            recorder.store.close()
    if result is None:
        err.write(f"error: {INTERRUPTED if interrupts.killed else failures[0]}\n")
        _recorded(recorder, None, out, err)
        return 1
    progress.clear()
    _result(args, result, out, err, recorder)
    if not result.ok:
        err.write(f"error: {result.message}\n")
    if result.weights_error:
        err.write(f"error: {result.weights_error}\n")
    return 0 if result.ok and not result.weights_error else 1


def _recorder(supervisor, project: Project, overrides: dict, weights: Path, err: TextIO):
    """A RunRecorder writing this run into the store beside ``weights`` (runs that a killed
    ``train`` left "running" are marked crashed first), or None after a note saying why the
    run cannot be recorded (the store cannot be opened): training goes on without it."""
    try:
        store = RunStore(store_path_for(weights))
    except NetCanvasError as e:
        err.write(f"note: this run will not be recorded: {e}\n")
        return None
    try:
        store.fail_stale()
    except NetCanvasError as e:
        err.write(f"note: {e}\n")
    # the project as this run trains it: the file's settings with the options given here
    # (not init_weights: where it starts from is in the run's settings)
    data = project_to_dict(project)
    data["training"] = {**data["training"], **{k: v for k, v in overrides.items()
                                               if v is not None and k != "init_weights"}}
    return RunRecorder(store, supervisor, data, weights)


def _recorded(recorder, result, out: TextIO, err: TextIO) -> None:
    """The line that names the run in the store (or why it is not there)."""
    if recorder is None or recorder.run_id is None:
        return
    if recorder.error:
        err.write(f"note: run {recorder.run_id} could not be recorded in {recorder.store.path}: {recorder.error}\n")
    elif result is None:
        err.write(f"note: run {recorder.run_id}: recorded as {recorder.status or 'crashed'} in {recorder.store.path}\n")
    else:
        out.write(f"run {recorder.run_id}: recorded in {recorder.store.path} (netcanvas runs lists the runs)\n")


def _start_weights(weights: Path, err: TextIO) -> Path | None:
    """The project's weights, when a run can start from them: they exist and can be read
    (otherwise a note says why and the run starts afresh)."""
    if not weights.exists():
        return None
    from .weights import read_shapes

    try:
        read_shapes(weights)
    except NetCanvasError as e:
        err.write(f"note: not starting from the weights in place: {e}\n")
        return None
    return weights


class _Interrupts:
    """Ctrl-C (SIGINT) while ``train`` runs: the first stops the run after the current
    minibatch (its weights are still tested and saved); a second one ends a run across
    several processes at once (``killed``), and does nothing more to a run in one."""

    def __init__(self, supervisor, nproc: int):
        self.supervisor, self.nproc = supervisor, nproc
        self.count = 0
        self.killed = False
        self._previous = None

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._interrupt)
        return self

    def _interrupt(self, signum, frame) -> None:
        # runs in the main thread, perhaps in the middle of a poll: the supervisor's reading
        # checks after every message whether the run it reads is still the current one
        self.count += 1
        if self.count == 1:
            self.supervisor.stop()
        elif self.nproc > 1 and not self.killed:
            self.killed = True
            self.supervisor.kill()

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _epoch(args, event, progress: "_Progress", out: TextIO) -> None:
    progress.clear()
    if args.json:
        out.write(json.dumps({"epoch": event.epoch, "train_loss": event.train_loss,
                              "train_accuracy": event.train_accuracy, "val_loss": event.val_loss,
                              "val_accuracy": event.val_accuracy, "seconds": round(event.seconds, 3)}) + "\n")
    else:
        out.write(_epoch_line(event) + "\n")
    out.flush()


def _result(args, result, out: TextIO, err: TextIO, recorder=None) -> None:
    """The last lines of ``train``: the outcome, where the weights went (and why not in
    place, when they were held back), and the run's id in the store."""
    if args.json:
        recorded = recorder is not None and recorder.run_id is not None and not recorder.error
        if recorder is not None and recorder.error:
            err.write(f"note: run {recorder.run_id} could not be recorded in {recorder.store.path}: "
                      f"{recorder.error}\n")
        out.write(json.dumps({"test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
                              "weights": result.weights_path, "weights_target": result.weights_target,
                              "weights_held_back": result.weights_held_back,
                              "weights_error": result.weights_error,
                              "weights_set_aside": result.weights_set_aside, "reason": result.reason,
                              "message": result.message, "seconds": round(result.seconds, 3),
                              "run_id": result.run_id,
                              "runs_store": str(recorder.store.path) if recorded else None,
                              "run_weights": recorder.weights if recorded else None}) + "\n")
        return
    acc = "n/a" if result.test_accuracy is None else f"{result.test_accuracy:.2%}"
    out.write(f"{result.message}. test accuracy {acc}; weights: {result.weights_path or 'not saved'}\n")
    if result.weights_held_back and result.weights_path and not result.weights_error:
        kept = "; the weights already there were kept" if Path(result.weights_target).exists() else ""
        out.write(f"note: this run's weights are in {result.weights_path}, not in {result.weights_target}: "
                  f"{result.weights_held_back}{kept}\n")
    if result.weights_set_aside:
        out.write(f"note: {result.weights_set_aside}\n")
    _recorded(recorder, result, out, err)


def _header(args, project: Project, info: dict, weights: Path, replaces: bool, out: TextIO,
            err: TextIO) -> None:
    """What ``train`` says once the run is ready: its notes, and (without --json) the data,
    the device (the processes, for several) and where the weights go."""
    # the run's notes; across several processes the last says what the editor cannot show then
    notes = info["notes"][:-1] if info.get("nproc") else info["notes"]
    err.writelines(f"note: {note}\n" for note in notes)
    if args.json:
        return
    data = info["dataset"]
    sizes = data["split_sizes"]
    device = info["device"]
    if info.get("nproc"):
        device = (f"{info['device_type']}, {info['nproc']} processes ({info['backend']}, DistributedDataParallel, "
                  f"{info['per_process_batch']} samples each per step)")
    if info.get("nnodes", 1) > 1:
        device += f", node {info['node_rank']} of {info['nnodes']}"
    out.write(f"Training {project.name!r} on {data['name']} "
              f"({sizes['train']} train / {sizes['val']} val / {sizes['test']} test) on {device}\n")
    if info.get("node_rank"):  # another machine's node: node 0 reports and writes the weights
        out.write("this is a worker node: node 0 (global rank 0) reports the epochs and writes the weights\n")
        out.flush()
        return
    replacing = (" (replacing the weights there unless this run is stopped, diverges or ends worse)"
                 if replaces else "")
    start = project.training.get("init_weights") or info.get("settings", {}).get("init_weights")
    begins = (f"training starts from {start} (the note above says which nodes; --fresh: from a fresh "
              "initialization)" if start else "training starts from fresh initial weights")
    out.write(f"weights: {begins}; the result goes to {weights}{replacing}\n")
    out.flush()


def _epoch_line(e) -> str:
    def pct(v):
        return "  n/a " if v is None else f"{v:6.2%}"

    val = "n/a" if e.val_loss is None else f"{e.val_loss:.4f}"
    return (f"epoch {e.epoch:>3}/{e.epochs}  loss {e.train_loss:.4f}  acc {pct(e.train_accuracy)}  "
            f"val loss {val}  val acc {pct(e.val_accuracy)}  {e.seconds:.2f}s")


class _Progress:
    """A one-line progress bar on a terminal (nothing when output is piped)."""

    def __init__(self, stream: TextIO, enabled: bool):
        self.stream, self.enabled, self.shown = stream, enabled, False

    def batch(self, e) -> None:
        if not self.enabled or (e.batch % 5 and e.batch != e.batches):
            return
        done = int(30 * e.batch / e.batches)
        self.stream.write(f"\repoch {e.epoch} [{'#' * done}{'.' * (30 - done)}] "
                          f"{e.batch}/{e.batches} loss {e.loss:.4f} {e.samples_per_second:,.0f} samples/s ")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 90 + "\r")
            self.shown = False


def _export(args, out: TextIO, err: TextIO) -> int:
    opened = open_or_report(args.file, err)
    if opened is None:
        return 2
    project, is_example = opened
    weights = Path(args.weights) if args.weights else weights_file(args.file, project, is_example)
    chosen = weights if weights.exists() or args.weights else None
    if chosen is None:  # the summary names the weights file when there is one
        err.write(f"note: no trained weights at {weights} (train the project first): "
                  "exporting fresh initial weights\n")
    try:
        if args.python:  # first: it makes the folder, where the .onnx file may go too
            from .export.python_export import export_python  # here: torch only for the commands that need it

            report = export_python(project, args.python, chosen)
            err.writelines(f"note: {note}\n" for note in report.notes)
            out.write(report.summary() + "\n")
        if args.onnx:
            from .export.onnx_export import export_onnx  # here: torch and onnx only where needed

            out.write(export_onnx(project, args.onnx, chosen, args.opset).summary() + "\n")
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    except OSError as e:  # the .onnx file's folder is missing or not writable
        err.write(f"error: {args.onnx}: cannot be written: {e.strerror or e}\n")
        return 1
    return 0


def _examples(args, out: TextIO, err: TextIO) -> int:
    if args.name:
        try:
            out.write(example_path(args.name).read_text("utf-8"))
        except ProjectError as e:
            err.write(f"error: {e}\n")
            return 2
        return 0
    items = list_examples()
    width = max(len(e.name) for e in items) + 2
    for e in items:
        out.write(f"{e.name:<{width}}{e.title}\n")
    return 0
