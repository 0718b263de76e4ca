"""Padding layers: zeros, a constant, a mirror image or the edge values added around the
last one (1-d) or two (2-d) dimensions."""

from __future__ import annotations


from ..lazy import torch_class  # torch loads when a module is built, not here
from ..params import Param
from .conv import SizedParam, as_torch
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError

_SIDES = {1: "left, right", 2: "left, right, top, bottom"}


def _amounts(value, ndim: int) -> list[int]:
    """``padding`` in torch's order: (left, right) or (left, right, top, bottom)."""
    return [int(v) for v in value] if isinstance(value, list) else [int(value)] * (2 * ndim)


def _infer(name: str, ndim: int, mode: str):
    # constant padding works on any rank (torch pads the last dimensions); reflect and
    # replicate take only [C, L] or [L] (1-d), [C, H, W] or [H, W] (2-d), as torch does
    ranks = {ndim: "[L]" if ndim == 1 else "[H, W]", ndim + 1: "[C, L]" if ndim == 1 else "[C, H, W]"}

    def infer(shapes, p):
        shape = shapes[0]
        if mode != "constant":
            need_rank(name, shape, ranks)
        elif len(shape) < ndim:  # only a [C, H, W] pad of a [L] sample would pad the batch
            raise ShapeError(f"{name} pads the last {ndim} dimensions and needs an input of at least "
                             f"{ndim}; received {fmt(shape)}")
        pads = _amounts(p["padding"], ndim)
        out = list(shape)
        for i in range(ndim):  # torch's order pads the last dimension first
            left, right = pads[2 * i], pads[2 * i + 1]
            n = shape[-1 - i]
            if mode == "reflect" and max(left, right) >= n:
                raise ShapeError(
                    f"{name} needs padding smaller than the size it mirrors; received padding "
                    f"{p['padding']} for an input {fmt(shape)}", "padding")
            # negative padding crops, before torch pads: it cannot crop more than the input
            if n + min(left, 0) + min(right, 0) < 0 or n + left + right < 1:
                raise ShapeError(f"padding {p['padding']} crops away all of input {fmt(shape)}", "padding")
            out[-1 - i] = n + left + right
        return tuple(out)

    return infer


def _padding_param(ndim: int, minimum: int | None) -> Param:
    what = "an integer for every side" + ("" if minimum == 0 else " (negative crops)")
    doc = f"Amount added to each side: {what}, or a list ({_SIDES[ndim]})."
    if ndim == 1:  # Param's int-or-pair is (left, right)
        return Param("padding", "int_or_pair", doc=doc, minimum=minimum, key=True)
    return SizedParam("padding", "int_or_pair", doc=doc, minimum=minimum, key=True, size=4)


def _spec(name: str, ndim: int, mode: str, what: str, samples, value: bool = False) -> LayerSpec:
    cls = torch_class(name)
    minimum = None if mode == "constant" else 0
    params = (_padding_param(ndim, minimum),)
    if value:  # required, as in torch's ConstantPadNd
        params += (Param("value", "float", doc="The value the padding holds.", key=True),)
    shape = "[..., L] -> [..., L']" if ndim == 1 else "[..., H, W] -> [..., H', W']"
    if mode != "constant":
        shape = "[C, L] -> [C, L']" if ndim == 1 else "[C, H, W] -> [C, H', W']"
    return LayerSpec(
        name, "Padding", f"Pads the last {'dimension' if ndim == 1 else 'two dimensions'} with {what}: {shape}.",
        params, _infer(name, ndim, mode),
        lambda shapes, p: cls(as_torch(p["padding"]), p["value"]) if value else cls(as_torch(p["padding"])),
        samples=samples,
    )


SPECS = [
    _spec("ZeroPad1d", 1, "constant", "zeros", (
        (((3, 8),), {"padding": 2}), (((2, 7),), {"padding": [1, 3]}), (((9,),), {"padding": [-2, 1]}))),
    _spec("ZeroPad2d", 2, "constant", "zeros", (
        (((3, 6, 5),), {"padding": 1}), (((2, 5, 7),), {"padding": [1, 2, 0, 3]}),
        (((2, 6, 6),), {"padding": [-1, 0, 2, -2]}))),
    _spec("ConstantPad1d", 1, "constant", "a constant value", (
        (((3, 8),), {"padding": 2, "value": 0.5}), (((2, 7),), {"padding": [0, 3], "value": -1.0}),
        (((4, 2, 6),), {"padding": [-1, 2], "value": 3.0})), value=True),
    _spec("ConstantPad2d", 2, "constant", "a constant value", (
        (((3, 6, 5),), {"padding": 1, "value": 0.5}), (((2, 5, 7),), {"padding": [1, 2, 0, 3], "value": -2.0}),
        (((6, 4),), {"padding": [2, 0, 1, 1], "value": 1.0})), value=True),
    _spec("ReflectionPad1d", 1, "reflect", "a mirror image of the edge", (
        (((3, 8),), {"padding": 2}), (((2, 7),), {"padding": [6, 3]}), (((9,),), {"padding": [0, 4]}))),
    _spec("ReflectionPad2d", 2, "reflect", "a mirror image of the edges", (
        (((3, 6, 5),), {"padding": 1}), (((2, 5, 7),), {"padding": [6, 2, 0, 4]}),
        (((6, 4),), {"padding": [3, 3, 5, 1]}))),
    _spec("ReplicationPad1d", 1, "replicate", "copies of the edge value", (
        (((3, 8),), {"padding": 2}), (((2, 3),), {"padding": [7, 3]}), (((9,),), {"padding": [0, 4]}))),
    _spec("ReplicationPad2d", 2, "replicate", "copies of the edge values", (
        (((3, 6, 5),), {"padding": 1}), (((2, 2, 3),), {"padding": [6, 2, 0, 9]}),
        (((6, 4),), {"padding": [3, 3, 5, 1]}))),
]
