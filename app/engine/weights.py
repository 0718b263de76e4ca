"""Weights files: safetensors (and PyTorch state_dicts, read only with weights_only=True).

Tensor names are ``<node id>.<torch name>``, as the compiled module's state_dict names them.
A run whose weights must not replace the ones in place (stopped, diverged, worse) writes
them to ``NAME.runs/<run id>.safetensors`` beside the weights file (``run_weights_path``);
``adopt_run_weights`` puts such a file in place when the user chooses it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from .errors import WeightsError, first_line
from .files import atomic_write
from .lazy import LazyModule

if TYPE_CHECKING:
    from torch import nn

    from .project import Project

# torch loads at the first tensor read or written: the run store and ``netcanvas check``
# use this module's names and paths without any
torch = LazyModule("torch")
st_torch = LazyModule("safetensors.torch")

MAX_JSON_DEPTH = 32  # metadata values are flat lists; deeper nesting is refused, not recursed into


def save_weights(module: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``module.state_dict()`` as safetensors, atomically. Returns the path."""
    return save_tensors(module.state_dict(), path, metadata)


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a state dict as safetensors (on the CPU, contiguous), atomically. Returns the path."""
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, st_torch.save(plain, metadata=metadata))
    return Path(path)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, or from a PyTorch file (``.pt``/``.pth``) read
    with ``weights_only=True`` so nothing in it runs. Raises ``WeightsError``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot be read: {e.strerror or e}", str(p)) from None
    if p.suffix in (".pt", ".pth", ".bin"):
        return _read_torch(p)
    try:
        return st_torch.load(raw)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise WeightsError(f"is not a valid safetensors file ({e})", str(p)) from None


def _read_torch(p: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad or unsafe file
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise WeightsError("not a weights-only file (it needs pickle, which NetCanvas never runs); "
                               "save it with safetensors", str(p)) from None
        raise WeightsError(f"cannot be read as a PyTorch state_dict: {first_line(e)}", str(p)) from None
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError("does not hold a state_dict (a mapping of names to tensors)", str(p))
    return data


def apply_weights(module: nn.Module, tensors: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Load ``tensors`` into ``module``. Raises ``WeightsError`` naming the first tensor that
    does not fit (missing, unexpected, or of another shape, with both shapes)."""
    expected = module.state_dict()
    for name, target in expected.items():
        if name not in tensors:
            raise WeightsError(f"has no tensor {name!r}, which the graph needs "
                               f"(shape {list(target.shape)})", source)
        got = tensors[name]
        if tuple(got.shape) != tuple(target.shape):
            raise WeightsError(f"tensor {name!r} has shape {list(got.shape)}, but the graph "
                               f"needs {list(target.shape)}", source)
    extra = [n for n in tensors if n not in expected]
    if extra:
        raise WeightsError(f"tensor {extra[0]!r} matches no parameter of the graph", source)
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name].to(target.dtype))


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load the file at ``path`` strictly (``apply_weights``: every tensor must fit; what
    export and predict use). Raises ``WeightsError``."""
    apply_weights(module, read_weights(path), str(path))


# -- a partial load: what survives an edit of the graph -----------------------------------
@dataclass(frozen=True)
class PartialLoad:
    """What ``apply_partial`` did, node by node (a node's tensors are named ``<node id>.``):

    - ``kept``: nodes whose every tensor was in the file with its shape: they took them;
    - ``initialized``: nodes with a tensor missing from the file or of another shape: they
      keep their fresh initialization, all of their tensors (``reasons[node]`` says why);
    - ``dropped``: nodes of the file that the graph no longer has (their tensors unused).
    Nodes without tensors (activations, pools) are in none of the lists."""

    source: str
    kept: list[str] = field(default_factory=list)
    initialized: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether the file fitted the whole graph (nothing initialized, nothing dropped)."""
        return not self.initialized and not self.dropped

    def summary(self) -> str:
        """One sentence for the run's notes, the status bar and ``train``: which nodes start
        from the file and which were initialized (and why)."""
        name = Path(self.source).name
        if self.complete:
            return f"every node with weights ({len(self.kept)}) starts from {name}"
        start = "starts" if len(self.kept) == 1 else "start"
        parts = [f"{_nodes(self.kept)} {start} from {name}" if self.kept else f"no node starts from {name}"]
        if self.initialized:
            why = "; ".join(f"{n}: {self.reasons[n]}" for n in self.initialized[:4])
            more = f"; and {len(self.initialized) - 4} more" if len(self.initialized) > 4 else ""
            parts.append(f"{_nodes(self.initialized)} initialized ({why}{more})")
        if self.dropped:
            parts.append(f"unused from the file: {_nodes(self.dropped)}")
        return "; ".join(parts)


def _nodes(ids: list[str], shown: int = 8) -> str:
    names = ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
    return f"{len(ids)} node{'' if len(ids) == 1 else 's'} ({names})"


def _node_of(name: str) -> str:
    return name.split(".", 1)[0]


def plan_partial(shapes: dict[str, tuple[int, ...]], file_shapes: dict[str, tuple[int, ...]],
                 source: str = "weights") -> PartialLoad:
    """What a partial load of a file whose tensors have ``file_shapes`` into a module whose
    state_dict has ``shapes`` (both name -> shape) keeps, node by node: a node whose tensors all have a tensor of the same
    name and shape in ``tensors`` takes them all; any other keeps its initialization whole
    (half a node's weights is no trained layer). Returns the ``PartialLoad``; changes
    nothing."""
    by_node: dict[str, list[str]] = {}
    for name in shapes:
        by_node.setdefault(_node_of(name), []).append(name)
    result = PartialLoad(source)
    for node, names in by_node.items():
        reason = None
        for name in names:
            got = file_shapes.get(name)
            if got is None:
                reason = f"the file has no {name!r}"
            elif tuple(got) != tuple(shapes[name]):
                reason = f"{name!r} is {list(got)} in the file, {list(shapes[name])} now"
            if reason:
                break
        if reason is None:
            result.kept.append(node)
        else:
            result.initialized.append(node)
            result.reasons[node] = reason
    file_nodes = dict.fromkeys(_node_of(n) for n in file_shapes)
    result.dropped.extend(n for n in file_nodes if n not in by_node)
    return result


def apply_partial(module: nn.Module, tensors: dict[str, torch.Tensor], source: str = "weights") -> PartialLoad:
    """Load into ``module`` what fits of ``tensors`` (see ``plan_partial``): the nodes whose
    parameter shapes did not change keep their weights, the others their initialization.
    Returns the ``PartialLoad``; raises ``WeightsError`` when not one node fits (the file
    belongs to another network altogether)."""
    expected = module.state_dict()
    result = plan_partial({k: tuple(v.shape) for k, v in expected.items()},
                          {k: tuple(v.shape) for k, v in tensors.items()}, source)
    if expected and not result.kept:
        raise WeightsError(f"fits no node of the graph ({result.summary()})", source)
    with torch.no_grad():
        for name, target in expected.items():
            if _node_of(name) in result.kept:
                target.copy_(tensors[name].to(target.dtype))
    return result


def load_partial(module: nn.Module, path: str | Path) -> PartialLoad:
    """``apply_partial`` with the file at ``path`` (what a run that starts from weights
    uses; export and predict load strictly). Raises ``WeightsError``."""
    return apply_partial(module, read_weights(path), str(path))


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor of a weights file, from a safetensors header alone (no
    tensor is read), else from the tensors. Raises ``WeightsError``."""
    p = Path(path)
    if p.suffix in (".pt", ".pth", ".bin"):
        return {k: tuple(v.shape) for k, v in read_weights(p).items()}
    try:
        with safe_open(str(p), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except OSError as e:
        raise WeightsError(f"cannot be read: {e.strerror or e}", str(p)) from None
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise WeightsError(f"is not a valid safetensors file ({e})", str(p)) from None


# -- metadata ---------------------------------------------------------------------------
def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a ``.safetensors`` file ({} for other files, none, or a file
    that cannot be read: the header is parsed by safetensors, which bounds its nesting)."""
    p = Path(path)
    if p.suffix in (".pt", ".pth", ".bin"):
        return {}
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata()
    except (OSError, SafetensorError, ValueError, RuntimeError):
        return {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def bounded_json(text: str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads(text)``, refusing (ValueError) text nested deeper than ``max_depth``
    before parsing it, so that crafted metadata cannot exhaust the recursion limit."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise ValueError(f"nested more than {max_depth} levels deep")
        elif token in "]}":
            depth -= 1
    return json.loads(text)


# -- where a run's weights go ------------------------------------------------------------
def new_run_id() -> str:
    """A run's id: its start time (UTC) and four random hex digits, 20261202-143455-1a2b."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def runs_dir(target: str | Path) -> Path:
    """The folder of the runs beside a weights file: ``lenet.safetensors`` -> ``lenet.runs``."""
    t = Path(target)
    stem = t.name[: -len(".safetensors")] if t.name.endswith(".safetensors") else t.stem
    return t.with_name(stem + ".runs")


def run_weights_path(target: str | Path, run_id: str) -> Path:
    """Where run ``run_id`` keeps weights that were not put in place at ``target``."""
    return runs_dir(target) / f"{run_id}.safetensors"


def adopt_run_weights(run_file: str | Path, target: str | Path) -> Path:
    """Put a run's weights in place: an atomic copy of ``run_file`` over ``target`` (the
    run's file stays). Returns ``target``; raises ``WeightsError`` when either side fails."""
    source = Path(run_file)
    try:
        data = source.read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot be read: {e.strerror or e}", str(source)) from None
    try:
        atomic_write(target, data)
    except OSError as e:
        raise WeightsError(f"cannot be written: {e.strerror or e}", str(target)) from None
    return Path(target)


def check_writable(target: str | Path) -> None:
    """Raise ``WeightsError`` unless a weights file can be written at ``target``: its
    folder exists (or can be made) and takes a new file, and nothing is in the way."""
    t = Path(target)
    if t.is_dir():
        raise WeightsError("is a folder; the weights file cannot be written there", str(t))
    folder = t.parent
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                raise WeightsError(f"cannot be written: {above} is a file, not a folder", str(t))
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot be written: the folder {folder} cannot be made "
                           f"({e.strerror or e})", str(t)) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{t.name}.", suffix=".probe", dir=folder)
    except OSError as e:
        raise WeightsError(f"cannot be written: the folder {folder} takes no new file "
                           f"({e.strerror or e})", str(t)) from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def safe_places(name: str) -> list[Path]:
    """Where to try to keep weights that could not be written where they belong, in order:
    the system's temporary folder, then ``~/.netcanvas/recovery`` (files named ``name``)."""
    return [Path(tempfile.gettempdir()) / "netcanvas-weights" / name,
            Path.home() / ".netcanvas" / "recovery" / name]


def init_weights_path(project: "Project", settings: dict) -> Path | None:
    """The file ``training.init_weights`` names (None when unset): relative to the project's
    folder, or to the current folder for a project without a file (an example, a new
    project), where ``train`` writes those projects' weights. Raises ``WeightsError`` when
    it does not exist."""
    name = settings.get("init_weights")
    if not name:
        return None
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (project.path.parent if project.path else Path.cwd()) / path
    if not path.is_file():
        raise WeightsError("does not exist: training.init_weights names it as the weights to start from "
                           "(train the project that writes it first, or clear the setting)", str(path))
    return path
