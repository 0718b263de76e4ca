"""Recurrent layers and what takes their sequences apart."""

from __future__ import annotations

from ..lazy import modules  # torch loads when a module is built, not here
from ..params import Param
from .helpers import need_rank
from .spec import LayerSpec

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
        width = p["hidden_size"] * (2 if p["bidirectional"] else 1)
        return [(shapes[0][0], width), (width,)]

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
        f"{name} over a sequence (batch first): [T, F] -> output 0, the sequence "
        "[T, hidden_size * directions] (follow with LastStep to classify it), and output 1, the "
        "last layer's final hidden state [hidden_size * directions].",
        (
            Param("hidden_size", "int", doc="Units in the hidden state.", minimum=1, key=True),
            Param("num_layers", "int", 1, "Stacked recurrent layers.", 1, MAX_LAYERS),
            Param("bidirectional", "bool", False, "Also read the sequence backwards."),
            Param("dropout", "float", 0.0, "Dropout between stacked layers.", 0.0, 0.99),
        ),
        infer, build, count, hints=hints, outputs=("sequence", "hidden"),
        samples=((((5, 3),), {"hidden_size": 4}),
                 (((6, 2),), {"hidden_size": 3, "num_layers": 2, "bidirectional": True, "dropout": 0.1}),
                 (((4, 5),), {"hidden_size": 2, "num_layers": 3})),
    )


def _laststep(shapes, p):
    need_rank("LastStep", shapes[0], {2: "[time, features]"})
    return shapes[0][1:]


SPECS = [
    _recurrent("RNN"),
    _recurrent("LSTM"),
    _recurrent("GRU"),
    LayerSpec(
        "LastStep", "Recurrent",
        "The last time step of a sequence: [T, F] -> [F].",
        (), _laststep, lambda shapes, p: modules.LastStep(),
        samples=((((5, 3),), {}), (((1, 4),), {})),
    ),
]
