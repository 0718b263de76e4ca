"""What changed between two runs, written out: "lr 0.01 -> 0.05", "conv1 out_channels 6 -> 8",
"added dropout1 (Dropout)", "removed fc3", "dataset samples 200 -> 400". Works on two
``project_to_dict`` dicts (``RunRecord.project``); node positions, the project's name and
the editor's state are not changes of the run.
"""

from __future__ import annotations

import json
from typing import Any


def changes(before: dict | None, after: dict) -> list[str]:
    """The differences from ``before`` to ``after`` (two project dicts) as human lines, in
    this order: training settings, dataset settings, block definitions, nodes (added,
    removed, changed), connections between nodes both have. [] when they train the same;
    [] too when ``before`` is None (nothing to compare with)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    lines = _settings(_section(before, "training"), _section(after, "training"), "")
    data_a, data_b = _section(before, "dataset"), _section(after, "dataset")
    if data_a.get("name") != data_b.get("name"):
        lines.append(f"dataset {_value(data_a.get('name'))} -> {_value(data_b.get('name'))}")
    lines += _settings({k: v for k, v in data_a.items() if k != "name"},
                       {k: v for k, v in data_b.items() if k != "name"}, "dataset ")
    lines += _blocks(_section(before, "blocks"), _section(after, "blocks"))
    lines += _graph(_section(before, "graph"), _section(after, "graph"))
    return lines


def describe_changes(before: dict | None, after: dict) -> str:
    """``changes`` joined with "; ", or "same settings" when there are none."""
    return "; ".join(changes(before, after)) or "same settings"


def _section(data: dict, key: str) -> dict:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _value(v: Any) -> str:
    """A setting as the user writes it: 0.05, SGD, none, [2, 2]."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(", ", ": "))


def _settings(a: dict, b: dict, prefix: str) -> list[str]:
    lines = []
    for key in list(a) + [k for k in b if k not in a]:
        old, new = a.get(key), b.get(key)
        if old != new or isinstance(old, bool) != isinstance(new, bool):
            lines.append(f"{prefix}{key} {_value(old)} -> {_value(new)}")
    return lines


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool)
            and not isinstance(b, bool) and a == b)


def _nodes(graph: dict) -> dict[str, dict]:
    nodes = graph.get("nodes")
    found = {}
    for n in nodes if isinstance(nodes, list) else []:
        if isinstance(n, dict) and isinstance(n.get("id"), str):
            found[n["id"]] = n
    return found


def _edges(graph: dict) -> set[tuple]:
    edges = graph.get("edges")
    found = set()
    for e in edges if isinstance(edges, list) else []:
        if isinstance(e, dict):
            found.add((e.get("source"), e.get("source_port"), e.get("target"), e.get("target_port")))
    return found


def _graph(a: dict, b: dict, inside: str = "") -> list[str]:
    nodes_a, nodes_b = _nodes(a), _nodes(b)
    lines = [f"added {inside}{i} ({n.get('type')})" for i, n in nodes_b.items() if i not in nodes_a]
    lines += [f"removed {inside}{i}" for i in nodes_a if i not in nodes_b]
    for node_id, old in nodes_a.items():
        new = nodes_b.get(node_id)
        if new is None:
            continue
        name = inside + node_id
        if old.get("type") != new.get("type"):
            lines.append(f"{name} {old.get('type')} -> {new.get('type')}")
            continue
        params_a = old.get("params") if isinstance(old.get("params"), dict) else {}
        params_b = new.get("params") if isinstance(new.get("params"), dict) else {}
        for key in list(params_a) + [k for k in params_b if k not in params_a]:
            if key not in params_b:
                lines.append(f"{name} {key} {_value(params_a[key])} -> default")
            elif key not in params_a:
                lines.append(f"{name} {key} default -> {_value(params_b[key])}")
            elif params_a[key] != params_b[key] and not _same_number(params_a[key], params_b[key]):
                lines.append(f"{name} {key} {_value(params_a[key])} -> {_value(params_b[key])}")
        if old.get("repeat", 1) != new.get("repeat", 1):
            lines.append(f"{name} repeat {_value(old.get('repeat', 1))} -> {_value(new.get('repeat', 1))}")
        if old.get("trainable", True) != new.get("trainable", True):
            lines.append(f"{name} {'frozen' if new.get('trainable', True) is False else 'trainable again'}")
    both = set(nodes_a) & set(nodes_b)
    edges_a, edges_b = _edges(a), _edges(b)

    def edge(e: tuple) -> str:
        source, source_port, target, target_port = e
        return (f"{inside}{source}{'.' + source_port if source_port else ''} -> "
                f"{inside}{target}{'.' + target_port if target_port else ''}")

    lines += [f"connected {edge(e)}" for e in sorted(edges_b - edges_a, key=str) if e[0] in both and e[2] in both]
    lines += [f"disconnected {edge(e)}" for e in sorted(edges_a - edges_b, key=str) if e[0] in both and e[2] in both]
    return lines


def _blocks(a: dict, b: dict) -> list[str]:
    lines = [f"added block {name}" for name in b if name not in a]
    lines += [f"removed block {name}" for name in a if name not in b]
    for name, old in a.items():
        new = b.get(name)
        if not isinstance(new, dict) or not isinstance(old, dict):
            continue
        if old.get("params") != new.get("params"):
            lines.append(f"block {name} parameters {_value(old.get('params'))} -> {_value(new.get('params'))}")
        lines += _graph(_section(old, "graph"), _section(new, "graph"), f"{name}/")
    return lines
