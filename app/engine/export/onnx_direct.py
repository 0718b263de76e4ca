"""ONNX written straight from the layer declarations, without torch's exporter.

Tracing a model through ``torch.onnx.export`` costs seconds in a fresh process (torch.export,
dynamo, onnxscript's function library); a graph whose every node is of a type listed in
``CONVERTERS`` is written here instead, with ``onnx.helper``, from the analyzed graph and the
compiled model's weights. The file has what torch's exporter writes: one graph input per Input
(named by its id) and the output named after the output node, both with a free batch axis
(``batch``); initializers named by the state_dict (``conv1.weight``); node names that start
with the node id they come from (``conv1/Conv``, ``conv1/Conv_1`` for a second). Each type maps
onto the ONNX ops that compute what its torch module computes in evaluation (Dropout is the
identity and writes no node unless it is the output, BatchNorm uses its running statistics),
in the forms ``importers.onnx_ops`` reads back as the same layers (a BatchNorm stays one:
torch's exporter folds it into the Conv before it). Anything else (a type not listed, a
parameter value not mapped, an opset outside ``MIN_OPSET``..the installed onnx's newest) is
``Unsupported``: the caller then uses torch's exporter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..graph import Graph
from ..inference import Analysis, ancestors
from ..layers.conv import sizes

Shape = tuple[int, ...]
MIN_OPSET = 13  # Unsqueeze's axes and Softmax's one axis as torch means it, from opset 13 on
IR_VERSION = 10  # what torch's exporter writes: onnxruntime reads it (newer onnx may write newer)
BATCH = "batch"


class Unsupported(Exception):
    """The graph needs torch's exporter; the message says what this module cannot write."""


class _Builder:
    """Collects the nodes and initializers of one graph."""

    def __init__(self, state: Mapping[str, np.ndarray], opset: int):
        self.state, self.opset = state, opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self.used: dict[str, int] = {}
        self.values = 0

    def op(self, node_id: str, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        """Add node ``<node_id>/<op_type>`` reading ``inputs``; returns its output's name
        (``out``, else a fresh one)."""
        base = f"{node_id}/{op_type}"
        self.used[base] = self.used.get(base, 0) + 1
        name = base if self.used[base] == 1 else f"{base}_{self.used[base] - 1}"
        if out is None:
            self.values += 1
            out = f"{node_id}/val_{self.values}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def rename(self, old: str, new: str) -> None:
        """Value ``old`` is called ``new`` wherever a node writes or reads it."""
        for node in self.nodes:
            for names in (node.input, node.output):
                for k, name in enumerate(names):
                    if name == old:
                        names[k] = new

    def weight(self, key: str) -> str:
        """The initializer holding state_dict tensor ``key`` (under that name)."""
        if key not in self.state:
            raise Unsupported(f"the model has no tensor {key}")
        if key not in self.inits:
            self.inits[key] = numpy_helper.from_array(np.ascontiguousarray(self.state[key]), key)
        return key

    def has(self, key: str) -> bool:
        return key in self.state

    def const(self, node_id: str, values, dtype=np.float32) -> str:
        """A new initializer holding ``values`` (a constant the layer's ops read)."""
        self.values += 1
        name = f"{node_id}/const_{self.values}"
        self.inits[name] = numpy_helper.from_array(np.asarray(values, dtype=dtype), name)
        return name


class _Call:
    """What a converter gets: the builder, the node id, the state_dict prefix of this copy
    (``conv1`` or ``conv1.0`` for a repeated node), the input values and shapes (no batch),
    the parameters (defaults filled), the output shape, and the output's value name."""

    def __init__(self, b: _Builder, node_id: str, prefix: str, ins: list[str], shapes: list[Shape],
                 p: dict[str, Any], out_shape: Shape, out: str):
        self.b, self.id, self.prefix, self.ins, self.shapes = b, node_id, prefix, ins, shapes
        self.p, self.out_shape, self.out = p, out_shape, out

    def op(self, op_type: str, inputs: list[str], last: bool = False, **attrs) -> str:
        return self.b.op(self.id, op_type, inputs, self.out if last else None, **attrs)

    def weight(self, name: str) -> str:
        return self.b.weight(f"{self.prefix}.{name}")

    def has(self, name: str) -> bool:
        return self.b.has(f"{self.prefix}.{name}")

    def const(self, values, dtype=np.float32) -> str:
        return self.b.const(self.id, values, dtype)


Converter = Callable[[_Call], None]


# -- dense, shape and merge ------------------------------------------------------------------
def _linear(c: _Call) -> None:
    bias = [c.weight("bias")] if c.p["bias"] else []
    if len(c.shapes[0]) == 1:  # [batch, features]: one Gemm, as torch's exporter writes it
        c.op("Gemm", [c.ins[0], c.weight("weight"), *bias], last=True, transB=1)
        return
    w = c.op("Transpose", [c.weight("weight")], perm=[1, 0])
    y = c.op("MatMul", [c.ins[0], w], last=not bias)
    if bias:
        c.op("Add", [y, bias[0]], last=True)


def _reshape(c: _Call) -> None:
    if not all(d >= 1 for d in c.out_shape):
        raise Unsupported("a dimension of size 0")
    c.op("Reshape", [c.ins[0], c.const([-1, *c.out_shape], np.int64)], last=True)


def _identity(c: _Call) -> None:
    c.op("Identity", [c.ins[0]], last=True)


def _elementwise(op_type: str) -> Converter:
    """Add, Multiply, Subtract, Divide: inputs of lower rank get size-1 axes after the batch
    (the catalogue's broadcasting), then one binary op after another, as the module does."""
    def convert(c: _Call) -> None:
        rank = max(len(s) for s in c.shapes)
        values = []
        for value, shape in zip(c.ins, c.shapes):
            missing = rank - len(shape)
            if missing:
                value = c.op("Unsqueeze", [value, c.const(list(range(1, missing + 1)), np.int64)])
            values.append(value)
        out = values[0]
        for k, value in enumerate(values[1:], 2):
            out = c.op(op_type, [out, value], last=k == len(values))

    return convert


def _concat(c: _Call) -> None:
    c.op("Concat", list(c.ins), last=True, axis=c.p["dim"])


# -- activations ------------------------------------------------------------------------------
def _unary(op_type: str, **fixed) -> Converter:
    def convert(c: _Call) -> None:
        # float attributes: a parameter given as 1 would be written as an INT and fail the checker
        attrs = {k: float(c.p[v] if isinstance(v, str) else v) for k, v in fixed.items()}
        c.op(op_type, [c.ins[0]], last=True, **attrs)

    return convert


def _since(opset: int, converter: Converter) -> Converter:
    def convert(c: _Call) -> None:
        if c.b.opset < opset:
            raise Unsupported(f"needs opset {opset}")
        converter(c)

    return convert


def _clip(low: str | float, high: str | float) -> Converter:
    def convert(c: _Call) -> None:
        lo = c.p[low] if isinstance(low, str) else low
        hi = c.p[high] if isinstance(high, str) else high
        c.op("Clip", [c.ins[0], c.const(lo), c.const(hi)], last=True)

    return convert


def _gelu(c: _Call) -> None:
    if c.b.opset >= 20:
        c.op("Gelu", [c.ins[0]], last=True, approximate=c.p["approximate"])
        return
    if c.p["approximate"] != "none":
        raise Unsupported("the tanh approximation of GELU before opset 20")
    # x * (0.5 * (1 + erf(x / sqrt(2)))): the ops torch's exporter writes, in its order
    x = c.ins[0]
    e = c.op("Erf", [c.op("Div", [x, c.const(np.sqrt(2.0))])])
    half = c.op("Mul", [c.const(0.5), c.op("Add", [e, c.const(1.0)])])
    c.op("Mul", [x, half], last=True)


def _silu(c: _Call) -> None:
    c.op("Mul", [c.ins[0], c.op("Sigmoid", [c.ins[0]])], last=True)


def _softmax(op_type: str) -> Converter:
    def convert(c: _Call) -> None:
        c.op(op_type, [c.ins[0]], last=True, axis=c.p["dim"])

    return convert


# -- convolution and pooling -----------------------------------------------------------------
def _ndim(c: _Call) -> int:
    return len(c.shapes[0]) - 1


def _conv(c: _Call) -> None:
    nd = _ndim(c)
    k = sizes(c.p["kernel_size"], nd, "kernel_size")
    d = sizes(c.p["dilation"], nd, "dilation")
    if c.p["padding"] == "same":
        totals = [di * (ki - 1) for ki, di in zip(k, d)]
        begin, end = [t // 2 for t in totals], [t - t // 2 for t in totals]  # torch: the odd one right
    else:
        begin = end = list(sizes(c.p["padding"], nd, "padding"))
    x, mode = c.ins[0], c.p["padding_mode"]
    if mode != "zeros" and any(begin + end):
        modes = {"reflect": "reflect", "replicate": "edge"}
        if mode not in modes:
            raise Unsupported(f'padding_mode "{mode}"')
        x = c.op("Pad", [x, c.const([0, 0, *begin, 0, 0, *end], np.int64)], mode=modes[mode])
        begin = end = [0] * nd
    bias = [c.weight("bias")] if c.p["bias"] else []
    c.op("Conv", [x, c.weight("weight"), *bias], last=True, group=c.p["groups"], kernel_shape=list(k),
         strides=list(sizes(c.p["stride"], nd, "stride")), dilations=list(d), pads=[*begin, *end])


def _conv_transpose(c: _Call) -> None:
    nd = _ndim(c)
    pad = list(sizes(c.p["padding"], nd, "padding"))
    stride, extra = sizes(c.p["stride"], nd, "stride"), sizes(c.p["output_padding"], nd, "output_padding")
    if any(e >= s for e, s in zip(extra, stride)):  # torch allows it below the dilation; onnxruntime not
        raise Unsupported("output_padding not below the stride")
    bias = [c.weight("bias")] if c.p["bias"] else []
    c.op("ConvTranspose", [c.ins[0], c.weight("weight"), *bias], last=True, group=c.p["groups"],
         kernel_shape=list(sizes(c.p["kernel_size"], nd, "kernel_size")),
         strides=list(stride), dilations=list(sizes(c.p["dilation"], nd, "dilation")), pads=pad + pad,
         output_padding=list(extra))


def _window(c: _Call) -> dict[str, Any]:
    nd = _ndim(c)
    k = sizes(c.p["kernel_size"], nd, "kernel_size")
    s = sizes(c.p["stride"], nd, "stride") if c.p["stride"] is not None else k
    pad = list(sizes(c.p["padding"], nd, "padding"))
    return {"kernel_shape": list(k), "strides": list(s), "pads": pad + pad, "ceil_mode": int(c.p["ceil_mode"])}


def _max_pool(c: _Call) -> None:
    dilations = list(sizes(c.p["dilation"], _ndim(c), "dilation"))
    c.op("MaxPool", [c.ins[0]], last=True, dilations=dilations, **_window(c))


def _avg_pool(c: _Call) -> None:
    if c.p.get("divisor_override") is not None:
        raise Unsupported("divisor_override")
    c.op("AveragePool", [c.ins[0]], last=True, count_include_pad=int(c.p["count_include_pad"]), **_window(c))


def _adaptive(kind: str) -> Converter:
    """One window over all (global pooling), or equal windows where the output size divides
    the input's (torch's windows are then exactly those)."""
    def convert(c: _Call) -> None:
        spatial, out = c.shapes[0][1:], c.out_shape[1:]
        if all(o == 1 for o in out):
            c.op(f"Global{kind}Pool", [c.ins[0]], last=True)
            return
        if any(n % o for n, o in zip(spatial, out)):
            raise Unsupported("an output size that does not divide the input size")
        k = [n // o for n, o in zip(spatial, out)]
        c.op("AveragePool" if kind == "Average" else "MaxPool", [c.ins[0]], last=True, kernel_shape=k, strides=k)

    return convert


# -- normalization ---------------------------------------------------------------------------
def _batchnorm(c: _Call) -> None:
    if not c.p["track_running_stats"]:
        raise Unsupported("a BatchNorm without running statistics uses each batch's")
    channels = c.shapes[0][0]
    scale = c.weight("weight") if c.p["affine"] else c.const(np.ones(channels))
    shift = c.weight("bias") if c.p["affine"] and c.p["bias"] else c.const(np.zeros(channels))
    c.op("BatchNormalization", [c.ins[0], scale, shift, c.weight("running_mean"), c.weight("running_var")],
         last=True, epsilon=float(c.p["eps"]))


def _layernorm(c: _Call) -> None:
    if c.b.opset < 17:
        raise Unsupported("LayerNormalization needs opset 17")
    dims = c.p["dims"]
    normalized = c.shapes[0][-dims:]
    affine = c.p["elementwise_affine"]
    scale = c.weight("weight") if affine else c.const(np.ones(normalized))
    shift = [c.weight("bias")] if affine and c.p["bias"] else []
    c.op("LayerNormalization", [c.ins[0], scale, *shift], last=True, axis=-dims, epsilon=float(c.p["eps"]))


CONVERTERS: dict[str, Converter] = {
    "Linear": _linear, "Flatten": _reshape, "Reshape": _reshape,
    "Identity": _identity, "Dropout": _identity, "Dropout1d": _identity, "Dropout2d": _identity,
    "Dropout3d": _identity, "AlphaDropout": _identity,
    "Add": _elementwise("Add"), "Multiply": _elementwise("Mul"), "Subtract": _elementwise("Sub"),
    "Divide": _elementwise("Div"), "Concat": _concat,
    "ReLU": _unary("Relu"), "Sigmoid": _unary("Sigmoid"), "Tanh": _unary("Tanh"),
    "LeakyReLU": _unary("LeakyRelu", alpha="negative_slope"), "ELU": _unary("Elu", alpha="alpha"),
    "CELU": _unary("Celu", alpha="alpha"), "SELU": _unary("Selu"), "Softsign": _unary("Softsign"),
    "Mish": _since(18, _unary("Mish")), "Hardswish": _since(14, _unary("HardSwish")),
    "Hardsigmoid": _unary("HardSigmoid", alpha=1 / 6, beta=0.5), "SiLU": _silu, "GELU": _gelu,
    "ReLU6": _clip(0.0, 6.0), "Hardtanh": _clip("min_val", "max_val"),
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"),
    "Conv1d": _conv, "Conv2d": _conv, "Conv3d": _conv,
    "ConvTranspose1d": _conv_transpose, "ConvTranspose2d": _conv_transpose, "ConvTranspose3d": _conv_transpose,
    "MaxPool1d": _max_pool, "MaxPool2d": _max_pool, "MaxPool3d": _max_pool,
    "AvgPool1d": _avg_pool, "AvgPool2d": _avg_pool, "AvgPool3d": _avg_pool,
    "AdaptiveAvgPool1d": _adaptive("Average"), "AdaptiveAvgPool2d": _adaptive("Average"),
    "AdaptiveAvgPool3d": _adaptive("Average"), "AdaptiveMaxPool1d": _adaptive("Max"),
    "AdaptiveMaxPool2d": _adaptive("Max"), "AdaptiveMaxPool3d": _adaptive("Max"),
    "BatchNorm1d": _batchnorm, "BatchNorm2d": _batchnorm, "BatchNorm3d": _batchnorm,
    "LayerNorm": _layernorm,
}


def _value_info(name: str, shape: Shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *shape])


def direct_model(graph: Graph, a: Analysis, state: Mapping[str, np.ndarray], opset: int) -> onnx.ModelProto:
    """The ONNX model of ``graph`` (analyzed without errors as ``a``) with the weights
    ``state`` (the compiled model's state_dict as float32 arrays), in ``opset``. Raises
    ``Unsupported`` where torch's exporter is needed."""
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise Unsupported(f"opset {opset}")
    if a.output is None or a.output in a.inputs:
        raise Unsupported("the output is an Input")
    for node_id in a.inputs:
        if a.params[node_id].get("dtype", "float32") != "float32":
            raise Unsupported("an Input of integers")
    b = _Builder(state, opset)
    needed = ancestors(a, a.output)
    values = {i: i for i in a.inputs}  # the ONNX value that holds each node's output
    for node_id in a.order:
        node = graph.nodes[node_id]
        if node.type == "Input" or node_id not in needed:
            continue
        convert = CONVERTERS.get(node.type)
        if convert is None or graph.spec(node.type).multi_output():
            raise Unsupported(f"layer type {node.type}")
        edges = a.incoming.get(node_id, [])
        ins, shapes = [values[e.source] for e in edges], list(a.input_shapes(node_id))
        values[node_id] = node_id
        if convert is _identity and node_id != a.output:
            values[node_id] = ins[0]  # nothing to compute in evaluation: no node, as torch writes it
            continue
        if convert is _identity and node.repeat == 1 and ins[0] not in a.inputs:
            # the output passes its input on: the node before writes the output itself, as in
            # torch's files (no other node needed reads that value: they would come after it)
            b.rename(ins[0], node_id)
            continue
        spec, p = graph.spec(node.type), a.params[node_id]
        for k in range(node.repeat):  # each copy takes the previous copy's output
            out_shape = spec.output_shape(shapes, p)
            last = k == node.repeat - 1
            out = node_id if last else f"{node_id}/copy_{k}"
            prefix = node_id if node.repeat == 1 else f"{node_id}.{k}"
            convert(_Call(b, node_id, prefix, ins, shapes, p, out_shape, out))
            ins, shapes = [out], [out_shape]
    g = helper.make_graph(b.nodes, "main_graph", [_value_info(i, a.shapes[i]) for i in a.inputs],
                          [_value_info(a.output, a.shapes[a.output])], list(b.inits.values()))
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="netcanvas")
    model.ir_version = min(IR_VERSION, onnx.IR_VERSION)
    return model
