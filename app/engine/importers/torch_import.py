"""PyTorch import: an ``nn.Module`` becomes a NetCanvas project and its weights.

``import_torch("my_nets.py:ResNet", [3, 32, 32], {"layers": [2, 2]})`` loads the module
(importing a ``.py`` file RUNS its code: that is how Python defines the class), traces it
with ``torch.fx`` (``symbolic_trace`` semantics: torch.nn layers are leaves, everything else
is traced through), maps every node to a catalogue type (``torch_map``), turns repeated
structure into blocks (``torch_blocks``), checks the project as a file would be checked
(written and parsed back), and runs it against the module on random inputs: more than
``TOLERANCE`` (relative where outputs exceed 1) is a failure. Anything that cannot be
mapped is refused naming every offending node with its op and source line; nothing is
half-imported.

Modules that ``torch.fx`` cannot trace (Python control flow on shapes), or whose graph
calls a function of theirs that ``torch.fx.wrap`` keeps whole (swin's window attention),
are exported with ``torch.export`` instead (``torch_export``); one that neither can follow
(control flow on values) is refused with both reasons. An input that feeds an
``nn.Embedding`` is token ids: an int64 Input, compared on random ids below its vocabulary.
``.pt2`` archives (``torch.export.save``) are read by ``torch_pt2``, without unpickling.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..compiler import compile_graph
from ..errors import NetCanvasError, first_line
from ..inference import analyze
from ..project import Project, dumps_project, parse_project, save_project, weights_path_for
from ..weights import apply_weights, save_tensors
from .torch_blocks import Assembler
from .torch_export import ExportFailed, exported_graph
from .torch_handlers import is_opaque
from .torch_layers import PASS_THROUGH, is_layer
from .torch_map import Failure, Mapper

TOLERANCE = 1e-4
# what the editor says before importing from a .py file (the issue asks it to say so plainly)
RUNS_CODE = ("Importing from a .py file runs that file's code (that is how Python defines its classes): "
             "import only files you trust.")
MAX_FAILURES_SHOWN = 40


class TorchImportError(NetCanvasError):
    """A module that cannot be imported; ``failures`` lists the nodes NetCanvas has no
    layer for (``torch_map.Failure``: op, source line, reason)."""

    def __init__(self, message: str, where: str | None = None, failures: list[Failure] | None = None):
        super().__init__(message, where)
        self.failures = failures or []


class TorchLoadError(TorchImportError):
    """``MODULE:CALLABLE`` cannot be loaded or called, or gives no ``nn.Module``."""


@dataclass
class TorchImportResult:
    """The imported project (laid out, blocks made), its weights keyed as the compiled
    module's state dict, the largest difference measured against the module, and notes."""

    project: Project
    state: dict[str, torch.Tensor]
    difference: float
    notes: list[str] = field(default_factory=list)
    source: str = ""
    batch: int = 3  # the samples compared at once


# -- public API -------------------------------------------------------------------------------
def load_module(target: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """The ``nn.Module`` that ``MODULE:CALLABLE`` gives when called with ``kwargs``. MODULE
    is an importable module name or a path to a ``.py`` file (whose code runs: importing
    it is how Python defines its classes). Raises ``TorchLoadError``."""
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise TorchLoadError(f"expected MODULE:CALLABLE (such as my_nets.py:ResNet or my_pkg.nets:resnet18); "
                             f"received {target!r}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TorchLoadError(f"the keyword arguments must be a JSON object; received {kwargs!r}")
    mod = _import(module_part)
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TorchLoadError(f"{module_part} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TorchLoadError(f"{module_part}:{attr} is not a class or function")
    try:
        model = obj(**(kwargs or {}))
    except Exception as e:  # the user's code may raise anything
        raise TorchLoadError(f"calling {attr}(**{kwargs or {}}) failed: {type(e).__name__}: {first_line(e)}") from e
    if not isinstance(model, nn.Module):
        raise TorchLoadError(f"{attr}(...) returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def import_torch(target: str, input_shape: list[int], kwargs: dict[str, Any] | None = None) -> TorchImportResult:
    """Load ``target`` (``load_module``) and import it (``import_module``)."""
    model = load_module(target, kwargs)
    result = import_module(model, input_shape)
    result.source = target
    return result


def import_module(model: nn.Module, input_shape: list[int] | tuple[int, ...], name: str | None = None,
                  tolerance: float = TOLERANCE) -> TorchImportResult:
    """Import ``model`` for one input of ``input_shape`` (without the batch). Returns the
    result after checking it against the model; raises ``TorchImportError`` when the model
    cannot be traced, holds nodes NetCanvas has no layer for (all named), or the imported
    graph differs from it by more than ``tolerance``."""
    shape = _check_shape(input_shape)
    name = name or type(model).__name__
    was_training = model.training
    model.eval()
    try:
        gm, notes, vocabulary = _graph(model, name, shape)
        mapper = Mapper(gm, [shape], integer_input=vocabulary is not None)
        flats, output = mapper.run()
        if mapper.failures:
            raise _unmappable(name, mapper.failures, notes)
        if output is None:
            raise TorchImportError(f"{name}.forward returns no tensor NetCanvas can take as its output")
        graph, state = Assembler(flats, output, dict(model.named_modules())).run()
        project = _checked_project(Project(graph=graph, name=name))
        difference = compare_with_module(project, state, model, shape, vocabulary=vocabulary)
    finally:
        model.train(was_training)
    if not difference <= tolerance:
        raise TorchImportError(f"the imported graph differs from {name} by {difference:.3g} (more than {tolerance:g}); "
                               "nothing was written")
    blocks = len(project.graph.blocks)
    notes += [f"{blocks} block{'s' if blocks != 1 else ''} made from repeated structure: "
             + ", ".join(project.graph.blocks)] if blocks else []
    return TorchImportResult(project, state, difference, notes)


def compare_with_module(project: Project, state: dict[str, torch.Tensor], model: nn.Module,
                        input_shape: tuple[int, ...], batch: int = 3, seed: int = 0,
                        vocabulary: int | None = None) -> float:
    """The largest difference between ``model`` and the compiled ``project`` with ``state``
    (both in eval mode) on a random batch (token ids below ``vocabulary`` when given),
    relative to the outputs' magnitude where that is above 1. Raises ``TorchImportError``
    when the shapes differ."""
    a = analyze(project.graph)
    net = compile_graph(project.graph, a).eval()
    apply_weights(net, state, "imported weights")
    x = _example(input_shape, vocabulary, batch, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model(x)
        got = net(x)
    if not isinstance(expected, torch.Tensor):
        raise TorchImportError(f"the module returns a {type(expected).__name__}, not one tensor")
    if tuple(got.shape) != tuple(expected.shape):
        raise TorchImportError(f"the imported graph gives shape {list(got.shape)}, the module {list(expected.shape)}")
    if not expected.numel():
        return 0.0
    expected, got = expected.double(), got.double()
    scale = max(1.0, float(expected.abs().max()))
    return float((got - expected).abs().max()) / scale


def save_imported(result: TorchImportResult, out_path: str | Path) -> tuple[Path, Path]:
    """Write the project to ``out_path`` and its weights beside it, each atomically; the
    weights first, so the project never names missing weights."""
    out = Path(out_path)
    weights = weights_path_for(out)
    meta = {"source": "pytorch import"}
    if result.source:
        meta["module"] = result.source
    save_tensors(result.state, weights, meta)
    save_project(result.project, out)
    return out, weights


# -- steps ------------------------------------------------------------------------------------
def _import(module_part: str):
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise TorchLoadError("no such file", module_part)
        name = f"netcanvas_import_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TorchLoadError("cannot be imported as a Python module", module_part)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # so that classes defined there can be found by their module
        try:
            with _importable(path.resolve().parent):  # its own imports find the files beside it
                spec.loader.exec_module(mod)
        except Exception as e:  # the file's own code may raise anything
            sys.modules.pop(name, None)
            raise TorchLoadError(f"running the file failed: {type(e).__name__}: {first_line(e)}",
                                 module_part) from e
        return mod
    try:
        with _importable(Path.cwd()):  # as `python -m` would: packages in the current folder
            return importlib.import_module(module_part)
    except Exception as e:  # ImportError, or anything the module's code raises
        raise TorchLoadError(f"cannot import {module_part!r}: {type(e).__name__}: {first_line(e)}") from e


@contextlib.contextmanager
def _importable(folder: Path):
    """``folder`` first on ``sys.path`` for the duration (taken off again after)."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _check_shape(shape) -> tuple[int, ...]:
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise TorchImportError(f"the input shape must be positive integers (without the batch); received {shape!r}")
    return tuple(shape)


def _example(shape: tuple[int, ...], vocabulary: int | None, batch: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """A random input batch: values, or token ids below ``vocabulary``."""
    if vocabulary is None:
        return torch.randn(batch, *shape, generator=generator)
    return torch.randint(0, vocabulary, (batch, *shape), generator=generator)


def _vocabulary(model: nn.Module, gm: fx.GraphModule | None, shape: tuple[int, ...]) -> int | None:
    """The smallest vocabulary of the embeddings the input feeds, when it feeds one: the
    input is then token ids (an int64 Input); else None. Without a traced graph (torch.export
    is used): when the model has an nn.Embedding and refuses values where it would take ids."""
    if gm is None:
        sizes = [m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)]
        if not sizes:
            return None
        try:
            with torch.no_grad():
                model(_example(shape, None, 2))
        except Exception:  # noqa: BLE001 - an Embedding given values raises; anything else shows in the export
            return min(sizes)
        return None
    sizes = []
    for p in (n for n in gm.graph.nodes if n.op == "placeholder"):
        for user in p.users:
            if user.op == "call_module" and isinstance(gm.get_submodule(user.target), nn.Embedding):
                sizes.append(gm.get_submodule(user.target).num_embeddings)
    return min(sizes) if sizes else None


def _graph(model: nn.Module, name: str, shape: tuple[int, ...]) -> tuple[fx.GraphModule, list[str], int | None]:
    """The module's graph with every node's shape (``tensor_meta``): traced by torch.fx, or
    else exported by torch.export (then a note says why); and the vocabulary of the
    embeddings its input feeds (``_vocabulary``). Raises ``TorchImportError``."""
    try:
        gm, notes = _trace(model, name), []
        vocabulary = _vocabulary(model, gm, shape)
    except Exception as e:  # fx raises TraceError, TypeError, ... for code it cannot follow
        reason = f"{type(e).__name__}: {first_line(e)}"
        vocabulary = _vocabulary(model, None, shape)
        try:
            gm = exported_graph(model, shape, _example(shape, vocabulary, 2))
        except ExportFailed as failed:
            raise TorchImportError(f"torch.fx cannot trace {name} ({reason}), and torch.export cannot export it "
                                   f"({failed})") from e
        notes = [f"traced with torch.export: torch.fx cannot trace {name} ({reason})"]
    else:
        try:
            with torch.no_grad():
                _ShapeProp(gm).propagate(_example(shape, vocabulary, 2))
        except Exception as e:  # the user's forward may raise anything for this shape
            raise TorchImportError(f"{name} cannot run on an input of shape {list(shape)} (plus the batch): "
                                   f"{type(e).__name__}: {first_line(e)}") from e
        opaque = sorted({n.target.__name__ for n in gm.graph.nodes if n.op == "call_function" and is_opaque(n.target)})
        if opaque:
            # torch.fx kept these functions whole (torch.fx.wrap: swin's shifted_window_attention);
            # torch.export traces into them, so that the ops inside are mapped, or named if they cannot be
            try:
                gm = exported_graph(model, shape, _example(shape, vocabulary, 2))
                notes = [f"traced with torch.export: torch.fx keeps {', '.join(opaque)} whole (torch.fx.wrap); "
                         "an op inside is named at the line that calls it"]
            except ExportFailed:
                pass  # the fx graph stays; the mapping names the functions it has no layer for
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise TorchImportError(f"{name}.forward takes {len(placeholders)} inputs "
                               f"({', '.join(n.name for n in placeholders)}); NetCanvas imports modules of one input")
    return gm, notes, vocabulary


class _ShapeProp(ShapeProp):
    """fx's ShapeProp, also keeping the value of each node that computes a number or a size
    (``meta["value"]``: ``x.shape[1]`` slicing a position table)."""

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        if isinstance(result, (int, float, torch.Size)) or (
                isinstance(result, tuple) and all(isinstance(v, int) for v in result)):
            n.meta["value"] = result
        return result


class _Tracer(fx.Tracer):
    """fx's tracer, with only the torch.nn layers NetCanvas has a type for as leaves: other
    torch.nn modules (nn.TransformerEncoder, nn.Softmax2d) are traced through, into the
    layers and calls they are made of."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return super().is_leaf_module(m, qualname) and (is_layer(m) or isinstance(m, PASS_THROUGH))


def _trace(model: nn.Module, name: str) -> fx.GraphModule:
    tracer = _Tracer()
    tracer.record_stack_traces = True  # each node's source line, for the messages
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, class_name=name)


def _unmappable(name: str, failures: list[Failure], notes: list[str] | None = None) -> TorchImportError:
    """The error naming every failure: the same op at the same line for the same reason once,
    with how many times (a block's op, once per instance)."""
    counts: dict[str, int] = {}
    for f in failures:
        counts[str(f)] = counts.get(str(f), 0) + 1
    distinct = list(counts)
    shown = distinct[:MAX_FAILURES_SHOWN]
    more = len(distinct) - len(shown)
    lines = "\n  ".join(line + (f" (x{counts[line]})" if counts[line] > 1 else "") for line in shown)
    lines += f"\n  ... and {more} more" if more else ""
    why = "".join(f"\n({note})" for note in notes or [])
    return TorchImportError(f"{name} has {len(failures)} node{'s' if len(failures) != 1 else ''} NetCanvas "
                            f"has no layer for; nothing was imported:\n  {lines}{why}", failures=failures)


def _checked_project(project: Project) -> Project:
    """``project`` as its file would be read back (every parameter checked); raises
    ``TorchImportError`` naming what the file would be refused for, or the graph's errors."""
    try:
        parsed = parse_project(dumps_project(project), source=f"the imported {project.name}")
    except NetCanvasError as e:
        raise TorchImportError(f"the imported project would not be valid: {e}") from e
    a = analyze(parsed.graph)
    if not a.ok:
        raise TorchImportError("the imported graph has errors:\n  " + "\n  ".join(str(i) for i in a.errors))
    return parsed
