"""The handlers of ``torch_map``: one per functional call, tensor method or operator that a
catalogue type computes, each given the ``Mapper`` and the fx node and returning the value
it makes (``(flat name, port)``, ``("multi", name)`` for several outputs, ``"shape"`` for a
value that is not a tensor, a ``ModuleTensor``, or a ``RecurrentOutputs`` part), or raising
``NotMappable``. Functions that ``torch.fx.wrap`` keeps whole are known by name (``WRAPPED``:
torchvision's ``stochastic_depth``)."""

from __future__ import annotations

import dataclasses
import operator
import types
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from ..layers import get_spec
from .torch_layers import NotMappable, plain


@dataclass
class ModuleTensor:
    """A tensor the module holds itself (a ``get_attr``); ``expanded`` after ``.expand``."""

    tensor: torch.Tensor
    path: str
    expanded: bool = False


RECURRENT = ("RNN", "LSTM", "GRU")


@dataclass
class RecurrentOutputs:
    """What torch's RNN / LSTM / GRU returns, or a part of it: ``part`` is ``"outputs"``
    (the pair), ``"state"`` (h_n, or LSTM's (h_n, c_n)), ``"h_n"`` or ``"c_n"``;
    ``layers`` counts layers times directions (the first dimension of h_n)."""

    name: str
    kind: str
    layers: int
    part: str = "outputs"
    bidirectional: bool = False


# what may be applied to one of the module's own tensors before it is used (all constants)
PARAM_SHAPING = {
    "call_method": {"view", "reshape", "unsqueeze", "squeeze", "flatten", "permute", "transpose", "contiguous"},
    "call_function": {torch.reshape, torch.unsqueeze, torch.squeeze, torch.flatten, torch.permute, torch.transpose,
                      operator.getitem},  # self.pos_embed[:, :17]
}


def is_shape_only(n: fx.Node) -> bool:
    """Whether ``n`` computes no tensor (sizes, shape items and arithmetic on them)."""
    return "tensor_meta" not in n.meta or not hasattr(n.meta.get("tensor_meta"), "shape")


def _arg(n: fx.Node, i: int, name: str, default: Any = None) -> Any:
    if len(n.args) > i:
        return n.args[i]
    return n.kwargs.get(name, default)


# -- handlers ---------------------------------------------------------------------------------
def _unary(type_name: str, **readers):
    """A handler for a one-input op whose parameters are the call's arguments
    (``readers``: parameter name -> (position, argument name, default))."""
    def handle(m, n: fx.Node):
        params = {}
        for pname, (i, aname, default) in readers.items():
            value = _arg(n, i, aname, default)
            if isinstance(value, fx.Node):
                raise NotMappable(f"its {aname} is computed, not a constant")
            if value != default:
                params[pname] = plain(value)
        return m.add(type_name, params, [m.tensor(n.args[0])])
    return handle


def _softmax(type_name: str):
    def handle(m, n: fx.Node):
        rank = len(m.out_shape())
        d = _arg(n, 1, "dim")
        return m.add(type_name, {"dim": m.dim(d, rank)}, [m.tensor(n.args[0])])
    return handle


def _flatten(m, n: fx.Node):
    rank = len(m.shape(n.args[0]))
    start, end = _arg(n, 1, "start_dim", 0), _arg(n, 2, "end_dim", -1)
    start = m.dim(start, rank)
    end = end + rank if end < 0 else end
    params = {} if start == 1 else {"start_dim": start}
    if end != rank - 1:
        params["end_dim"] = end
    return m.add("Flatten", params, [m.tensor(n.args[0])])


def _reshape(m, n: fx.Node):
    shape, before = m.out_shape(), m.shape(n.args[0])
    if shape[:1] != before[:1]:
        raise NotMappable(f"changes the batch dimension ({list(before)} -> {list(shape)})")
    return m.add("Reshape", {"shape": list(shape[1:])}, [m.tensor(n.args[0])])


def _dims_args(n: fx.Node, first: int) -> list:
    dims = list(n.args[first:])
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = list(dims[0])
    if not dims:
        dims = n.kwargs.get("dims") or n.kwargs.get("dim") or []
        dims = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    return dims


def _permute(m, n: fx.Node):
    rank = len(m.shape(n.args[0]))
    dims = [d + rank if isinstance(d, int) and d < 0 else d for d in _dims_args(n, 1)]
    if not dims or dims[0] != 0:
        raise NotMappable(f"permutes the batch dimension ({dims})")
    return m.add("Permute", {"dims": dims}, [m.tensor(n.args[0])])


def _transpose(m, n: fx.Node):
    rank = len(m.shape(n.args[0]))
    d0, d1 = m.dim(_arg(n, 1, "dim0"), rank), m.dim(_arg(n, 2, "dim1"), rank)
    return m.add("Transpose", {"dim0": d0, "dim1": d1}, [m.tensor(n.args[0])])


def _mean(m, n: fx.Node):
    rank = len(m.shape(n.args[0]))
    dims = _arg(n, 1, "dim")
    if dims is None:
        raise NotMappable("averages over every dimension, the batch included")
    dims = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    keep = bool(_arg(n, 2, "keepdim", False))
    params = {"dims": [m.dim(d, rank) for d in dims]}
    if keep:
        params["keepdim"] = True
    return m.add("Mean", params, [m.tensor(n.args[0])])


def _split_like(m, n: fx.Node, dim_index: int):
    rank = len(m.shape(n.args[0]))
    d = m.dim(_arg(n, dim_index, "dim", 0), rank)
    metas = n.meta.get("tensor_meta")
    if not isinstance(metas, (list, tuple)):
        raise NotMappable("its parts are not known")
    sizes = [int(t.shape[d]) for t in metas]
    name, _ = m.add("Split", {"sizes": sizes, "dim": d}, [m.tensor(n.args[0])])
    return ("multi", name)


def _chunk(m, n: fx.Node):
    return _split_like(m, n, 2)


def _split(m, n: fx.Node):
    return _split_like(m, n, 2)


def _cat(m, n: fx.Node):
    items = list(_arg(n, 0, "tensors"))
    rank = len(m.out_shape())
    d = m.dim(_arg(n, 1, "dim", 0), rank)
    values = [m.env.get(a) for a in items]
    # a class token: torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
    if len(items) == 2 and isinstance(values[0], ModuleTensor) and values[0].expanded and d == 1 and rank == 3:
        token = values[0].tensor.detach().reshape(1, 1, -1)
        return m.add("ClassToken", {}, [m.tensor(items[1])], {"token": token.clone()})
    inputs = [m.tensor(a) for a in items]
    if len(inputs) < 2:
        return inputs[0]
    return m.add("Concat", {"dim": d}, inputs)


def _expand(m, n: fx.Node):
    value = m.env.get(n.args[0])
    if isinstance(value, ModuleTensor) and value.tensor.dim() == 3 and value.tensor.shape[:2] == (1, 1):
        return ModuleTensor(value.tensor, value.path, expanded=True)
    raise NotMappable("NetCanvas has no layer for it (only a class token's expand over the batch)")


def _binary(kind: str):
    """``+ - * /`` between two tensors (broadcast), a tensor and a number (``* c``, ``/ c``:
    Scale), or a tensor and one of the module's own tensors (PositionalEmbedding, LayerScale)."""
    types = {"add": "Add", "mul": "Multiply", "sub": "Subtract", "div": "Divide"}

    def handle(m, n: fx.Node):
        a, b = n.args[0], _arg(n, 1, "other")
        if n.kwargs.get("alpha", 1) != 1:
            raise NotMappable("alpha other than 1")
        va, vb = m.env.get(a) if isinstance(a, fx.Node) else a, m.env.get(b) if isinstance(b, fx.Node) else b
        if isinstance(va, (int, float)) and not isinstance(va, bool) and kind in ("add", "mul"):
            a, b, va, vb = b, a, vb, va  # c * x is x * c
        if isinstance(vb, (int, float)) and not isinstance(vb, bool):
            if kind == "mul":
                return m.add("Scale", {"factor": float(vb)}, [m.tensor(a)])
            if kind == "div" and vb != 0:
                return m.add("Scale", {"factor": 1.0 / float(vb)}, [m.tensor(a)])
            raise NotMappable(f"{kind} of a constant number (NetCanvas scales, it does not shift)")
        if isinstance(va, ModuleTensor) and kind in ("add", "mul"):
            a, b, va, vb = b, a, vb, va
        if isinstance(vb, ModuleTensor):
            return _own_tensor(m, n, kind, a, vb)
        return m.add(types[kind], {}, [m.tensor(a), m.tensor(b)])
    return handle


def _own_tensor(m, n: fx.Node, kind: str, a: fx.Node, p: ModuleTensor):
    shape = m.shape(a)
    t = p.tensor.detach()
    if kind == "add" and len(shape) == 3 and tuple(t.shape) in ((1, *shape[1:]), tuple(shape[1:])):
        return m.add("PositionalEmbedding", {}, [m.tensor(a)], {"table": t.reshape(1, *shape[1:]).clone()})
    if kind == "mul":
        rank = len(shape)
        # a per-channel (dim 1) or per-feature (last dim) learned factor
        if rank >= 3 and t.numel() == shape[1] and t.dim() <= rank - 1:
            return m.add("LayerScale", {}, [m.tensor(a)], {"gamma": t.reshape(shape[1], *[1] * (rank - 2)).clone()})
        if rank >= 2 and t.numel() == shape[-1] and (t.dim() == 1 or all(s == 1 for s in t.shape[:-1])):
            return m.add("LayerScale", {"dim": rank - 1}, [m.tensor(a)], {"gamma": t.reshape(-1).clone()})
    raise NotMappable(f"uses the module's tensor self.{p.path} (shape {list(t.shape)}) in a way NetCanvas "
                      "has no layer for")


def _recurrent_part(m, n: fx.Node, value: RecurrentOutputs, index: Any):
    """``out, h = rnn(x)``, ``h, c = state``, ``h[-1]``: the sequence (port 0), the last
    layer's final hidden state (port 1, when one direction), or a part still on its way."""
    if value.part == "outputs" and index in (0, 1):
        if index == 0:
            return (value.name, 0)
        return dataclasses.replace(value, part="state" if value.kind == "LSTM" else "h_n")
    if value.part == "state" and index in (0, 1):
        return dataclasses.replace(value, part=("h_n", "c_n")[index])
    if value.part == "h_n" and isinstance(index, int) and index in (-1, value.layers - 1) and not value.bidirectional:
        return (value.name, 1)
    raise NotMappable(f"takes {index!r} of torch's {value.kind} {value.part} (NetCanvas gives the sequence and "
                      "h_n[-1] of a one-direction layer)")


def _getitem(m, n: fx.Node):
    source, index = n.args
    value = m.env.get(source) if isinstance(source, fx.Node) else None
    if isinstance(value, RecurrentOutputs):
        return _recurrent_part(m, n, value, index)
    if value == "shape":
        return "shape"
    if isinstance(value, tuple) and value and value[0] == "multi":
        if not isinstance(index, int):
            raise NotMappable(f"takes the parts {index!r} of a split (one at a time, please)")
        metas = source.meta.get("tensor_meta")
        count = len(metas) if isinstance(metas, (list, tuple)) else 0
        return (value[1], index + count if index < 0 else index)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(index, tuple) and len(index) == 2 \
            and index[0] == slice(None) and isinstance(index[1], int):
        size = m.shape(source)[1]
        i = index[1] + size if index[1] < 0 else index[1]
        return m.add("Select", {"index": i}, [m.tensor(source)])
    if is_shape_only(n):
        return "shape"
    raise NotMappable(f"indexing with {index!r} (NetCanvas selects one position of dimension 1: x[:, i])")


def _select(m, n: fx.Node):
    value = m.env.get(n.args[0]) if isinstance(n.args[0], fx.Node) else None
    if isinstance(value, RecurrentOutputs) and _arg(n, 1, "dim") == 0:  # h_n[-1] as ATen writes it
        return _recurrent_part(m, n, value, _arg(n, 2, "index"))
    shape = m.shape(n.args[0])
    d = m.dim(_arg(n, 1, "dim"), len(shape))
    index = _arg(n, 2, "index")
    if not isinstance(index, int):
        raise NotMappable("its index is computed, not a constant")
    params = {"index": index + shape[d] if index < 0 else index}
    if d != 1:
        params["dim"] = d
    return m.add("Select", params, [m.tensor(n.args[0])])


def _alias(m, n: fx.Node):
    return m.tensor(n.args[0])


def _dropout(type_name: str):
    def handle(m, n: fx.Node):
        p = _arg(n, 1, "p", 0.5)
        return m.add(type_name, {} if p == 0.5 else {"p": float(p)}, [m.tensor(n.args[0])])
    return handle


def _pool(type_name: str):
    def handle(m, n: fx.Node):
        names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode") if "Max" in type_name else \
            ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
        params = {}
        for i, name in enumerate(names, start=1):
            value = _arg(n, i, name)
            if value is not None and not (isinstance(value, (list, tuple)) and not value):
                params[name] = plain(value)
        if params.get("padding") == 0:
            del params["padding"]
        if _arg(n, 6, "return_indices", False):
            raise NotMappable("return_indices=True")
        return m.add(type_name, params, [m.tensor(n.args[0])])
    return handle


def _adaptive(type_name: str):
    def handle(m, n: fx.Node):
        return m.add(type_name, {"output_size": plain(_arg(n, 1, "output_size"))}, [m.tensor(n.args[0])])
    return handle


def _layer_norm(m, n: fx.Node):
    """``F.layer_norm(x, shape, self.weight, self.bias, eps)`` (ConvNeXt's LayerNorm2d):
    a LayerNorm over the trailing dimensions, with the module's tensors as its own."""
    shape, weight, bias = _arg(n, 1, "normalized_shape"), _arg(n, 2, "weight"), _arg(n, 3, "bias")
    eps = _arg(n, 4, "eps", 1e-5)
    dims = len(shape) if isinstance(shape, (list, tuple, torch.Size)) else 1
    tensors = {}
    for key, a in (("weight", weight), ("bias", bias)):
        value = m.env.get(a) if isinstance(a, fx.Node) else a
        if value is None:
            continue
        if not isinstance(value, ModuleTensor) or value.expanded:
            raise NotMappable(f"its {key} is computed, not a tensor of the module")
        tensors[key] = value.tensor.detach().clone()
    if bias is not None and weight is None:
        raise NotMappable("a bias without a weight")
    found = {"eps": float(eps), "dims": dims, "elementwise_affine": weight is not None,
             "bias": bias is not None or weight is None}
    declared = get_spec("LayerNorm").param_index
    params = {k: v for k, v in found.items() if v != declared[k].default}
    return m.add("LayerNorm", params, [m.tensor(n.args[0])], tensors)


def _stochastic_depth(m, n: fx.Node):
    """torchvision.ops.stochastic_depth(input, p, mode, training) (left whole by its
    torch.fx.wrap): StochasticDepth, which is the identity in evaluation as it is."""
    p, mode = _arg(n, 1, "p"), _arg(n, 2, "mode", "row")
    if not isinstance(p, (int, float)) or isinstance(p, bool) or mode not in ("row", "batch"):
        raise NotMappable(f"p {p!r} and mode {mode!r} are not constants StochasticDepth takes")
    return m.add("StochasticDepth", {"p": float(p), **({} if mode == "row" else {"mode": mode})},
                 [m.tensor(n.args[0])])


# functions of other packages that torch.fx leaves whole (their ``torch.fx.wrap``), by name
WRAPPED = {"stochastic_depth": _stochastic_depth}


def _of_torch(target: Any) -> bool:
    """Whether ``target`` is torch's own (torchvision's ``torchvision.ops`` functions are
    not: torchvision wraps them for torch.fx as a user would)."""
    module = target.__module__ or ""
    return module in ("torch", "_operator") or module.startswith("torch.")


def wrapped_handler(target: Any):
    """The handler of a function that ``torch.fx.wrap`` kept whole, known by its name, or None."""
    if isinstance(target, types.FunctionType) and not _of_torch(target):
        return WRAPPED.get(target.__name__)
    return None


def is_opaque(target: Any) -> bool:
    """Whether ``target`` is a Python function of the user's that torch.fx did not trace into
    (``torch.fx.wrap``) and that no handler knows: its ops are hidden from the mapping."""
    return isinstance(target, types.FunctionType) and not _of_torch(target) and target.__name__ not in WRAPPED


def _matmul(m, n: fx.Node):
    return m.add("MatMul", {}, [m.tensor(n.args[0]), m.tensor(n.args[1])])


_ACTIVATIONS = {
    "ReLU": (F.relu, torch.relu, "relu"), "ReLU6": (F.relu6,), "Sigmoid": (torch.sigmoid, F.sigmoid, "sigmoid"),
    "Tanh": (torch.tanh, F.tanh, "tanh"), "SiLU": (F.silu,), "Mish": (F.mish,), "Hardswish": (F.hardswish,),
    "Hardsigmoid": (F.hardsigmoid,), "SELU": (F.selu, torch.selu), "Softsign": (F.softsign,),
    "LogSigmoid": (F.logsigmoid,), "Tanhshrink": (F.tanhshrink,),
}
FUNCTIONS: dict[Any, Any] = {}
METHODS: dict[str, Any] = {}
for _type, _targets in _ACTIVATIONS.items():
    for _t in _targets:
        (METHODS if isinstance(_t, str) else FUNCTIONS)[_t] = _unary(_type)
FUNCTIONS.update({
    F.gelu: _unary("GELU", approximate=(1, "approximate", "none")),
    F.elu: _unary("ELU", alpha=(1, "alpha", 1.0)),
    F.leaky_relu: _unary("LeakyReLU", negative_slope=(1, "negative_slope", 0.01)),
    F.softplus: _unary("Softplus", beta=(1, "beta", 1.0), threshold=(2, "threshold", 20.0)),
    F.hardtanh: _unary("Hardtanh", min_val=(1, "min_val", -1.0), max_val=(2, "max_val", 1.0)),
    F.celu: _unary("CELU", alpha=(1, "alpha", 1.0)),
    F.glu: _unary("GLU", dim=(1, "dim", -1)),
    F.softmax: _softmax("Softmax"), torch.softmax: _softmax("Softmax"),
    F.log_softmax: _softmax("LogSoftmax"), torch.log_softmax: _softmax("LogSoftmax"),
    torch.flatten: _flatten, torch.reshape: _reshape, torch.permute: _permute, torch.transpose: _transpose,
    torch.mean: _mean, torch.chunk: _chunk, torch.split: _split, torch.cat: _cat, torch.concat: _cat,
    operator.add: _binary("add"), operator.iadd: _binary("add"), torch.add: _binary("add"),
    operator.mul: _binary("mul"), operator.imul: _binary("mul"), torch.mul: _binary("mul"),
    operator.sub: _binary("sub"), torch.sub: _binary("sub"),
    operator.truediv: _binary("div"), torch.div: _binary("div"),
    operator.matmul: _matmul, torch.matmul: _matmul, operator.getitem: _getitem, torch.select: _select,
    F.dropout: _dropout("Dropout"), F.dropout1d: _dropout("Dropout1d"), F.dropout2d: _dropout("Dropout2d"),
    F.max_pool1d: _pool("MaxPool1d"), F.max_pool2d: _pool("MaxPool2d"),
    F.avg_pool1d: _pool("AvgPool1d"), F.avg_pool2d: _pool("AvgPool2d"),
    F.adaptive_avg_pool1d: _adaptive("AdaptiveAvgPool1d"), F.adaptive_avg_pool2d: _adaptive("AdaptiveAvgPool2d"),
    F.adaptive_max_pool2d: _adaptive("AdaptiveMaxPool2d"),
    F.layer_norm: _layer_norm, torch.unsqueeze: _reshape, torch.squeeze: _reshape,
})
METHODS.update({
    "softmax": _softmax("Softmax"), "log_softmax": _softmax("LogSoftmax"), "flatten": _flatten,
    "view": _reshape, "reshape": _reshape, "permute": _permute, "transpose": _transpose, "mean": _mean,
    "chunk": _chunk, "split": _split, "expand": _expand, "contiguous": _alias, "clone": _alias,
    "add": _binary("add"), "mul": _binary("mul"), "sub": _binary("sub"), "div": _binary("div"),
    "matmul": _matmul, "unsqueeze": _reshape, "squeeze": _reshape,
})
