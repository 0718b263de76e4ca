"""model.py's classes for blocks: one ``nn.Module`` class per block used, shared by the
block's nodes (format version 2, "Blocks").

A block node compiles to a ``torch.fx.GraphModule`` named after the block (``compiler``),
one per node (per copy of a repeated node). Here every such instance is read back as an
``Instance``: the constructor call of each module inside (``LayerCall``, read off the built
module by the exporter) or, for a block inside a block, the inner ``Instance``. The instances
of one block become one class (``BlockClass``) whose ``__init__`` takes the block's declared
parameters, with their declared defaults, plus a keyword for each input size that differs
between instances (the format never writes them: ``in_channels``); each argument of an inner
constructor is written as

- the name of a block parameter, when the definition sets it to ``"$name"`` and it has that
  value in every instance, or when it is an input size equal in every instance to a block
  parameter that sets an output size inside (a Conv2d's ``in_channels`` after another's
  ``out_channels: "$width"``);
- a literal, when it is the same in every instance;
- otherwise a keyword of the class, named after the argument (arguments equal in every
  instance share one keyword).

Instances whose inner modules are built by different classes (or whose ``forward`` differs)
cannot share a class: each variant gets a class of its own (``Res``, ``Res_2``), and a
comment says why. Classes are named after their block unless model.py already uses the
name (``torch``, ``nn``, ``F``, the model class, NetCanvas's own classes, Python builtins):
then a suffix is added and a comment says so.
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..blocks import Expansion, is_block, reference
from ..graph import Block, Blocks
from .onnx_export import ExportError
from .source_text import clean_forward, doc_text, forward_arguments, indent, literal

# the catalogue parameters that set a layer's output size: a block parameter given to one
# of them may be the input size of the next layer inside (in_channels = width)
SIZE_PARAMS = frozenset({"out_channels", "out_features", "hidden_size", "embedding_dim"})
# names a block parameter or a class keyword must not take inside a class body
_LOCAL_TAKEN = frozenset({"self", "nn", "torch", "F", "super", "float"}) | frozenset(keyword.kwlist)
_REQUIRED = object()  # the default of an argument that has none


@dataclass
class Arg:
    """One constructor argument as one instance has it: ``name`` as written, ``key`` the
    parameter it comes from in the definition (a block's parameter before any renaming),
    ``kept``: written when this instance alone is built (not a default)."""

    name: str
    value: Any
    default: Any
    positional: bool
    kept: bool
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or self.name


@dataclass
class LayerCall:
    """How one module inside a block is built: ``callee(args)``; ``custom``: the NetCanvas
    class to copy into model.py (None for a torch class)."""

    callee: str
    custom: str | None
    args: list[Arg]


@dataclass
class Instance:
    """A block node (one copy of it) as compiled: per inner node, one ``LayerCall`` or inner
    ``Instance`` per copy. ``key`` is equal for instances that can share a class."""

    block: Block
    path: str
    expansion: Expansion
    params: dict[str, Any]
    explicit: set[str]
    nodes: dict[str, list]
    code: str
    key: tuple = ()

    def inner(self) -> list["Instance"]:
        return [c for calls in self.nodes.values() for c in calls if isinstance(c, Instance)]

    def layer_calls(self) -> list[LayerCall]:
        found = [c for calls in self.nodes.values() for c in calls if isinstance(c, LayerCall)]
        return found + [c for i in self.inner() for c in i.layer_calls()]


LayerCallOf = Callable[[str, nn.Module], LayerCall]


def instances(spec, module: nn.Module, shapes: list, params: dict[str, Any], explicit: set[str],
              path: str, repeat: int, layer_call: LayerCallOf) -> list[Instance]:
    """The instances of the block node at ``path`` built as ``module`` (an
    ``nn.Sequential`` of them when ``repeat`` > 1) for its input ``shapes`` and resolved
    ``params``; ``explicit``: the parameters the node sets. Raises ``ExportError``."""
    copies = list(module) if repeat > 1 else [module]
    found = []
    for k, m in enumerate(copies):
        expansion = spec.expand(shapes, params)
        a = expansion.analysis
        found.append(_instance(spec.block, m, expansion, params, explicit,
                               f"{path}.{k}" if repeat > 1 else path, layer_call))
        shapes = [a.shapes[a.output]]  # the next copy takes this one's output
    return found


def _instance(block: Block, module: nn.Module, expansion: Expansion, params: dict[str, Any],
              explicit: set[str], path: str, layer_call: LayerCallOf) -> Instance:
    g, a = expansion.graph, expansion.analysis
    nodes: dict[str, list] = {}
    for node_id in a.order:
        node = g.nodes[node_id]
        if node.type == "Input" or not hasattr(module, node_id):
            continue
        sub = getattr(module, node_id)
        spec = g.spec(node.type)
        where = f"{path}.{node_id}"
        if is_block(spec):
            nodes[node_id] = instances(spec, sub, a.input_shapes(node_id), a.params[node_id],
                                       set(block.graph.nodes[node_id].params), where, node.repeat, layer_call)
        elif node.repeat > 1:
            nodes[node_id] = [layer_call(f"{where}.{k}", m) for k, m in enumerate(sub)]
        else:
            nodes[node_id] = [layer_call(where, sub)]
    code = module.code
    built = tuple((node_id, g.nodes[node_id].repeat, g.nodes[node_id].trainable,
                   tuple(c.key if isinstance(c, Instance) else c.callee for c in calls))
                  for node_id, calls in nodes.items())
    found = Instance(block, path, expansion, params, explicit, nodes, code)
    found.key = (block.name, built, code)
    return found


def sequential(calls: list[str]) -> str:
    """The call that builds an ``nn.Sequential`` of copies: a list comprehension where the
    copies are built alike (the first may differ: it reads the node's input, the others
    the previous copy's output)."""
    if len(set(calls)) == 1:
        return f"nn.Sequential(*[{calls[0]} for _ in range({len(calls)})])"
    if len(set(calls[1:])) == 1:
        return f"nn.Sequential({calls[0]}, *[{calls[1]} for _ in range({len(calls) - 1})])"
    return f"nn.Sequential({', '.join(calls)})"


def call_text(callee: str, items: list[tuple[str, str, bool]]) -> str:
    """``callee(...)`` with ``(name, source, positional)`` arguments."""
    texts = [text for _, text, pos in items if pos] + [f"{n}={text}" for n, text, pos in items if not pos]
    return f"{callee}({', '.join(texts)})"


def same(a: Any, b: Any) -> bool:
    """Whether two argument values build the same thing (``(3, 3)`` and ``3`` do)."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return _plain(a) == _plain(b) or _plain(_simplified(a)) == _plain(_simplified(b))


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _simplified(value: Any) -> Any:
    if isinstance(value, (tuple, list)) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def size_params(block: Block, blocks: Blocks) -> list[str]:
    """The parameters of ``block`` that set an output size inside it (given to a layer's
    ``out_channels`` and the like, or to such a parameter of a block inside)."""
    found = []
    for node in block.graph.nodes.values():
        inner = blocks.get(node.type)
        sizes = set(size_params(inner, blocks)) if inner is not None else SIZE_PARAMS
        for param, value in node.params.items():
            name = reference(value)
            if param in sizes and name in block.params and name not in found:
                found.append(name)
    return found


class BlockClass:
    """The class of model.py that builds ``instances`` (which share a ``key``), named
    ``name``; ``source`` is its text, ``call(instance)`` the call that builds one."""

    def __init__(self, name: str, instances: list[Instance], classes: dict[tuple, "BlockClass"],
                 blocks: Blocks, note: list[str]) -> None:
        self.name = name
        self.instances = instances
        self.block = block = instances[0].block
        self._index = {id(inst): i for i, inst in enumerate(instances)}
        # the classes that __init__ calls: no argument may hide one
        self._taken = _LOCAL_TAKEN | {(classes[c.key].name if isinstance(c, Instance) else c.callee).split(".")[0]
                                      for calls in instances[0].nodes.values() for c in calls}
        self.params = self._param_names(note)
        self.keywords: list[str] = []  # the class's own keywords (input sizes), in order
        self._values: list[dict[str, Any]] = [{} for _ in instances]
        self._groups: dict[tuple, str] = {}
        self._sizes = size_params(block, blocks)
        self.source = self._source(classes, note)

    def _param_names(self, note: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for p in self.block.params:
            name = p
            while name in self._taken or name in names.values():
                name += "_"
            if name != p:
                note.append(f"block parameter {p!r} is the argument {name} (model.py uses the name {p})")
            names[p] = name
        return names

    def call_args(self, inst: Instance) -> list[Arg]:
        """The arguments that build ``inst``: its input sizes, then the block's parameters
        (kept: those the node sets, or that differ from the declared defaults)."""
        values = self._values[self._index[id(inst)]]
        args = [Arg(k, values[k], _REQUIRED, False, True) for k in self.keywords]
        for p, default in self.block.params.items():
            value = inst.params.get(p, default)
            args.append(Arg(self.params[p], value, default, False,
                            p in inst.explicit or not same(value, default), key=p))
        return args

    def call(self, inst: Instance) -> str:
        """The call that builds ``inst`` on its own (literal arguments)."""
        return call_text(self.name, [(a.name, literal(a.value), False) for a in self.call_args(inst) if a.kept])

    def _slot(self, node_id: str, arg: Arg, values: list[Any], derived: bool) -> str:
        """The source of one inner constructor argument, whose value is ``values[i]`` in
        instance i."""
        insts = self.instances
        ref = reference(self.block.graph.nodes[node_id].params.get(arg.key))
        if ref in self.block.params and all(same(v, i.params.get(ref)) for v, i in zip(values, insts)):
            return self.params[ref]
        if derived and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            for q in self._sizes:
                if all(v == i.params.get(q) and not isinstance(i.params.get(q), bool)
                       for v, i in zip(values, insts)):
                    return self.params[q]
        if all(same(v, values[0]) for v in values):
            return literal(values[0])
        group = tuple(literal(v) for v in values)
        name = self._groups.get(group)
        if name is None:
            taken = set(self.params.values()) | set(self.keywords) | self._taken
            name = next(n for n in [arg.name, f"{node_id}_{arg.name}"] + [f"{arg.name}_{k}" for k in range(2, 10**6)]
                        if n not in taken)
            self._groups[group] = name
            self.keywords.append(name)
            for i, v in enumerate(values):
                self._values[i][name] = v
        return name

    def _call(self, node_id: str, k: int, classes: dict[tuple, "BlockClass"]) -> str:
        calls = [inst.nodes[node_id][k] for inst in self.instances]
        first = calls[0]
        if isinstance(first, Instance):
            inner = classes[first.key]
            callee, arg_lists = inner.name, [inner.call_args(c) for c in calls]
            derived = set(inner.keywords)
        else:
            callee, arg_lists = first.callee, [c.args for c in calls]
            spec = self.instances[0].expansion.graph.spec(self.block.graph.nodes[node_id].type)
            derived = {a.name for a in first.args} - {p.name for p in spec.params}
        items = []
        by_name = [{a.name: a for a in args} for args in arg_lists]
        for arg in arg_lists[0]:
            column = [named.get(arg.name) for named in by_name]
            if any(a is None for a in column):
                raise ExportError(f"block {self.block.name}: node {node_id!r} is built with different "
                                  "arguments in its instances; model.py cannot share one class")
            if not any(a.kept for a in column):
                continue
            source = self._slot(node_id, arg, [a.value for a in column], arg.name in derived)
            items.append((arg.name, source, arg.positional))
        return call_text(callee, items)

    def _source(self, classes: dict[tuple, "BlockClass"], note: list[str]) -> str:
        first = self.instances[0]
        graph = first.block.graph
        lines = []
        for node_id, calls in first.nodes.items():
            texts = [self._call(node_id, k, classes) for k in range(len(calls))]
            call = sequential(texts) if graph.nodes[node_id].repeat > 1 else texts[0]
            shape = _pattern([inst.expansion.analysis.shapes[node_id] for inst in self.instances])
            known = shape is not None and any(c.isdigit() for c in shape)  # not "[*, *, *]"
            lines.append(f"self.{node_id} = {call}" + (f"  # -> {shape}" if known else ""))
            if not graph.nodes[node_id].trainable:
                lines.append(f"self.{node_id}.requires_grad_(False)  # frozen in NetCanvas (trainable: false)")
        signature = ["self"] + self.keywords + [f"{self.params[p]}={_default(self.block, p)}" for p in self.block.params]
        a = first.expansion.analysis
        names = forward_arguments(first.code)
        ins = ", ".join(f"{n} {_pattern([i.expansion.analysis.shapes[x] for i in self.instances], True)}"
                        for n, x in zip(names, a.inputs))
        out = _pattern([i.expansion.analysis.shapes[i.expansion.analysis.output] for i in self.instances], True)
        forward = clean_forward(first.code, f"{ins} -> {out}")
        used = ", ".join(i.path for i in self.instances)
        doc = doc_text(f"Block {self.block.name} ({len(graph.nodes)} nodes), used by {used}.")
        head = "".join(f"# {line}\n" for line in note)
        return (f"{head}class {self.name}(nn.Module):\n"
                f'    """{doc}"""\n\n'
                f"    def __init__({', '.join(signature)}):\n"
                f"        super().__init__()\n"
                + "\n".join("        " + line for line in lines) + "\n\n"
                + indent(forward, 4))


def _default(block: Block, param: str) -> str:
    try:
        return literal(block.params[param])
    except ExportError as e:
        raise ExportError(f"block {block.name}, parameter {param!r}: {e}") from None


def _pattern(shapes: list, batch: bool = False) -> str | None:
    """``[8, 28, 28]`` for shapes equal in every instance, ``[*, 28, 28]`` where a size
    differs; ``[...]`` (with ``batch``) or None where even the ranks differ."""
    ranks = {len(s) for s in shapes if s is not None}
    if len(ranks) != 1 or any(s is None for s in shapes):
        return "[N, ...]" if batch else None
    sizes = [str(d[0]) if len(set(d)) == 1 else "*" for d in zip(*shapes)]
    return "[" + ", ".join((["N"] if batch else []) + sizes) + "]"


@dataclass
class Classes:
    """The block classes of one model.py, inner ones first (``sources``); ``call`` gives
    the constructor call of an instance."""

    by_key: dict[tuple, BlockClass] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return [c.source for c in self.by_key.values()]

    def call(self, inst: Instance) -> str:
        return self.by_key[inst.key].call(inst)


def block_classes(top: list[Instance], blocks: Blocks, reserved: set[str]) -> Classes:
    """The classes for the block instances ``top`` (those of the model's own nodes; the
    ones inside them are found from these). ``reserved``: names model.py already uses."""
    groups: dict[tuple, list[Instance]] = {}

    def visit(inst: Instance) -> None:  # inner first: a class's body calls the inner classes
        for inner in inst.inner():
            visit(inner)
        groups.setdefault(inst.key, []).append(inst)

    for inst in top:
        visit(inst)
    taken = set(reserved) | set(dir(builtins)) | set(keyword.kwlist)
    variants: dict[str, list[tuple]] = {}
    classes = Classes()
    for key, members in groups.items():
        block = members[0].block
        seen = variants.setdefault(block.name, [])
        seen.append(key)
        note = []
        name = block.name if len(seen) == 1 else f"{block.name}_{len(seen)}"
        if name in taken:
            base = name
            name = next(n for n in [f"{base}Block"] + [f"{base}Block_{k}" for k in range(2, 10**6)] if n not in taken)
            note.append(f"block {base} is the class {name} here: model.py already uses the name {base}")
        if len(seen) > 1:
            first = groups[seen[0]][0]
            note.append(f"{name}: block {block.name} again, for {', '.join(i.path for i in members)}, "
                        f"whose inside cannot share the class {classes.by_key[seen[0]].name}: "
                        + _difference(first, members[0], classes))
        taken.add(name)
        classes.by_key[key] = BlockClass(name, members, classes.by_key, blocks, note)
    return classes


def _difference(a: Instance, b: Instance, classes: Classes) -> str:
    """What makes instance ``b`` need another class than ``a``, in words."""
    for node_id, calls in a.nodes.items():
        for x, y in zip(calls, b.nodes.get(node_id, [])):
            kx = classes.by_key[x.key].name if isinstance(x, Instance) else x.callee
            ky = classes.by_key[y.key].name if isinstance(y, Instance) else y.callee
            if kx != ky:
                return f"{node_id} is built by {ky}, not {kx}"
    return "its forward differs"
