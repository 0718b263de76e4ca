"""Values the import holds back, made into layers when something needs them as they are:
a rearranged view of a node's output (``onnx_values``) becomes ChannelShuffle,
PixelShuffle, PixelUnshuffle, Permute, or Reshape / Permute / Reshape; a pending Pad a
padding layer; a pending multiplication by a constant a Scale.

Each function takes the importer (``onnx_import._Importer``) and returns the output value
(``Tensor``) of the node(s) it added; ``Unsupported`` where no layer does it exactly.
"""

from __future__ import annotations

from itertools import permutations
from math import prod

import numpy as np

from .onnx_values import N, Pending, Tensor, Unsupported, plain, show_shape

# the rearrangement is identified by moving the indices of one sample: up to this many
_MAX_PROBE = 1 << 22


def view_layers(ctx, t: Tensor, label: str) -> Tensor:
    """The view ``t`` (batch first and alone on its axis, atoms out of order) as layers.
    Raises ``Unsupported`` when the batch moves."""
    if not t.atoms or t.atoms[0] != N or not t.axes or t.axes[0] != [0]:
        raise Unsupported(f"moves the batch axis ({show_shape(t.shape)}); NetCanvas layers keep the batch first",
                          blame=[b for b in t.made_by if ctx.label_op.get(b) == "Transpose"] or list(t.made_by[-1:]))
    source = tuple(ctx.shapes[t.node])
    target = tuple(int(d) for d in t.shape[1:])
    atoms = [int(a) for a in t.atoms[1:]]
    order = [i - 1 for ax in t.axes[1:] for i in ax]          # atoms, in the order the view reads them
    size = prod(source)
    if size <= _MAX_PROBE:
        moved = np.arange(size).reshape(atoms).transpose(order).reshape(target)
        for kind, params in _candidates(source, target):
            if np.array_equal(_apply(kind, params, np.arange(size).reshape(source)), moved):
                return ctx.add(label, kind, params, [t.node])
    # the general case: split into the atoms, permute them, merge into the target
    node = t.node
    if tuple(atoms) != source:
        node = ctx.add(label, "Reshape", {"shape": atoms}, [node], suffix="_split").node
    node = ctx.add(label, "Permute", {"dims": [0, *(i + 1 for i in order)]}, [node]).node
    permuted = tuple(atoms[i] for i in order)
    if permuted != target:
        kind, params = "Reshape", {"shape": list(target)}
        for k in range(len(permuted) - 1):
            if target == permuted[:k] + (prod(permuted[k:]),):
                kind, params = "Flatten", ({"start_dim": k + 1} if k else {})
                break
        node = ctx.add(label, kind, params, [node], suffix="_flatten" if kind == "Flatten" else "").node
    return plain(node, ctx.true_shape(node))


def _candidates(source: tuple, target: tuple):
    """The single layers that could turn ``source`` into ``target``, as (type, params)."""
    if source == target and len(source) >= 2:
        c = source[0]
        for g in range(2, c + 1):
            if c % g == 0:
                yield "ChannelShuffle", {"groups": g}
    if len(source) == 3 and len(target) == 3:
        (c, h, w), (c2, h2, w2) = source, target
        if h2 > h and h2 % h == 0 and h2 // h == w2 // max(w, 1):
            r = h2 // h
            if c == c2 * r * r:
                yield "PixelShuffle", {"upscale_factor": r}
        if h > h2 and h % h2 == 0 and h // h2 == w // max(w2, 1):
            r = h // h2
            if c2 == c * r * r:
                yield "PixelUnshuffle", {"downscale_factor": r}
    if len(source) == len(target) and len(source) <= 5:
        for perm in permutations(range(len(source))):
            if perm != tuple(range(len(source))) and tuple(source[p] for p in perm) == target:
                yield "Permute", {"dims": [0, *(p + 1 for p in perm)]}


def _apply(kind: str, params: dict, x: np.ndarray) -> np.ndarray:
    """What the layer does to one sample ``x``, in numpy (indices only)."""
    if kind == "ChannelShuffle":
        g = params["groups"]
        return x.reshape(g, x.shape[0] // g, *x.shape[1:]).swapaxes(0, 1).reshape(x.shape)
    if kind == "PixelShuffle":
        r = params["upscale_factor"]
        c, h, w = x.shape
        return x.reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), h * r, w * r)
    if kind == "PixelUnshuffle":
        r = params["downscale_factor"]
        c, h, w = x.shape
        return x.reshape(c, h // r, r, w // r, r).transpose(0, 2, 4, 1, 3).reshape(c * r * r, h // r, w // r)
    return x.transpose([d - 1 for d in params["dims"][1:]])


# -- pending patterns ---------------------------------------------------------------------
def pending_layers(ctx, p: Pending) -> Tensor:
    """A pending Pad as a padding layer, a pending constant factor as Scale. Raises
    ``Unsupported`` for other kinds, or a pad no padding layer does."""
    if "made" in p.data:
        return p.data["made"]
    label = p.origin[0]
    x = ctx.materialize(p.x, label)
    if p.kind == "scale":
        made = ctx.add(label, "Scale", {"factor": float(p.data["factor"])}, [x.node])
    elif p.kind == "pad":
        made = pad_layer(ctx, label, x, p.data["begin_all"], p.data["end_all"], p.data.get("mode", "constant"),
                         p.data.get("value", 0.0))
    else:
        raise Unsupported(None)
    p.data["made"] = made
    return made


_PAD_KINDS = {"constant": "ConstantPad", "reflect": "ReflectionPad", "edge": "ReplicationPad"}


def pad_layer(ctx, label: str, x: Tensor, begin: list, end: list, mode: str, value: float,
              suffix: str = "") -> Tensor:
    """A padding layer adding ``begin`` / ``end`` (per axis, batch included) to ``x``."""
    sample = ctx.shapes[x.node]
    rank = len(sample)
    if mode not in _PAD_KINDS:
        raise Unsupported(f"pads in mode {mode!r}; NetCanvas pads with a constant, reflect or edge values")
    if begin[0] or end[0]:
        raise Unsupported("pads the batch axis")
    padded = [i for i in range(1, rank + 1) if begin[i] or end[i]]
    if mode == "constant":
        nd = 1 if padded and min(padded) >= rank else 2
        if min(padded) < rank + 1 - nd:
            raise Unsupported(f"pads axes {padded} of {rank + 1}; NetCanvas' padding layers pad the last one or two")
    else:
        nd = rank - 1
        if nd not in (1, 2) or min(padded) < 2 or any(v < 0 for v in begin + end):
            raise Unsupported(f"pads {mode} values around data of shape {list(sample)}; NetCanvas' "
                              f"{_PAD_KINDS[mode]} layers pad [C, L] or [C, H, W] by positive amounts")
    amounts = []
    for axis in range(rank, rank - nd, -1):  # torch's order: the last axis first
        amounts += [int(begin[axis]), int(end[axis])]
    padding = amounts[0] if len(set(amounts)) == 1 else amounts
    if mode == "constant" and value == 0.0:
        return ctx.add(label, f"ZeroPad{nd}d", {"padding": padding}, [x.node], suffix=suffix)
    if mode == "constant":
        return ctx.add(label, f"ConstantPad{nd}d", {"padding": padding, "value": float(value)}, [x.node], suffix=suffix)
    return ctx.add(label, f"{_PAD_KINDS[mode]}{nd}d", {"padding": padding}, [x.node], suffix=suffix)
