"""Fuzz family "project": project files, checked as ``netcanvas check`` would.

``project_files()`` draws a valid project (a chain of catalogue layers with random valid
parameters, sometimes a merge, a block, ``repeat`` / ``trainable``, dataset and training
settings; or a bundled example), then mutates it: values of the wrong type, huge or
negative numbers, missing and extra keys, unicode, deep nesting, huge arrays (all on the
decoded document), then sometimes the bytes themselves (truncated, flipped, not UTF-8).

``check_project(data)`` writes the bytes to a file, loads and analyzes it, renders what
``check`` prints (table and JSON, to a strict UTF-8 stream), then runs
``cli.main(["check", FILE])`` on it.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from app.engine import cli, config
from app.engine.examples import example_path, list_examples
from app.engine.layers import CATALOGUE
from app.engine.project import FORMAT, VERSION

from .harness import Clean, Sandbox, strict_stream
from .values import ODD_OR_ANY_TEXT, RawTexts, dumps_with_raw, params_for, valid_value, weird_values

LAYERS = [t for t in CATALOGUE if t != "Input"]
MERGES = [t for t, s in CATALOGUE.items() if s.max_inputs is None or s.max_inputs > 1]
SINGLE = [t for t in LAYERS if t not in MERGES and CATALOGUE[t].max_inputs == 1]


@lru_cache(maxsize=None)
def examples() -> dict[str, Any]:
    return {e.name: json.loads(example_path(e.name).read_text(encoding="utf-8")) for e in list_examples()}


@st.composite
def valid_graph(draw) -> dict[str, Any]:
    input_param = CATALOGUE["Input"].param_index["shape"]
    nodes = [{"id": "input", "type": "Input", "params": {"shape": draw(valid_value(input_param))}}]
    edges: list[dict[str, Any]] = []
    n = draw(st.integers(0, 8))
    for i in range(n):
        merge = len(nodes) >= 2 and MERGES and draw(st.integers(0, 9)) == 0
        t = draw(st.sampled_from(MERGES if merge else SINGLE))
        node: dict[str, Any] = {"id": f"n{i}", "type": t, "params": draw(params_for(CATALOGUE[t].params))}
        if draw(st.integers(0, 9)) == 0:
            node["position"] = [draw(st.integers(-500, 500)), draw(st.integers(-500, 500))]
        if not merge and draw(st.integers(0, 19)) == 0:
            node["repeat"] = draw(st.integers(1, 4))
        if draw(st.integers(0, 19)) == 0:
            node["trainable"] = draw(st.booleans())
        sources = [nodes[-1]["id"]]
        if merge:
            sources.append(nodes[draw(st.integers(0, len(nodes) - 2))]["id"])
        for port, s in enumerate(sources):
            edge = {"source": s, "target": node["id"]}
            if port or draw(st.booleans()):
                edge["target_port"] = port
            edges.append(edge)
        nodes.append(node)
    return {"nodes": nodes, "edges": edges}


@st.composite
def block_project(draw) -> dict[str, Any]:
    """A project using a block with one parameter, as PROJECT_FORMAT.md describes."""
    width = draw(st.integers(1, 16))
    blocks = {"Blk": {
        "params": {"w": width},
        "graph": {"nodes": [{"id": "x", "type": "Input"},
                            {"id": "fc", "type": "Linear", "params": {"out_features": "$w"}},
                            {"id": "act", "type": draw(st.sampled_from(["ReLU", "Tanh", "Identity"]))}],
                  "edges": [{"source": "x", "target": "fc"}, {"source": "fc", "target": "act"}]}}}
    nodes = [{"id": "input", "type": "Input", "params": {"shape": [draw(st.integers(1, 16))]}},
             {"id": "b", "type": "Blk", "params": {"w": draw(st.integers(1, 16))}}]
    if draw(st.booleans()):
        nodes[1]["repeat"] = draw(st.integers(1, 3))
    return {"blocks": blocks, "graph": {"nodes": nodes, "edges": [{"source": "input", "target": "b"}]}}


@st.composite
def valid_project(draw) -> dict[str, Any]:
    kind = draw(st.sampled_from(["random", "random", "random", "example", "block"]))
    if kind == "example":
        doc = copy.deepcopy(examples()[draw(st.sampled_from(sorted(examples())))])
    else:
        body = draw(block_project()) if kind == "block" else {"graph": draw(valid_graph())}
        name = draw(st.one_of(st.text(max_size=30), ODD_OR_ANY_TEXT))
        doc = {"format": FORMAT, "version": VERSION, "name": name, **body}
        if draw(st.booleans()):
            doc["dataset"] = draw(params_for(config.DATASET_FIELDS, keep=0.3))
        if draw(st.booleans()):
            doc["training"] = draw(params_for(config.TRAINING_FIELDS, keep=0.3))
        if draw(st.integers(0, 9)) == 0:
            doc["editor"] = {"zoom": draw(st.floats(0.1, 4)), "groups": []}
    return doc


# ----------------------------------------------------------------------------------- mutations
def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in the document: dict keys and list indices, depth first."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


@st.composite
def mutate_document(draw, doc: Any, raws: RawTexts) -> Any:
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4]))):
        paths = _paths(doc)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add_key", "duplicate", "wrap",
                                   "text", "text", "rekey"]))
        if not path:  # the whole document
            if op == "replace":
                doc = draw(weird_values(raws))
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "text":  # odd text where text is: names, ids, types, choices (messages quote them)
            texts = [q for q in paths if q and isinstance(_get(doc, q), str)]
            if texts:
                q = texts[draw(st.integers(0, len(texts) - 1))]
                _get(doc, q[:-1])[q[-1]] = draw(ODD_OR_ANY_TEXT)
        elif op == "rekey" and isinstance(parent, dict):
            parent[draw(ODD_OR_ANY_TEXT)] = parent.pop(key)
        elif op == "replace":
            parent[key] = draw(weird_values(raws))
        elif op == "delete":
            del parent[key]
        elif op == "add_key":
            target = parent[key] if isinstance(parent[key], dict) else parent
            if isinstance(target, dict):
                target[draw(st.sampled_from(["extra", "id", "type", "params", "shape", "inplace",
                                             "batch_first", "source_port", "\udcff", ""]))] = draw(weird_values(raws))
            else:
                target.append(draw(weird_values(raws)))
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    return doc


@st.composite
def mutate_bytes(draw, data: bytes) -> bytes:
    op = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "insert", "bom", "latin1", "empty",
                               "surrogate_bytes"]))
    if op == "truncate" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if op == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    if op == "insert":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(min_size=1, max_size=8)) + data[i:]
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    if op == "latin1":
        return data.decode("utf-8", "replace").encode("latin-1", "replace")
    if op == "empty":
        return b""
    if op == "surrogate_bytes":
        return data.replace(b'"name": "', b'"name": "\xed\xb3\xbf', 1)
    return data


@st.composite
def project_files(draw) -> bytes:
    """The bytes of a project file: valid, or a mutation of a valid one."""
    raws = RawTexts()
    doc = draw(valid_project())
    if draw(st.integers(0, 3)):  # three in four are mutated
        doc = draw(mutate_document(doc, raws))
    ascii_only = draw(st.sampled_from([True, True, True, False]))  # escapes keep lone surrogates valid JSON
    text = dumps_with_raw(doc, raws, ensure_ascii=ascii_only, indent=draw(st.sampled_from([None, 1])))
    data = text.encode("utf-8", "surrogatepass")
    return draw(mutate_bytes(data))


def describe(data: bytes) -> str:
    return repr(data[:400]) + (f" ... ({len(data):,} bytes)" if len(data) > 400 else "")


_SANDBOX: Sandbox | None = None


def _file(data: bytes) -> Path:
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox()
    path = _SANDBOX.root / "fuzz.netcanvas.json"
    path.write_bytes(data)
    return path


def check_project(data: bytes, use_cli: bool = True) -> str:
    """Load, analyze and report ``data`` as ``check`` does; "ok" when the graph has no errors."""
    from app.engine.inference import analyze
    from app.engine.project import load_project

    path = _file(data)
    codes = set()
    if use_cli:  # first, so that an escape names the place in cli.py
        for argv in (["check", str(path)], ["check", str(path), "--json"]):
            codes.add(cli.main(argv, strict_stream(), strict_stream()))
        if not codes <= {0, 1, 2} or len(codes) > 1:
            raise AssertionError(f"check exited with {sorted(codes)}; expected one of 0, 1, 2, the same "
                                 "with and without --json")
    project = load_project(path)  # ProjectError: clean
    a = analyze(project.graph)
    if codes and codes != {0 if a.ok else 1}:
        raise AssertionError(f"check exited with {codes.pop()}, but analyze says ok={a.ok}")
    out = strict_stream()
    out.write(cli.summary_table(project, a))
    json.dump(cli.check_report(project, a), out)
    if not a.ok:
        raise Clean("the graph has errors")
    return "ok"


def warmup() -> None:
    check_project(json.dumps(examples()["lenet5"]).encode("utf-8"))
