"""PyTorch code export: a project as plain PyTorch that a user can read, run and train.

    report = export_python(project, "lenet_pytorch")

writes into the folder:

- ``model.py``: one ``nn.Module`` class named after the project, needing nothing but torch.
  ``__init__`` builds one submodule per node, the node id as its attribute
  (``self.conv1 = nn.Conv2d(1, 6, kernel_size=5)``: only arguments that differ from
  torch's defaults); ``forward`` is the code torch.fx generates for the compiled graph,
  cleaned up. The few NetCanvas modules torch has no class for (``app/engine/modules/``) are copied
  in as source. A project's blocks become one class each, shared by the block's nodes
  (``block_classes``): ``self.layer1 = Res(in_channels=8, width=16)``.
- ``weights.safetensors``: the state_dict, under the same names as the compiled graph's.
- ``data.npz`` and ``train.py`` (see ``train_script``), and a short ``README.md``.

Each submodule's constructor call is read off the built module itself (its ``__init__``
signature and attributes) and then checked by constructing it again, so a new layer type
needs nothing here. Finally model.py is imported, loaded with weights.safetensors and run
beside the compiled graph on sample inputs: a difference above ``TOLERANCE`` is an error.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import keyword
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from .. import modules as netcanvas_modules
from ..blocks import is_block
from ..compiler import compile_graph
from ..errors import GraphError, NetCanvasError
from ..files import atomic_write
from ..inference import Analysis, analyze
from ..layers.helpers import fmt
from ..project import Project
from ..samples import sample_tensors
from ..training import prepare_run
from ..weights import load_weights, save_weights
from .onnx_export import ExportError
from .block_classes import Arg, Instance, LayerCall, block_classes, call_text, instances, sequential
from .source_text import clean_forward, doc_text, forward_arguments, indent, literal
from .train_script import readme_text, save_data, train_source

TOLERANCE = 1e-5

# constructor arguments whose meaning is plain from their place: written without a name
_POSITIONAL = {"in_features", "out_features", "in_channels", "out_channels", "num_features",
               "input_size", "hidden_size", "num_embeddings", "embedding_dim", "normalized_shape"}
_SKIPPED = {"device", "dtype"}


@dataclass
class PythonReport:
    """What ``export_python`` wrote. ``max_difference``: between model.py (with
    weights.safetensors) and the compiled graph; ``notes``: what was left out and why."""

    folder: Path
    class_name: str
    files: list[str]
    max_difference: float
    weights: str
    split_sizes: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        described = {"model.py": f"model.py (class {self.class_name})"}
        if self.split_sizes:
            s = self.split_sizes
            described["data.npz"] = f"data.npz ({s['train']} train / {s['val']} val / {s['test']} test)"
        files = ", ".join(described.get(f, f) for f in self.files)
        return (f"wrote {self.folder}: {files}; model.py matches the compiled graph within "
                f"{self.max_difference:.2g}; weights: {self.weights}")


def export_python(project: Project, out_dir: str | Path, weights: str | Path | None = None, *,
                  data: bool = True) -> PythonReport:
    """Write the PyTorch version of ``project`` into ``out_dir`` (created if missing), with
    ``weights`` (else the project's saved weights if any, else a fresh initialization
    seeded with the training seed, the one NetCanvas and train.py start from). ``data``:
    also write data.npz and train.py, when the project can be trained (otherwise a note
    says why not). Raises ``GraphError``, ``WeightsError`` or ``ExportError``."""
    a = analyze(project.graph)
    if not a.ok:
        raise GraphError(a.errors)
    # the name goes into docstrings and comments: escaped there, as text, so nothing that
    # reads the files (Python importing model.py included) meets a lone surrogate
    class_name = class_name_for(project.name)
    project = dataclasses.replace(project, name=_utf8_safe(project.name))
    folder = _prepare_folder(Path(out_dir))
    seed = int(project.training.get("seed", 0))
    torch.manual_seed(seed)
    compiled = compile_graph(project.graph, a).eval()
    source = f"freshly initialized (seed {seed})"
    chosen = Path(weights) if weights else project.weights_path
    if chosen is not None and (weights or chosen.exists()):
        load_weights(compiled, chosen)
        source = str(chosen)

    text = model_source(project, a, compiled, class_name)
    files = ["model.py", "weights.safetensors"]
    _write(folder / "model.py", text)
    try:
        save_weights(compiled, folder / "weights.safetensors", {"class": class_name, "weights": _utf8_safe(source)})
    except OSError as e:
        raise ExportError(f"cannot write weights.safetensors: {e.strerror or e}", str(folder)) from None

    notes: list[str] = []
    sizes = None
    trainable = False
    if data:
        try:
            run = prepare_run(project)
        except NetCanvasError as e:
            notes.append(f"train.py and data.npz were not written: the project cannot be trained ({e})")
        else:
            try:
                save_data(folder / "data.npz", run.dataset)
            except OSError as e:
                raise ExportError(f"cannot write data.npz: {e.strerror or e}", str(folder)) from None
            _write(folder / "train.py", train_source(project, run, class_name))
            files += ["data.npz", "train.py"]
            sizes = {s: len(getattr(run.dataset, s)) for s in ("train", "val", "test")}
            trainable = True
    _write(folder / "README.md", readme_text(project, a, class_name, trainable))
    files.append("README.md")

    difference = _compare(folder, class_name, compiled, project, a)
    if not difference <= TOLERANCE:
        raise ExportError(f"model.py's output differs from the compiled graph's by {difference:.3g} "
                          f"(more than {TOLERANCE:g}); the export is not trustworthy", str(folder))
    return PythonReport(folder, class_name, files, difference, source, sizes, notes)


# -- model.py --------------------------------------------------------------------------------
def model_source(project: Project, a: Analysis, compiled: nn.Module, class_name: str) -> str:
    """The text of model.py for the compiled graph ``compiled`` of ``project``."""
    lines, custom = [], []
    calls: dict[str, list] = {}  # node id -> one LayerCall or block Instance per copy
    for node_id in a.order:
        node = project.graph.nodes[node_id]
        if node.type == "Input":
            continue
        module = getattr(compiled, node_id)
        spec = project.graph.spec(node.type)
        if is_block(spec):
            calls[node_id] = instances(spec, module, a.input_shapes(node_id), a.params[node_id], set(node.params),
                                       node_id, node.repeat, layer_call)
        elif node.repeat > 1:
            calls[node_id] = [layer_call(f"{node_id}.{k}", m) for k, m in enumerate(module)]
        else:
            calls[node_id] = [layer_call(node_id, module)]
    top = [c for found in calls.values() for c in found if isinstance(c, Instance)]
    classes = block_classes(top, project.graph.blocks, _reserved_names(class_name))
    for node_id, found in calls.items():
        node = project.graph.nodes[node_id]
        texts = []
        for c in found:
            if isinstance(c, Instance):
                texts.append(classes.call(c))
                layers = c.layer_calls()
            else:
                texts.append(call_text(c.callee, [(x.name, literal(x.value), x.positional) for x in c.args if x.kept]))
                layers = [c]
            custom += [x.custom for x in layers if x.custom and x.custom not in custom]
        call = sequential(texts) if node.repeat > 1 else texts[0]
        lines.append(f"self.{node_id} = {call}  # -> {fmt(a.shapes[node_id])}")
        if not node.trainable:
            lines.append(f"self.{node_id}.requires_grad_(False)  # frozen in NetCanvas (trainable: false)")
    inlined, imports = _inlined_source(custom)
    title = doc_text(project.name)
    inputs = ", ".join(f"``{i}`` [N, {', '.join(map(str, a.shapes[i]))}]" for i in a.inputs)
    out = f"[N, {', '.join(map(str, a.shapes[a.output]))}]"
    header = [
        f'"""{title}: a PyTorch model exported from NetCanvas.',
        "",
        f"Needs only PyTorch. Input {inputs}; output (``{a.output}``) {out}.",
        "Load the exported weights with:",
        "",
        "    from safetensors.torch import load_file",
        f"    model = {class_name}()",
        '    model.load_state_dict(load_file("weights.safetensors"))',
        "    model.eval()",
        '"""',
        "",
        *imports,
    ]
    parts = ["\n".join(header)]
    if inlined:
        parts.append("# Layers torch has no module for, copied from NetCanvas so that this file needs\n"
                     "# nothing but torch.\n" + "\n\n\n".join(inlined))
    if classes.sources:
        parts.append("# The project's blocks: one class per block, used by each of its nodes.\n"
                     + "\n\n\n".join(classes.sources))
    body = "\n".join("        " + line for line in lines) or "        pass"
    forward = indent(_forward_source(compiled, a), 4)
    shapes = ", ".join(f'"{i}": {tuple(a.shapes[i])!r}' for i in a.inputs)
    parts.append(
        f"class {class_name}(nn.Module):\n"
        f'    """{title}: {a.total_params:,} trainable parameters."""\n\n'
        f"    def __init__(self):\n"
        f"        super().__init__()\n"
        f"{body}\n\n"
        f"{forward}")
    parts.append(f"# the shape of one sample of each input (no batch dimension), and of the output\n"
                 f"INPUT_SHAPES = {{{shapes}}}\n"
                 f"OUTPUT_SHAPE = {tuple(a.shapes[a.output])!r}\n")
    return "\n\n\n".join(parts)


def _reserved_names(class_name: str) -> set[str]:
    """The names model.py uses at its top level, which a block's class must not take: the
    imports, the model class, the constants, and what NetCanvas's modules define (a
    superset of what is copied in)."""
    defined = {n for family in netcanvas_modules.FAMILIES for n in vars(family)}
    return {"torch", "nn", "F", "INPUT_SHAPES", "OUTPUT_SHAPE", class_name} | defined | set(vars(netcanvas_modules))


def class_name_for(project_name: str) -> str:
    """A class name from a project name: "LeNet-5 on digits" -> ``LeNet5``, "MLP
    784-120-80-10" -> ``MLP``, "Convolutional autoencoder" -> ``ConvolutionalAutoencoder``.
    Words are taken up to a number, a bracket, a comma or a linking word, at most three."""
    words: list[str] = []
    for token in re.sub(r"\(.*?\)", " ", project_name).split():
        if (words and token[0].isdigit()) or token.lower() in _LINKING or token[0] in "([{,;:":
            break
        parts = re.findall(r"[A-Za-z0-9]+", token)
        if parts:
            words.append("".join(p[0].upper() + p[1:] for p in parts))
        if token[-1] in ",;:" or len(words) == 3:
            break
    name = "".join(words) or "Model"
    if name[0].isdigit():
        name = "Model" + name
    classes = {n for n, v in vars(netcanvas_modules).items() if isinstance(v, type)}
    taken = {"nn", "torch", "F", "INPUT_SHAPES", "OUTPUT_SHAPE"} | classes
    if keyword.iskeyword(name) or name in taken:
        name += "Model"
    return name


_LINKING = {"on", "with", "for", "of", "in", "by", "and", "from", "to", "using", "via", "-", "->"}


def layer_call(node_id: str, module: nn.Module) -> LayerCall:
    """How ``module`` is built: its class (``nn.Conv2d``, or a NetCanvas class to copy into
    model.py) and every constructor argument, those that differ from the defaults marked
    ``kept``. Raises ``ExportError`` when the module's class has no standalone source or
    its call cannot be reproduced."""
    cls = type(module)
    # a class made by a factory in app/engine/modules (SameConv2d) carries its base's __name__
    local = next((n for n, v in vars(netcanvas_modules).items() if v is cls), None)
    if getattr(nn, cls.__name__, None) is cls:
        name, custom = "nn." + cls.__name__, None
    elif local is not None:
        name, custom = local, local
    else:
        raise ExportError(f"node {node_id!r} is built as {cls.__module__}.{cls.__qualname__}, "
                          "which has no standalone PyTorch source to export")
    arguments = _arguments(node_id, module)
    for simplify in (True, False):
        values = [(p, _simplified(v) if simplify else v, d, pos) for p, v, d, pos in arguments]
        args = [Arg(p, v, d, pos, not _is_default(v, d)) for p, v, d, pos in values]
        positional = [a.value for a in args if a.kept and a.positional]
        keywords = {a.name: a.value for a in args if a.kept and not a.positional}
        if _rebuilds(module, positional, keywords):
            return LayerCall(name, custom, args)
    raise ExportError(f"node {node_id!r}: cannot write a constructor call that rebuilds {module!r}")


def constructor(node_id: str, module: nn.Module) -> tuple[str, str | None]:
    """The source of the call that builds ``module``, with only the arguments that differ
    from the defaults (``nn.Conv2d(1, 6, kernel_size=5)``), and the name of the NetCanvas
    class to copy into model.py (None for a torch class). Raises ``ExportError`` as
    ``layer_call`` does."""
    built = layer_call(node_id, module)
    kept = [(a.name, literal(a.value), a.positional) for a in built.args if a.kept]
    return call_text(built.callee, kept), built.custom


def _arguments(node_id: str, module: nn.Module) -> list[tuple[str, Any, Any, bool]]:
    """``(name, value, default, positional)`` for each constructor argument, read from the
    attribute of the same name (``bias`` from whether there is a bias parameter)."""
    params = _init_parameters(type(module))
    found, leading = [], True
    for p in params:
        if not hasattr(module, p.name):
            if p.default is inspect.Parameter.empty:
                raise ExportError(f"node {node_id!r}: {type(module).__name__} keeps no attribute "
                                  f"{p.name!r}, so its constructor call cannot be written")
            leading = False
            continue
        value = getattr(module, p.name)
        if p.name == "bias" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None
        if p.name == "stride" and p.default is None and value == getattr(module, "kernel_size", None):
            value = None  # torch's pooling: a stride of None means the window size
        if isinstance(value, torch.Size):
            value = tuple(value)
        required = p.default is inspect.Parameter.empty
        leading = leading and required and p.name in _POSITIONAL
        found.append((p.name, value, None if required else p.default, leading))
    return found


def _init_parameters(cls: type) -> list[inspect.Parameter]:
    """The named parameters of the first ``__init__`` in ``cls``'s hierarchy that declares
    any (a NetCanvas subclass or ``nn.LSTM`` passes ``*args, **kwargs`` on)."""
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        params = [p for p in inspect.signature(init).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        params = [p for p in params if p.name != "self" and p.name not in _SKIPPED]
        if klass is nn.RNNBase:
            params = [p for p in params if p.name != "mode"]  # given by nn.RNN / LSTM / GRU
        if params or klass is nn.Module:
            return params
    return []


def _simplified(value: Any) -> Any:
    """``(5, 5)`` -> ``5``: torch's own way to write a size that is the same on every side."""
    if isinstance(value, (tuple, list)) and value and all(v == value[0] and type(v) is type(value[0])
                                                          for v in value):
        return value[0]
    return value


def _is_default(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return value is default
    return isinstance(value, bool) == isinstance(default, bool) and value == default


def _rebuilds(module: nn.Module, args: list, kwargs: dict) -> bool:
    """Whether ``type(module)(*args, **kwargs)`` is the same module. (It is built on the
    CPU, leaving the global random state as it was: on the meta device some initializers
    import torch's compiler, seconds of start-up.)"""
    try:
        with torch.random.fork_rng(devices=[]):
            again = type(module)(*args, **kwargs)
    except (TypeError, ValueError, RuntimeError):  # a wrong guess of an argument: try the next one
        return False
    same_state = {k: tuple(v.shape) for k, v in again.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return same_state and repr(again) == repr(module) and _settings(again) == _settings(module)


def _settings(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training"
            and isinstance(v, (int, float, str, bool, tuple, list, type(None)))}


def _forward_source(compiled, a: Analysis) -> str:
    """torch.fx's generated ``forward``, cleaned up (``clean_forward``), with a docstring
    giving the shapes."""
    names = forward_arguments(compiled.code)
    shapes = ", ".join(f"{n} [N, {', '.join(map(str, a.shapes[i]))}]" for n, i in zip(names, a.inputs))
    return clean_forward(compiled.code, f"{shapes} -> [N, {', '.join(map(str, a.shapes[a.output]))}]")


def _inlined_source(names: list[str]) -> tuple[list[str], list[str]]:
    """The top-level definitions of ``app/engine/modules/`` (its ``FAMILIES``) that
    ``names`` need (with the helpers they use), in file order, and the import lines for
    model.py."""
    sources: dict[int, str] = {}  # id of a statement -> the source of its family
    order: dict[int, int] = {}  # id of a statement -> its place (family, then file order)
    defined: dict[str, ast.stmt] = {}
    imported: dict[str, ast.stmt] = {}
    for family in netcanvas_modules.FAMILIES:
        try:
            source = inspect.getsource(family)
        except (OSError, TypeError) as e:  # an installation that ships bytecode only
            raise ExportError("cannot write model.py: the source code of NetCanvas's own layers is not "
                              f"available in this installation ({e})") from None
        for stmt in ast.parse(source).body:
            sources[id(stmt)] = source
            order[id(stmt)] = len(order)
            _collect(stmt, defined, imported)
    needed: list[ast.stmt] = []
    used_imports: set[str] = {"nn"}
    stack = [defined[n] for n in names]
    while stack:
        stmt = stack.pop()
        if any(stmt is s for s in needed):
            continue
        needed.append(stmt)
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                if node.id in defined and not any(defined[node.id] is s for s in needed):
                    stack.append(defined[node.id])
                elif node.id in imported:
                    used_imports.add(node.id)
    needed.sort(key=lambda s: order[id(s)])
    imports = ["import torch", "from torch import nn"] if "torch" in used_imports else ["from torch import nn"]
    for name in sorted(used_imports - {"torch", "nn"}):
        stmt = imported[name]
        if isinstance(stmt, ast.ImportFrom) and stmt.level:
            raise ExportError(f"app/engine/modules: {name!r} comes from NetCanvas itself and cannot be exported")
        line = ast.unparse(stmt)
        if line not in imports:
            imports.append(line)
    # mypy's remarks mean nothing to the reader of model.py
    texts = [re.sub(r"  # type: ignore\[[^\]]*\]", "", ast.get_source_segment(sources[id(s)], s) or ast.unparse(s))
             for s in needed]
    return texts, imports


def _collect(stmt: ast.stmt, defined: dict[str, ast.stmt], imported: dict[str, ast.stmt]) -> None:
    """Note what a top-level statement of a family of ``modules`` defines or imports."""
    if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
        defined[stmt.name] = stmt
    elif isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                defined[target.id] = stmt
    elif isinstance(stmt, (ast.Import, ast.ImportFrom)) and not (
            isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
        for alias in stmt.names:
            imported[(alias.asname or alias.name).split(".")[0]] = stmt


# -- files and the check -----------------------------------------------------------------------
def _prepare_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise ExportError("exists and is not a folder; give a folder to write the PyTorch files into",
                          str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the folder: {e.strerror or e}", str(folder)) from None
    return folder


def _utf8_safe(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates: a project name pasted from
    broken text, a file name in another encoding) written as a ``\\udcff`` escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _write(path: Path, text: str) -> None:
    """Write the generated ``text`` as valid UTF-8 (see ``_utf8_safe``), atomically."""
    try:
        atomic_write(path, _utf8_safe(text).encode("utf-8"))
    except OSError as e:
        raise ExportError(f"cannot be written: {e.strerror or e}", str(path)) from None


def load_exported(folder: str | Path, class_name: str, weights: str | Path | None = None) -> nn.Module:
    """Import ``folder``/model.py as a fresh module (not registered in ``sys.modules``),
    build ``class_name`` and load ``weights`` (default: the folder's weights.safetensors)."""
    folder = Path(folder)
    spec = importlib.util.spec_from_file_location(f"netcanvas_export_{uuid.uuid4().hex}", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    model = getattr(module, class_name)()
    model.load_state_dict(load_file(str(weights or folder / "weights.safetensors")))
    return model.eval()


def _compare(folder: Path, class_name: str, compiled: nn.Module, project: Project, a: Analysis) -> float:
    try:
        exported = load_exported(folder, class_name)
    except Exception as e:  # a bug here must still read as a failed export, not pass silently
        raise ExportError(f"the written model.py does not load: {type(e).__name__}: {e}", str(folder)) from e
    inputs = sample_tensors(project.graph, a, 3, seed=0)
    with torch.no_grad():
        expected, got = compiled.eval()(*inputs), exported(*inputs)
    if got.shape != expected.shape:
        raise ExportError(f"model.py gives shape {list(got.shape)}, the compiled graph "
                          f"{list(expected.shape)}", str(folder))
    return float((got - expected).abs().max()) if got.numel() else 0.0
