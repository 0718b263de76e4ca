"""Pooling layers, 1-d to 3-d: maximum and average over windows, and adaptive pooling to a
given output size."""

from __future__ import annotations


from ..lazy import torch_class  # torch loads when a module is built, not here
from ..params import Param
from .conv import RANKS, SHAPES, as_torch, int_tuple, sizes, window_out
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError


def _pool_infer(layer, ndim):
    def infer(shapes, p):
        shape = shapes[0]
        need_rank(layer, shape, {ndim + 1: RANKS[ndim]})
        k = sizes(p["kernel_size"], ndim, "kernel_size")
        s = sizes(p["stride"], ndim, "stride") if p["stride"] is not None else k
        pad = sizes(p["padding"], ndim, "padding")
        d = sizes(p.get("dilation", 1), ndim, "dilation")
        # torch's rule (every pool, whatever the dilation): padding <= kernel_size / 2
        if any(2 * pi > ki for pi, ki in zip(pad, k)):
            raise ShapeError(
                f"padding {p['padding']} must be at most half the kernel size {p['kernel_size']}",
                "padding",
            )
        return (shape[0], *window_out(layer, shape[1:], k, s, pad, d, p["ceil_mode"]))

    return infer


def _window_params(ndim):
    return (
        int_tuple("kernel_size", ndim, doc="Window size.", minimum=1, key=True),
        int_tuple("stride", ndim, None, "Step between windows (null: kernel_size).", minimum=1, nullable=True),
        int_tuple("padding", ndim, 0, "Padding on each side (at most half the window).", minimum=0),
    )


_CEIL = Param("ceil_mode", "bool", False, "Round the output size up: a last, partial window "
              "(it must start inside the input or the left padding).")


def _max_pool_spec(ndim, samples):
    name = f"MaxPool{ndim}d"
    cls = torch_class(name)
    shape_in, out = SHAPES[ndim]
    return LayerSpec(
        name, "Pooling",
        f"Maximum over windows: {shape_in} -> [C, {out}].",
        (*_window_params(ndim),
         int_tuple("dilation", ndim, 1, "Spacing between the window's elements.", minimum=1),
         _CEIL),
        _pool_infer(name, ndim),
        lambda shapes, p: cls(as_torch(p["kernel_size"]), as_torch(p["stride"]), as_torch(p["padding"]),
                              as_torch(p["dilation"]), ceil_mode=p["ceil_mode"]),
        samples=samples,
    )


def _avg_pool_spec(ndim, samples):
    name = f"AvgPool{ndim}d"
    cls = torch_class(name)
    shape_in, out = SHAPES[ndim]
    params = (*_window_params(ndim), _CEIL,
              Param("count_include_pad", "bool", True, "Count the padding zeros in each average."))
    if ndim > 1:  # torch's AvgPool1d has no divisor_override
        params += (Param("divisor_override", "int", None, "Divide every sum by this instead of the "
                         "window's size (null: the window's size).", minimum=1, nullable=True),)

    def build(shapes, p):
        extra = {"divisor_override": p["divisor_override"]} if ndim > 1 else {}
        return cls(as_torch(p["kernel_size"]), as_torch(p["stride"]), as_torch(p["padding"]),
                   p["ceil_mode"], p["count_include_pad"], **extra)

    infer = _pool_infer(name, ndim)

    def infer_checked(shapes, p):
        out_shape = infer(shapes, p)
        if ndim == 3:  # torch's 3-d average (unlike its other pools) needs the padded input to hold a window
            k, pad = sizes(p["kernel_size"], 3, "kernel_size"), sizes(p["padding"], 3, "padding")
            for size, window, extra in zip(shapes[0][1:], k, pad):
                if size + 2 * extra < window:
                    raise ShapeError(f"{name}'s window {list(k)} is larger than its input {fmt(shapes[0][1:])} "
                                     f"with padding {list(pad)}", "kernel_size")
        return out_shape

    return LayerSpec(
        name, "Pooling", f"Average over windows: {shape_in} -> [C, {out}].",
        params, infer_checked, build, samples=samples,
    )


def _adaptive_spec(kind, ndim, samples):
    name = f"Adaptive{kind}Pool{ndim}d"
    cls = torch_class(name)
    shape_in, _ = SHAPES[ndim]
    size_names = {1: "length", 2: "height and width", 3: "depth, height and width"}[ndim]

    def infer(shapes, p):
        need_rank(name, shapes[0], {ndim + 1: RANKS[ndim]})
        return (shapes[0][0], *sizes(p["output_size"], ndim, "output_size"))

    what = "Averages" if kind == "Avg" else "Takes the maximum of"
    return LayerSpec(
        name, "Pooling",
        f"{what} each channel down to output_size, whatever the input size: {shape_in} -> "
        f"[C, *output_size].",
        (int_tuple("output_size", ndim, doc=f"Output {size_names}.", minimum=1, key=True),),
        infer, lambda shapes, p: cls(as_torch(p["output_size"])), samples=samples,
    )


SPECS = [
    _max_pool_spec(1, (
        (((3, 12),), {"kernel_size": 2}),
        (((2, 11),), {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2}),
        (((2, 10),), {"kernel_size": 4, "stride": 3, "ceil_mode": True}),
    )),
    _max_pool_spec(2, (
        (((3, 8, 8),), {"kernel_size": 2}),
        (((2, 9, 7),), {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0], "dilation": [1, 2]}),
        (((2, 7, 10),), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (((1, 5, 5),), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),
    )),
    _max_pool_spec(3, (
        (((2, 4, 6, 6),), {"kernel_size": 2}),
        (((2, 5, 7, 6),), {"kernel_size": [3, 2, 2], "stride": [1, 2, 2], "padding": [1, 0, 1],
                           "dilation": [1, 2, 1]}),
        (((1, 5, 5, 7),), {"kernel_size": 2, "ceil_mode": True}),
    )),
    _avg_pool_spec(1, (
        (((3, 12),), {"kernel_size": 2}),
        (((2, 11),), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
        (((2, 10),), {"kernel_size": 4, "stride": 3, "ceil_mode": True}),
    )),
    _avg_pool_spec(2, (
        (((3, 8, 8),), {"kernel_size": 2}),
        (((2, 9, 7),), {"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0], "count_include_pad": False}),
        (((2, 7, 10),), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (((1, 6, 6),), {"kernel_size": 3, "divisor_override": 2}),
    )),
    _avg_pool_spec(3, (
        (((2, 4, 6, 6),), {"kernel_size": 2}),
        (((2, 5, 7, 6),), {"kernel_size": [3, 2, 2], "stride": [1, 2, 2], "padding": [1, 0, 1],
                           "count_include_pad": False}),
        (((1, 5, 5, 7),), {"kernel_size": 2, "ceil_mode": True, "divisor_override": 3}),
    )),
    _adaptive_spec("Avg", 1, ((((3, 12),), {"output_size": 4}), (((2, 7),), {"output_size": 3}),
                              (((2, 3),), {"output_size": 5}))),
    _adaptive_spec("Avg", 2, ((((3, 8, 8),), {"output_size": 1}), (((2, 9, 7),), {"output_size": [4, 3]}),
                              (((2, 5, 6),), {"output_size": 2}))),
    _adaptive_spec("Avg", 3, ((((2, 4, 6, 8),), {"output_size": 1}), (((2, 4, 6, 8),), {"output_size": [2, 3, 4]}),
                              (((1, 5, 7, 3),), {"output_size": [2, 3, 2]}))),
    _adaptive_spec("Max", 1, ((((3, 12),), {"output_size": 4}), (((2, 7),), {"output_size": 3}))),
    _adaptive_spec("Max", 2, ((((3, 8, 8),), {"output_size": 1}), (((2, 9, 7),), {"output_size": [4, 3]}))),
    _adaptive_spec("Max", 3, ((((2, 4, 6, 8),), {"output_size": [2, 3, 4]}),
                              (((1, 5, 7, 3),), {"output_size": 2}))),
]
