"""The line of key parameters a node shows under its type on the canvas (and anywhere a
node is named in a sentence): ``6 ch · 5×5`` for a Conv2d, ``3 layers · width 64`` for a
block."""

from __future__ import annotations

from .graph import Node
from .layers import get_spec
from .layers.helpers import fmt
from .layers.spec import BLOCK_CATEGORY, LayerSpec


def inner_layers(spec: LayerSpec | None) -> int:
    """How many layers a block's definition holds (its Inputs aside); 0 for a layer type."""
    block = getattr(spec, "block", None)
    if block is None:
        return 0
    return sum(1 for n in block.graph.nodes.values() if n.type != "Input")


def _block_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return fmt(v) if isinstance(v, list) else str(v)


def key_summary(node: Node, params: dict, spec: LayerSpec | None = None) -> str:
    """A short line of the node's key parameters: ``6 ch · 5×5`` for a Conv2d; for a block
    node, the layers inside and each parameter by name, ``3 layers · width 64 · stride 2``.
    ``spec``: the node's declaration (a block's comes from its graph), else the catalogue's."""
    spec = spec if spec is not None else get_spec(node.type)
    if spec is None:
        return ""
    if spec.category == BLOCK_CATEGORY:
        n = inner_layers(spec)
        parts = [f"{n} layer" + ("" if n == 1 else "s")]
        parts += [f"{p.name} {_block_value(params[p.name])}" for p in spec.params if p.name in params]
        return " · ".join(parts)
    parts = []
    for p in spec.params:
        if not p.key or p.name not in params:
            continue
        v = params[p.name]
        if p.kind in ("int_or_pair",) and v is not None:
            v = "×".join(map(str, v)) if isinstance(v, list) else f"{v}×{v}" if p.name == "kernel_size" else v
        elif isinstance(v, list):
            v = fmt(v)
        label = {"out_channels": "{} ch", "out_features": "{} units", "hidden_size": "{} hidden",
                 "p": "p = {}", "num_embeddings": "{} words", "embedding_dim": "dim {}",
                 "negative_slope": "slope {}", "alpha": "α {}", "dim": "dim {}", "scale_factor": "×{}",
                 "output_size": "out {}", "padding": "pad {}", "value": "value {}", "num_heads": "{} heads",
                 "nhead": "{} heads", "dim_feedforward": "ff {}"}.get(p.name, "{}")
        parts.append(label.format(v))
    return " · ".join(parts)
