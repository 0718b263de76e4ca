"""Activations beyond the first course's (those stay in core.py): torch.nn's element-wise
functions, PReLU's learned slopes and GLU's gate."""

from __future__ import annotations


from ..lazy import nn, torch_class  # torch loads when a module is built, not here
from ..params import MAX_RANK, Param
from .helpers import batch_dim, fmt
from .spec import LayerSpec, ShapeError

_X = (((4,),), {})  # the first sample of a parameterless activation
_SAMPLES = (_X, (((3, 5, 6),), {}), (((2, 7),), {}))


def _same(check=None):
    """The shape rule of an element-wise function: the same shape out, after ``check``."""
    def infer(shapes, p):
        if check:
            check(shapes[0], p)
        return shapes[0]

    return infer


def _elementwise(name: str, what: str, params=(), check=None, samples=_SAMPLES) -> LayerSpec:
    return LayerSpec(
        name, "Activation", what + " Any shape in, the same shape out.", tuple(params),
        _same(check), lambda shapes, p: torch_class(name)(**p), samples=samples,
    )


def _celu_alpha(shape, p):
    if p["alpha"] == 0:
        raise ShapeError("CELU's alpha divides its input, so it cannot be 0; received 0", "alpha")


def _hardtanh_range(shape, p):
    if p["max_val"] <= p["min_val"]:
        raise ShapeError(f"max_val ({p['max_val']}) must be greater than min_val ({p['min_val']})", "max_val")


def _softplus_beta(shape, p):
    if p["beta"] == 0:
        raise ShapeError("Softplus's beta divides its output, so it cannot be 0; received 0", "beta")


def _prelu_channels(shape, p):
    n = p["num_parameters"]
    if n != 1 and n != shape[0]:
        raise ShapeError(
            f"num_parameters must be 1 or the number of channels, {shape[0]} (the first dimension "
            f"of {fmt(shape)}); received {n}", "num_parameters")


def _glu(shapes, p):
    shape = shapes[0]
    i = batch_dim(p["dim"], len(shape))
    if shape[i] % 2:
        raise ShapeError(
            f"GLU halves dimension {p['dim']}, so its size must be even; received {fmt(shape)} "
            f"(size {shape[i]})", "dim")
    return shape[:i] + (shape[i] // 2,) + shape[i + 1:]


SPECS = [
    _elementwise("ReLU6", "min(max(0, x), 6)."),
    LayerSpec(
        "PReLU", "Activation",
        "x if x > 0 else a * x, with a learned slope a: one for all, or one per channel (the first "
        "dimension: C of [C, H, W], features of [F]). Any shape in, the same shape out.",
        (
            Param("num_parameters", "int", 1, "Number of slopes: 1, or the number of channels.",
                  minimum=1, key=True),
            Param("init", "float", 0.25, "Initial slope for negative inputs."),
        ),
        _same(_prelu_channels), lambda shapes, p: nn.PReLU(p["num_parameters"], p["init"]),
        lambda shapes, p: p["num_parameters"],
        samples=((((3, 5, 6),), {"num_parameters": 3}), (((7,),), {}),
                 (((4, 9),), {"num_parameters": 4, "init": 0.1})),
    ),
    _elementwise("SELU", "Scaled ELU with the self-normalizing constants."),
    _elementwise(
        "CELU", "max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).",
        [Param("alpha", "float", 1.0, "Value approached for large negative inputs (not 0).", key=True)],
        _celu_alpha, (_X, (((3, 5, 6),), {"alpha": 0.5}), (((2, 7),), {"alpha": 2.0}))),
    _elementwise("SiLU", "x * sigmoid(x) (also called swish)."),
    _elementwise("Mish", "x * tanh(softplus(x))."),
    _elementwise("Hardswish", "x * relu6(x + 3) / 6."),
    _elementwise("Hardsigmoid", "relu6(x + 3) / 6, values in [0, 1]."),
    _elementwise(
        "Hardtanh", "x clipped to [min_val, max_val].",
        [Param("min_val", "float", -1.0, "Lower bound.", key=True),
         Param("max_val", "float", 1.0, "Upper bound (greater than min_val).", key=True)],
        _hardtanh_range, (_X, (((3, 5, 6),), {"min_val": 0.0, "max_val": 6.0}),
                          (((2, 7),), {"min_val": -2.5, "max_val": 0.5}))),
    _elementwise(
        "Softplus", "log(1 + exp(beta * x)) / beta, linear above the threshold.",
        [Param("beta", "float", 1.0, "Sharpness (not 0).", key=True),
         Param("threshold", "float", 20.0, "Above beta * x > threshold, x itself.")],
        _softplus_beta, (_X, (((3, 5, 6),), {"beta": 2.0, "threshold": 1.0}),
                         (((2, 7),), {"beta": 0.5}))),
    _elementwise("Softsign", "x / (1 + |x|), values in (-1, 1)."),
    _elementwise("LogSigmoid", "log(sigmoid(x)), values below 0."),
    _elementwise("Tanhshrink", "x - tanh(x)."),
    LayerSpec(
        "GLU", "Activation",
        "Gated linear unit: splits dim in halves a, b and gives a * sigmoid(b); dim's size must be "
        "even: [..., 2n] -> [..., n] with dim -1.",
        (Param("dim", "int", -1, "Dimension to halve, counted with the batch (-1 = the last).",
               -MAX_RANK, MAX_RANK, key=True),),
        _glu, lambda shapes, p: nn.GLU(p["dim"]),
        samples=((((8,),), {}), (((6, 5, 4),), {"dim": 1}), (((3, 4, 5),), {"dim": -2})),
    ),
]
