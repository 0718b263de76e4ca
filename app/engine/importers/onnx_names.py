"""Node ids for imported ONNX nodes: from their names (``conv1/Conv`` -> ``conv1``) or
the torch module scope the dynamo exporter records in each node's metadata."""

from __future__ import annotations

import re

from .onnx_checks import string_list


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
    # a bounded parse: 4 MB of brackets must not cost gigabytes, as ast.literal_eval does
    scopes = string_list(props["pkg.torch.onnx.name_scopes"])
    classes = string_list(props.get("pkg.torch.onnx.class_hierarchy", "[]"))
    if scopes is None or classes is None:
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
