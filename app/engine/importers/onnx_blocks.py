"""Repeated structure of an imported ONNX model becomes blocks, as a PyTorch import's does:
the imported graph is handed to ``torch_blocks.Assembler`` as its flat nodes, each with the
module instances torch's dynamo exporter recorded it was called inside
(``pkg.torch.onnx.name_scopes`` / ``class_hierarchy``). Files without that record (other
exporters, TorchScript's) keep their flat graph.
"""

from __future__ import annotations

import numpy as np
import torch

from ..graph import Graph
from .onnx_checks import string_list
from .torch_blocks import Assembler
from .torch_map import Flat


def module_chain(node) -> tuple[list[tuple[str, str]], str] | None:
    """The module instances (qualified path, class name) ``node`` was called inside,
    outermost first, and the name of the call (the leaf module's path as ``module:path``,
    else the function's name); None when the exporter did not record them."""
    props = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" not in props:
        return None
    scopes = string_list(props["pkg.torch.onnx.name_scopes"])
    classes = string_list(props.get("pkg.torch.onnx.class_hierarchy", "[]"))
    if not scopes or classes is None or len(scopes) != len(classes):
        return None
    chain = [(str(p), str(c)) for p, c in zip(scopes[1:-1], classes[1:-1]) if p]
    if chain and chain[-1][1].startswith(_LAYERS):  # the leaf layer itself: the call, not a scope
        return _theirs(chain[:-1]), "module:" + chain[-1][0]
    return _theirs(chain), str(scopes[-1])


# torch's layers and NetCanvas' own modules (its exports carry their project: imported
# without it, they stay as flat as exported)
_LAYERS = ("torch.nn.", "app.engine.")


def _theirs(chain: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(p, c) for p, c in chain if not c.startswith("app.engine.")]


def with_blocks(graph: Graph, state: dict[str, dict[str, np.ndarray]], chains: dict[str, tuple],
                output: str) -> tuple[Graph, dict[str, torch.Tensor]] | None:
    """``graph`` (topologically ordered, one Input) with its repeated module instances as
    blocks, and its weights named as the compiled module names them; None when no module
    class is called twice. ``chains`` maps node ids to ``module_chain``'s result."""
    classes: dict[str, type] = {}

    def cls(name: str) -> type:
        if name not in classes:
            module, _, short = name.rpartition(".")
            classes[name] = type(short or name, (), {"__module__": module or "onnx"})
        return classes[name]

    flats = []
    paths: dict[str, set[str]] = {}
    for node in graph.nodes.values():
        scope, local = chains.get(node.id) or ([], node.id)
        for path, name in scope:
            if not name.startswith("torch."):
                paths.setdefault(name, set()).add(path)
        edges = sorted(graph.incoming(node.id), key=lambda e: e.target_port)
        tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.get(node.id, {}).items()}
        flats.append(Flat(node.id, node.type, dict(node.params), [(e.source, e.source_port) for e in edges],
                          tensors, [(p, cls(c)) for p, c in scope], local if node.type != "Input" else "input"))
    if not any(len(p) >= 2 for p in paths.values()):
        return None
    return Assembler(flats, (output, 0)).run()
