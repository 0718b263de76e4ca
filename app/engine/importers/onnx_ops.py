"""ONNX operators mapped to catalogue layers, each only where the layer computes exactly
what the operator does; anything else raises ``Unsupported`` with the reason. This module
holds the element-wise, merging and rearranging operators and the table of all converters;
``onnx_layers`` the weighted and windowed ones, ``onnx_recurrent`` LSTM / GRU / RNN.

A converter is ``fn(ctx, node, inputs) -> [output values]`` where ``ctx`` is the importer
(``onnx_import._Importer``) and inputs are values (``onnx_values``) or None for an omitted
optional input. Weights are given in torch's layout under torch's names.
"""

from __future__ import annotations

from math import isclose, sqrt

import numpy as np
from onnx import numpy_helper

from . import onnx_symbolic as sym
from .onnx_layers import LAYERS
from .onnx_recurrent import RECURRENT, merge_stacked_recurrent
from .onnx_slices import SLICES, merge_slice_splits
from .onnx_values import (
    PENDING_REASONS,
    Const,
    NotExact,
    Pending,
    Tensor,
    Unsupported,
    const,
    dprod,
    f32,
    plain,
    reshape,
    resolve_target,
    scalar,
    squeeze_shape,
    transpose,
    unsqueeze_shape,
)


def _rank(ctx, t: Tensor) -> int:
    return len(ctx.true_shape(t.node))


# -- element-wise ---------------------------------------------------------------------------
def _unary(ctx, node, x, kind: str, params: dict | None = None) -> list:
    """An element-wise layer; on a transposed view it acts on the node's own output and the
    view carries over (element-wise layers commute with rearranging)."""
    label = ctx.current_label
    params = params or {}
    if isinstance(x, Tensor) and not x.in_order:
        new = ctx.add(label, kind, params, [x.node])
        return [Tensor(new.node, list(x.atoms), [list(a) for a in x.axes], x.made_by)]
    t = ctx.materialize(x, label)
    return [ctx.add(label, kind, params, [t.node])]


def _activation(kind, params_of=None):
    def convert(ctx, node, ins):
        return _unary(ctx, node, ins[0], kind, params_of(ctx, node) if params_of else None)

    return convert


def _leaky(ctx, node):
    a = f32(ctx.attr(node, "alpha", 0.01))
    return {} if a == 0.01 else {"negative_slope": a}


def _elu(ctx, node):
    a = f32(ctx.attr(node, "alpha", 1.0))
    return {} if a == 1.0 else {"alpha": a}


def _gelu(ctx, node, ins):
    if ctx.attr(node, "approximate", "none") != "none":
        raise Unsupported("the tanh approximation of GELU; NetCanvas' GELU is the exact one")
    return _unary(ctx, node, ins[0], "GELU")


def _dropout(ctx, node, ins):
    if len(node.output) > 1 and node.output[1] and ctx.consumers[node.output[1]]:
        raise Unsupported("its mask output is used")
    if len(ins) > 2 and ins[2] is not None:
        mode = const(ins[2], "training_mode")
        if mode.size != 1 or bool(mode.reshape(-1)[0]):
            raise Unsupported("runs in training mode")
    ratio = ctx.attr(node, "ratio", 0.5)
    if len(ins) > 1 and ins[1] is not None:
        ratio = scalar(ins[1])
        if ratio is None:
            raise Unsupported("its ratio is not one constant number")
    p = f32(ratio)
    return _unary(ctx, node, ins[0], "Dropout", {} if p == 0.5 else {"p": p})


def _clip(ctx, node, ins):
    """Clip(min=0, no max) is ReLU; other bounds (ReLU6, hard tanh) have no layer."""
    if ctx.opset < 11:
        low, high = ctx.attr(node, "min", None), ctx.attr(node, "max", None)
    else:
        low = scalar(ins[1]) if len(ins) > 1 and ins[1] is not None else None
        high = scalar(ins[2]) if len(ins) > 2 and ins[2] is not None else None
        if any(v is not None and not isinstance(v, Const) for v in ins[1:]):
            raise Unsupported("clips to bounds that are not constant")
    if low == 0.0 and (high is None or high == float("inf")):
        return _unary(ctx, node, ins[0], "ReLU")
    if low == 0.0 and high == 6.0:
        return _unary(ctx, node, ins[0], "ReLU6")
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high) and low < high:
        params = {} if (low, high) == (-1.0, 1.0) else {"min_val": f32(low), "max_val": f32(high)}
        return _unary(ctx, node, ins[0], "Hardtanh", params)
    raise Unsupported(f"clips the data to [{low}, {high}]; NetCanvas maps Clip to ReLU, ReLU6 or Hardtanh "
                      "(both bounds finite)")


def _selu(ctx, node):
    # ONNX's defaults are torch's constants, in float32
    if not (isclose(ctx.attr(node, "alpha", 1.6732632), 1.6732632, rel_tol=1e-6)
            and isclose(ctx.attr(node, "gamma", 1.0507010), 1.0507010, rel_tol=1e-6)):
        raise Unsupported("has an alpha or gamma other than SELU's constants")
    return {}


def _celu(ctx, node):
    a = f32(ctx.attr(node, "alpha", 1.0))
    return {} if a == 1.0 else {"alpha": a}


def _hard_sigmoid(ctx, node):
    if not (isclose(ctx.attr(node, "alpha", 0.2), 1 / 6, rel_tol=1e-6) and ctx.attr(node, "beta", 0.5) == 0.5):
        raise Unsupported("has a slope other than 1/6 or an offset other than 0.5 (torch's Hardsigmoid)")
    return {}


def _prelu(ctx, node, ins):
    x, slope = ins
    t = ctx.materialize(x, ctx.current_label)
    s = const(slope, "slope").astype(np.float32)
    shape = ctx.true_shape(t.node)
    full = (1,) * (len(shape) - s.ndim) + tuple(s.shape)
    if s.size == 1:
        n = 1
    elif len(shape) >= 2 and len(full) == len(shape) and full[1] == shape[1] and s.size == shape[1]:
        n = int(shape[1])
    elif s.ndim == 1 and len(shape) >= 3 and s.size == shape[1] and s.size != shape[-1]:
        # one slope per channel written as a vector: the last axis cannot take it, so the
        # file means the channels (opset 6's broadcasting, torch's old exporter)
        n = int(shape[1])
    else:
        raise Unsupported(f"has slopes of shape {list(s.shape)}; NetCanvas' PReLU has one or one per channel")
    return [ctx.add(ctx.current_label, "PReLU", {"num_parameters": n}, [t.node], {"weight": s.reshape(-1)})]


def _identity(ctx, node, ins):
    if isinstance(ins[0], (Tensor, Pending)):
        return [ins[0]]
    return sym._identity(ctx, node, ins)


_FLOAT, _DOUBLE = 1, 11
_INTS = {2, 3, 4, 5, 6, 7, 12, 13}


def _cast(ctx, node, ins):
    to = ctx.attr(node, "to", _FLOAT)
    x = ins[0]
    if isinstance(x, Pending) and x.kind == "int" and to in _INTS:
        return [x]
    if not isinstance(x, Tensor):
        raise Unsupported("casts a value NetCanvas does not track")
    if to in (_FLOAT, _DOUBLE):
        return [x]
    if to in _INTS:  # truncates: exact only for indices into an Embedding, which casts alike
        return [Pending("int", x, [ctx.current_label])]
    raise Unsupported("casts the data to a type NetCanvas does not compute in (float16, bool, ...)")


def _softmax(kind):
    def convert(ctx, node, ins):
        t = ctx.materialize(ins[0], ctx.current_label)
        rank = _rank(ctx, t)
        default = -1 if ctx.opset >= 13 else 1
        axis = ctx.attr(node, "axis", default)
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise Unsupported(f"{kind} over the batch axis")
        if ctx.opset < 13 and axis != rank - 1:
            # before opset 13 the axes from ``axis`` on are normalized together, as one
            sample = list(ctx.shapes[t.node])
            flat = [*sample[:axis - 1], int(np.prod(sample[axis - 1:]))]
            label = ctx.current_label
            x = ctx.add(label, "Reshape", {"shape": flat}, [t.node], suffix="_flatten")
            y = ctx.add(label, kind, {"dim": axis} if axis != 1 else {}, [x.node])
            return [ctx.add(label, "Reshape", {"shape": sample}, [y.node], suffix="_unflatten")]
        return [ctx.add(ctx.current_label, kind, {} if axis == 1 else {"dim": axis}, [t.node])]

    return convert


# -- merges and arithmetic ------------------------------------------------------------------
def _merge(ctx, kind: str, values: list) -> list:
    label = ctx.current_label
    if all(isinstance(v, Tensor) and not v.in_order for v in values) and all(
            v.same_view(values[0]) and ctx.shapes[v.node] == ctx.shapes[values[0].node] for v in values):
        new = ctx.add(label, kind, {}, [v.node for v in values])
        first = values[0]
        return [Tensor(new.node, list(first.atoms), [list(a) for a in first.axes], first.made_by)]
    nodes = [ctx.materialize(v, label).node for v in values]
    return [ctx.add(label, kind, {}, nodes)]


def _same(a, b) -> bool:
    return a is b or (isinstance(a, Tensor) and isinstance(b, Tensor) and a.node == b.node
                      and a.same_view(b))


def _add(ctx, node, ins):
    (a, na), (b, nb) = (ins[0], node.input[0]), (ins[1], node.input[1])
    if isinstance(b, Pending) or (isinstance(a, Const) and not isinstance(b, Const)):
        (a, na), (b, nb) = (b, nb), (a, na)
    if isinstance(a, Pending) and a.kind == "erf" and scalar(b) is not None and isclose(scalar(b), 1.0):
        return [Pending("gelu", a.x, a.origin + [ctx.current_label], {"have": set()})]
    if isinstance(a, Pending) and a.kind == "abs" and scalar(b) is not None and isclose(scalar(b), 1.0):
        return [Pending("softsign", a.x, a.origin + [ctx.current_label])]
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return _merge(ctx, "Add", [a, b])
    if isinstance(a, Tensor) and isinstance(b, Const):
        if not np.any(b.array) and b.array.ndim <= len(a.shape):
            return [a]
        t = _fold_bias(ctx, a, na, b.array)
        ctx.made_tensor[t.node] = node.output[0]
        return [t]
    if isinstance(a, Pending) or isinstance(b, Pending):
        p = a if isinstance(a, Pending) else b
        raise Unsupported(PENDING_REASONS.get(p.kind), blame=p.origin)
    raise Unsupported("adds values NetCanvas does not track")


_BIASED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
_NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


def _foldable(ctx, t: Tensor, name: str, c: np.ndarray, reason: str):
    """The layer whose output ``t`` (ONNX tensor ``name``) is, its sample shape with batch
    and the channel axis, where ``c`` holds one value (or one per output channel) and only
    this node reads ``t``; ``Unsupported(reason)`` otherwise."""
    if not (t.in_order and t.shape == ctx.true_shape(t.node)) or t.node not in ctx.graph.nodes:
        raise Unsupported(reason)
    layer = ctx.graph.nodes[t.node]
    if (layer.type not in _BIASED + _NORMS or ctx.made_tensor.get(layer.id) != name
            or ctx.value_consumers[name] != 1 or ctx.graph.outgoing(layer.id)):
        raise Unsupported(reason)
    if layer.type in _NORMS and not layer.params.get("affine", True):
        raise Unsupported(reason)
    shape = ctx.true_shape(layer.id)
    if c.ndim > len(shape):
        raise Unsupported(reason)
    full = (1,) * (len(shape) - c.ndim) + tuple(c.shape)
    channel = len(shape) - 1 if layer.type == "Linear" else 1
    if any(d != 1 for i, d in enumerate(full) if i != channel) or full[channel] not in (1, shape[channel]):
        raise Unsupported(reason)
    return layer, np.broadcast_to(c.reshape(-1), (shape[channel],)).astype(np.float32)


def _fold_bias(ctx, t: Tensor, name: str, c: np.ndarray) -> Tensor:
    """``layer(x) + c`` where c holds one value per output channel: c goes into the layer's
    bias (a Linear, Conv or BatchNorm read by nothing else)."""
    reason = ("adds a constant tensor; NetCanvas has no layer for that (only a bias right after "
              "a Linear, Conv or BatchNorm is taken in)")
    layer, values = _foldable(ctx, t, name, c, reason)
    state = ctx.state.setdefault(layer.id, {})
    if layer.type in _BIASED and not layer.params.get("bias", True):
        layer.params = {k: v for k, v in layer.params.items() if k != "bias"}
        state["bias"] = values
    else:
        state["bias"] = (state["bias"] + values).astype(np.float32)
    return t


def _fold_scale(ctx, t: Tensor, name: str, c: np.ndarray, out: str) -> Tensor:
    """``layer(x) * c`` where c holds one value per output channel: c scales the weights
    and bias of the Conv, Linear or BatchNorm before (read by nothing else)."""
    reason = ("multiplies by a constant tensor; NetCanvas has no layer for that (only a factor per "
              "channel right after a Linear, Conv or BatchNorm is taken in)")
    layer, values = _foldable(ctx, t, name, c, reason)
    if layer.type.startswith("ConvTranspose") and layer.params.get("groups", 1) != 1:
        raise Unsupported(reason)
    state = ctx.state.setdefault(layer.id, {})
    w = state["weight"]
    if layer.type in _NORMS:
        state["weight"] = (w * values).astype(np.float32)
    elif layer.type.startswith("ConvTranspose"):   # weight [in, out, ...]
        state["weight"] = (w * values.reshape(1, -1, *([1] * (w.ndim - 2)))).astype(np.float32)
    else:                                          # weight [out, ...]
        state["weight"] = (w * values.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
    if "bias" in state:
        state["bias"] = (state["bias"] * values).astype(np.float32)
    ctx.made_tensor[layer.id] = out   # a bias added next goes in too
    return t


def _sum(ctx, node, ins):
    if len(ins) == 1:
        return [ins[0]]
    if not all(isinstance(v, Tensor) for v in ins):
        raise Unsupported("sums constants into the data; NetCanvas has no layer for that")
    return _merge(ctx, "Add", list(ins))


def _mul(ctx, node, ins):
    a, b = ins
    label = ctx.current_label
    gelu = lambda v: isinstance(v, Pending) and v.kind == "gelu"
    if (gelu(b) and not gelu(a)) or (isinstance(a, Const) and not gelu(b)):
        a, b = b, a
    if gelu(a):
        have = set(a.data["have"])
        if isinstance(b, Pending) and b.kind == "scale" and _same(b.x, a.x) and isclose(b.data["factor"], 0.5):
            have |= {"x", "half"}
            origin = a.origin + b.origin + [label]
        elif _same(b, a.x) and "x" not in have:
            have.add("x")
            origin = a.origin + [label]
        elif scalar(b) is not None and isclose(scalar(b), 0.5) and "half" not in have:
            have.add("half")
            origin = a.origin + [label]
        else:
            raise Unsupported(PENDING_REASONS["gelu"], blame=a.origin + [label])
        if have == {"x", "half"}:
            ctx.current_label = origin[0]
            try:
                return _unary(ctx, node, a.x, "GELU")
            finally:
                ctx.current_label = label
        return [Pending("gelu", a.x, origin, {"have": have})]
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return _merge(ctx, "Multiply", [a, b])
    if isinstance(a, Tensor) and scalar(b) is not None:
        if scalar(b) == 1.0:
            return [a]
        return [Pending("scale", a, [label], {"factor": scalar(b)})]
    if isinstance(a, Tensor) and isinstance(b, Const):
        name = node.input[0] if ins[0] is a else node.input[1]
        return [_fold_scale(ctx, a, name, b.array, node.output[0])]
    if isinstance(a, Pending):
        raise Unsupported(PENDING_REASONS.get(a.kind), blame=a.origin)
    raise Unsupported("multiplies by a constant tensor; NetCanvas has no layer for that")


def _neg(ctx, node, ins):
    if not isinstance(ins[0], Tensor):
        raise Unsupported("negates a value NetCanvas does not track")
    return [Pending("scale", ins[0], [ctx.current_label], {"factor": -1.0})]


def _abs(ctx, node, ins):
    if not isinstance(ins[0], Tensor):
        raise Unsupported(PENDING_REASONS["abs"])
    return [Pending("abs", ins[0], [ctx.current_label])]


def _div(ctx, node, ins):
    a, b = ins
    if isinstance(b, Pending) and b.kind == "softsign" and _same(a, b.x):
        label = ctx.current_label
        ctx.current_label = b.origin[0]
        try:
            return _unary(ctx, node, a, "Softsign")
        finally:
            ctx.current_label = label
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return _merge(ctx, "Divide", [a, b])
    if isinstance(a, Tensor) and scalar(b) not in (None, 0.0):
        if scalar(b) == 1.0:
            return [a]
        return [Pending("scale", a, [ctx.current_label], {"factor": 1.0 / scalar(b)})]
    if isinstance(a, Pending):
        raise Unsupported(PENDING_REASONS.get(a.kind), blame=a.origin)
    raise Unsupported("divides the data; NetCanvas has no layer for that")


def _erf(ctx, node, ins):
    x = ins[0]
    if isinstance(x, Pending) and x.kind == "scale" and isclose(x.data["factor"], 1 / sqrt(2), rel_tol=1e-5):
        return [Pending("erf", x.x, x.origin + [ctx.current_label])]
    raise Unsupported(PENDING_REASONS["erf"])


def _concat(ctx, node, ins):
    if not all(isinstance(v, Tensor) for v in ins):
        if any(isinstance(v, Tensor) for v in ins):
            raise Unsupported("concatenates constants to the data")
        return sym._concat(ctx, node, ins)
    nodes = [ctx.materialize(v, ctx.current_label).node for v in ins]
    rank = len(ctx.true_shape(nodes[0]))
    axis = ctx.attr(node, "axis", 1)
    axis = axis + rank if axis < 0 else axis
    if axis == 0:
        raise Unsupported("concatenates along the batch axis")
    if len(nodes) == 1:
        return [plain_of(ctx, nodes[0])]
    return [ctx.add(ctx.current_label, "Concat", {} if axis == 1 else {"dim": axis}, nodes)]


def plain_of(ctx, node_id: str) -> Tensor:
    return plain(node_id, ctx.true_shape(node_id))


# -- rearranging ----------------------------------------------------------------------------
def _view(fn):
    def convert(ctx, node, ins):
        x = ins[0]
        if not isinstance(x, Tensor):
            if isinstance(x, Pending):
                raise Unsupported(PENDING_REASONS.get(x.kind), blame=x.origin)
            if node.op_type not in sym.SYMBOLIC:
                raise Unsupported("rearranges a value NetCanvas does not track")
            return sym.SYMBOLIC[node.op_type](ctx, node, ins)
        try:
            return [fn(ctx, node, x, ins)]
        except NotExact as e:
            raise Unsupported(f"rearranges the data in a way NetCanvas cannot follow ({e})") from None

    return convert


def _reshape_target(ctx, node, x: Tensor, ins) -> list:
    target, _ = sym.as_items(ins[1]) if len(ins) > 1 and ins[1] is not None else (ctx.attr(node, "shape"), False)
    return resolve_target(x.shape, target, bool(ctx.attr(node, "allowzero", 0)), ctx.fixed_batch)


def _do_reshape(ctx, node, x, ins):
    return reshape(x, _reshape_target(ctx, node, x, ins), ctx.current_label)


def _do_flatten(ctx, node, x, ins):
    shape = x.shape
    axis = ctx.attr(node, "axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    return reshape(x, [dprod(shape[:axis]), dprod(shape[axis:])], ctx.current_label)


def _do_transpose(ctx, node, x, ins):
    perm = ctx.attr(node, "perm", list(range(len(x.axes)))[::-1])
    return transpose(x, list(perm), ctx.current_label)


def _do_squeeze(ctx, node, x, ins):
    return reshape(x, squeeze_shape(x.shape, sym._axes(ctx, node, ins)), ctx.current_label)


def _do_unsqueeze(ctx, node, x, ins):
    return reshape(x, unsqueeze_shape(x.shape, sym._axes(ctx, node, ins)), ctx.current_label)


def _do_expand(ctx, node, x, ins):
    target, _ = sym.as_items(ins[1])
    shape = x.shape
    rank = max(len(shape), len(target))
    full = [1] * (rank - len(shape)) + list(shape)
    want = [1] * (rank - len(target)) + list(target)
    if rank != len(shape) or any(w not in (1, d) for w, d in zip(want, full)):
        raise Unsupported("expands (broadcasts) the data; NetCanvas has no layer for that")
    return x


def _gather(ctx, node, ins):
    data, idx = ins
    label = ctx.current_label
    axis = ctx.attr(node, "axis", 0)
    if isinstance(idx, Pending) and idx.kind == "int":
        idx = idx.x
    if isinstance(data, Const) and isinstance(idx, Tensor):
        if axis != 0 or data.array.ndim != 2:
            raise Unsupported("gathers from a constant that is not an embedding table")
        t = ctx.materialize(idx, label)
        v, e = data.array.shape
        return [ctx.add(label, "Embedding", {"num_embeddings": int(v), "embedding_dim": int(e)},
                        [t.node], {"weight": data.array.astype(np.float32)})]
    if isinstance(data, Tensor) and isinstance(idx, Const):
        t = ctx.materialize(data, label)
        shape = ctx.true_shape(t.node)
        axis = axis + len(shape) if axis < 0 else axis
        i = idx.array
        if len(shape) == 3 and axis == 1 and i.ndim == 0 and int(i) in (-1, shape[1] - 1):
            return [ctx.add(label, "LastStep", {}, [t.node])]
        raise Unsupported("picks entries of the data (NetCanvas maps only picking the last time "
                          "step of a [batch, time, features] sequence, as LastStep)")
    if isinstance(data, (Const, sym.SymVec)):
        return sym._gather(ctx, node, ins)
    raise Unsupported("gathers with indices computed from the data")


def constant_value(ctx, node) -> np.ndarray:
    """The value of a Constant node (any of its attribute spellings)."""
    for a in node.attribute:
        if a.name == "value":
            if a.t.data_location == a.t.EXTERNAL:  # never read here: see onnx_tensors
                raise Unsupported("a Constant whose data was not checked and read from the model's folder")
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    raise Unsupported("a Constant without a value NetCanvas reads (sparse or string)")


CONVERTERS = {
    "Identity": _identity, "Cast": _cast, "Relu": _activation("ReLU"), "Clip": _clip,
    "Sigmoid": _activation("Sigmoid"), "Tanh": _activation("Tanh"),
    "LeakyRelu": _activation("LeakyReLU", _leaky), "Elu": _activation("ELU", _elu),
    "Gelu": _gelu, "Dropout": _dropout, "Selu": _activation("SELU", _selu), "Celu": _activation("CELU", _celu),
    "Mish": _activation("Mish"), "Softplus": _activation("Softplus"), "Softsign": _activation("Softsign"), "HardSwish": _activation("Hardswish"),
    "HardSigmoid": _activation("Hardsigmoid", _hard_sigmoid), "PRelu": _prelu, "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"), "Add": _add, "Sum": _sum, "Mul": _mul, "Div": _div,
    "Erf": _erf, "Abs": _abs, "Neg": _neg, "Concat": _concat, "Reshape": _view(_do_reshape), "Flatten": _view(_do_flatten),
    "Transpose": _view(_do_transpose), "Squeeze": _view(_do_squeeze),
    "Unsqueeze": _view(_do_unsqueeze), "Expand": _view(_do_expand),
    "Gather": _gather, **SLICES, "Shape": sym._shape, "Size": sym._size, **LAYERS, **RECURRENT,
}
SYMBOLIC = sym.SYMBOLIC
__all__ = ["CONVERTERS", "PENDING_REASONS", "SYMBOLIC", "constant_value", "merge_slice_splits",
           "merge_stacked_recurrent"]
