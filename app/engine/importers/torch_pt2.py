"""``.pt2`` import: a program saved with ``torch.export.save`` becomes a NetCanvas project,
read without unpickling anything.

The archive is a zip: ``models/NAME.json`` (the graph and its signature, JSON),
``data/weights/NAME_weights_config.json`` and ``data/constants/NAME_constants_config.json``
(JSON: each tensor's file, dtype, sizes, strides), ``data/weights/weight_N`` and
``data/constants/tensor_N`` (raw bytes), and ``data/sample_inputs/NAME.pt`` (the example
inputs, pickled by ``torch.save``). ``torch.export.load`` unpickles with
``weights_only=False`` (a tensor subclass, a constant object, a legacy ``.pt`` weights file)
and falls back to it when the example inputs do not load otherwise. Here the zip is read
with ``zipfile``, the JSON with ``json``, raw tensors with ``torch.frombuffer``; the example
inputs are never read (the input's shape is in the graph); an entry that would need an
unpickle is refused by name. The JSON graph then goes through torch's own deserializer
(``ExportedProgramDeserializer``) with the tensors given as dicts, which it takes as they
are (no ``torch.load``), after checking what it would otherwise resolve or evaluate: every
op must be an ATen op or ``getitem`` (it resolves dotted names under ``torch``, where
``torch.os.system`` is one), every symbolic-shape expression may name only shape symbols
and sympy's arithmetic (it parses them with ``sympy.sympify``, which calls ``eval``), and
node metadata is kept to the source line and module stack.

The program has no Python classes: the layers are rebuilt from the module stack's type
names and the ATen calls (``nn.Conv2d`` from ``aten.conv2d``'s arguments and its weight's
shape, ...); other classes become empty stand-ins named as in the file, so that repeated
structure still becomes blocks. The rest is ``torch_export``'s path: the ATen graph is
rewritten into the torch-level graph that ``torch_map`` reads, and the result is compared
with the program itself (its ATen ops, run by torch) on random inputs.
"""

from __future__ import annotations

import json
import operator
import re
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch._export.serde import schema
from torch._export.serde.serialize import (ExportedProgramDeserializer, _dict_to_dataclass, deserialize_scalar_type,
                                           deserialize_storage_offset, deserialize_stride)

from ..errors import NetCanvasError, first_line
from ..project import Project
from .torch_blocks import Assembler
from .torch_export import _ATEN, _Rewriter
from .torch_import import (TOLERANCE, TorchImportError, TorchImportResult, _checked_project, _unmappable,
                           compare_with_module)
from .torch_map import CONTAINERS, Mapper

_SYMBOL = re.compile(r"[a-z]+\d+")
_ATEN_NAME = re.compile(r"torch\.ops\.aten\.(?!__)[A-Za-z_]\w*\.(?!__)[A-Za-z_]\w*")  # never a dunder
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPR_CHARS = re.compile(r"[A-Za-z0-9_+\-*/%()<>=!,. &|~]*")
# the names a shape expression may use besides its symbols: sympy's arithmetic and the
# functions torch's deserializer adds (none of them reads or runs anything)
_SYMPY_NAMES = {
    "Max", "Min", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "true", "false", "True", "False",
    "oo", "floor", "ceiling", "Abs", "Mod", "Integer", "Rational", "FloorDiv", "ModularIndexing", "Where",
    "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural",
    "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
}
_KEPT_METADATA = ("stack_trace", "nn_module_stack")


class Pt2ArchiveError(TorchImportError):
    """A ``.pt2`` file that is not read: not a torch.export archive, or one with an entry that
    would need an unpickle or an evaluation; the message names the entry and why."""


# -- public API -------------------------------------------------------------------------------
def import_pt2(path: str | Path, tolerance: float = TOLERANCE) -> TorchImportResult:
    """Import the program saved by ``torch.export.save`` at ``path``. Returns the result
    after comparing it with the program on random inputs. Raises ``Pt2ArchiveError`` for a
    file that is not read (naming the entry), ``TorchImportError`` for a program that has
    nodes NetCanvas has no layer for (all named) or differs by more than ``tolerance``."""
    path = Path(path)
    program = load_program(path)
    name = path.stem
    try:
        reference = _Program(program)  # made first: a copy of the program's graph, as it is in the file
    except Exception as e:  # torch's unlifting raises many types for a program it cannot run
        raise TorchImportError(f"{path}: the program cannot be made runnable: {type(e).__name__}: "
                               f"{first_line(e)}") from e
    gm, modules, shape, batch, vocabulary = _torch_graph(program, name)
    mapper = Mapper(gm, [shape], integer_input=vocabulary is not None)
    flats, output = mapper.run()
    if mapper.failures:
        raise _unmappable(name, mapper.failures, ["read from a torch.export archive"])
    if output is None:
        raise TorchImportError(f"{path}: the program returns no tensor NetCanvas can take as its output")
    graph, state = Assembler(flats, output, modules).run()
    project = _checked_project(Project(graph=graph, name=name))
    try:
        difference = compare_with_module(project, state, reference, shape, batch=batch, vocabulary=vocabulary)
    except NetCanvasError:
        raise
    except Exception as e:  # the program's own ops may refuse the random input
        raise TorchImportError(f"{path}: the program cannot be run to compare: {type(e).__name__}: "
                               f"{first_line(e)}") from e
    if not difference <= tolerance:
        raise TorchImportError(f"the imported graph differs from {path.name} by {difference:.3g} "
                               f"(more than {tolerance:g}); nothing was written")
    notes = [f"the program's own batch size, {batch}, is the comparison's"]
    blocks = len(project.graph.blocks)
    if blocks:
        notes.append(f"{blocks} block{'s' if blocks != 1 else ''} made from repeated structure: "
                     + ", ".join(project.graph.blocks))
    return TorchImportResult(project, state, difference, notes, source=str(path), batch=batch)


def load_program(path: str | Path) -> torch.export.ExportedProgram:
    """The ``ExportedProgram`` in the archive at ``path``, read without unpickling (see the
    module's docstring). Raises ``Pt2ArchiveError`` naming the entry it refuses."""
    path = Path(path)
    if not path.is_file():
        raise Pt2ArchiveError(f"{path}: no such file")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise Pt2ArchiveError(f"{path}: not a torch.export archive (not a zip file: {first_line(e)})") from e
    with archive:
        entries = _entries(archive, path)
        models = [n[len("models/"):-len(".json")] for n in entries if n.startswith("models/") and n.endswith(".json")]
        if len(models) != 1:
            raise Pt2ArchiveError(f"{path}: expected one exported program under models/, found {len(models)}")
        model = models[0]
        for legacy in (f"data/weights/{model}.pt", f"data/constants/{model}.pt"):
            if legacy in entries:
                raise Pt2ArchiveError(f"{path}: entry {legacy} is a pickled file of torch's older archive format: "
                                      "reading it needs a full unpickle; re-save the program with torch.export.save")
        state = _tensors(archive, entries, path, f"data/weights/{model}_weights_config.json", "data/weights/")
        constants = _tensors(archive, entries, path, f"data/constants/{model}_constants_config.json",
                             "data/constants/")
        where = f"models/{model}.json"
        try:
            data = json.loads(archive.read(entries[where]).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise Pt2ArchiveError(f"{path}: entry {where} is not JSON: {first_line(e)}") from e
    _check_program(data, path, where)
    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, data)
        program = ExportedProgramDeserializer().deserialize(serialized, state, constants, None)
    except Exception as e:  # the deserializer raises many types for a graph it cannot read
        raise Pt2ArchiveError(f"{path}: entry {where} cannot be read as an exported program: "
                              f"{type(e).__name__}: {first_line(e)}") from e
    for n in program.graph.nodes:  # what the names resolved to: ATen ops only, as checked by name
        aten_op = isinstance(n.target, torch._ops.OpOverload) and n.target.namespace == "aten"
        if n.op == "call_function" and not (aten_op or n.target is operator.getitem):
            raise Pt2ArchiveError(f"{path}: entry {where}: node {n.name} calls {n.target!r}, not an ATen op")
    return program


# -- reading the archive ----------------------------------------------------------------------
def _entries(archive: zipfile.ZipFile, path: Path) -> dict[str, str]:
    """The archive's entries without their root folder -> their names in the zip."""
    names = archive.namelist()
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        raise Pt2ArchiveError(f"{path}: not a torch.export archive (no single root folder)")
    entries = {n.split("/", 1)[1]: n for n in names}
    fmt = archive.read(entries["archive_format"]).decode("utf-8", "replace").strip() \
        if "archive_format" in entries else None
    if fmt != "pt2":
        raise Pt2ArchiveError(f"{path}: not a torch.export archive (archive_format is {fmt!r}, not 'pt2')")
    return entries


def _tensors(archive: zipfile.ZipFile, entries: dict[str, str], path: Path, config: str,
             folder: str) -> dict[str, torch.Tensor]:
    """The tensors a payload config lists, each from its raw bytes; refuses a pickled one."""
    if config not in entries:
        raise Pt2ArchiveError(f"{path}: entry {config} is missing")
    try:
        payload = _dict_to_dataclass(schema.PayloadConfig, json.loads(archive.read(entries[config]).decode("utf-8")))
    except Exception as e:  # json's and the dataclass reader's errors alike
        raise Pt2ArchiveError(f"{path}: entry {config} cannot be read: {type(e).__name__}: {first_line(e)}") from e
    storages: dict[str, torch.Tensor] = {}
    tensors: dict[str, torch.Tensor] = {}
    for fqn, meta in payload.config.items():
        entry = folder + meta.path_name
        if meta.use_pickle or not meta.path_name.startswith(("weight_", "tensor_")):
            kind = ("a TorchScript object" if meta.path_name.startswith("custom_obj_") else
                    "a Python object" if meta.path_name.startswith("opaque_obj_") else "a tensor subclass")
            raise Pt2ArchiveError(f"{path}: entry {entry} ({fqn}) is {kind} saved with pickle: reading it "
                                  "needs a full unpickle, which could run code; not imported")
        if entry not in entries or meta.tensor_meta is None:
            raise Pt2ArchiveError(f"{path}: entry {entry} ({fqn}) is missing or has no tensor description")
        tm = meta.tensor_meta
        try:
            dtype = deserialize_scalar_type(tm.dtype)
            if entry not in storages:
                raw = bytearray(archive.read(entries[entry]))
                if len(raw) % dtype.itemsize:
                    raise ValueError(f"{len(raw)} bytes is not a whole number of {dtype}")
                storages[entry] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            sizes = [int(s.as_int) for s in tm.sizes]
            strides = [int(s) for s in deserialize_stride(tm.strides)]
            offset = int(deserialize_storage_offset(tm.storage_offset))
            flat = storages[entry]
            extent = offset + sum((n - 1) * s for n, s in zip(sizes, strides)) + 1 if all(sizes) else 0
            if any(n < 0 for n in sizes) or any(s < 0 for s in strides) or offset < 0 or extent > flat.numel():
                raise ValueError(f"sizes {sizes}, strides {strides} and offset {offset} reach past its "
                                 f"{flat.numel()} values")
            t = torch.as_strided(flat, sizes, strides, offset).clone()
            # as torch.export.load gives them: parameters as Parameters
            tensors[fqn] = nn.Parameter(t, requires_grad=bool(tm.requires_grad)) if meta.is_param else t
        except Exception as e:  # bad dtype codes, symbolic sizes, short data
            raise Pt2ArchiveError(f"{path}: entry {entry} ({fqn}) cannot be read: {type(e).__name__}: "
                                  f"{first_line(e)}") from e
    return tensors


def _check_program(data: Any, path: Path, where: str) -> None:
    """Refuses what the deserializer would resolve or evaluate beyond ATen ops and shape
    arithmetic; keeps only the metadata the import reads."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if "target" in item and "inputs" in item and "outputs" in item:  # a node
            target = item["target"]
            if not (isinstance(target, str) and (_ATEN_NAME.fullmatch(target) or target == "_operator.getitem")):
                raise Pt2ArchiveError(f"{path}: entry {where}: op {target!r} is not an ATen op; only programs of "
                                      "ATen ops are imported")
            if isinstance(item.get("metadata"), dict):
                item["metadata"] = {k: v for k, v in item["metadata"].items() if k in _KEPT_METADATA}
        for key, value in item.items():
            if key == "as_graph":
                raise Pt2ArchiveError(f"{path}: entry {where}: a sub-graph (control flow) is not imported")
            if key == "expr_str":
                _check_expression(value, path, where)
            stack.append(value)


def _check_expression(text: Any, path: Path, where: str) -> None:
    ok = isinstance(text, str) and _EXPR_CHARS.fullmatch(text) is not None and all(
        _SYMBOL.fullmatch(word) or word in _SYMPY_NAMES for word in _IDENTIFIER.findall(text))
    if not ok:
        raise Pt2ArchiveError(f"{path}: entry {where}: the shape expression {str(text)[:80]!r} is not plain "
                              "arithmetic on shape symbols; it is not evaluated")


# -- the program as a torch-level graph --------------------------------------------------------
class _Program(nn.Module):
    """The program's own module (its ATen graph run by torch), the reference the import is
    compared with."""

    def __init__(self, program: torch.export.ExportedProgram):
        super().__init__()
        self.program = program.module()

    def forward(self, x):
        out = self.program(x)
        return out[0] if isinstance(out, (tuple, list)) and len(out) == 1 else out


def _torch_graph(program, name: str):
    """(torch-level GraphModule, modules by path, input shape without the batch, the
    program's batch, the vocabulary when the input is token ids)."""
    sig = program.graph_signature
    owned = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
             **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
    inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name not in owned]
    if len(inputs) != 1:
        raise TorchImportError(f"{name}: the program takes {len(inputs)} inputs; NetCanvas imports programs of one")
    val = inputs[0].meta.get("val")
    if not isinstance(val, torch.Tensor) or not all(isinstance(d, int) for d in val.shape) or val.dim() < 2:
        raise TorchImportError(f"{name}: the program's input has no fixed shape with a batch "
                               f"({getattr(val, 'shape', None)}); NetCanvas imports fixed shapes")
    tensors = {**program.state_dict, **program.constants}
    values = {n.name: tensors[fqn] for n in program.graph.nodes if n.op == "placeholder"
              for fqn in [owned.get(n.name)] if fqn in tensors}
    _torch_level_ops(program.graph)
    try:
        root, modules = _skeleton(program.graph, values, tensors, name)
        gm = _Rewriter(program.graph, owned, modules, root, _tuple_outputs(program.graph, modules)).run()
    except (KeyError, AttributeError, TypeError, ValueError, RuntimeError) as e:
        # names in the file that cannot be module paths ("train.weight"), or a graph torch cannot rebuild
        raise TorchImportError(f"{name}: the program's modules cannot be rebuilt: {type(e).__name__}: "
                               f"{first_line(e)}") from e
    vocabulary = None
    if not val.dtype.is_floating_point:
        sizes = [m.num_embeddings for m in modules.values() if isinstance(m, nn.Embedding)]
        if not sizes:
            raise TorchImportError(f"{name}: the program's input is {val.dtype} but feeds no embedding")
        vocabulary = min(sizes)
    return gm, modules, tuple(val.shape[1:]), int(val.shape[0]), vocabulary


def _tuple_outputs(graph: fx.Graph, modules: dict[str, nn.Module]) -> dict[str, list]:
    """Where each result of a layer of several results sits (``torch_export._tuple_outputs``,
    which runs the module): an attention's output first, its weights (not asked for) second."""
    found: dict[str, list] = {}
    for n in graph.nodes:
        stack = list((n.meta.get("nn_module_stack") or {}).values())
        if n.op == "call_function" and stack and isinstance(modules.get(stack[-1][0]), nn.MultiheadAttention):
            val = n.meta.get("val")  # the last op of the layer gives its output
            found[stack[-1][0]] = [((0,), tuple(val.shape) if isinstance(val, torch.Tensor) else None), ((1,), None)]
    return found


def _torch_level_ops(graph: fx.Graph) -> None:
    """ATen calls ``torch_export`` leaves as they are, made the torch calls ``torch_map``
    reads: an in-place op (``hardtanh_``, which a torch.nn layer made with ``inplace=True``
    calls) becomes its out-of-place op, ``aten.layer_norm`` ``F.layer_norm`` (without cuDNN's
    flag). A call_module for the layer is what a module gives; here a layer without weights
    is its ops (the comparison checks that they compute the same)."""
    for n in graph.nodes:
        if n.op != "call_function" or not isinstance(n.target, torch._ops.OpOverload):
            continue
        packet = n.target.overloadpacket.__name__
        if packet.endswith("_") and not packet.startswith("_"):
            pure = getattr(getattr(aten, packet[:-1], None), n.target._overloadname, None)
            if pure in _ATEN:
                n.target = pure
        elif n.target == aten.layer_norm.default:
            n.target, n.args = F.layer_norm, n.args[:5]


def _skeleton(graph: fx.Graph, values: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], name: str):
    """A root module holding every tensor at its name, the torch.nn layers rebuilt from
    their ATen calls, stand-ins for the other classes; and the modules by path the rewrite
    and the blocks read (the layers, the stand-ins, the containers)."""
    types: dict[str, str] = {}
    calls: dict[str, list[fx.Node]] = {}
    for n in graph.nodes:
        stack = n.meta.get("nn_module_stack") or {}
        for path, type_name in stack.values():
            types.setdefault(path, str(type_name))
        if n.op == "call_function" and stack:
            calls.setdefault(list(stack.values())[-1][0], []).append(n)
    classes: dict[str, type] = {}
    modules: dict[str, nn.Module] = {}
    for path, type_name in sorted(types.items(), key=lambda kv: kv[0].count(".") if kv[0] else -1):
        if not path:
            continue
        module = _rebuilt(type_name, calls.get(path, []), values, tensors, path)
        if module is None:
            container = _torch_class(type_name)
            if container is not None and issubclass(container, CONTAINERS):
                module = container()
            elif type_name.startswith("torch.nn."):
                continue  # a torch.nn layer without weights of its own: its ATen ops map as functions
            else:
                module = _stand_in(type_name, classes)()
        modules[path] = module
    root = _stand_in(types.get("", name), classes)()
    for path in sorted(modules, key=lambda p: p.count(".")):
        _place(root, path, modules[path])
    for fqn, t in tensors.items():  # the rest (class tokens, weights of layers not rebuilt)
        owner_path, _, attr = fqn.rpartition(".")
        owner = _owner(root, owner_path)
        held = {*dict(owner.named_parameters(recurse=False)), *dict(owner.named_buffers(recurse=False))}
        if attr not in held:
            if isinstance(t, nn.Parameter):
                owner.register_parameter(attr, t)
            else:
                owner.register_buffer(attr, t)
    return root, modules


def _place(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, attr = path.rpartition(".")
    _owner(root, parent_path).add_module(attr, module)


def _owner(root: nn.Module, path: str) -> nn.Module:
    """The module at ``path`` under ``root``, holders made where missing."""
    m = root
    for part in path.split(".") if path else []:
        if not hasattr(m, part) or not isinstance(getattr(m, part), nn.Module):
            m.add_module(part, nn.Module())
        m = getattr(m, part)
    return m


def _stand_in(type_name: str, classes: dict[str, type]) -> type:
    """An empty class named as ``type_name`` (one per name, so that its instances count as
    one class for blocks); never the class itself, which is not imported."""
    if type_name not in classes:
        module_name, _, class_name = type_name.rpartition(".")
        if not class_name.isidentifier():
            class_name = "Module"
        classes[type_name] = type(class_name, (nn.Module,), {"__module__": f"pt2.{module_name}",
                                                              "forward": _no_forward})
    return classes[type_name]


def _no_forward(self, *args):
    raise NetCanvasError("a stand-in for a class read from a .pt2 archive is not run")


def _torch_class(type_name: str) -> type | None:
    """The torch.nn class ``type_name`` names (``torch.nn.modules.conv.Conv2d``), looked up
    in ``torch.nn`` by its last name (nothing is imported), or None."""
    if not type_name.startswith("torch.nn.modules."):
        return None
    cls = getattr(nn, type_name.rpartition(".")[2], None)
    same = isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ == type_name.rpartition(".")[0]
    return cls if same else None


def _arg(n: fx.Node, i: int, default: Any, values: dict[str, torch.Tensor]) -> Any:
    a = n.args[i] if len(n.args) > i else default
    if isinstance(a, fx.Node):
        return values.get(a.name)
    return a


def _conv(dims: int) -> Callable:
    def build(cls, n, v):
        w, b = _arg(n, 1, None, v), _arg(n, 2, None, v)
        groups = _arg(n, 6, 1, v)
        return cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=_arg(n, 3, 1, v),
                   padding=_arg(n, 4, 0, v), dilation=_arg(n, 5, 1, v), groups=groups, bias=b is not None)
    return build


def _batch_norm(cls, n, v):
    w, rm = _arg(n, 1, None, v), _arg(n, 3, None, v)
    if n.target == torch.ops.aten.batch_norm.default:
        momentum, eps = _arg(n, 6, 0.1, v), _arg(n, 7, 1e-5, v)
    else:  # _native_batch_norm_legit_no_training(x, w, b, mean, var, momentum, eps)
        momentum, eps = _arg(n, 5, 0.1, v), _arg(n, 6, 1e-5, v)
    features = (rm if rm is not None else w).shape[0]
    return cls(features, eps=eps, momentum=momentum, affine=w is not None, track_running_stats=rm is not None)


def _attention(calls: list[fx.Node], tensors: dict[str, torch.Tensor], path: str) -> Callable:
    """How an ``nn.MultiheadAttention`` is rebuilt: its width from ``in_proj_weight``, its
    heads from the attention call's shape (batch, heads, length, width / heads), batch first
    when its first op swaps the input's first two dimensions."""
    def build(cls, n, _values):
        weight = tensors[f"{path}.in_proj_weight"]
        first = calls[0]
        batch_first = first.target == aten.transpose.int and sorted(first.args[1:3]) == [0, 1]
        return cls(weight.shape[1], int(n.meta["val"].shape[1]), bias=f"{path}.in_proj_bias" in tensors,
                   batch_first=batch_first)
    return build


aten = torch.ops.aten
# torch.nn class name -> (its ATen calls, how it is rebuilt from one: (class, node, values) -> module)
_BUILDERS: dict[str, tuple[tuple, Callable]] = {
    "Linear": ((aten.linear.default,), lambda cls, n, v: cls(_arg(n, 1, None, v).shape[1], _arg(n, 1, None, v).shape[0],
                                                             bias=_arg(n, 2, None, v) is not None)),
    "Conv1d": ((aten.conv1d.default, aten.conv1d.padding), _conv(1)),
    "Conv2d": ((aten.conv2d.default, aten.conv2d.padding), _conv(2)),
    "Conv3d": ((aten.conv3d.default, aten.conv3d.padding), _conv(3)),
    "BatchNorm1d": ((aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default), _batch_norm),
    "BatchNorm2d": ((aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default), _batch_norm),
    "BatchNorm3d": ((aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default), _batch_norm),
    "LayerNorm": ((aten.layer_norm.default,), lambda cls, n, v: cls(
        _arg(n, 1, None, v), eps=_arg(n, 4, 1e-5, v), elementwise_affine=_arg(n, 2, None, v) is not None,
        bias=_arg(n, 3, None, v) is not None)),
    "GroupNorm": ((aten.group_norm.default,), lambda cls, n, v: cls(
        _arg(n, 1, None, v), _arg(n, 2, None, v).shape[0], eps=_arg(n, 4, 1e-5, v))),
    "Embedding": ((aten.embedding.default,), lambda cls, n, v: cls(
        *_arg(n, 0, None, v).shape, padding_idx=None if _arg(n, 2, -1, v) == -1 else _arg(n, 2, -1, v))),
    "PReLU": ((aten.prelu.default,), lambda cls, n, v: cls(_arg(n, 1, None, v).numel())),
}


def _rebuilt(type_name: str, calls: list[fx.Node], values: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor],
             path: str) -> nn.Module | None:
    """The torch.nn layer ``type_name`` at ``path`` rebuilt from its ATen call and given the
    program's tensors, or None when it is not one ``_BUILDERS`` knows. Raises
    ``TorchImportError`` when its call does not fit it."""
    cls = _torch_class(type_name)
    if cls is nn.MultiheadAttention:
        ops, build = (aten.scaled_dot_product_attention.default,), _attention(calls, tensors, path)
    elif cls is None or cls.__name__ not in _BUILDERS:
        return None
    else:
        ops, build = _BUILDERS[cls.__name__]
    call = next((n for n in calls if n.target in ops), None)
    if call is None:
        return None  # not called as expected: its ops map one by one (or are named)
    try:
        module = build(cls, call, values)
        for attr, current in [*module.named_parameters(), *module.named_buffers()]:
            if f"{path}.{attr}" in tensors:
                with torch.no_grad():
                    current.copy_(tensors[f"{path}.{attr}"])
    except Exception as e:  # a call whose arguments do not fit the class
        raise TorchImportError(f"{path} ({type_name}) cannot be rebuilt from its call {call.target}: "
                               f"{type(e).__name__}: {first_line(e)}") from e
    return module.eval()
