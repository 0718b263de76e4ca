"""Attention and transformer layers (batch first, always).

The input sizes torch's constructors take (``embed_dim``, ``kdim``, ``vdim``, ``d_model``)
come from the input shapes; ``causal`` (not a torch argument) builds the mask that hides
later positions, which a file cannot otherwise express.
"""

from __future__ import annotations

from ..lazy import modules  # torch loads when a module is built, not here
from ..params import Param
from .helpers import fmt, need_rank
from .spec import LayerSpec, ShapeError

_DROPOUT_DOC = "Probability of zeroing attention weights and activations while training."


def _heads(layer: str, embed: int, heads: int, param: str) -> None:
    if embed % heads:
        raise ShapeError(f"{layer} needs the feature size {embed} to be divisible by {param} "
                         f"{heads} (each head takes {embed} / {param} features)", param)


def _causal(default: bool, what: str) -> Param:
    return Param("causal", "bool", default, f"Mask later positions in {what}: position i attends "
                 "only to positions <= i.")


# -- MultiheadAttention -------------------------------------------------------------------
def _mha_shapes(shapes):
    """(query, key, value) shapes, after checking the 1-or-3 inputs rule and the ranks."""
    if len(shapes) == 2:
        raise ShapeError("MultiheadAttention takes 1 input (self-attention) or 3 (query, key, "
                         "value); received 2: connect the same node to both key and value for "
                         "cross-attention")
    names = ("query", "key", "value")
    for name, shape in zip(names, shapes):
        need_rank(f"MultiheadAttention's {name}", shape, {2: "[sequence, features]"})
    if len(shapes) == 1:
        return shapes[0], shapes[0], shapes[0]
    query, key, value = shapes
    if key[0] != value[0]:
        raise ShapeError(f"MultiheadAttention needs key and value of one sequence length; "
                         f"received key {fmt(key)} and value {fmt(value)}")
    return query, key, value


def _mha_infer(shapes, p):
    query, key, _ = _mha_shapes(shapes)
    _heads("MultiheadAttention", query[1], p["num_heads"], "num_heads")
    keys = key[0] + p["add_bias_kv"] + p["add_zero_attn"]  # torch appends a key for each
    return [query, (query[0], keys)]


def _mha_count(shapes, p):
    query, key, value = _mha_shapes(shapes)
    e, bias = query[1], p["bias"]
    projections = e * (e + key[1] + value[1]) + e * e  # query, key, value, out
    return projections + 4 * e * bias + 2 * e * p["add_bias_kv"]


def _mha_build(shapes, p):
    query, key, value = _mha_shapes(shapes)
    return modules.MultiheadAttention(
        query[1], p["num_heads"], dropout=p["dropout"], bias=p["bias"], add_bias_kv=p["add_bias_kv"],
        add_zero_attn=p["add_zero_attn"], kdim=key[1], vdim=value[1], causal=p["causal"])


# -- transformer layers ---------------------------------------------------------------------
def _transformer_params(causal: bool, what: str) -> tuple[Param, ...]:
    return (
        Param("nhead", "int", doc="Attention heads; the feature size must be divisible by it.",
              minimum=1, key=True),
        Param("dim_feedforward", "int", 2048, "Width of the feed-forward network.", 1, key=True),
        Param("dropout", "float", 0.1, _DROPOUT_DOC, 0.0, 1.0),
        Param("activation", "choice", "relu", "Activation of the feed-forward network.",
              choices=("relu", "gelu")),
        Param("layer_norm_eps", "float", 1e-5, "Added to the variance in the layer norms.", 1e-12, 1.0),
        Param("norm_first", "bool", False, "Normalize before attention and feed-forward (pre-norm) "
              "instead of after (post-norm)."),
        Param("bias", "bool", True, "Biases in the linear layers and layer norms."),
        _causal(causal, what),
    )


def _block_count(e: int, p, attentions: int, norms: int) -> int:
    """torch's count: each attention 4 E^2 (+ 4 E biases), the feed-forward 2 E F (+ F + E
    biases), each layer norm E (+ E bias)."""
    bias, f = p["bias"], p["dim_feedforward"]
    attention = 4 * e * e + 4 * e * bias
    return attentions * attention + 2 * e * f + (f + e) * bias + norms * e * (1 + bias)


def _encoder_infer(shapes, p):
    need_rank("TransformerEncoderLayer", shapes[0], {2: "[sequence, d_model]"})
    _heads("TransformerEncoderLayer", shapes[0][1], p["nhead"], "nhead")
    return shapes[0]


def _decoder_infer(shapes, p):
    target, memory = shapes
    need_rank("TransformerDecoderLayer's target", target, {2: "[sequence, d_model]"})
    need_rank("TransformerDecoderLayer's memory", memory, {2: "[sequence, d_model]"})
    _heads("TransformerDecoderLayer", target[1], p["nhead"], "nhead")
    if memory[1] != target[1]:
        raise ShapeError(f"TransformerDecoderLayer needs memory of the target's feature size; "
                         f"received target {fmt(target)} and memory {fmt(memory)}")
    return target


def _transformer_build(cls_name: str):
    def build(shapes, p):
        cls = getattr(modules, cls_name)
        return cls(shapes[0][1], p["nhead"], dim_feedforward=p["dim_feedforward"], dropout=p["dropout"],
                   activation=p["activation"], layer_norm_eps=p["layer_norm_eps"],
                   norm_first=p["norm_first"], bias=p["bias"], causal=p["causal"])
    return build


SPECS = [
    LayerSpec(
        "MultiheadAttention", "Attention",
        "Multi-head attention (torch.nn.MultiheadAttention, batch first). One input: self-"
        "attention, [T, E] -> [T, E]; three: query [T, E], key [S, kdim], value [S, vdim] -> "
        "[T, E]. Output 1 (weights): the attention weights averaged over heads, [T, S] "
        "(S + 1 with add_bias_kv, + 1 with add_zero_attn).",
        (
            Param("num_heads", "int", doc="Attention heads; the query's feature size must be "
                  "divisible by it.", minimum=1, key=True),
            Param("dropout", "float", 0.0, "Probability of zeroing attention weights while training.",
                  0.0, 1.0),
            Param("bias", "bool", True, "Biases in the input and output projections."),
            Param("add_bias_kv", "bool", False, "Append a learned bias to the keys and values."),
            Param("add_zero_attn", "bool", False, "Append a batch of zeros to the keys and values."),
            _causal(False, "the attention"),
        ),
        _mha_infer, _mha_build, _mha_count,
        min_inputs=1, max_inputs=3,
        input_names=("query", "key", "value"),
        outputs=("output", "weights"),
        samples=(
            (((8, 16),), {"num_heads": 4}),
            (((5, 12), (7, 6), (7, 10)), {"num_heads": 3, "add_bias_kv": True, "add_zero_attn": True,
                                          "causal": True, "bias": False}),
            (((6, 8),), {"num_heads": 2, "causal": True, "dropout": 0.1}),
            (((4, 6), (9, 6), (9, 6)), {"num_heads": 6, "add_bias_kv": True}),
        ),
    ),
    LayerSpec(
        "TransformerEncoderLayer", "Attention",
        "torch.nn.TransformerEncoderLayer (batch first): self-attention then a feed-forward "
        "network, each with a residual and a layer norm: [T, d_model] -> [T, d_model].",
        _transformer_params(False, "the self-attention"),
        _encoder_infer, _transformer_build("TransformerEncoderLayer"),
        lambda shapes, p: _block_count(shapes[0][1], p, 1, 2),
        samples=(
            (((10, 16),), {"nhead": 4, "dim_feedforward": 32}),
            (((7, 12),), {"nhead": 3, "dim_feedforward": 24, "activation": "gelu", "norm_first": True,
                          "causal": True}),
            (((5, 8),), {"nhead": 2, "dim_feedforward": 16, "bias": False, "dropout": 0.0,
                         "layer_norm_eps": 1e-6}),
        ),
    ),
    LayerSpec(
        "TransformerDecoderLayer", "Attention",
        "torch.nn.TransformerDecoderLayer (batch first): input 0 the target [T, d_model], input 1 "
        "the memory [S, d_model] -> [T, d_model]; causal self-attention on the target (causal "
        "true), then attention to the memory, then a feed-forward network.",
        _transformer_params(True, "the target's self-attention"),
        _decoder_infer, _transformer_build("TransformerDecoderLayer"),
        lambda shapes, p: _block_count(shapes[0][1], p, 2, 3),
        min_inputs=2, max_inputs=2,
        input_names=("target", "memory"),
        samples=(
            (((6, 16), (9, 16)), {"nhead": 4, "dim_feedforward": 32}),
            (((5, 12), (4, 12)), {"nhead": 2, "dim_feedforward": 20, "norm_first": True,
                                  "activation": "gelu", "causal": False}),
            (((3, 8), (7, 8)), {"nhead": 8, "dim_feedforward": 8, "bias": False}),
        ),
    ),
]
