"""Layers that move values without computing on them (Unflatten, PixelShuffle,
PixelUnshuffle, ChannelShuffle, Permute, Transpose, Select) and Mean.

Dimensions are counted with the batch as dimension 0, as torch counts them (negative ones
from the end); these layers never move, select or average the batch dimension.
(Flatten and Reshape are core.py's.)
"""

from __future__ import annotations

from math import prod


from ..lazy import modules, nn  # torch loads when a module is built, not here
from ..params import INT_LIMIT, MAX_RANK, Param, is_int
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError


class DimsParam(Param):
    """A list of dimensions (kind ``shape``, so forms and files read it as a list), whose
    entries may be 0 or negative within the declared range; the shape rule checks them
    against the input. Holds up to ``MAX_RANK + 1`` entries: Permute names the batch too."""

    def _shape(self, v) -> bool:
        return (isinstance(v, list) and 0 < len(v) <= MAX_RANK + 1
                and all(is_int(x) and self._in_range(x) for x in v))

    def expected(self, full: bool = False) -> str:
        return f"a list of 1 to {MAX_RANK + 1} integers{self._range_text(True)}"


def _rank_text(rank: int) -> str:
    return f"use 1 to {rank} or -1 to -{rank}"


def axis(layer: str, value: int, shape, param: str, verb: str) -> int:
    """``value``, a dimension counted with the batch (negative from the end), as an index
    into ``(batch,) + shape``; raises for the batch dimension (which ``layer`` cannot
    ``verb``) and for a dimension the input lacks."""
    rank = len(shape)
    d = value + rank + 1 if value < 0 else value
    if d == 0:
        raise ShapeError(f"{layer} cannot {verb} the batch dimension ({param} {value}); for its "
                         f"input {fmt(shape)} {_rank_text(rank)}", param)
    if not 0 < d <= rank:
        raise ShapeError(f"{param} {value} is out of range for the input {fmt(shape)} of {layer} "
                         f"(dimension 0 is the batch); {_rank_text(rank)}", param)
    return d


def _unflatten(shapes, p):
    shape, sizes = shapes[0], list(p["unflattened_size"])
    d = axis("Unflatten", p["dim"], shape, "dim", "unflatten")
    size, known = shape[d - 1], prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if size % known:
            raise ShapeError(f"Unflatten cannot split dimension {p['dim']} of {fmt(shape)} (size "
                             f"{size}) into {fmt(sizes)}: {size} is not a multiple of {known}",
                             "unflattened_size")
        sizes[sizes.index(-1)] = size // known
    elif known != size:
        raise ShapeError(f"Unflatten cannot split dimension {p['dim']} of {fmt(shape)} (size {size}) "
                         f"into {fmt(sizes)} ({known} values); the sizes must multiply to {size}",
                         "unflattened_size")
    return shape[: d - 1] + tuple(sizes) + shape[d:]


def _pixel_shuffle(shapes, p):
    shape, r = shapes[0], p["upscale_factor"]
    need_rank("PixelShuffle", shape, {3: "[C * r^2, H, W]"})
    c, h, w = shape
    if c % (r * r):
        raise ShapeError(f"PixelShuffle with upscale_factor {r} needs channels divisible by "
                         f"{r * r} (r^2); received {fmt(shape)}", "upscale_factor")
    return (c // (r * r), h * r, w * r)


def _pixel_unshuffle(shapes, p):
    shape, r = shapes[0], p["downscale_factor"]
    need_rank("PixelUnshuffle", shape, {3: "[C, H * r, W * r]"})
    c, h, w = shape
    if h % r or w % r:
        raise ShapeError(f"PixelUnshuffle with downscale_factor {r} needs a height and width "
                         f"divisible by {r}; received {fmt(shape)}", "downscale_factor")
    return (c * r * r, h // r, w // r)


def _channel_shuffle(shapes, p):
    shape, g = shapes[0], p["groups"]
    if len(shape) < 2:  # torch shuffles dimension 1 of an input of 3 or more
        raise ShapeError(f"ChannelShuffle needs an input of shape [C, L], [C, H, W] or more "
                         f"dimensions; received {fmt(shape)} (add a Reshape to [C, 1] before it)")
    if shape[0] % g:
        raise ShapeError(f"ChannelShuffle splits the {shape[0]} channels of {fmt(shape)} into "
                         f"{g} groups, and {g} does not divide {shape[0]}", "groups")
    return shape


def _permute(shapes, p):
    shape, dims = shapes[0], list(p["dims"])
    full = len(shape) + 1
    if len(dims) != full:
        raise ShapeError(f"Permute needs {full} dims for its input {fmt(shape)}: 0 (the batch) "
                         f"and 1 to {full - 1} in their new order; received {dims}", "dims")
    norm = [d + full if d < 0 else d for d in dims]
    if sorted(norm) != list(range(full)):
        raise ShapeError(f"Permute dims must name each of 0 to {full - 1} once (negative ones "
                         f"count from the end); received {dims} for the input {fmt(shape)}", "dims")
    if norm[0] != 0:
        raise ShapeError(f"Permute cannot move the batch dimension: dims must start with 0; "
                         f"received {dims}", "dims")
    return tuple(shape[d - 1] for d in norm[1:])


def _transpose(shapes, p):
    shape = list(shapes[0])
    a = axis("Transpose", p["dim0"], shapes[0], "dim0", "move")
    b = axis("Transpose", p["dim1"], shapes[0], "dim1", "move")
    shape[a - 1], shape[b - 1] = shape[b - 1], shape[a - 1]
    return tuple(shape)


def _select(shapes, p):
    shape, index = shapes[0], p["index"]
    d = axis("Select", p["dim"], shape, "dim", "select from")
    if len(shape) == 1:
        raise ShapeError(f"Select removes dimension {p['dim']}, and its input {fmt(shape)} has no "
                         "other: a sample needs at least one dimension (Reshape to [1] instead "
                         "of selecting, or select before a Flatten)", "dim")
    size = shape[d - 1]
    if not -size <= index < size:
        raise ShapeError(f"index {index} is out of range for dimension {p['dim']} of {fmt(shape)} "
                         f"(size {size}); use 0 to {size - 1} or -1 to -{size}", "index")
    return shape[: d - 1] + shape[d:]


def _mean(shapes, p):
    shape = shapes[0]
    dims = [axis("Mean", v, shape, "dims", "average over") for v in p["dims"]]
    if len(set(dims)) != len(dims):
        raise ShapeError(f"Mean dims name a dimension twice: {list(p['dims'])} for the input "
                         f"{fmt(shape)}", "dims")
    if p["keepdim"]:
        return tuple(1 if i + 1 in dims else s for i, s in enumerate(shape))
    if len(dims) == len(shape):
        raise ShapeError(f"Mean over every dimension of {fmt(shape)} leaves a sample with none; "
                         "set keepdim to true, or leave one dimension out of dims", "dims")
    return tuple(s for i, s in enumerate(shape) if i + 1 not in dims)


_dim_range = {"minimum": -MAX_RANK, "maximum": MAX_RANK}

SPECS = [
    LayerSpec(
        "Unflatten", "Shape",
        "Splits one dimension into several: [C*H*W] -> [C, H, W] with dim 1, "
        "unflattened_size [C, H, W] (one size may be -1).",
        (
            Param("dim", "int", doc="Dimension to split, counted with the batch (1 = the first "
                  "after it; -1 = the last).", key=True, **_dim_range),
            Param("unflattened_size", "shape", doc="The sizes it becomes; one may be -1.",
                  allow_minus_one=True, key=True),
        ),
        _unflatten, lambda shapes, p: nn.Unflatten(p["dim"], tuple(p["unflattened_size"])),
        samples=(
            (((12,),), {"dim": 1, "unflattened_size": [3, 4]}),
            (((3, 20, 5),), {"dim": 2, "unflattened_size": [-1, 5]}),
            (((6, 7),), {"dim": -1, "unflattened_size": [7, 1]}),
            (((2, 3, 8),), {"dim": -3, "unflattened_size": [1, 2, 1]}),
        ),
    ),
    LayerSpec(
        "PixelShuffle", "Shape",
        "Moves channels into space (sub-pixel upsampling): [C * r^2, H, W] -> [C, H * r, W * r], "
        "r = upscale_factor.",
        (Param("upscale_factor", "int", doc="Factor r to grow height and width by.", minimum=1,
               maximum=46340, key=True),),  # r^2 within INT_LIMIT
        _pixel_shuffle, lambda shapes, p: nn.PixelShuffle(p["upscale_factor"]),
        samples=(
            (((8, 3, 5),), {"upscale_factor": 2}),
            (((18, 1, 2),), {"upscale_factor": 3}),
            (((5, 4, 3),), {"upscale_factor": 1}),
        ),
    ),
    LayerSpec(
        "PixelUnshuffle", "Shape",
        "Moves space into channels: [C, H * r, W * r] -> [C * r^2, H, W], r = downscale_factor.",
        (Param("downscale_factor", "int", doc="Factor r to shrink height and width by.", minimum=1,
               maximum=46340, key=True),),
        _pixel_unshuffle, lambda shapes, p: nn.PixelUnshuffle(p["downscale_factor"]),
        samples=(
            (((2, 6, 4),), {"downscale_factor": 2}),
            (((1, 9, 6),), {"downscale_factor": 3}),
            (((3, 5, 7),), {"downscale_factor": 1}),
        ),
    ),
    LayerSpec(
        "ChannelShuffle", "Shape",
        "Interleaves the channels of `groups` groups (ShuffleNet): [C, ...], same shape out "
        "(groups must divide C).",
        (Param("groups", "int", doc="Groups the channels are split into.", minimum=1, key=True),),
        _channel_shuffle, lambda shapes, p: nn.ChannelShuffle(p["groups"]),
        samples=(
            (((6, 5, 7),), {"groups": 3}),
            (((4, 9),), {"groups": 2}),
            (((6, 2, 3, 4),), {"groups": 6}),
        ),
    ),
    LayerSpec(
        "Permute", "Shape",
        "Reorders dimensions as x.permute(*dims); dims counts the batch as 0 and starts with "
        "it: [C, H, W] -> [H, W, C] with dims [0, 2, 3, 1].",
        (DimsParam("dims", "shape", doc="The new order of all dimensions, starting with 0 "
                   "(the batch).", minimum=-MAX_RANK - 1, maximum=MAX_RANK, key=True),),
        _permute, lambda shapes, p: modules.Permute(p["dims"]),
        samples=(
            (((3, 5, 7),), {"dims": [0, 2, 3, 1]}),
            (((4, 9),), {"dims": [0, 2, 1]}),
            (((2, 3, 4, 5),), {"dims": [0, -1, 2, 1, -2]}),
        ),
    ),
    LayerSpec(
        "Transpose", "Shape",
        "Swaps two dimensions, as x.transpose(dim0, dim1) (counted with the batch): [T, D] -> "
        "[D, T] with 1 and 2.",
        (
            Param("dim0", "int", doc="One dimension, counted with the batch.", key=True, **_dim_range),
            Param("dim1", "int", doc="The other dimension.", key=True, **_dim_range),
        ),
        _transpose, lambda shapes, p: modules.Transpose(p["dim0"], p["dim1"]),
        samples=(
            (((4, 9),), {"dim0": 1, "dim1": 2}),
            (((3, 5, 7),), {"dim0": -1, "dim1": 1}),
            (((3, 5),), {"dim0": 2, "dim1": 2}),
        ),
    ),
    LayerSpec(
        "Select", "Shape",
        "Takes one position along dim and removes that dimension, as x.select(dim, index): "
        "[197, 768] -> [768] with dim 1, index 0 (a ViT's class token).",
        (
            Param("dim", "int", 1, "Dimension to select from, counted with the batch.", **_dim_range),
            Param("index", "int", doc="Position along dim (negative from the end).", key=True,
                  minimum=-INT_LIMIT),
        ),
        _select, lambda shapes, p: modules.Select(p["dim"], p["index"]),
        samples=(
            (((7, 8),), {"index": 0}),
            (((3, 5, 7),), {"dim": -1, "index": -2}),
            (((4, 9),), {"dim": 2, "index": 8}),
        ),
    ),
    LayerSpec(
        "Mean", "Shape",
        "Averages over dims (counted with the batch): [T, D] -> [D] with dims [1]; [C, H, W] -> "
        "[C] with dims [2, 3]; keepdim keeps them as size 1.",
        (
            DimsParam("dims", "shape", doc="Dimensions to average over, counted with the batch.",
                      minimum=-MAX_RANK, maximum=MAX_RANK, key=True),
            Param("keepdim", "bool", False, "Keep the averaged dimensions, with size 1."),
        ),
        _mean, lambda shapes, p: modules.Mean(p["dims"], p["keepdim"]),
        samples=(
            (((3, 5, 7),), {"dims": [2, 3]}),
            (((6, 4),), {"dims": [1], "keepdim": True}),
            (((2, 3, 4, 5),), {"dims": [-1, 1]}),
            (((5, 7),), {"dims": [1, 2], "keepdim": True}),
        ),
    ),
]
