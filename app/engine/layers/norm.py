"""Normalization layers: BatchNorm1d-3d, InstanceNorm1d-2d, GroupNorm, LayerNorm and
LocalResponseNorm."""

from __future__ import annotations

from math import prod


from ..lazy import nn, torch_class  # torch loads when a module is built, not here
from ..params import MAX_RANK, Param
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError

_eps = Param("eps", "float", 1e-5, "Added to the variance for stability.", 1e-12, 1.0)
# torch also takes momentum None (a cumulative average); the fused Conv-BatchNorm kernel
# updates the running statistics with a number, so NetCanvas keeps it one
_momentum = Param("momentum", "float", 0.1, "Weight of each batch in the running statistics.", 0.0, 1.0)
_track = "Keep running statistics for evaluation (false: use each batch's statistics always)."

# the sample shapes each N-d normalization takes (batch excluded)
_BATCH_RANKS = {1: {1: "[C]", 2: "[C, L]"}, 2: {3: "[C, H, W]"}, 3: {4: "[C, D, H, W]"}}
_INSTANCE_RANKS = {1: {2: "[C, L]"}, 2: {3: "[C, H, W]"}}


def _affine_count(shapes, p) -> int:
    """A weight (and a bias, unless ``bias`` is false) per channel when ``affine``
    (BatchNorm, InstanceNorm, GroupNorm)."""
    return (2 if p["bias"] else 1) * shapes[0][0] if p["affine"] else 0


_bias = Param("bias", "bool", True, "Learn the shift too (with affine).")


def _with_bias(p) -> dict:
    """The keyword arguments of a norm: ``bias`` only when false (older torch lacks it)."""
    return {k: v for k, v in p.items() if k != "bias" or not v}


def _shape_text(ranks: dict[int, str]) -> str:
    return " or ".join(ranks.values())


_BATCH_SAMPLES = {
    1: ((((7,),), {}), (((4, 9),), {"eps": 1e-3, "momentum": 0.5}),
        (((5, 3),), {"affine": False}), (((3,),), {"track_running_stats": False})),
    2: ((((6, 5, 7),), {}), (((1, 3, 3),), {"momentum": 0.0}),
        (((4, 2, 9),), {"affine": False, "track_running_stats": False}), (((3, 4, 4),), {"bias": False})),
    3: ((((3, 4, 5, 6),), {}), (((2, 3, 1, 5),), {"eps": 1e-3, "affine": False}),
        (((1, 2, 2, 2),), {"momentum": 0.3, "track_running_stats": False})),
}


def _batchnorm(ndim: int) -> LayerSpec:
    name, ranks = f"BatchNorm{ndim}d", _BATCH_RANKS[ndim]
    cls = torch_class(name)

    def infer(shapes, p):
        need_rank(name, shapes[0], ranks)
        return shapes[0]

    return LayerSpec(
        name, "Normalization",
        f"Normalizes each channel over the batch (and positions): {_shape_text(ranks)}, same shape out.",
        (_eps, _momentum, Param("affine", "bool", True, "Learn a scale and a shift per channel."),
         Param("track_running_stats", "bool", True, _track), _bias),
        infer,
        lambda shapes, p: cls(shapes[0][0], **_with_bias(p)),
        _affine_count,
        samples=_BATCH_SAMPLES[ndim],
    )


_INSTANCE_SAMPLES = {
    1: ((((3, 10),), {}), (((4, 2),), {"affine": True, "eps": 1e-3}),
        (((2, 7),), {"track_running_stats": True, "momentum": 0.5})),
    2: ((((3, 5, 7),), {}), (((4, 1, 2),), {"affine": True}),
        (((2, 3, 3),), {"affine": True, "track_running_stats": True}), (((2, 4, 3),), {"affine": True, "bias": False})),
}


def _instancenorm(ndim: int) -> LayerSpec:
    name, ranks = f"InstanceNorm{ndim}d", _INSTANCE_RANKS[ndim]
    cls = torch_class(name)

    def infer(shapes, p):
        shape = shapes[0]
        need_rank(name, shape, ranks)
        if prod(shape[1:]) == 1:  # torch refuses: the variance of one value
            raise ShapeError(f"{name} normalizes each channel of each sample over its positions, "
                             f"and {fmt(shape)} has one position; it needs more than one")
        return shape

    return LayerSpec(
        name, "Normalization",
        f"Normalizes each channel of each sample over its positions: {_shape_text(ranks)}, same shape out.",
        (_eps, _momentum, Param("affine", "bool", False, "Learn a scale and a shift per channel."),
         Param("track_running_stats", "bool", False, _track), _bias),
        infer,
        lambda shapes, p: cls(shapes[0][0], **_with_bias(p)),
        _affine_count,
        samples=_INSTANCE_SAMPLES[ndim],
    )


def _groupnorm(shapes, p):
    shape, groups = shapes[0], p["num_groups"]
    if shape[0] % groups:
        raise ShapeError(f"GroupNorm splits the {shape[0]} channels of {fmt(shape)} into "
                         f"{groups} groups, and {groups} does not divide {shape[0]}", "num_groups")
    return shape


def _layernorm(shapes, p):
    shape, dims = shapes[0], p["dims"]
    if dims > len(shape):
        raise ShapeError(f"LayerNorm normalizes the last {dims} dimensions, and its input "
                         f"{fmt(shape)} has {len(shape)}; use dims 1 to {len(shape)}", "dims")
    return shape


def _layernorm_count(shapes, p):
    if not p["elementwise_affine"]:
        return 0
    return prod(shapes[0][-p["dims"]:]) * (2 if p["bias"] else 1)


def _layernorm_build(shapes, p):
    # one dimension is written as an int, as version 1 built it (export shows LayerNorm(64))
    normalized = shapes[0][-1] if p["dims"] == 1 else shapes[0][-p["dims"]:]
    return nn.LayerNorm(normalized, eps=p["eps"], elementwise_affine=p["elementwise_affine"], bias=p["bias"])


def _local_response(shapes, p):
    need_rank("LocalResponseNorm", shapes[0], {2: "[C, L]", 3: "[C, H, W]", 4: "[C, D, H, W]"})
    return shapes[0]


SPECS = [
    _batchnorm(1),
    _batchnorm(2),
    _batchnorm(3),
    _instancenorm(1),
    _instancenorm(2),
    LayerSpec(
        "GroupNorm", "Normalization",
        "Normalizes each group of channels of each sample: [C, ...], same shape out "
        "(num_groups must divide C; 1 group is LayerNorm over all, C groups InstanceNorm).",
        (
            Param("num_groups", "int", doc="Groups the channels are split into.", minimum=1, key=True),
            _eps,
            Param("affine", "bool", True, "Learn a scale and a shift per channel."),
            _bias,
        ),
        _groupnorm,
        lambda shapes, p: nn.GroupNorm(p["num_groups"], shapes[0][0], eps=p["eps"], affine=p["affine"],
                                       **({"bias": False} if not p["bias"] else {})),
        _affine_count,
        samples=(
            (((6, 5, 7),), {"num_groups": 3}),
            (((8, 9),), {"num_groups": 8, "eps": 1e-3}),
            (((4,),), {"num_groups": 1, "affine": False}),
            (((4, 2, 3, 3),), {"num_groups": 2, "bias": False}),
        ),
    ),
    LayerSpec(
        "LayerNorm", "Normalization",
        "Normalizes each sample over its last `dims` dimensions: [..., F] with dims 1, "
        "[C, H, W] whole with dims 3; same shape out.",
        (
            _eps,
            Param("dims", "int", 1, "How many trailing dimensions to normalize over.", 1, MAX_RANK),
            Param("elementwise_affine", "bool", True, "Learn a scale (and a shift) per normalized value."),
            Param("bias", "bool", True, "Learn the shift too (with elementwise_affine)."),
        ),
        _layernorm, _layernorm_build, _layernorm_count,
        samples=(
            (((7,),), {}),
            (((3, 5, 6),), {"dims": 2}),
            (((2, 3, 4),), {"dims": 3, "bias": False}),
            (((5, 3),), {"elementwise_affine": False, "eps": 1e-3}),
        ),
    ),
    LayerSpec(
        "LocalResponseNorm", "Normalization",
        "Divides each value by the activity of `size` neighbouring channels (AlexNet): "
        "[C, L], [C, H, W] or [C, D, H, W], same shape out.",
        (
            Param("size", "int", doc="Neighbouring channels to normalize over.", minimum=1, key=True),
            Param("alpha", "float", 1e-4, "Multiplicative factor.", 0.0),
            Param("beta", "float", 0.75, "Exponent.", 0.0),
            Param("k", "float", 1.0, "Additive factor (> 0 keeps the division defined).", 1e-12),
        ),
        _local_response,
        lambda shapes, p: nn.LocalResponseNorm(p["size"], alpha=p["alpha"], beta=p["beta"], k=p["k"]),
        samples=(
            (((6, 5, 7),), {"size": 3}),
            (((4, 9),), {"size": 2, "alpha": 0.01, "beta": 0.5, "k": 2.0}),
            (((3, 2, 4, 5),), {"size": 5}),
        ),
    ),
]
