"""ONNX operators that carry weights or windows, mapped to the catalogue's dense,
convolution, pooling, normalization and upsampling layers (see ``onnx_ops`` for the
conventions). Weights come out in torch's layout under torch's names.
"""

from __future__ import annotations

from math import isclose, prod

import numpy as np

from . import onnx_symbolic as sym
from .onnx_views import pad_layer
from .onnx_values import (
    Const,
    Pending,
    Tensor,
    Unsupported,
    axis_in,
    const,
    f32,
    int_or_list,
    ints,
    lengths,
    scalar,
)


# -- dense and convolution ------------------------------------------------------------------
def _gemm(ctx, node, ins):
    label = ctx.current_label
    if ctx.attr(node, "transA", 0):
        raise Unsupported("transposes its data input (transA=1)")
    t = ctx.materialize(ins[0], label)
    if len(ctx.true_shape(t.node)) != 2:
        raise Unsupported("multiplies data of rank other than 2")
    b = const(ins[1], "second input (B)")
    if b.ndim != 2:
        raise Unsupported(f"multiplies by a constant of rank {b.ndim} (a Linear needs a matrix)")
    w = (b if ctx.attr(node, "transB", 0) else b.T) * np.float32(ctx.attr(node, "alpha", 1.0))
    m = w.shape[0]
    state = {"weight": w.astype(np.float32)}
    if len(ins) > 2 and ins[2] is not None:
        c = const(ins[2], "bias (C)") * np.float32(ctx.attr(node, "beta", 1.0))
        if c.ndim > 2 or prod(c.shape[:-1] or (1,)) != 1 or (c.ndim and c.shape[-1] not in (1, m)):
            raise Unsupported(f"adds a bias of shape {list(c.shape)} (not one per output)")
        state["bias"] = np.broadcast_to(c.reshape(-1), (m,)).astype(np.float32)
    params = {"out_features": int(m)}
    if "bias" not in state:
        params["bias"] = False
    return [ctx.add(label, "Linear", params, [t.node], state)]


def _matmul(ctx, node, ins):
    label = ctx.current_label
    if isinstance(ins[0], Const) and isinstance(ins[1], Tensor):
        raise Unsupported("multiplies a constant by the data from the left; NetCanvas' Linear "
                          "multiplies the data by its weights")
    if isinstance(ins[0], Tensor) and isinstance(ins[1], Tensor):
        a, b = (ctx.materialize(v, label) for v in ins)
        if len(a.shape) != len(b.shape):
            raise Unsupported("multiplies data tensors of different ranks; NetCanvas' MatMul does not "
                              "broadcast batch dimensions against feature dimensions")
        return [ctx.add(label, "MatMul", {}, [a.node, b.node])]
    if not isinstance(ins[1], Const):
        raise Unsupported("multiplies the data by a value computed from it")
    t = ctx.materialize(ins[0], label)
    b = ins[1].array
    if b.ndim != 2:
        raise Unsupported(f"multiplies by a constant of rank {b.ndim} (a Linear needs a matrix)")
    return [ctx.add(label, "Linear", {"out_features": int(b.shape[1]), "bias": False}, [t.node],
                    {"weight": np.ascontiguousarray(b.T).astype(np.float32)})]


def _pads(ctx, node, spatial: list[int], k: list[int], s: list[int], d: list[int]):
    """(begin, end) padding per spatial axis, from ``pads`` or ``auto_pad``."""
    nd = len(spatial)
    auto = ctx.attr(node, "auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = ctx.attr(node, "pads", [0] * 2 * nd)
        lengths(node, nd, pads=pads)
        return list(pads[:nd]), list(pads[nd:])
    if auto not in ("VALID", "SAME_UPPER", "SAME_LOWER"):
        raise Unsupported(f"its auto_pad {auto!r} is none of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    if auto == "VALID":
        return [0] * nd, [0] * nd
    begin, end = [], []
    for n, ki, si, di in zip(spatial, k, s, d):
        out = -(-n // si)
        total = max((out - 1) * si + (ki - 1) * di + 1 - n, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin, end


def _pad(ctx, node, ins):
    x = ins[0]
    if not isinstance(x, Tensor):
        raise Unsupported("pads a value NetCanvas does not track")
    mode = ctx.attr(node, "mode", "constant")
    if ctx.opset < 11:
        pads, value, axes = ctx.attr(node, "pads"), ctx.attr(node, "value", 0.0), None
    else:
        pads = ints(ins[1], "pads")
        value = scalar(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0
        axes = ints(ins[3], "axes") if len(ins) > 3 and ins[3] is not None else None
    rank = len(x.shape)
    axes = list(range(rank)) if axes is None else [axis_in(a, rank) for a in axes]
    if pads is None or len(pads) != 2 * len(axes):
        raise Unsupported(f"gives {len(pads or [])} pads for {len(axes)} axes; ONNX takes two per axis")
    begin, end = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[i + len(axes)]
    if not any(begin) and not any(end):
        return [x]
    if value is None:
        raise Unsupported("pads with a value that is not one constant number")
    data = {"begin": begin[2:], "end": end[2:], "begin_all": begin, "end_all": end, "mode": mode, "value": value}
    if mode == "constant" and value == 0.0 and not any(p < 0 for p in begin + end) \
            and not any(begin[:2]) and not any(end[:2]):
        # a Conv right after it takes the padding in; anything else makes it a layer
        return [Pending("pad", x, [ctx.current_label], data)]
    return [pad_layer(ctx, ctx.current_label, ctx.materialize(x, ctx.current_label), begin, end, mode, value)]


def _conv(ctx, node, ins):
    label = ctx.current_label
    x, extra = ins[0], None
    if isinstance(x, Pending) and x.kind == "pad" and ctx.value_consumers[node.input[0]] == 1:
        extra, x = x, x.x
    t = ctx.materialize(x, label)
    w = const(ins[1], "weight")
    shape = ctx.true_shape(t.node)
    nd = len(shape) - 2
    if nd not in (1, 2, 3) or w.ndim != nd + 2:
        raise Unsupported(f"a {nd}-d convolution; NetCanvas has Conv1d, Conv2d and Conv3d")
    k = [int(v) for v in w.shape[2:]]
    s = list(ctx.attr(node, "strides", [1] * nd))
    d = list(ctx.attr(node, "dilations", [1] * nd))
    lengths(node, nd, strides=s, dilations=d, kernel_shape=ctx.attr(node, "kernel_shape"))
    if ctx.attr(node, "kernel_shape") not in (None, k):
        raise Unsupported(f"its kernel_shape {ctx.attr(node, 'kernel_shape')} does not match its weight "
                          f"{list(w.shape)}")
    group = int(ctx.attr(node, "group", 1))
    if w.shape[1] * group != shape[1]:
        raise Unsupported(f"weight {list(w.shape)} with group {group} does not fit {shape[1]} "
                          "input channels")
    begin, end = _pads(ctx, node, shape[2:], k, s, d)
    if extra is not None:
        begin = [b + p for b, p in zip(begin, extra.data["begin"])]
        end = [e + p for e, p in zip(end, extra.data["end"])]
    if begin == end:
        padding = int_or_list(begin, nd)
    elif all(v == 1 for v in s) and all(
            b == di * (ki - 1) // 2 and e == di * (ki - 1) - b for b, e, ki, di in zip(begin, end, k, d)):
        padding = "same"
    elif nd <= 2:  # TensorFlow's "same" at a stride above 1: a padding layer before
        t = pad_layer(ctx, label, t, [0, 0, *begin], [0, 0, *end], "constant", 0.0, suffix="_pad")
        padding = 0
    else:
        raise Unsupported(f"pads unevenly (begin {begin}, end {end}); NetCanvas' Conv3d pads both sides "
                          "alike, or \"same\" at stride 1, and has no 3-d padding layer")
    state = {"weight": w.astype(np.float32)}
    if len(ins) > 2 and ins[2] is not None:
        state["bias"] = const(ins[2], "bias").astype(np.float32)
    params = {"out_channels": int(w.shape[0]), "kernel_size": int_or_list(k, nd),
              "stride": int_or_list(s, nd), "padding": padding, "dilation": int_or_list(d, nd),
              "groups": group, "bias": "bias" in state}
    return [ctx.add(label, f"Conv{nd}d", params, [t.node], state)]


def _conv_transpose(ctx, node, ins):
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    w = const(ins[1], "weight")
    shape = ctx.true_shape(t.node)
    if len(shape) != 4 or w.ndim != 4:
        raise Unsupported("a transposed convolution that is not 2-d; NetCanvas has ConvTranspose2d")
    if w.shape[0] != shape[1]:
        raise Unsupported(f"weight {list(w.shape)} does not fit {shape[1]} input channels")
    if ctx.attr(node, "group", 1) != 1 or any(v != 1 for v in ctx.attr(node, "dilations", [1, 1])):
        raise Unsupported("groups or dilation, which NetCanvas' ConvTranspose2d does not have")
    if ctx.attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID", "") or ctx.attr(node, "output_shape"):
        raise Unsupported("output_shape / auto_pad; give explicit pads to import it")
    pads = ctx.attr(node, "pads", [0, 0, 0, 0])
    lengths(node, 2, pads=pads, strides=ctx.attr(node, "strides"),
            output_padding=ctx.attr(node, "output_padding"))
    if list(pads[:2]) != list(pads[2:]):
        raise Unsupported(f"pads unevenly ({list(pads)}); NetCanvas' ConvTranspose2d pads alike")
    k = [int(v) for v in w.shape[2:]]
    state = {"weight": w.astype(np.float32)}
    if len(ins) > 2 and ins[2] is not None:
        state["bias"] = const(ins[2], "bias").astype(np.float32)
    params = {"out_channels": int(w.shape[1]), "kernel_size": int_or_list(k, 2),
              "stride": int_or_list(ctx.attr(node, "strides", [1, 1]), 2),
              "padding": int_or_list(pads[:2], 2),
              "output_padding": int_or_list(ctx.attr(node, "output_padding", [0, 0]), 2),
              "bias": "bias" in state}
    return [ctx.add(label, "ConvTranspose2d", params, [t.node], state)]


def _pool(base):
    def convert(ctx, node, ins):
        label = ctx.current_label
        t = ctx.materialize(ins[0], label)
        shape = ctx.true_shape(t.node)
        nd = len(shape) - 2
        if nd not in (1, 2, 3):
            raise Unsupported(f"{nd}-d pooling; NetCanvas pools 1-d, 2-d and 3-d feature maps")
        kind = f"{base}{nd}d"
        if len(node.output) > 1 and node.output[1] and ctx.consumers[node.output[1]]:
            raise Unsupported("its indices output is used")
        k = list(ctx.attr(node, "kernel_shape"))
        s = list(ctx.attr(node, "strides", [1] * nd))
        d = list(ctx.attr(node, "dilations", [1] * nd))
        lengths(node, nd, kernel_shape=k, strides=s, dilations=d)
        if base == "AvgPool" and any(v != 1 for v in d):
            raise Unsupported("dilated average pooling; NetCanvas' AvgPool has no dilation")
        begin, end = _pads(ctx, node, shape[2:], k, s, d)
        if all(di == 1 and (n + b + e - ki) // si + 1 == 1 and ki - b >= n
               for n, ki, si, b, e, di in zip(shape[2:], k, s, begin, end, d)) and (
                base == "MaxPool" or not ctx.attr(node, "count_include_pad", 0) or not any(begin + end)):
            # one window over all the input (the padding counts for nothing): global pooling
            adaptive = "AdaptiveMaxPool" if base == "MaxPool" else "AdaptiveAvgPool"
            return [ctx.add(label, f"{adaptive}{nd}d", {"output_size": 1}, [t.node])]
        ceil = False
        if begin != end:
            # more padding at the end (Caffe's rounding up) is torch's ceil_mode where the
            # sizes agree: the windows past the input then see what ONNX's padding gives
            ceil = not ctx.attr(node, "ceil_mode", 0) and all(e >= b for b, e in zip(begin, end)) and all(
                _ceil_size(n, ki, si, b, di) == (n + b + e - di * (ki - 1) - 1) // si + 1
                for n, ki, si, b, e, di in zip(shape[2:], k, s, begin, end, d))
            if not ceil or (base == "AvgPool" and ctx.attr(node, "count_include_pad", 0)):
                raise Unsupported(f"pads unevenly (begin {begin}, end {end})")
        if any(2 * p > ki for p, ki in zip(begin, k)):
            raise Unsupported(f"pads {begin} more than half the window {k}")
        if ctx.attr(node, "ceil_mode", 0):
            for n, ki, si, p, di in zip(shape[2:], k, s, begin, d):
                span = n + 2 * p - di * (ki - 1) - 1
                if span % si:
                    raise Unsupported("rounds its output size up (ceil_mode=1)")
        params = {"kernel_size": int_or_list(k, nd), "padding": int_or_list(begin, nd)}
        if ceil:
            params["ceil_mode"] = True
        if s != k:
            params["stride"] = int_or_list(s, nd)
        if any(v != 1 for v in d):
            params["dilation"] = int_or_list(d, nd)
        if base == "AvgPool" and (any(begin) or ceil) and not ctx.attr(node, "count_include_pad", 0):
            params["count_include_pad"] = False
        return [ctx.add(label, kind, params, [t.node])]

    return convert


def _ceil_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """torch's pooled size with ceil_mode: rounded up, less a last window that would start
    in the right padding."""
    out = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def _global_max(ctx, node, ins):
    t = ctx.materialize(ins[0], ctx.current_label)
    nd = len(ctx.true_shape(t.node)) - 2
    if nd not in (1, 2, 3):
        raise Unsupported("global pooling of data that is not [batch, C, ...] with 1 to 3 spatial axes")
    return [ctx.add(ctx.current_label, f"AdaptiveMaxPool{nd}d", {"output_size": 1}, [t.node])]


def _lrn(ctx, node, ins):
    """ONNX's window over channels is [c - (size-1)//2, c + ceil((size-1)/2)], torch's
    [c - size//2, c + (size-1)//2]: the same for an odd size."""
    t = ctx.materialize(ins[0], ctx.current_label)
    if len(ctx.true_shape(t.node)) < 3:
        raise Unsupported("normalizes data without spatial axes")
    size = int(ctx.attr(node, "size"))
    if size % 2 == 0:
        raise Unsupported(f"sums over an even window of {size} channels, which ONNX centres differently "
                          "from torch's LocalResponseNorm")
    params = {"size": size, "alpha": f32(ctx.attr(node, "alpha", 1e-4)), "beta": f32(ctx.attr(node, "beta", 0.75)),
              "k": f32(ctx.attr(node, "bias", 1.0))}
    return [ctx.add(ctx.current_label, "LocalResponseNorm", params, [t.node])]


def _global_avg(ctx, node, ins):
    t = ctx.materialize(ins[0], ctx.current_label)
    nd = len(ctx.true_shape(t.node)) - 2
    if nd not in (1, 2, 3):
        raise Unsupported("global pooling of data that is not [batch, C, ...] with 1 to 3 spatial axes")
    return [ctx.add(ctx.current_label, f"AdaptiveAvgPool{nd}d", {"output_size": 1}, [t.node])]


def _reduced(ctx, node, ins):
    """A Reduce* node's label, data, rank and axes (sorted, made positive; None for all):
    an input from opset 18 on, an attribute before."""
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    rank = len(ctx.true_shape(t.node))
    if ctx.opset >= 18:
        axes = ints(ins[1], "axes") if len(ins) > 1 and ins[1] is not None else None
    else:
        axes = ctx.attr(node, "axes", None)
    return label, t, rank, sorted(a + rank if a < 0 else a for a in axes) if axes else None


def _reduce_mean(ctx, node, ins):
    label, t, rank, axes = _reduced(ctx, node, ins)
    if rank != 4 or axes != [2, 3]:
        raise Unsupported(f"averages over axes {axes}; NetCanvas maps only the spatial mean of "
                          "[batch, C, H, W] (global average pooling)")
    pooled = ctx.add(label, "AdaptiveAvgPool2d", {"output_size": 1}, [t.node])
    if ctx.attr(node, "keepdims", 1):
        return [pooled]
    return [ctx.add(label, "Flatten", {}, [pooled.node], suffix="_flatten")]


# -- normalization --------------------------------------------------------------------------
def _batchnorm(ctx, node, ins):
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    rank = len(ctx.true_shape(t.node))
    if ctx.attr(node, "training_mode", 0):
        raise Unsupported("runs in training mode")
    if ctx.opset < 9 and not ctx.attr(node, "spatial", 1):
        raise Unsupported("normalizes per element (spatial=0)")
    if any(o and ctx.consumers[o] for o in node.output[1:]):
        raise Unsupported("its running statistics outputs are used")
    kind = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}.get(rank)
    if kind is None:
        raise Unsupported(f"batch normalization of rank-{rank} data")
    state = {"weight": const(ins[1], "scale"), "bias": const(ins[2], "bias"),
             "running_mean": const(ins[3], "mean"), "running_var": const(ins[4], "variance")}
    eps = f32(ctx.attr(node, "epsilon", 1e-5))
    momentum = float(f"{1.0 - f32(ctx.attr(node, 'momentum', 0.9)):.6g}")
    params = {}
    if eps != 1e-5:
        params["eps"] = eps
    if momentum != 0.1:
        params["momentum"] = min(max(momentum, 0.0), 1.0)
    return [ctx.add(label, kind, params, [t.node], {k: v.astype(np.float32) for k, v in state.items()})]


def _layernorm(ctx, node, ins):
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    rank = len(ctx.true_shape(t.node))
    axis = ctx.attr(node, "axis", -1)
    if axis not in (-1, rank - 1):
        raise Unsupported(f"normalizes from axis {axis} on; NetCanvas' LayerNorm normalizes the "
                          "last dimension")
    if any(o and ctx.consumers[o] for o in node.output[1:]):
        raise Unsupported("its mean / inverse deviation outputs are used")
    scale = const(ins[1], "scale").astype(np.float32)
    f = ctx.true_shape(t.node)[-1]
    bias = const(ins[2], "bias").astype(np.float32) if len(ins) > 2 and ins[2] is not None \
        else np.zeros(f, np.float32)
    if scale.size not in (1, f) or bias.size not in (1, f):
        raise Unsupported(f"has a scale of {scale.size} and a bias of {bias.size} values for {f} features")
    state = {"weight": np.broadcast_to(scale.reshape(-1), (f,)).copy(),
             "bias": np.broadcast_to(bias.reshape(-1), (f,)).copy()}
    eps = f32(ctx.attr(node, "epsilon", 1e-5))
    return [ctx.add(label, "LayerNorm", {} if eps == 1e-5 else {"eps": eps}, [t.node], state)]


# -- upsampling -----------------------------------------------------------------------------
def _resize(ctx, node, ins):
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    shape = ctx.true_shape(t.node)
    rank = len(shape)
    if node.op_type == "Upsample":
        mode = ctx.attr(node, "mode", "nearest")
        scales = ctx.attr(node, "scales") if ctx.opset < 9 else const(ins[1], "scales")
        coord, nearest = "asymmetric", "floor"
    else:
        mode = ctx.attr(node, "mode", "nearest")
        coord = ctx.attr(node, "coordinate_transformation_mode", "half_pixel")
        nearest = ctx.attr(node, "nearest_mode", "round_prefer_floor")
        if ctx.opset < 11:
            scales = const(ins[1], "scales")
        else:
            scales = ins[2].array if len(ins) > 2 and isinstance(ins[2], Const) and ins[2].array.size else None
            if scales is None:
                if len(ins) < 4 or not isinstance(ins[3], (Const, sym.SymVec)):
                    raise Unsupported("resizes to sizes that are not constant")
                sizes, _ = sym.as_items(ins[3])
                if len(sizes) != rank:
                    raise Unsupported("resizes only some axes (the axes attribute)")
                if any(not isinstance(o, int) or o < 1 for o in sizes[2:]):
                    raise Unsupported(f"resizes to sizes {sizes}; they must be positive numbers")
                scales = [1.0, 1.0] + [float(o) / float(i) for o, i in zip(sizes[2:], shape[2:])]
        if ctx.attr(node, "antialias", 0) or ctx.attr(node, "axes"):
            raise Unsupported("antialiasing or the axes attribute")
    try:
        scales = [f32(v) for v in np.asarray(scales, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        raise Unsupported("its scales are not numbers") from None
    if not all(np.isfinite(v) and 0 < v <= 2 ** 16 for v in scales):
        raise Unsupported(f"scales by {scales}; scales must be positive, finite and at most 65536")
    if len(scales) != rank or scales[:2] != [1.0, 1.0]:
        raise Unsupported(f"scales the batch or channel axes ({scales})")
    if mode == "nearest" and coord == "asymmetric" and nearest == "floor":
        kind = "nearest"
    elif mode == "linear" and coord in ("half_pixel", "pytorch_half_pixel"):
        kind = {3: "linear", 4: "bilinear"}.get(rank)
    elif mode == "cubic" and coord in ("half_pixel", "pytorch_half_pixel") and rank == 4 \
            and isclose(ctx.attr(node, "cubic_coeff_a", -0.75), -0.75) and not ctx.attr(node, "exclude_outside", 0):
        kind = "bicubic"
    else:
        kind = None
    if kind is None:
        raise Unsupported(f"resizes with mode {mode!r}, coordinates {coord!r}"
                          + (f", rounding {nearest!r}" if mode == "nearest" else "")
                          + "; NetCanvas' Upsample is torch's (nearest: asymmetric floor; linear: "
                          "half pixel)")
    factors = scales[2:]
    for n, f in zip(shape[2:], factors):
        if int(np.floor(n * f)) != round(n * f, 6) and kind != "nearest":
            raise Unsupported(f"scales {n} by {f}, which does not give a whole size")
    scale = factors[0] if len(set(factors)) == 1 else factors
    scale = int(scale) if isinstance(scale, float) and scale.is_integer() else scale
    if isinstance(scale, list):
        scale = [int(v) if v.is_integer() else v for v in scale]
    params = {"scale_factor": scale}
    if kind != "nearest":
        params["mode"] = kind
    return [ctx.add(label, "Upsample", params, [t.node])]


def _instance_norm(ctx, node, ins):
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    shape = ctx.true_shape(t.node)
    kind = {3: "InstanceNorm1d", 4: "InstanceNorm2d"}.get(len(shape))
    if kind is None:
        raise Unsupported(f"instance normalization of rank-{len(shape)} data")
    c = shape[1]
    scale, bias = const(ins[1], "scale").astype(np.float32), const(ins[2], "bias").astype(np.float32)
    if scale.shape != (c,) or bias.shape != (c,):
        raise Unsupported(f"has a scale {list(scale.shape)} and a bias {list(bias.shape)} for {c} channels")
    eps = f32(ctx.attr(node, "epsilon", 1e-5))
    params = {} if eps == 1e-5 else {"eps": eps}
    if np.all(scale == 1) and not np.any(bias):  # torch's exporter writes these for affine=False
        return [ctx.add(label, kind, params, [t.node])]
    return [ctx.add(label, kind, {**params, "affine": True}, [t.node], {"weight": scale, "bias": bias})]


def _depth_to_space(ctx, node, ins):
    """CRD order is torch's PixelShuffle; DCR reads the channels block first, which a
    ChannelShuffle of r^2 groups puts in CRD order."""
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    if len(ctx.true_shape(t.node)) != 4:
        raise Unsupported("moves depth to space of data that is not [batch, C, H, W]")
    r = int(ctx.attr(node, "blocksize"))
    if ctx.attr(node, "mode", "DCR") == "DCR" and r > 1:
        t = ctx.add(label, "ChannelShuffle", {"groups": r * r}, [t.node], suffix="_order")
    return [ctx.add(label, "PixelShuffle", {"upscale_factor": r}, [t.node])]


def _space_to_depth(ctx, node, ins):
    """ONNX writes the channels block first (DCR), torch's PixelUnshuffle channel first: a
    ChannelShuffle of C groups after it reorders them."""
    label = ctx.current_label
    t = ctx.materialize(ins[0], label)
    shape = ctx.true_shape(t.node)
    if len(shape) != 4:
        raise Unsupported("moves space to depth of data that is not [batch, C, H, W]")
    r = int(ctx.attr(node, "blocksize"))
    out = ctx.add(label, "PixelUnshuffle", {"downscale_factor": r}, [t.node])
    if shape[1] == 1 or r == 1:
        return [out]
    return [ctx.add(label, "ChannelShuffle", {"groups": int(shape[1])}, [out.node], suffix="_order")]


def _reduce_max(ctx, node, ins):
    """The maximum over all spatial axes of [batch, C, ...] is global max pooling."""
    label, t, rank, axes = _reduced(ctx, node, ins)
    if rank not in (3, 4, 5) or axes != list(range(2, rank)):
        raise Unsupported(f"takes the maximum over axes {axes}; NetCanvas maps only the maximum over "
                          "all spatial axes of [batch, C, ...] (global max pooling)")
    pooled = ctx.add(label, f"AdaptiveMaxPool{rank - 2}d", {"output_size": 1}, [t.node])
    if ctx.attr(node, "keepdims", 1):
        return [pooled]
    return [ctx.add(label, "Flatten", {}, [pooled.node], suffix="_flatten")]


LAYERS = {
    "Gemm": _gemm, "MatMul": _matmul, "Pad": _pad, "Conv": _conv, "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("MaxPool"), "AveragePool": _pool("AvgPool"), "GlobalAveragePool": _global_avg,
    "GlobalMaxPool": _global_max, "LRN": _lrn,
    "ReduceMean": _reduce_mean, "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm,
    "Resize": _resize, "Upsample": _resize, "InstanceNormalization": _instance_norm,
    "DepthToSpace": _depth_to_space, "SpaceToDepth": _space_to_depth, "ReduceMax": _reduce_max,
}
