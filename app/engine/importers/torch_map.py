"""From a traced ``torch.fx`` graph to a flat list of catalogue nodes (``Flat``).

Every fx node is mapped where a catalogue type computes exactly what it does: leaf
modules through ``torch_layers``; functional calls, tensor methods and operators through
``torch_handlers`` (shapes come from running the module once, ``ShapeProp``, on a batch of
two). Values that are not tensors (``x.size(0)``, ``x.shape``) are not nodes: a reshape
takes its target shape from the shape it produced. Parameters held by the module itself
(class tokens, position tables, layer scales) map to ClassToken, PositionalEmbedding and
LayerScale where they are used in those patterns. A Linear over channels-last feature maps
(ConvNeXt) is wrapped in two Reshapes (NetCanvas's Linear takes rows of features); torch's
RNN / LSTM / GRU give their sequence and ``h_n[-1]`` (``torch_handlers.RecurrentOutputs``);
ShuffleNet's written-out channel shuffle becomes one ChannelShuffle
(``channel_shuffles``). Whatever cannot be mapped is collected
(``Failure``: the op and its source line) rather than raised at once, so that the user
learns every offending node in one go.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from .torch_handlers import (FUNCTIONS, METHODS, PARAM_SHAPING, RECURRENT, ModuleTensor, RecurrentOutputs, is_shape_only,
                             wrapped_handler)
from .torch_layers import PASS_THROUGH, NotMappable, module_type

# container classes: never a block, never a layer
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TORCH_DIR = torch.__file__.rsplit("/", 1)[0]


@dataclass
class Flat:
    """One catalogue node before blocks are made: ``inputs`` are ``(flat name, port)``;
    ``tensors`` its weights under the catalogue module's own names; ``scope`` the module
    instances (path, class) it was called inside, outermost first; ``local`` the id it
    would like (a module path, or the fx node's name)."""

    name: str
    type: str
    params: dict[str, Any]
    inputs: list[tuple[str, int]]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    scope: list[tuple[str, type]] = field(default_factory=list)
    local: str = ""
    shape: tuple[int, ...] | None = None  # of its output, with the batch (None: several outputs)


@dataclass
class Failure:
    """An fx node that has no catalogue type: ``op`` as the user wrote it
    (``torch.roll``), ``where`` its source line (``swin.py:231``), ``why`` the reason."""

    op: str
    where: str
    why: str

    def __str__(self) -> str:
        return f"{self.op} at {self.where}: {self.why}" if self.where else f"{self.op}: {self.why}"


class _Poisoned(Exception):
    """An argument is the value of a node that already failed: not reported again."""


_FAILED = object()


def where(node: fx.Node) -> str:
    """The user's source line that made ``node`` (``file.py:12``), or ''."""
    trace = node.meta.get("stack_trace") or ""
    frames = [(f, n) for f, n in _FRAME.findall(trace) if not f.startswith(_TORCH_DIR)]
    if not frames:
        return ""
    path, line = frames[-1]
    return f"{path.rsplit('/', 1)[-1]}:{line}"


def op_name(node: fx.Node) -> str:
    """How the user wrote the op of ``node``: ``torch.roll``, ``F.relu``, ``x.view``, ``+``."""
    if node.op == "call_method":
        return f"x.{node.target}"
    if node.op == "output":
        return "return"
    if node.op == "call_module":
        return f"self.{node.target}"
    if node.op == "get_attr":
        return f"self.{node.target}"
    target = node.target
    symbols = {operator.add: "+", operator.iadd: "+=", operator.mul: "*", operator.imul: "*=",
               operator.sub: "-", operator.truediv: "/", operator.matmul: "@", operator.getitem: "[]",
               operator.floordiv: "//", operator.pow: "**", operator.neg: "unary -"}
    if target in symbols:
        return symbols[target]
    if isinstance(target, torch._ops.OpOverload):
        return f"torch.{target._opname}"  # an ATen op (the torch.export fallback)
    module = getattr(target, "__module__", "") or ""
    name = getattr(target, "__name__", str(target))
    if module.startswith("torch.nn.functional"):
        return f"F.{name}"
    if module.startswith("torch") or module == "":
        return f"torch.{name}"
    return f"{module}.{name}"


class Mapper:
    """Maps the nodes of ``gm`` (already shape-propagated) to ``Flat`` nodes; ``run``
    returns ``(flats, output)`` and leaves every unmappable node in ``failures``."""

    def __init__(self, gm: fx.GraphModule, input_shapes: list[tuple[int, ...]], integer_input: bool = False):
        """``integer_input``: the inputs are token ids (int64 Inputs, for an Embedding)."""
        self.gm = gm
        self.input_shapes = input_shapes
        self.integer_input = integer_input
        self.flats: list[Flat] = []
        self.names: set[str] = set()
        self.failures: list[Failure] = []
        self.env: dict[fx.Node, Any] = {}
        self.node: fx.Node | None = None

    # -- helpers used by the handlers -----------------------------------------------------
    def shape(self, n: Any) -> tuple[int, ...]:
        meta = n.meta.get("tensor_meta") if isinstance(n, fx.Node) else None
        if meta is None or not hasattr(meta, "shape"):
            raise NotMappable("its result is not a tensor")
        return tuple(meta.shape)

    def out_shape(self) -> tuple[int, ...]:
        return self.shape(self.node)

    def tensor(self, a: Any) -> tuple[str, int]:
        """The (flat, port) value of argument ``a``, which must be a tensor the graph computes."""
        value = self.env.get(a) if isinstance(a, fx.Node) else None
        if value is _FAILED:
            raise _Poisoned()
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
            return value
        if isinstance(value, ModuleTensor):
            raise NotMappable(f"uses the module's tensor self.{value.path} in a way NetCanvas has no layer for")
        if isinstance(value, RecurrentOutputs):
            raise NotMappable(f"uses torch's {value.kind} state {value.part} (NetCanvas's {value.kind} gives the "
                              "sequence and the last layer's final hidden state, h_n[-1])")
        raise NotMappable(f"takes {_describe(a)} where NetCanvas needs a tensor the network computes")

    def dim(self, d: Any, rank: int) -> int:
        """Dimension ``d`` (counted with the batch, may be negative) as a positive index;
        refuses the batch dimension."""
        if not isinstance(d, int):
            raise NotMappable(f"dimension {d!r} is not a constant integer")
        k = d + rank if d < 0 else d
        if not 0 < k < rank:
            raise NotMappable(f"acts on dimension {d} of a {rank}-d tensor (the batch dimension or none)")
        return k

    def add(self, type_name: str, params: dict[str, Any], inputs: list[tuple[str, int]],
            tensors: dict[str, torch.Tensor] | None = None, local: str | None = None,
            shape: tuple[int, ...] | None = None) -> tuple[str, int]:
        n = self.node
        if shape is None:
            meta = n.meta.get("tensor_meta")
            shape = tuple(meta.shape) if hasattr(meta, "shape") else None
        scope = [(path, cls) for path, cls in (n.meta.get("nn_module_stack") or {}).values()]
        if n.op == "call_module" and scope and scope[-1][0] == n.target:
            scope = scope[:-1]  # the leaf module itself
        name = n.name if n.name not in self.names else f"{n.name}_{len(self.flats)}"
        self.names.add(name)
        self.flats.append(Flat(name, type_name, params, inputs, tensors or {}, scope, local or n.name, shape))
        return (name, 0)

    # -- the walk -------------------------------------------------------------------------
    def run(self) -> tuple[list[Flat], tuple[str, int] | None]:
        output = None
        k = 0
        for n in self.gm.graph.nodes:
            self.node = n
            try:
                if any(self.env.get(a) is _FAILED for a in n.all_input_nodes):
                    self.known(n)  # an op with no layer is named even after a failed one
                    raise _Poisoned()
                if n.op == "placeholder":
                    params = {"shape": list(self.input_shapes[k])} | ({"dtype": "int64"} if self.integer_input else {})
                    self.env[n] = self.add("Input", params, [], local="input")
                    k += 1
                elif n.op == "output":
                    output = self.tensor(n.args[0])
                elif n.op == "get_attr":
                    self.env[n] = ModuleTensor(_fetch(self.gm, n.target), n.target)
                elif n.op == "call_module":
                    self.env[n] = self.module(n)
                else:
                    self.env[n] = self.call(n)
            except NotMappable as e:
                self.failures.append(Failure(op_name(n), where(n), str(e)))
                self.env[n] = _FAILED
            except _Poisoned:
                self.env[n] = _FAILED
        if output is not None and not self.failures:
            self.flats = channel_shuffles(self.flats, output)
        return self.flats, output

    def known(self, n: fx.Node) -> None:
        """Raise ``NotMappable`` when no catalogue type could take ``n``, whatever its inputs."""
        if n.op == "call_module":
            m = self.gm.get_submodule(n.target)
            if not isinstance(m, PASS_THROUGH):
                module_type(m)
        elif n.op in ("call_function", "call_method"):
            table = METHODS if n.op == "call_method" else FUNCTIONS
            if n.target not in table and not is_shape_only(n) and n.target not in PARAM_SHAPING.get(n.op, ()) \
                    and not (n.op == "call_function" and wrapped_handler(n.target)):
                raise NotMappable("NetCanvas has no layer for it")

    def module(self, n: fx.Node):
        m = self.gm.get_submodule(n.target)
        if isinstance(m, PASS_THROUGH):
            return self.tensor(n.args[0])
        type_name, params = module_type(m)
        kwargs = {k: v for k, v in n.kwargs.items() if v is not None
                  and not (type_name == "MultiheadAttention" and k == "need_weights")}
        if kwargs:
            raise NotMappable(f"is called with {', '.join(kwargs)} (NetCanvas layers take only their inputs)")
        args = list(n.args)
        if type_name == "MultiheadAttention":
            if len(args) == 3 and args[0] is args[1] is args[2]:
                args = args[:1]
        inputs = [self.tensor(a) for a in args]
        tensors = dict(m.state_dict())
        if type_name == "Linear" and len(self.shape(args[0])) >= 4:
            # a Linear over channels-last feature maps (ConvNeXt's [B, H, W, C]): NetCanvas's
            # Linear takes rows of features, so the positions become one dimension around it
            before, after = self.shape(args[0]), self.out_shape()
            rows_shape = (before[0], math.prod(before[1:-1]), before[-1])
            rows = self.add("Reshape", {"shape": list(rows_shape[1:])}, inputs, local=f"module:{n.target}_rows",
                            shape=rows_shape)
            value = self.add(type_name, params, [rows], tensors, local=f"module:{n.target}",
                             shape=(*rows_shape[:2], after[-1]))
            return self.add("Reshape", {"shape": list(after[1:])}, [value], local=f"module:{n.target}_back")
        value = self.add(type_name, params, inputs, tensors, local=f"module:{n.target}")
        if type_name == "MultiheadAttention":
            return ("multi", value[0])
        if type_name in RECURRENT:
            # torch gives (output, h_n) (LSTM: (output, (h_n, c_n))); NetCanvas's layer gives
            # the sequence and the last layer's final state, h_n[-1]: see torch_handlers
            return RecurrentOutputs(value[0], type_name, m.num_layers * (2 if m.bidirectional else 1),
                                    bidirectional=m.bidirectional)
        return value

    def call(self, n: fx.Node):
        first = self.env.get(n.args[0]) if n.args and isinstance(n.args[0], fx.Node) else None
        if isinstance(first, ModuleTensor) and not first.expanded and n.target in PARAM_SHAPING.get(n.op, ()) \
                and not n.kwargs and all("value" in a.meta for a in n.all_input_nodes[1:]):
            # the module's own tensor reshaped or sliced by constants (self.gamma.view(-1, 1, 1),
            # self.pos[:, :x.shape[1]]: a size known from the run): done here, checked by the comparison
            args = fx.node.map_arg(n.args[1:], lambda a: a.meta["value"])
            fn = getattr(first.tensor, n.target) if n.op == "call_method" else n.target
            return ModuleTensor(fn(*((first.tensor,) if n.op == "call_function" else ()), *args), first.path)
        if is_shape_only(n) and all(isinstance(self.env.get(a), str) and self.env.get(a) == "shape"
                                    for a in n.all_input_nodes):
            return "shape"  # arithmetic on sizes only (h // p * w // p): read from shapes instead
        handler = METHODS.get(n.target) if n.op == "call_method" else FUNCTIONS.get(n.target)
        if handler is None and n.op == "call_function":
            handler = wrapped_handler(n.target)
        if handler is None:
            if is_shape_only(n):
                return "shape"  # x.size(0), x.shape[1], arithmetic on them: read from shapes instead
            raise NotMappable("NetCanvas has no layer for it")
        return handler(self, n)


def _fetch(gm: fx.GraphModule, target: str) -> torch.Tensor:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _describe(a: Any) -> str:
    if isinstance(a, fx.Node):
        return f"the value of {a.name}"
    return f"the constant {a!r}"



def channel_shuffles(flats: list[Flat], output: tuple[str, int]) -> list[Flat]:
    """ShuffleNet's channel shuffle written out (``x.view(B, g, C // g, H, W)``,
    ``torch.transpose(x, 1, 2)``, ``x.view(B, C, H, W)``) as one ChannelShuffle of ``g``
    groups; returns the flats with each such run replaced (the last node keeps its name)."""
    by_name = {f.name: f for f in flats}
    users: dict[str, list[Flat]] = {}
    for f in flats:
        for src, _ in f.inputs:
            users.setdefault(src, []).append(f)
    dropped: set[str] = set()
    for first in flats:
        p = first.params.get("shape")
        if first.type != "Reshape" or not isinstance(p, list) or len(p) != 4 or len(first.inputs) != 1:
            continue
        source = by_name[first.inputs[0][0]]
        groups, per, h, w = p
        if source.shape is None or tuple(source.shape[1:]) != (groups * per, h, w) or first.name == output[0]:
            continue
        after = users.get(first.name, [])
        if len(after) != 1 or after[0].type != "Transpose" or after[0].name == output[0] \
                or {after[0].params.get("dim0"), after[0].params.get("dim1")} != {1, 2}:
            continue
        last = users.get(after[0].name, [])
        if len(last) != 1 or last[0].type != "Reshape" or last[0].params.get("shape") != [groups * per, h, w]:
            continue
        last = last[0]
        last.type, last.params, last.inputs = "ChannelShuffle", {"groups": groups}, list(first.inputs)
        last.local = "channel_shuffle"
        dropped.update((first.name, after[0].name))
    return [f for f in flats if f.name not in dropped]
