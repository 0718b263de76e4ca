"""ONNX export, checked right after writing.

A graph whose every node type ``onnx_direct`` maps is written from the layer declarations
(fast: no tracing); any other goes through torch's exporter (torch.export based), as does a
direct file that fails its checks. Both write opset 18 by default, a dynamic batch axis, ONNX
node names that start with the node id they come from (``conv1/Conv``) and initializers named
by the state_dict. The file must then pass ``onnx.checker.check_model(full_check=True)`` and
give, in onnxruntime, the same outputs as torch on sample inputs of another batch size: the
largest difference (relative to the outputs' magnitude where that is above 1: float32
rounding grows with it) is reported, and more than ``TOLERANCE`` is an error, never a silent
success.

The file's metadata records how inputs are prepared: the weights' input normalization
(``input_mean``, ``input_std``, ``input_shape``) and class names, and the project's dataset
settings (``netcanvas.dataset``), which an import restores (``importers.onnx_metadata``), and
the project itself with where the file holds each weight (``netcanvas.project``,
``netcanvas.weights``), from which an import restores what an inference graph drops
(``importers.onnx_project``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from ..compiler import compile_graph
from ..errors import GraphError, NetCanvasError, first_line
from ..files import atomic_write
from ..importers.onnx_checks import string_list
from ..importers.onnx_compare import onnxruntime_difference
from ..importers.onnx_metadata import exported_metadata
from ..importers.onnx_project import project_metadata
from ..inference import analyze
from ..predict import read_metadata
from ..project import Project
from ..samples import sample_tensors
from ..weights import load_weights
from .onnx_direct import Unsupported, direct_model

TOLERANCE = 1e-4
DEFAULT_OPSET = 18
_log = logging.getLogger(__name__)


class ExportError(NetCanvasError):
    """An export that failed or whose result does not match torch."""


@dataclass
class OnnxReport:
    path: Path
    opset: int
    inputs: list[str]
    output: str
    max_difference: float
    batch_sizes: tuple[int, int]
    weights: str
    # who wrote the file: "direct" (from the layer declarations) or "torch" (its exporter)
    writer: str = "torch"

    def summary(self) -> str:
        return (f"wrote {self.path} (opset {self.opset}); checker passed; onnxruntime matches torch "
                f"within {self.max_difference:.2g} (batch {self.batch_sizes[1]}, exported at "
                f"{self.batch_sizes[0]}); weights: {self.weights}")


def export_onnx(project: Project, out: str | Path, weights: str | Path | None = None,
                opset: int = DEFAULT_OPSET, seed: int = 0, direct: bool = True) -> OnnxReport:
    """Export ``project`` (with ``weights``, else the project's saved weights if any, else
    a seeded initialization) to ``out``; ``direct`` false always uses torch's exporter.
    Returns the report (``writer`` says which wrote the file). Raises ``ExportError`` /
    ``GraphError``."""
    a = analyze(project.graph)
    if not a.ok:
        raise GraphError(a.errors)
    torch.manual_seed(seed)
    model = compile_graph(project.graph, a).eval()
    source = "freshly initialized (seed %d)" % seed
    chosen = Path(weights) if weights else project.weights_path
    recorded: dict[str, str] = {}
    if chosen is not None and (weights or chosen.exists()):
        load_weights(model, chosen)
        source = str(chosen)
        recorded = read_metadata(chosen)
    names = list(a.inputs)
    state = model.state_dict()
    metadata = exported_metadata(project.dataset, recorded)
    if direct:
        try:
            proto = direct_model(project.graph, a, {k: v.detach().cpu().numpy() for k, v in state.items()}, opset)
        except Unsupported as e:
            _log.debug("torch's exporter writes %s: %s", out, e)
        else:
            try:
                difference = _write_and_check(proto, project, model, a, metadata, out, seed)
                return OnnxReport(Path(out), opset, names, a.output, difference, (2, 3), source, "direct")
            except _Mismatch as e:  # a gap in onnx_direct: torch's exporter decides
                _log.debug("the direct ONNX export of %s failed its check (%s); torch's exporter writes it", out, e)
                Path(out).unlink(missing_ok=True)  # no wrong file left behind should torch's fail too
    proto = _torch_model(model, project, a, names, opset, seed, out)
    difference = _write_and_check(proto, project, model, a, metadata, out, seed, mismatch=ExportError)
    return OnnxReport(Path(out), opset, names, a.output, difference, (2, 3), source, "torch")


class _Mismatch(ExportError):
    """A directly written file that fails the checker or differs from torch."""


def _torch_model(model, project: Project, a, names: list[str], opset: int, seed: int, out):
    """The model as torch's exporter writes it (node names from the node ids)."""
    example = sample_tensors(project.graph, a, 2, seed)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {name: {0: batch} for name in _forward_arguments(model, names)}
    try:
        with _quiet():
            program = torch.onnx.export(model, example, input_names=names, output_names=[a.output],
                                        dynamic_shapes=dynamic, dynamo=True, opset_version=opset,
                                        verbose=False)
    except Exception as e:  # the exporter raises many types; the user needs the gist
        raise ExportError(f"torch could not export the model to ONNX: {first_line(e)}") from e
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:  # the exporter falls back to its own opset where it cannot convert
        raise ExportError(f"torch's exporter could not write this model in opset {opset} (it wrote opset "
                          f"{written}); choose opset {written} or another it can convert to", str(out))
    _name_nodes(proto)
    return proto


def _write_and_check(proto, project: Project, model, a, metadata: dict[str, str], out, seed: int,
                     mismatch: type[ExportError] = _Mismatch) -> float:
    """Record the metadata in ``proto``, write it to ``out``, check it (the ONNX checker, then
    onnxruntime against ``model``); returns the largest difference. Raises ``mismatch`` when
    a check fails, ``ExportError`` when the file cannot be written."""
    _record(proto, {**metadata, **project_metadata(project, model.state_dict(), proto)})
    data = proto.SerializeToString()
    try:
        atomic_write(out, data)
    except OSError as e:
        raise ExportError(f"cannot be written: {e.strerror or e}", str(out)) from None
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except Exception as e:
        raise mismatch(f"the exported file fails the ONNX checker: {first_line(e)}", str(out)) from e
    difference = onnxruntime_difference(data, model, project.graph, a, {n: n for n in a.inputs}, batch=3,
                                        seed=seed + 1, error=mismatch, checking="the export")
    if not difference <= TOLERANCE:
        raise mismatch(f"onnxruntime's output differs from torch's by {difference:.3g} "
                       f"(more than {TOLERANCE:g}); the file is not trustworthy", str(out))
    return difference


def _forward_arguments(model, names: list[str]) -> list[str]:
    """fx may rename an argument (an Input called ``input`` becomes ``input_1``)."""
    placeholders = [n.target for n in model.graph.nodes if n.op == "placeholder"]
    return placeholders if len(placeholders) == len(names) else names


def _record(proto, values: dict[str, str]) -> None:
    """Set the model's ``metadata_props`` entries ``values`` (replacing same-named ones)."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for key, value in [*kept, *values.items()]:
        proto.metadata_props.add(key=key, value=value)


def _name_nodes(proto) -> None:
    """``node_conv2d_1`` becomes ``conv2/Conv``: the node id it came from, then the op."""
    used: dict[str, int] = {}
    for node in proto.graph.node:
        scope = None
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                parts = string_list(prop.value) or []
                scope = next((p for p in parts[1:2] if p), None)
        base = f"{scope}/{node.op_type}" if scope else node.op_type
        used[base] = used.get(base, 0) + 1
        node.name = base if used[base] == 1 else f"{base}_{used[base] - 1}"


@contextlib.contextmanager
def _quiet():
    """The exporter narrates its steps and warns about torchvision: not for our users."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]  # onnxscript: a failed
    levels = [logger.level for logger in loggers]  # opset conversion logs a traceback; we say it in a line
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
