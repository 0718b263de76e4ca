"""Normalization, recurrent and merge layers."""

from __future__ import annotations

from torch import nn

from .. import modules
from ..params import MAX_RANK, Param
from .helpers import batch_dim, fmt, need_rank, same_shapes
from .spec import LayerSpec, ShapeError

_identity = lambda shapes, p: shapes[0]  # noqa: E731
_eps = Param("eps", "float", 1e-5, "Added to the variance for stability.", 1e-12, 1.0)
_momentum = Param("momentum", "float", 0.1, "Weight of each batch in the running statistics.", 0.0, 1.0)


def _batchnorm(ndim, ranks):
    def infer(shapes, p):
        need_rank(f"BatchNorm{ndim}d", shapes[0], ranks)
        return shapes[0]

    cls = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[ndim]
    shape = "[C] or [C, L]" if ndim == 1 else "[C, H, W]"
    return LayerSpec(
        f"BatchNorm{ndim}d", "Normalization",
        f"Normalizes each channel over the batch: {shape}, same shape out.",
        (_eps, _momentum),
        infer,
        lambda shapes, p: cls(shapes[0][0], eps=p["eps"], momentum=p["momentum"]),
        lambda shapes, p: 2 * shapes[0][0],
    )


_GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}
MAX_LAYERS = 1000  # stacked recurrent layers (deep stacks of more than a few do not train)


def recurrent_count(name: str, size_in: int, hidden: int, layers: int, bidirectional: bool) -> int:
    """Trainable parameters of torch's stacked ``name`` (RNN, LSTM, GRU), in closed form:
    per layer and direction, ``gates * (input * h + h * h + 2 * h)``; the first layer reads
    ``size_in`` features, the others the ``h * directions`` of the layer below."""
    dirs = 2 if bidirectional else 1
    per_input = _GATES[name] * hidden  # weights per input feature, per direction
    recurrent_and_bias = _GATES[name] * (hidden * hidden + 2 * hidden)
    first = size_in * per_input + recurrent_and_bias
    others = (layers - 1) * (hidden * dirs * per_input + recurrent_and_bias)
    return dirs * (first + others)


def _recurrent(name: str) -> LayerSpec:
    def infer(shapes, p):
        need_rank(name, shapes[0], {2: "[time, features]"})
        return (shapes[0][0], p["hidden_size"] * (2 if p["bidirectional"] else 1))

    def count(shapes, p):
        return recurrent_count(name, shapes[0][1], p["hidden_size"], p["num_layers"], p["bidirectional"])

    def build(shapes, p):
        cls = getattr(modules, name)
        # torch warns when dropout is set on a single layer; hints() reports that instead
        dropout = p["dropout"] if p["num_layers"] > 1 else 0.0
        return cls(shapes[0][1], p["hidden_size"], p["num_layers"], batch_first=True,
                   dropout=dropout, bidirectional=p["bidirectional"])

    def hints(shapes, p):
        if p["dropout"] > 0 and p["num_layers"] == 1:
            return [("dropout", "dropout acts between stacked layers, so with num_layers 1 it "
                                "has no effect; set num_layers >= 2 or add a Dropout node")]
        return []

    return LayerSpec(
        name, "Recurrent",
        f"{name} over a sequence (batch first): [T, F] -> [T, hidden_size * directions]; "
        "follow with LastStep to classify the sequence.",
        (
            Param("hidden_size", "int", doc="Units in the hidden state.", minimum=1, key=True),
            Param("num_layers", "int", 1, "Stacked recurrent layers.", 1, MAX_LAYERS),
            Param("bidirectional", "bool", False, "Also read the sequence backwards."),
            Param("dropout", "float", 0.0, "Dropout between stacked layers.", 0.0, 0.99),
        ),
        infer, build, count, hints=hints,
    )


def _laststep(shapes, p):
    need_rank("LastStep", shapes[0], {2: "[time, features]"})
    return shapes[0][1:]


def _concat(shapes, p):
    first = shapes[0]
    d = batch_dim(p["dim"], len(first))
    for other in shapes[1:]:
        if len(other) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(first, other)) if i != d
        ):
            raise ShapeError(
                f"Concat along dim {p['dim']} needs inputs equal in every other dimension; "
                f"received {fmt(first)} and {fmt(other)}"
            )
    return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1 :]


def _merge(name, cls, what):
    return LayerSpec(
        name, "Merge",
        f"{what} of two or more inputs of one shape: [S], [S], ... -> [S].",
        (),
        lambda shapes, p: same_shapes(name, shapes),
        lambda shapes, p: cls(),
        min_inputs=2, max_inputs=None,
    )


def _layernorm_infer(shapes, p):
    return shapes[0]


SPECS = [
    _batchnorm(1, {1: "[C]", 2: "[C, L]"}),
    _batchnorm(2, {3: "[C, H, W]"}),
    LayerSpec(
        "LayerNorm", "Normalization",
        "Normalizes each sample over its last dimension: [..., F], same shape out.",
        (_eps,), _layernorm_infer,
        lambda shapes, p: nn.LayerNorm(shapes[0][-1], eps=p["eps"]),
        lambda shapes, p: 2 * shapes[0][-1],
    ),
    _recurrent("RNN"),
    _recurrent("LSTM"),
    _recurrent("GRU"),
    LayerSpec(
        "LastStep", "Recurrent",
        "The last time step of a sequence: [T, F] -> [F].",
        (), _laststep, lambda shapes, p: modules.LastStep(),
    ),
    _merge("Add", modules.Add, "Element-wise sum"),
    _merge("Multiply", modules.Multiply, "Element-wise product"),
    LayerSpec(
        "Concat", "Merge",
        "Joins two or more inputs along dim (counted with the batch; 1 = channels/features).",
        (Param("dim", "int", 1, "Dimension to join along, counted with the batch.", -MAX_RANK, MAX_RANK,
               key=True),),
        _concat, lambda shapes, p: modules.Concat(p["dim"]),
        min_inputs=2, max_inputs=None,
    ),
]
