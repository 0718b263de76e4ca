"""The ``torch.export`` fallback: a module ``torch.fx`` cannot trace (Python control flow on
shapes, asserts, ``len()`` of a tensor) is exported instead, and its ATen graph rewritten
into the torch-level fx graph that ``torch_map`` reads.

``torch.export`` traces with concrete shapes (a batch of two), so control flow on shapes is
resolved; control flow on values still fails there too. Its graph is ATen ops with the
module's parameters as extra inputs. Each call of a ``torch.nn`` layer (known from the
nodes' ``nn_module_stack``) becomes one ``call_module`` of that layer again, whatever ATen
ops it became; the other ops are renamed to the torch functions ``torch_map`` knows
(``aten.relu`` -> ``torch.relu``, ``aten.view`` -> ``x.view``, ...); a parameter used outside
a layer becomes a ``get_attr`` (class tokens, position tables). An op with no torch
counterpart here stays as it is, and ``torch_map`` names it. Shapes come from the export's
own metadata. A layer of several results (attention's ``(output, weights)``, an LSTM's
``(output, (h_n, c_n))``) gets each result used picked from its call by index, the places
read by running the model once with hooks (``_tuple_outputs``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import warnings
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .torch_layers import is_layer
from .torch_map import CONTAINERS

aten = torch.ops.aten

# ATen overload -> (call_function target | method name) as torch_map reads it; the
# arguments keep their positions (checked against the functions' signatures)
_ATEN: dict[Any, Any] = {
    aten.relu.default: torch.relu, aten.relu_.default: torch.relu,
    aten.add.Tensor: operator.add, aten.add_.Tensor: operator.add, aten.sub.Tensor: operator.sub,
    aten.mul.Tensor: operator.mul, aten.mul_.Tensor: operator.mul, aten.div.Tensor: operator.truediv,
    aten.matmul.default: torch.matmul, aten.flatten.using_ints: torch.flatten,
    aten.permute.default: torch.permute, aten.transpose.int: torch.transpose, aten.mean.dim: torch.mean,
    aten.cat.default: torch.cat, aten.softmax.int: torch.softmax, aten._softmax.default: torch.softmax,
    aten.log_softmax.int: torch.log_softmax, aten._log_softmax.default: torch.log_softmax,
    aten.split.Tensor: torch.split, aten.split_with_sizes.default: torch.split, aten.chunk.default: torch.chunk,
    aten.dropout.default: F.dropout, aten.gelu.default: F.gelu, aten.sigmoid.default: torch.sigmoid,
    aten.tanh.default: torch.tanh, aten.silu.default: F.silu, aten.hardswish.default: F.hardswish,
    aten.hardsigmoid.default: F.hardsigmoid, aten.leaky_relu.default: F.leaky_relu,
    aten.hardtanh.default: F.hardtanh, aten.max_pool2d.default: F.max_pool2d,
    aten.avg_pool2d.default: F.avg_pool2d, aten.adaptive_avg_pool2d.default: F.adaptive_avg_pool2d,
    aten.unsqueeze.default: torch.unsqueeze, aten.squeeze.dim: torch.squeeze,
    aten.view.default: "view", aten.reshape.default: "reshape", aten.expand.default: "expand",
    aten.contiguous.default: "contiguous", aten.clone.default: "clone", aten.alias.default: "contiguous",
    aten.select.int: torch.select, operator.getitem: operator.getitem,
}


class ExportFailed(Exception):
    """``torch.export`` could not export the module either; the message says why."""


def exported_graph(model: nn.Module, shape: tuple[int, ...], example: torch.Tensor | None = None) -> fx.GraphModule:
    """A torch-level ``GraphModule`` over ``model`` for inputs of ``shape`` (plus a batch of
    two; ``example``: such an input, random values if None), made from ``torch.export``'s
    program. Raises ``ExportFailed``."""
    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = shapes_log.level
    try:
        # torch prints the partial graph and logs warnings when export fails: our message says it
        shapes_log.setLevel(logging.ERROR)
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            # torch's RNN, LSTM and GRU re-assign their flat weight list while exported: harmless
            warnings.filterwarnings("ignore", "The tensor attributes self.*_flat_weights", UserWarning)
            example = torch.randn(2, *shape) if example is None else example
            program = torch.export.export(model, (example,))
    except Exception as e:  # export raises many types for code it cannot follow
        text = str(e).strip().splitlines()
        raise ExportFailed(f"{type(e).__name__}: {text[0] if text else ''}") from e
    finally:
        shapes_log.setLevel(level)
    sig = program.graph_signature
    owned = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
             **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
    modules = dict(model.named_modules())
    return _Rewriter(program.graph, owned, modules, model, _tuple_outputs(model, modules, example)).run()


def _tuple_outputs(model: nn.Module, modules: dict[str, nn.Module], example: torch.Tensor) -> dict[str, list]:
    """For each torch.nn layer of ``model`` that returns several tensors (attention, RNN,
    LSTM: ``(output, (h_n, c_n))``), where each sits: module path -> [(index path, shape)],
    flattened in order, read by running the model once on ``example`` (in its mode)."""
    found: dict[str, list] = {}

    def record(path: str):
        def hook(_module, _args, output):
            if isinstance(output, (tuple, list)):
                found.setdefault(path, _flatten_outputs(output, ()))
        return hook

    handles = [m.register_forward_hook(record(path)) for path, m in modules.items()
               if path and _is_torch_nn(m) and is_layer(m)]
    try:
        with torch.no_grad():
            model(example)
    except Exception:  # noqa: BLE001 - export ran it already; without the record, outputs stay unmapped
        pass
    finally:
        for h in handles:
            h.remove()
    return found


def _flatten_outputs(value: Any, where: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, ...] | None]]:
    if isinstance(value, (tuple, list)):
        return [item for i, v in enumerate(value) for item in _flatten_outputs(v, (*where, i))]
    return [(where, tuple(value.shape) if isinstance(value, torch.Tensor) else None)]


def _is_torch_nn(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn") and not isinstance(module, CONTAINERS)


class _Rewriter:
    def __init__(self, graph: fx.Graph, owned: dict[str, str], modules: dict[str, nn.Module], root: nn.Module,
                 tuple_outputs: dict[str, list] | None = None):
        self.tuple_outputs = tuple_outputs or {}
        self.old = graph
        self.owned = owned  # placeholder name -> the module's tensor (fqn)
        self.modules = modules
        self.root = root
        self.new = fx.Graph()
        self.env: dict[fx.Node, fx.Node] = {}
        self.attrs: dict[str, fx.Node] = {}

    def layer_key(self, n: fx.Node) -> tuple[str, str] | None:
        """(stack key, module path) of the torch.nn layer call ``n`` belongs to, if any: the
        outermost one with a catalogue type (a TransformerEncoderLayer, not the Linear
        inside it), else the innermost torch.nn module (which ``torch_map`` then names)."""
        stack = [(key, path) for key, (path, _) in (n.meta.get("nn_module_stack") or {}).items()
                 if path in self.modules]
        for key, path in stack:
            if _is_torch_nn(self.modules[path]) and is_layer(self.modules[path]):
                return key, path
        if stack and _is_torch_nn(self.modules[stack[-1][1]]):
            return stack[-1]
        return None

    def run(self) -> fx.GraphModule:
        nodes = list(self.old.nodes)
        groups: dict[tuple[str, str], list[fx.Node]] = {}
        for n in nodes:
            if n.op == "call_function":
                key = self.layer_key(n)
                if key is not None:
                    groups.setdefault(key, []).append(n)
        last = {members[-1]: key for key, members in groups.items()}
        member_of = {m: key for key, members in groups.items() for m in members}
        for n in nodes:
            if n.op == "placeholder":
                if n.name not in self.owned:
                    self.env[n] = self.copy_meta(n, self.new.placeholder(n.name))
            elif n.op == "output":
                result = n.args[0]
                if isinstance(result, (tuple, list)) and len(result) == 1:
                    result = result[0]  # (export's output is always a tuple)
                self.new.output(fx.node.map_arg(result, self.value))
            elif n in member_of:
                if n in last:
                    self.layer_call(last[n], groups[last[n]])
            else:
                self.function(n)
        return fx.GraphModule(self.root, self.new, class_name=type(self.root).__name__)

    def value(self, n: fx.Node) -> fx.Node:
        if n.op == "placeholder" and n.name in self.owned:
            fqn = self.owned[n.name]
            if fqn not in self.attrs:
                self.attrs[fqn] = self.copy_meta(n, self.new.get_attr(fqn))
            return self.attrs[fqn]
        return self.env[n]

    def layer_call(self, key: tuple[str, str], members: list[fx.Node]) -> None:
        inside = set(members)
        inputs: list[fx.Node] = []
        for m in members:
            for a in m.all_input_nodes:
                if a not in inside and not (a.op == "placeholder" and a.name in self.owned) and a not in inputs:
                    inputs.append(a)
        leaving = [m for m in members if any(u not in inside for u in m.users)]
        call = self.new.call_module(key[1], tuple(self.env[a] for a in inputs))
        out = leaving[-1] if leaving else members[-1]
        self.copy_meta(out, call)
        places = list(self.tuple_outputs.get(key[1], []))
        if places:  # several results: how many, as torch_map counts them
            count = max(p[0][0] for p in places) + 1
            call.meta["tensor_meta"] = tuple(SimpleNamespace(shape=next((p[1] for p in places if p[0] == (i,)), None))
                                             for i in range(count))
        for m in leaving:
            # a layer of several results (attention's (output, weights), an LSTM's
            # (output, (h_n, c_n))): each result used is picked from the call as torch gives it
            val = m.meta.get("val")
            shape = tuple(val.shape) if isinstance(val, torch.Tensor) else None
            place = next((p for p in places if p[1] == shape and shape is not None), None)
            if place is None:
                self.env[m] = call
                continue
            places.remove(place)
            node = call
            for i in place[0]:
                node = self.new.call_function(operator.getitem, (node, i))
            self.env[m] = self.copy_meta(m, node)
            if len(place[0]) > 1:  # the tuple between, (h_n, c_n): no tensor of its own
                node.args[0].meta["nn_module_stack"] = node.meta["nn_module_stack"]

    def function(self, n: fx.Node) -> None:
        target = _ATEN.get(n.target, n.target)
        args = fx.node.map_arg(n.args, self.value)
        kwargs = fx.node.map_arg(n.kwargs, self.value)
        if isinstance(target, str):
            made = self.new.call_method(target, args, kwargs)
        else:
            made = self.new.call_function(target, args, kwargs)
        self.env[n] = self.copy_meta(n, made)

    def copy_meta(self, old: fx.Node, new: fx.Node) -> fx.Node:
        val = old.meta.get("val")
        if isinstance(val, torch.Tensor):
            new.meta["tensor_meta"] = SimpleNamespace(shape=tuple(val.shape))
        elif isinstance(val, (list, tuple)) and val and all(isinstance(v, torch.Tensor) for v in val):
            new.meta["tensor_meta"] = tuple(SimpleNamespace(shape=tuple(v.shape)) for v in val)
        stack = {}
        for key, (path, _) in (old.meta.get("nn_module_stack") or {}).items():
            if path and path in self.modules:
                stack[key] = (path, type(self.modules[path]))
        new.meta["nn_module_stack"] = stack
        if old.meta.get("stack_trace"):
            new.meta["stack_trace"] = old.meta["stack_trace"]
        return new
