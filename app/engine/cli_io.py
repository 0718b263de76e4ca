"""The headless commands ``netcanvas import`` (ONNX -> project + weights) and
``netcanvas predict`` (run a project with its weights on a ``.npy`` batch).

Same conventions as ``cli.py``: errors are one line on stderr; exit code 1 when the model,
data or weights have a problem, 2 when a file cannot be read or parsed. Also what every
command uses to open a project and find its weights (``open_project``, ``weights_file``).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import TextIO

import numpy as np

from .errors import NetCanvasError, ProjectError
from .examples import example_path
from .files import atomic_write
from .inference import analyze
from .project import SUFFIX, Project, load_project, weights_path_for

COMMANDS = ("import", "predict")


def add_parsers(sub) -> None:
    """Add the ``import`` and ``predict`` sub-commands to ``sub`` (argparse sub-parsers)."""
    imp = sub.add_parser("import", help="import an ONNX model or a PyTorch module as a project, with its weights")
    imp.add_argument("model", help="the .onnx file to import, or a PyTorch module as MODULE:CALLABLE (MODULE "
                                   "importable or a .py file, whose code then runs; CALLABLE a class or function "
                                   "giving an nn.Module)")
    imp.add_argument("out", help=f"the project file to write (*{SUFFIX}); the weights go beside it")
    imp.add_argument("--input-shape", action="append", default=[], metavar="NAME=D1,D2,...",
                     help="ONNX: the shape (without batch) of an input whose size the file leaves open; "
                          "PyTorch: the input's shape without batch, C,H,W (required)")
    imp.add_argument("--output-name", metavar="NAME", help="the output to import, for a model with several")
    imp.add_argument("--kwargs", metavar="JSON", help="PyTorch: keyword arguments for CALLABLE, a JSON object")

    pred = sub.add_parser("predict", help="run a project with its weights on a batch of samples")
    pred.add_argument("file", help="a project file, or the name of a bundled example")
    pred.add_argument("--input", required=True, metavar="X.npy",
                      help="the samples, one per row of the first axis")
    pred.add_argument("--output", required=True, metavar="Y.npy", help="where to write the outputs")
    pred.add_argument("--weights", help="the weights to use (default: the project's own)")
    pred.add_argument("--no-normalize", action="store_true",
                      help="the inputs are already normalized: skip the training normalization")
    pred.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N or mps")


def open_or_report(spec: str, err: TextIO) -> tuple[Project, bool] | None:
    """``open_project``, or None after writing the error as one line (the caller exits with 2)."""
    try:
        return open_project(spec)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return None


def open_project(spec: str) -> tuple[Project, bool]:
    """A project from a path, or from an example's name; True when it is an example (it
    then has no path, like an untitled copy: its weights are not in the package, see
    ``weights_file``)."""
    path = Path(spec)
    if not path.exists() and not spec.endswith(".json") and "/" not in spec:
        project = load_project(example_path(spec))
        project.path = None
        return project, True
    return load_project(path), False


def weights_file(spec: str, project: Project, is_example: bool, out_dir: str | None = None) -> Path:
    """The one place ``train``, ``export`` and ``predict`` use for a project's weights:
    ``out_dir/NAME.safetensors`` when given; an example's in the current folder (the
    package may be read-only); else beside the project file."""
    if is_example:
        name = spec + SUFFIX
    else:
        name = project.path.name if project.path else "model" + SUFFIX
    if out_dir:
        return weights_path_for(Path(out_dir) / name)
    if is_example or project.path is None:
        return weights_path_for(Path.cwd() / name)
    return weights_path_for(project.path)


def run(args, out: TextIO, err: TextIO) -> int:
    """Run the ``import`` or ``predict`` command parsed into ``args``; returns the exit code."""
    return {"import": _import, "predict": _predict}[args.command](args, out, err)


def _import(args, out: TextIO, err: TextIO) -> int:
    if args.model.endswith(".pt2"):
        return _import_pt2(args, out, err)
    if ":" in args.model and not args.model.endswith(".onnx") and not Path(args.model).exists():
        return _import_torch(args, out, err)
    if args.kwargs is not None:
        err.write("error: --kwargs: only for a PyTorch module (MODULE:CALLABLE)\n")
        return 2
    # here: torch and onnx load only for this command (`check` and `examples` start quickly)
    from .importers.onnx_import import TOLERANCE, OnnxFileError, compare_with_onnxruntime, import_onnx, save_imported

    try:
        shapes = _input_shapes(args.input_shape)
    except ValueError as e:
        err.write(f"error: --input-shape: {e}\n")
        return 2
    target = _project_target(args.out, err)
    if target is None:
        return 2
    try:
        result = import_onnx(args.model, shapes, args.output_name)
    except OnnxFileError as e:
        err.write(f"error: {e}\n")
        return 2
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    try:
        difference = compare_with_onnxruntime(result)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    if not difference <= TOLERANCE:
        err.write(f"error: the imported graph differs from onnxruntime by {difference:.3g} (more than "
                  f"{TOLERANCE:g}); nothing was written\n")
        return 1
    return _write_imported(args.model, result, save_imported, target, f"onnxruntime vs the imported graph: "
                           f"largest difference {difference:.3g}", TOLERANCE, out, err)


def _import_torch(args, out: TextIO, err: TextIO) -> int:
    """``netcanvas import MODULE:CALLABLE OUT --input-shape C,H,W [--kwargs JSON]``."""
    target = _project_target(args.out, err)
    if target is None:
        return 2
    if len(args.input_shape) != 1 or "=" in args.input_shape[0]:
        err.write("error: --input-shape: a PyTorch module needs its input's shape once, without the batch "
                  "(such as --input-shape 3,224,224)\n")
        return 2
    try:
        shape = [int(d) for d in args.input_shape[0].replace("x", ",").split(",") if d.strip()]
    except ValueError:
        shape = []
    if not shape or any(d < 1 for d in shape):
        err.write(f"error: --input-shape: expected positive integers such as 3,224,224; "
                  f"received {args.input_shape[0]!r}\n")
        return 2
    kwargs = None
    if args.kwargs is not None:
        try:
            kwargs = json.loads(args.kwargs)
        except ValueError as e:
            err.write(f"error: --kwargs: not JSON ({e})\n")
            return 2
        if not isinstance(kwargs, dict):
            err.write(f"error: --kwargs: expected a JSON object such as '{{\"classes\": 10}}'; "
                      f"received {args.kwargs}\n")
            return 2
    # here: torch loads only for this command
    from .importers.torch_import import TOLERANCE, TorchLoadError, import_torch, save_imported as save_torch

    try:
        result = import_torch(args.model, shape, kwargs)
    except TorchLoadError as e:
        err.write(f"error: {e}\n")
        return 2
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    return _write_imported(args.model, result, save_torch, target, f"the module vs the imported graph: "
                           f"largest difference {result.difference:.3g}", TOLERANCE, out, err)


def _import_pt2(args, out: TextIO, err: TextIO) -> int:
    """``netcanvas import model.pt2 OUT``: a program saved by ``torch.export.save``, read
    without unpickling (``torch_pt2``); its input's shape is the program's own."""
    if args.input_shape or args.kwargs is not None or args.output_name:
        err.write("error: a .pt2 program takes no --input-shape, --kwargs or --output-name: "
                  "its input's shape and its output are its own\n")
        return 2
    target = _project_target(args.out, err)
    if target is None:
        return 2
    # here: torch loads only for this command
    from .importers.torch_import import TOLERANCE, save_imported as save_torch
    from .importers.torch_pt2 import Pt2ArchiveError, import_pt2

    try:
        result = import_pt2(args.model)
    except Pt2ArchiveError as e:
        err.write(f"error: {e}\n")
        return 2
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    return _write_imported(args.model, result, save_torch, target, f"the program vs the imported graph: "
                           f"largest difference {result.difference:.3g}", TOLERANCE, out, err)


def _project_target(out_arg: str, err: TextIO) -> Path | None:
    target = Path(out_arg)
    if not target.name or target.is_dir():
        err.write(f"error: {out_arg!r}: expected the path of the project file to write, "
                  f"such as imported{SUFFIX}\n")
        return None
    if not target.name.endswith(".json"):
        target = target.with_name(target.name + SUFFIX)
    return target


def _write_imported(source: str, result, save, target: Path, compared: str, tolerance: float,
                    out: TextIO, err: TextIO) -> int:
    """Write an import's project and weights (``save(result, target)``) and say what was
    imported and how closely it matches (``compared``); the command's exit code."""
    try:
        project_path, weights_path = save(result, target)
    except OSError as e:
        err.write(f"error: cannot write {target}: {e.strerror or e}\n")
        return 2
    graph = result.project.graph
    a = analyze(graph)
    kinds = Counter(n.type for n in graph.nodes.values())
    listing = ", ".join(f"{k} {v}" for k, v in kinds.items())
    out.write(f"imported {source}: {len(graph.nodes)} nodes ({listing}), {a.total_params:,} parameters\n")
    out.writelines(f"note: {note}\n" for note in result.notes)
    batch = getattr(result, "batch", 3)
    out.write(f"{compared} on a batch of {batch}, relative where outputs exceed 1 (tolerance {tolerance:g})\n")
    out.write(f"wrote {project_path} and {weights_path}\n")
    return 0


def _input_shapes(items: list[str]) -> dict[str, list[int]]:
    shapes = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise ValueError(f"expected NAME=D1,D2,...; received {item!r}")
        try:
            values = [int(d) for d in dims.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            raise ValueError(f"the dimensions of {name!r} must be integers; received {dims!r}") from None
        if not values or any(v < 1 for v in values):
            raise ValueError(f"the dimensions of {name!r} must be positive integers; received {dims!r}")
        shapes[name] = values
    return shapes


def _predict(args, out: TextIO, err: TextIO) -> int:
    from .predict import normalization, predict, read_metadata  # here: torch only for this command

    opened = open_or_report(args.file, err)
    if opened is None:
        return 2
    project, is_example = opened
    weights = Path(args.weights) if args.weights else weights_file(args.file, project, is_example)
    if not args.weights and not weights.exists():
        err.write(f"error: no trained weights at {weights}; train the project first "
                  f"(netcanvas train {args.file}) or give --weights FILE\n")
        return 1
    try:
        x = _load_array(args.input)
    except ProjectError as e:
        err.write(f"error: {e}\n")
        return 2
    try:
        y = predict(project, weights, x, normalize=not args.no_normalize, device=args.device)
    except NetCanvasError as e:
        err.write(f"error: {e}\n")
        return 1
    buffer = io.BytesIO()
    np.save(buffer, y, allow_pickle=False)
    try:
        atomic_write(args.output, buffer.getvalue())
    except OSError as e:
        err.write(f"error: cannot write {args.output}: {e.strerror or e}\n")
        return 2
    how = "as given (--no-normalize)" if args.no_normalize else "as given"
    if not args.no_normalize and weights is not None:
        a = analyze(project.graph)
        if len(a.inputs) == 1 and normalization(read_metadata(weights), a.shapes[a.inputs[0]]) is not None:
            how = "normalized with the training statistics"
    out.write(f"wrote {args.output}: {y.shape[0]} outputs of shape {list(y.shape[1:])} "
              f"(inputs {how}; weights {weights})\n")
    return 0


def _load_array(path: str) -> np.ndarray:
    """A NumPy array from ``.npy`` (or a ``.npz`` holding one), never unpickling."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ProjectError("no such file", path) from None
    except (OSError, ValueError, EOFError) as e:
        raise ProjectError(f"cannot be read as a NumPy .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                           path) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = list(data.files)
            if len(names) != 1:
                raise ProjectError(f"holds {len(names)} arrays ({', '.join(names)}); give one array", path)
            return data[names[0]]
    return data
