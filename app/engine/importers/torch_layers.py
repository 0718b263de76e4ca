"""Which catalogue type a ``torch.nn`` leaf module is, with its parameters read from the
module's attributes (used by ``torch_map``).

A module of a ``torch.nn`` class named like a catalogue type maps to that type, its
parameters taken from the attributes of the same names (tuples as lists, a pair of equal
values as one int, a tensor-or-None attribute such as ``bias`` as whether it is there),
written only where they differ from the declared default. The few classes whose
attributes are named otherwise have their own reader below. Whether the mapping is exact
is not assumed: the imported graph is run against the module afterwards.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..layers import get_spec
from ..params import REQUIRED

# classes that are never catalogue nodes: their values pass through unchanged
PASS_THROUGH = (nn.Identity,)

# torch.nn classes whose parameters are not attributes of the same names
_READERS: dict[str, Callable[[nn.Module], dict[str, Any]]] = {}


class NotMappable(Exception):
    """This module (or call) has no catalogue type; the message says why."""


def _reader(name: str):
    def register(fn):
        _READERS[name] = fn
        return fn
    return register


def is_layer(module: nn.Module) -> bool:
    """Whether ``module`` is of a torch.nn class named like a catalogue type (``module_type``
    may still refuse its settings)."""
    cls = type(module)
    return cls.__module__.startswith("torch.nn") and cls.__name__ != "Input" and get_spec(cls.__name__) is not None


def plain(value: Any) -> Any:
    """``value`` as a project file writes it: tuples as lists, ``(3, 3)`` as 3, torch
    sizes as lists of ints."""
    if isinstance(value, (tuple, list, torch.Size)):
        items = [plain(v) for v in value]
        if len(items) > 1 and all(v == items[0] for v in items) and all(isinstance(v, int) for v in items):
            return items[0]
        return items
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value
    return value


def module_type(module: nn.Module) -> tuple[str, dict[str, Any]]:
    """The catalogue type of leaf ``module`` and its parameters (those that differ from the
    defaults). Raises ``NotMappable``."""
    cls = type(module)
    name = cls.__name__
    if not cls.__module__.startswith("torch.nn"):
        raise NotMappable(f"{cls.__module__}.{name} is not a torch.nn layer NetCanvas knows")
    spec = get_spec(name)
    if spec is None or name in ("Input",):
        raise NotMappable(f"torch.nn.{name} has no NetCanvas layer type")
    if getattr(module, "return_indices", False):
        raise NotMappable(f"torch.nn.{name} with return_indices=True has no NetCanvas layer type")
    if getattr(module, "batch_first", True) is False:
        raise NotMappable(f"torch.nn.{name} with batch_first=False (NetCanvas sequences are batch first)")
    found = _READERS[name](module) if name in _READERS else _attributes(module, spec)
    params = {}
    for p in spec.params:
        if p.name not in found:
            continue
        value = found[p.name]
        if p.default is not REQUIRED and value == p.default and type(value) is type(p.default):
            continue
        params[p.name] = value
    return name, params


def _attributes(module: nn.Module, spec) -> dict[str, Any]:
    found = {}
    for p in spec.params:
        if not hasattr(module, p.name):
            continue
        value = getattr(module, p.name)
        if p.kind == "bool" and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # ``bias``: a parameter or None
        elif isinstance(value, torch.Tensor):
            continue
        found[p.name] = plain(value)
    return found


@_reader("LayerNorm")
def _layer_norm(m: nn.LayerNorm) -> dict[str, Any]:
    return {"eps": m.eps, "dims": len(m.normalized_shape), "elementwise_affine": m.elementwise_affine,
            "bias": m.bias is not None if m.elementwise_affine else True}


@_reader("MultiheadAttention")
def _attention(m: nn.MultiheadAttention) -> dict[str, Any]:
    if not m._qkv_same_embed_dim:
        raise NotMappable("torch.nn.MultiheadAttention with kdim/vdim other than embed_dim")
    return {"num_heads": m.num_heads, "dropout": m.dropout, "bias": m.in_proj_bias is not None,
            "add_bias_kv": m.bias_k is not None, "add_zero_attn": m.add_zero_attn}


@_reader("TransformerEncoderLayer")
def _encoder(m: nn.TransformerEncoderLayer) -> dict[str, Any]:
    return _transformer(m)


@_reader("TransformerDecoderLayer")
def _decoder(m: nn.TransformerDecoderLayer) -> dict[str, Any]:
    return _transformer(m)


def _transformer(m) -> dict[str, Any]:
    if not m.self_attn.batch_first:
        raise NotMappable(f"torch.nn.{type(m).__name__} with batch_first=False")
    act = m.activation
    if act is torch.nn.functional.relu or isinstance(act, nn.ReLU):
        activation = "relu"
    elif act is torch.nn.functional.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        activation = "gelu"
    else:
        raise NotMappable(f"torch.nn.{type(m).__name__} with activation {act!r} (NetCanvas: relu or gelu)")
    return {"nhead": m.self_attn.num_heads, "dim_feedforward": m.linear1.out_features,
            "dropout": m.dropout.p, "activation": activation, "layer_norm_eps": m.norm1.eps,
            "norm_first": m.norm_first, "bias": m.linear1.bias is not None,
            "causal": False}  # torch's layers attend to every position unless given a mask
