"""Convolution (1-d to 3-d, plain and transposed) and upsampling layers; the sliding-window
arithmetic that pooling shares."""

from __future__ import annotations

from dataclasses import dataclass
from math import floor, prod


from ..lazy import modules, nn, torch_class  # torch loads when a module is built, not here
from ..params import REQUIRED, Param, is_int
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError

# the sample shape each N-d layer takes (the batch dimension is never part of a shape)
RANKS = {1: "[channels, length]", 2: "[channels, height, width]", 3: "[channels, depth, height, width]"}
SHAPES = {1: ("[C, L]", "L'"), 2: ("[C, H, W]", "H', W'"), 3: ("[C, D, H, W]", "D', H', W'")}
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class SizedParam(Param):
    """An integer-or-tuple parameter whose list holds ``size`` integers, where ``Param``'s
    int_or_pair holds two: one per dimension of a 3-d layer, or the four sides of a 2-d pad."""

    size: int = 2

    def _int_or_pair(self, v) -> bool:
        if isinstance(v, list):
            return len(v) == self.size and all(is_int(x) and self._in_range(x) for x in v)
        return super()._int_or_pair(v)

    def expected(self, full: bool = False) -> str:
        return super().expected(full).replace("a list of two such", f"a list of {_WORDS[self.size]} such")


def int_tuple(name: str, ndim: int, default=REQUIRED, doc: str = "",
              **kw) -> Param:
    """An int-or-tuple parameter of an ``ndim``-d layer (2-d: an int or a pair; 1-d: Param's
    int-or-pair, whose lists the shape rule refuses; 3-d: an int or three)."""
    if ndim == 3:
        return SizedParam(name, "int_or_pair", default, doc, size=3, **kw)
    return Param(name, "int_or_pair", default, doc, **kw)


def sizes(value, ndim: int, name: str) -> tuple[int, ...]:
    """An int-or-tuple parameter as one size per spatial dimension; raises for a list of
    another length."""
    if not isinstance(value, list):
        return (int(value),) * ndim
    if len(value) != ndim:
        if ndim == 1:
            raise ShapeError(f"{name} of a 1-d layer is one integer; received {value}", name)
        raise ShapeError(f"{name} of a {ndim}-d layer is an integer or a list of {ndim}; received {value}", name)
    return tuple(int(v) for v in value)


def window_out(layer, spatial, k, s, pad, d, ceil_mode=False, kname="kernel_size"):
    """Output sizes of a convolution or pooling window, as torch computes them (with
    ceil_mode the last window may hang over the end but must start inside the input or the
    left padding); raises if no window fits."""
    eff = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    padded = tuple(n + 2 * p for n, p in zip(spatial, pad))
    if ceil_mode:
        out = [(m - e + si - 1) // si + 1 for m, e, si in zip(padded, eff, s)]
        out = [o - 1 if (o - 1) * si >= n + p else o for o, si, n, p in zip(out, s, spatial, pad)]
    else:
        out = [(m - e) // si + 1 for m, e, si in zip(padded, eff, s)]
    if any(o < 1 for o in out):
        x = "x".join
        raise ShapeError(
            f"{layer} kernel {x(map(str, eff))} is larger than its padded input "
            f"{x(map(str, padded))} (input {x(map(str, spatial))}, padding {x(map(str, pad))})",
            kname,
        )
    return tuple(out)


def as_torch(value):
    """A parameter value as torch's constructors take it (tuples, not lists)."""
    return tuple(value) if isinstance(value, list) else value


def _check_groups(channels, p):
    g = p["groups"]
    if channels % g or p["out_channels"] % g:
        raise ShapeError(
            f"groups {g} must divide both the input channels ({channels}) "
            f"and out_channels ({p['out_channels']})",
            "groups",
        )


def _same_pads(k, d):
    """(left, right) per dimension of "same" padding: torch puts an odd extra on the right."""
    totals = [di * (ki - 1) for ki, di in zip(k, d)]
    return [(t // 2, t - t // 2) for t in totals]


def _check_padding_mode(mode, spatial, pads):
    """torch's limits on the non-zero padding modes: reflect mirrors at most size - 1 values,
    circular wraps around at most once."""
    for n, (left, right) in zip(spatial, pads):
        side = max(left, right)
        if mode == "reflect" and side >= n:
            raise ShapeError(f'padding_mode "reflect" needs padding smaller than the input size; '
                             f"received padding {side} for a size of {n}", "padding")
        if mode == "circular" and side > n:
            raise ShapeError(f'padding_mode "circular" needs padding at most the input size; '
                             f"received padding {side} for a size of {n}", "padding")


def _conv_infer(ndim):
    layer = f"Conv{ndim}d"

    def infer(shapes, p):
        shape = shapes[0]
        need_rank(layer, shape, {ndim + 1: RANKS[ndim]})
        channels, spatial = shape[0], shape[1:]
        k = sizes(p["kernel_size"], ndim, "kernel_size")
        s = sizes(p["stride"], ndim, "stride")
        d = sizes(p["dilation"], ndim, "dilation")
        _check_groups(channels, p)
        if p["padding"] == "same":
            if any(si != 1 for si in s):
                raise ShapeError('padding "same" needs stride 1; received stride ' + str(p["stride"]), "padding")
            pads = _same_pads(k, d)
            out = spatial
        else:
            pad = sizes(p["padding"], ndim, "padding")
            pads = [(pi, pi) for pi in pad]
            out = window_out(layer, spatial, k, s, pad, d)
        _check_padding_mode(p["padding_mode"], spatial, pads)
        return (p["out_channels"], *out)

    return infer


def _conv_count(shapes, p):
    ndim = len(shapes[0]) - 1
    k = sizes(p["kernel_size"], ndim, "kernel_size")
    w = p["out_channels"] * (shapes[0][0] // p["groups"]) * prod(k)
    return w + (p["out_channels"] if p["bias"] else 0)


def _conv_build(ndim):
    def build(shapes, p):
        padding = p["padding"]
        cls = torch_class(f"Conv{ndim}d")
        if padding == "same" and p["padding_mode"] == "zeros":
            k = sizes(p["kernel_size"], ndim, "kernel_size")
            d = sizes(p["dilation"], ndim, "dilation")
            if any((di * (ki - 1)) % 2 for ki, di in zip(k, d)):
                # an even window cannot be padded alike on both sides: pad explicitly
                # (torch's own "same" warns about this case on every new process; the other
                # padding modes pad explicitly already). Until modules declares SameConv3d,
                # torch's own class (right, with its warning).
                cls = getattr(modules, f"SameConv{ndim}d", cls)
        return cls(shapes[0][0], p["out_channels"], as_torch(p["kernel_size"]), as_torch(p["stride"]),
                   as_torch(padding), as_torch(p["dilation"]), p["groups"], p["bias"], p["padding_mode"])

    return build


def _conv_spec(ndim: int, samples) -> LayerSpec:
    shape_in, out = SHAPES[ndim]
    what = "pairs" if ndim == 2 else "triples" if ndim == 3 else "integers"
    return LayerSpec(
        f"Conv{ndim}d", "Convolution",
        f"{ndim}-d convolution: {shape_in} -> [out_channels, {out}].",
        (
            Param("out_channels", "int", doc="Number of filters.", minimum=1, key=True),
            int_tuple("kernel_size", ndim, doc=f"Filter size (integer or {what}).", minimum=1, key=True),
            int_tuple("stride", ndim, 1, "Step between filter positions.", minimum=1),
            (SizedParam("padding", "padding", 0, 'Padding on each side, or "same" to keep the size.',
                        minimum=0, size=3) if ndim == 3 else
             Param("padding", "padding", 0, 'Padding on each side, or "same" to keep the size.', minimum=0)),
            int_tuple("dilation", ndim, 1, "Spacing between filter taps.", minimum=1),
            Param("groups", "int", 1, "Split channels into this many independent groups "
                  "(must divide the input channels and out_channels).", minimum=1),
            Param("bias", "bool", True, "Learn an additive bias per filter."),
            Param("padding_mode", "choice", "zeros", "What the padding holds: zeros, a mirror image "
                  "(reflect), the edge values (replicate) or the other end (circular).",
                  choices=PADDING_MODES),
        ),
        _conv_infer(ndim), _conv_build(ndim), _conv_count, samples=samples,
    )


def _convt_infer(ndim):
    layer = f"ConvTranspose{ndim}d"

    def infer(shapes, p):
        shape = shapes[0]
        need_rank(layer, shape, {ndim + 1: RANKS[ndim]})
        k = sizes(p["kernel_size"], ndim, "kernel_size")
        s = sizes(p["stride"], ndim, "stride")
        pad = sizes(p["padding"], ndim, "padding")
        op = sizes(p["output_padding"], ndim, "output_padding")
        d = sizes(p["dilation"], ndim, "dilation")
        _check_groups(shape[0], p)
        if any(o >= si and o >= di for o, si, di in zip(op, s, d)):
            raise ShapeError(
                f"output_padding {p['output_padding']} must be smaller than the stride "
                f"{p['stride']} or the dilation {p['dilation']}",
                "output_padding",
            )
        out = tuple((n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
                    for n, si, pi, di, ki, oi in zip(shape[1:], s, pad, d, k, op))
        if any(o < 1 for o in out):
            raise ShapeError(f"padding {p['padding']} leaves no output from input {fmt(shape)}", "padding")
        return (p["out_channels"], *out)

    return infer


def _convt_count(shapes, p):
    ndim = len(shapes[0]) - 1
    k = sizes(p["kernel_size"], ndim, "kernel_size")
    return shapes[0][0] * (p["out_channels"] // p["groups"]) * prod(k) + (
        p["out_channels"] if p["bias"] else 0
    )


def _convt_spec(ndim: int, samples) -> LayerSpec:
    shape_in, out = SHAPES[ndim]
    cls = torch_class(f"ConvTranspose{ndim}d")
    return LayerSpec(
        f"ConvTranspose{ndim}d", "Convolution",
        f"Transposed {ndim}-d convolution (learned upsampling): {shape_in} -> [out_channels, {out}].",
        (
            Param("out_channels", "int", doc="Number of filters.", minimum=1, key=True),
            int_tuple("kernel_size", ndim, doc="Filter size.", minimum=1, key=True),
            int_tuple("stride", ndim, 1, "Upsampling step.", minimum=1),
            int_tuple("padding", ndim, 0, "Rows and columns removed from each side.", minimum=0),
            int_tuple("output_padding", ndim, 0, "Extra size on one side (< stride or dilation).", minimum=0),
            Param("groups", "int", 1, "Split channels into this many independent groups "
                  "(must divide the input channels and out_channels).", minimum=1),
            Param("bias", "bool", True, "Learn an additive bias per filter."),
            int_tuple("dilation", ndim, 1, "Spacing between filter taps.", minimum=1),
            Param("padding_mode", "choice", "zeros", 'Only "zeros", as torch.', choices=("zeros",)),
        ),
        _convt_infer(ndim),
        lambda shapes, p: cls(
            shapes[0][0], p["out_channels"], as_torch(p["kernel_size"]), as_torch(p["stride"]),
            as_torch(p["padding"]), as_torch(p["output_padding"]), p["groups"], p["bias"],
            as_torch(p["dilation"]), p["padding_mode"]),
        _convt_count, samples=samples,
    )


MAX_SCALE = 1000  # an Upsample's factor: 1 pixel to 1000 is already more than any model uses
_UPSAMPLE_RANKS = {"nearest": (2, 3), "linear": (2,), "bilinear": (3,), "bicubic": (3,)}


def _upsample_infer(shapes, p):
    shape, mode, scale, size = shapes[0], p["mode"], p["scale_factor"], p["size"]
    ranks = _UPSAMPLE_RANKS[mode]
    need_rank(f"Upsample ({mode})", shape, {r: ("[C, L]" if r == 2 else "[C, H, W]") for r in ranks})
    spatial = shape[1:]
    if p["align_corners"] is not None and mode == "nearest":
        raise ShapeError("align_corners applies to the linear, bilinear and bicubic modes; leave it null "
                         "for nearest", "align_corners")
    if size is not None:
        sizes = size if isinstance(size, list) else [size] * len(spatial)
        if len(sizes) != len(spatial):
            raise ShapeError(f"size {size} gives {len(sizes)} sizes for the {len(spatial)} spatial "
                             f"dimensions of {fmt(shape)}", "size")
        return (shape[0], *sizes)
    if scale is None:
        raise ShapeError("give scale_factor or size", "scale_factor")
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
    extra = {k: p[k] for k in ("align_corners", "recompute_scale_factor") if p[k] is not None}
    if p["size"] is not None:  # the size wins over the scale factor (whose default is 2)
        size = p["size"]
        return nn.Upsample(size=tuple(size) if isinstance(size, list) else size, mode=p["mode"], **extra)
    scale = p["scale_factor"]
    scale = tuple(float(x) for x in scale) if isinstance(scale, list) else float(scale)
    return nn.Upsample(scale_factor=scale, mode=p["mode"], **extra)


SPECS = [
    _conv_spec(1, (
        (((3, 10),), {"out_channels": 4, "kernel_size": 3}),
        (((4, 17),), {"out_channels": 6, "kernel_size": 4, "stride": 2, "padding": 1, "groups": 2}),
        (((2, 9),), {"out_channels": 3, "kernel_size": 4, "padding": "same", "dilation": 2, "bias": False}),
        (((3, 8),), {"out_channels": 2, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}),
    )),
    _conv_spec(2, (
        (((3, 12, 12),), {"out_channels": 8, "kernel_size": 3, "padding": 1}),
        (((4, 11, 9),), {"out_channels": 8, "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0],
                        "dilation": [1, 2], "groups": 4}),
        (((6, 7, 7),), {"out_channels": 6, "kernel_size": 4, "padding": "same", "groups": 6, "bias": False}),
        (((2, 6, 5),), {"out_channels": 3, "kernel_size": 3, "padding": [2, 1], "padding_mode": "circular"}),
    )),
    _conv_spec(3, (
        (((2, 6, 7, 8),), {"out_channels": 4, "kernel_size": 3, "padding": 1}),
        (((4, 9, 8, 7),), {"out_channels": 6, "kernel_size": [3, 2, 1], "stride": [2, 1, 2],
                          "padding": [1, 0, 0], "dilation": [1, 2, 1], "groups": 2}),
        (((2, 5, 6, 7),), {"out_channels": 2, "kernel_size": [2, 3, 4], "padding": "same", "bias": False}),
        (((3, 4, 5, 6),), {"out_channels": 2, "kernel_size": 3, "padding": [1, 2, 1], "padding_mode": "replicate"}),
    )),
    _convt_spec(1, (
        (((4, 9),), {"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}),
        (((4, 7),), {"out_channels": 6, "kernel_size": 4, "groups": 2, "dilation": 2, "bias": False}),
        (((2, 5),), {"out_channels": 2, "kernel_size": 3, "stride": 1, "dilation": 3, "output_padding": 2}),
    )),
    _convt_spec(2, (
        (((8, 7, 7),), {"out_channels": 4, "kernel_size": 2, "stride": 2}),
        (((4, 5, 6),), {"out_channels": 6, "kernel_size": [3, 4], "stride": [2, 3], "padding": [1, 2],
                       "output_padding": [1, 2], "groups": 2}),
        (((3, 6, 5),), {"out_channels": 2, "kernel_size": 3, "dilation": [2, 1], "padding": 1, "bias": False}),
    )),
    _convt_spec(3, (
        (((4, 3, 4, 5),), {"out_channels": 2, "kernel_size": 2, "stride": 2}),
        (((4, 3, 5, 4),), {"out_channels": 6, "kernel_size": [3, 2, 3], "stride": [2, 1, 3],
                          "padding": [1, 0, 1], "output_padding": [1, 0, 2], "groups": 2}),
        (((2, 3, 3, 3),), {"out_channels": 3, "kernel_size": 3, "dilation": 2, "padding": [0, 1, 2],
                          "bias": False}),
    )),
    LayerSpec(
        "Upsample", "Pooling",
        "Enlarges by scale_factor, or to size: [C, H, W] -> [C, H*s, W*s] ([C, L] for nearest and linear).",
        (
            Param("scale_factor", "scale", 2, "Size multiplier (not used when size is given).", 0.01, MAX_SCALE,
                  key=True, nullable=True),
            Param("mode", "choice", "nearest", "Interpolation.", choices=tuple(_UPSAMPLE_RANKS)),
            Param("size", "int_or_pair", None, "The output's spatial size, instead of a scale factor.",
                  minimum=1, nullable=True),
            Param("align_corners", "bool", None, "Align the corner pixels (linear modes only); null: "
                  "torch's default.", nullable=True),
            Param("recompute_scale_factor", "bool", None, "Recompute the scale from the output size when "
                  "interpolating (torch's option).", nullable=True),
        ),
        _upsample_infer, _upsample_build,
        samples=(
            (((3, 5, 6),), {"scale_factor": 2, "mode": "nearest"}),
            (((2, 7),), {"scale_factor": 1.5, "mode": "linear"}),
            (((2, 4, 5),), {"scale_factor": [2, 3], "mode": "bilinear"}),
            (((1, 3, 4),), {"scale_factor": 2, "mode": "bicubic"}),
            (((2, 3, 5),), {"size": [6, 7], "mode": "bilinear", "align_corners": True}),
            (((2, 5),), {"size": 9, "mode": "linear"}),
            (((2, 3, 5),), {"scale_factor": 1.5, "mode": "bilinear", "recompute_scale_factor": True}),
        ),
    ),
]
