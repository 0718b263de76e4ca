"""Convolution, pooling and upsampling layers."""

from __future__ import annotations

from math import floor, prod

from torch import nn

from .. import modules
from ..params import Param, pair
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError

_RANKS = {1: {2: "[channels, length]"}, 2: {3: "[channels, height, width]"}}


def _sizes(value, ndim: int, name: str) -> tuple[int, ...]:
    """An int-or-pair parameter as one size per spatial dimension."""
    if ndim == 1:
        if isinstance(value, list):
            raise ShapeError(f"{name} of a 1-d layer is one integer; received {value}", name)
        return (int(value),)
    return pair(value)


def _spatial_out(layer, spatial, k, s, pad, d, kname="kernel_size"):
    """Output sizes of a convolution or pooling window; raises if the window does not fit."""
    eff = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    padded = tuple(n + 2 * p for n, p in zip(spatial, pad))
    if any(e > n for e, n in zip(eff, padded)):
        x = "x".join
        raise ShapeError(
            f"{layer} kernel {x(map(str, eff))} is larger than its padded input "
            f"{x(map(str, padded))} (input {x(map(str, spatial))}, padding {x(map(str, pad))})",
            kname,
        )
    return tuple((n - e) // si + 1 for n, e, si in zip(padded, eff, s))


def _conv_geometry(ndim, shapes, p):
    shape = shapes[0]
    layer = f"Conv{ndim}d"
    need_rank(layer, shape, _RANKS[ndim])
    channels, spatial = shape[0], shape[1:]
    k = _sizes(p["kernel_size"], ndim, "kernel_size")
    s = _sizes(p["stride"], ndim, "stride")
    d = _sizes(p["dilation"], ndim, "dilation")
    g = p["groups"]
    if channels % g or p["out_channels"] % g:
        raise ShapeError(
            f"groups {g} must divide both the input channels ({channels}) "
            f"and out_channels ({p['out_channels']})",
            "groups",
        )
    if p["padding"] == "same":
        if any(si != 1 for si in s):
            raise ShapeError('padding "same" needs stride 1; received stride ' + str(p["stride"]), "padding")
        out = spatial
    else:
        out = _spatial_out(layer, spatial, k, s, _sizes(p["padding"], ndim, "padding"), d)
    return channels, k, (p["out_channels"], *out)


def _conv_infer(ndim):
    return lambda shapes, p: _conv_geometry(ndim, shapes, p)[2]


def _conv_count(shapes, p):
    ndim = len(shapes[0]) - 1
    k = _sizes(p["kernel_size"], ndim, "kernel_size")
    w = p["out_channels"] * (shapes[0][0] // p["groups"]) * prod(k)
    return w + (p["out_channels"] if p["bias"] else 0)


def _conv_build(ndim):
    def build(shapes, p):
        padding = p["padding"]
        cls = {1: nn.Conv1d, 2: nn.Conv2d}[ndim]
        if padding == "same":
            k = _sizes(p["kernel_size"], ndim, "kernel_size")
            d = _sizes(p["dilation"], ndim, "dilation")
            if any((di * (ki - 1)) % 2 for ki, di in zip(k, d)):
                # an even window cannot be padded alike on both sides: pad explicitly
                # (torch's own "same" warns about this case on every new process)
                cls = {1: modules.SameConv1d, 2: modules.SameConv2d}[ndim]
        return cls(shapes[0][0], p["out_channels"], _tuple(p["kernel_size"]), _tuple(p["stride"]),
                   padding if padding == "same" else _tuple(padding),
                   _tuple(p["dilation"]), p["groups"], p["bias"])

    return build


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def _conv_spec(ndim: int) -> LayerSpec:
    shape = "[C, L] -> [out_channels, L']" if ndim == 1 else "[C, H, W] -> [out_channels, H', W']"
    return LayerSpec(
        f"Conv{ndim}d", "Convolution",
        f"{ndim}-d convolution: {shape}.",
        (
            Param("out_channels", "int", doc="Number of filters.", minimum=1, key=True),
            Param("kernel_size", "int_or_pair", doc="Filter size.", minimum=1, key=True),
            Param("stride", "int_or_pair", 1, "Step between filter positions.", minimum=1),
            Param("padding", "padding", 0, 'Zeros added on each side, or "same" to keep the size.', minimum=0),
            Param("dilation", "int_or_pair", 1, "Spacing between filter taps.", minimum=1),
            Param("groups", "int", 1, "Split channels into this many independent groups.", minimum=1),
            Param("bias", "bool", True, "Learn an additive bias per filter."),
        ),
        _conv_infer(ndim), _conv_build(ndim), _conv_count,
    )


def _convt_infer(shapes, p):
    shape = shapes[0]
    need_rank("ConvTranspose2d", shape, _RANKS[2])
    k, s = pair(p["kernel_size"]), pair(p["stride"])
    pad, op = pair(p["padding"]), pair(p["output_padding"])
    if any(o >= si for o, si in zip(op, s)):
        raise ShapeError(
            f"output_padding {p['output_padding']} must be smaller than the stride {p['stride']}",
            "output_padding",
        )
    out = tuple((n - 1) * si - 2 * pi + ki + oi for n, si, pi, ki, oi in zip(shape[1:], s, pad, k, op))
    if any(o < 1 for o in out):
        raise ShapeError(f"padding {p['padding']} leaves no output from input {fmt(shape)}", "padding")
    return (p["out_channels"], *out)


def _convt_count(shapes, p):
    return shapes[0][0] * p["out_channels"] * prod(pair(p["kernel_size"])) + (
        p["out_channels"] if p["bias"] else 0
    )


def _pool_infer(layer):
    def infer(shapes, p):
        shape = shapes[0]
        need_rank(layer, shape, _RANKS[2])
        k = pair(p["kernel_size"])
        s = pair(p["stride"]) if p["stride"] is not None else k
        pad = pair(p["padding"])
        if any(2 * pi > ki for pi, ki in zip(pad, k)):
            raise ShapeError(
                f"padding {p['padding']} must be at most half the kernel size {p['kernel_size']}",
                "padding",
            )
        return (shape[0], *_spatial_out(layer, shape[1:], k, s, pad, (1, 1)))

    return infer


def _pool_spec(name, cls, what):
    def build(shapes, p):
        stride = _tuple(p["stride"]) if p["stride"] is not None else None
        return cls(_tuple(p["kernel_size"]), stride, _tuple(p["padding"]))

    return LayerSpec(
        name, "Pooling",
        f"{what} over windows: [C, H, W] -> [C, H', W'].",
        (
            Param("kernel_size", "int_or_pair", doc="Window size.", minimum=1, key=True),
            Param("stride", "int_or_pair", None, "Step between windows (null: kernel_size).", minimum=1, nullable=True),
            Param("padding", "int_or_pair", 0, "Padding on each side (at most half the window).", minimum=0),
        ),
        _pool_infer(name), build,
    )


def _adaptive_infer(shapes, p):
    need_rank("AdaptiveAvgPool2d", shapes[0], _RANKS[2])
    return (shapes[0][0], *pair(p["output_size"]))


MAX_SCALE = 1000  # an Upsample's factor: 1 pixel to 1000 is already more than any model uses
_UPSAMPLE_RANKS = {"nearest": (2, 3), "linear": (2,), "bilinear": (3,), "bicubic": (3,)}


def _upsample_infer(shapes, p):
    shape, mode, scale = shapes[0], p["mode"], p["scale_factor"]
    ranks = _UPSAMPLE_RANKS[mode]
    need_rank(f"Upsample ({mode})", shape, {r: ("[C, L]" if r == 2 else "[C, H, W]") for r in ranks})
    spatial = shape[1:]
    if isinstance(scale, list):
        if len(spatial) != 2:
            raise ShapeError("a pair of scale factors needs an input of shape [C, H, W]", "scale_factor")
        factors = scale
    else:
        factors = [scale] * len(spatial)
    out = tuple(int(floor(n * f)) for n, f in zip(spatial, factors))
    if any(o < 1 for o in out):
        raise ShapeError(f"scale_factor {scale} leaves no output from input {fmt(shape)}", "scale_factor")
    return (shape[0], *out)


def _upsample_build(shapes, p):
    scale = p["scale_factor"]
    scale = tuple(float(x) for x in scale) if isinstance(scale, list) else float(scale)
    return nn.Upsample(scale_factor=scale, mode=p["mode"])


SPECS = [
    _conv_spec(1),
    _conv_spec(2),
    LayerSpec(
        "ConvTranspose2d", "Convolution",
        "Transposed 2-d convolution (learned upsampling): [C, H, W] -> [out_channels, H', W'].",
        (
            Param("out_channels", "int", doc="Number of filters.", minimum=1, key=True),
            Param("kernel_size", "int_or_pair", doc="Filter size.", minimum=1, key=True),
            Param("stride", "int_or_pair", 1, "Upsampling step.", minimum=1),
            Param("padding", "int_or_pair", 0, "Rows and columns removed from each side.", minimum=0),
            Param("output_padding", "int_or_pair", 0, "Extra rows and columns on one side (< stride).", minimum=0),
            Param("bias", "bool", True, "Learn an additive bias per filter."),
        ),
        _convt_infer,
        lambda shapes, p: nn.ConvTranspose2d(
            shapes[0][0], p["out_channels"], _tuple(p["kernel_size"]), _tuple(p["stride"]),
            _tuple(p["padding"]), _tuple(p["output_padding"]), bias=p["bias"]),
        _convt_count,
    ),
    _pool_spec("MaxPool2d", nn.MaxPool2d, "Maximum"),
    _pool_spec("AvgPool2d", nn.AvgPool2d, "Average"),
    LayerSpec(
        "AdaptiveAvgPool2d", "Pooling",
        "Averages each channel down to output_size: [C, H, W] -> [C, h, w].",
        (Param("output_size", "int_or_pair", doc="Output height and width.", minimum=1, key=True),),
        _adaptive_infer, lambda shapes, p: nn.AdaptiveAvgPool2d(_tuple(p["output_size"])),
    ),
    LayerSpec(
        "Upsample", "Pooling",
        "Enlarges by scale_factor: [C, H, W] -> [C, H*s, W*s] ([C, L] for nearest and linear).",
        (
            Param("scale_factor", "scale", 2, "Size multiplier.", 0.01, MAX_SCALE, key=True),
            Param("mode", "choice", "nearest", "Interpolation.", choices=tuple(_UPSAMPLE_RANKS)),
        ),
        _upsample_infer, _upsample_build,
    ),
]
