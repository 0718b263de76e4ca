"""Node ids for imported ONNX nodes: from their names (``conv1/Conv`` -> ``conv1``) or
the torch module scope the dynamo exporter records in each node's metadata."""

from __future__ import annotations

import ast
import re


def outer_names(graph) -> list[str]:
    """Values a subgraph (an If / Loop body) reads from the graph around it."""
    inner = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    names = []
    for node in graph.node:
        inner.update(node.output)
        names.extend(i for i in node.input if i and i not in inner)
    return names


def torch_scope(node) -> str | None:
    """The torch module a node came from, as torch's dynamo exporter records it in the
    node's metadata ("" for a function called in ``forward``); None when not recorded."""
    props = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" not in props:
        return None
    try:
        scopes = ast.literal_eval(props["pkg.torch.onnx.name_scopes"])
        classes = ast.literal_eval(props.get("pkg.torch.onnx.class_hierarchy", "[]"))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(scopes, list) or not isinstance(classes, list):
        return None
    modules = [str(s) for s in scopes[1:max(len(classes) - 1, 1)] if s]
    qualified = ""
    for part in modules:
        qualified = part if not qualified or part.startswith(qualified + ".") else f"{qualified}.{part}"
    return qualified


def sanitize(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_")
    s = re.sub(r"__+", "_", s)
    if s and s[0].isdigit():
        s = "n" + s
    return s


def base_id(label: str, kind: str) -> str:
    """``conv1/Conv`` -> ``conv1``; ``/layer1/layer1.0/conv1/Conv`` -> ``layer1_0_conv1``;
    a name without a scope that only names an operator (``/Div``, ``Relu_3``, unnamed) ->
    the layer type (``gelu``, ``relu``)."""
    parts = [p for p in label.split("/") if p]
    if label.startswith("<unnamed ") or not parts:
        return kind.lower()
    if len(parts) >= 2:
        qualified = parts[0]
        for p in parts[1:-1]:
            qualified = p if p.startswith(qualified + ".") else f"{qualified}.{p}"
        return sanitize(qualified) or kind.lower()
    base = sanitize(parts[0])
    if not base or re.fullmatch(r"[A-Z][A-Za-z]*(_\d+)?", base):
        return kind.lower()
    return base
