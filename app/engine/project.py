"""Project files (format version 2, ../shared/PROJECT_FORMAT.md): load, check, save.

Loading parses JSON into typed records, checks every field, and only then builds the
model; anything wrong raises ``ProjectError`` naming the file and the field. Nothing in a
file is executed. Saving is atomic (``files.atomic_write``).
"""

from __future__ import annotations

import json
import keyword
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import config
from .errors import ProjectError
from .files import atomic_write, read_bytes
from .blocks import reference
from .graph import ID_PATTERN, Block, Blocks, Edge, Graph, Node, id_problem
from .inference import MAX_REPEAT, resolve_params
from .layers import CATALOGUE, get_spec
from .params import INT_LIMIT, is_int, is_number, show

FORMAT = "netcanvas"
VERSION = 2
SUFFIX = ".netcanvas.json"
TOP_KEYS = ("format", "version", "name", "blocks", "graph", "dataset", "training", "editor")
BLOCK_KEYS = ("params", "graph")

NODE_KEYS = ("id", "type", "params", "position", "repeat", "trainable")
EDGE_KEYS = ("source", "target", "target_port", "source_port")
# what format version 2 added to nodes and edges (new types and parameters: ``LayerSpec.since``
# and ``param_since``); a file that says version 1 may not use them
V2_KEYS = frozenset(("repeat", "trainable", "source_port"))

# keys NetCanvas adds to the format (documented in docs/FORMAT_EXTENSIONS.md): written
# only when they differ from their default, so files that don't use them stay plain
EXTENSIONS = {"target": "labels"}

# MIGRATIONS[n] turns a version-n document into a version-(n+1) one (the loop in
# ``_migrate`` then sets its version). Every version-1 file is a valid version-2 file, so the
# step changes nothing; what version 2 added is refused in a version-1 file while parsing.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: lambda data: data}


@dataclass
class Project:
    """A loaded project: the graph plus its (complete) dataset and training settings."""

    graph: Graph = field(default_factory=Graph)
    name: str = "Untitled"
    dataset: dict[str, Any] = field(default_factory=lambda: config.defaults(config.DATASET_FIELDS))
    training: dict[str, Any] = field(default_factory=lambda: config.defaults(config.TRAINING_FIELDS))
    editor: dict[str, Any] | None = None
    path: Path | None = None

    @property
    def weights_path(self) -> Path | None:
        """Where this project's trained weights live: beside the file, ``.safetensors``."""
        return weights_path_for(self.path) if self.path else None

    def resolve(self, relative: str) -> Path:
        """A path written in the file, taken relative to the file's folder."""
        p = Path(relative).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p


def stand_in_path(project_dir: str | Path) -> Path:
    """A path for a project that was sent to a training process without its file: a file
    in ``project_dir`` (where it lives), so that its relative dataset paths resolve there."""
    return Path(project_dir) / ("project" + SUFFIX)


def weights_path_for(project_path: str | Path) -> Path:
    p = Path(project_path)
    name = p.name
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else p.stem
    return p.with_name(stem + ".safetensors")


# -- loading ------------------------------------------------------------------------------
def load_project(path: str | Path) -> Project:
    """Read and check a project file. Raises ``ProjectError`` for anything wrong with it."""
    p = Path(path)
    project = parse_project(read_bytes(p, ProjectError, "a project file"), source=str(p))
    project.path = p
    return project


def parse_project(raw: bytes | str | Any, source: str = "<project>") -> Project:
    """Parse a project from JSON text (or an already decoded object)."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    data = decode_json(raw, source) if isinstance(raw, (bytes, str)) else raw
    written = _check_version(data, source)
    data = _migrate(data, source)
    return _Parser(source, written).project(data)


def decode_json(raw: bytes | str, source: str) -> Any:
    """JSON text as a project file must be (UTF-8, no duplicate keys, finite numbers)
    decoded; raises ``ProjectError`` naming ``source`` and the line."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProjectError(f"is not UTF-8 text (byte {e.start})", source) from None
    if raw.startswith("\ufeff"):
        raw = raw[1:]
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                          parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise ProjectError(f"line {e.lineno}, column {e.colno}: invalid JSON: {e.msg}", source) from None
    except ValueError as e:  # _BadJSON, or an integer longer than Python converts
        raise ProjectError(f"invalid JSON: {e}", source) from None
    except RecursionError:
        raise ProjectError("invalid JSON: nested too deeply", source) from None


class _BadJSON(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _BadJSON(f"the key {k!r} appears twice in one object")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise _BadJSON(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadJSON(f"the number {text} is too large")
    return value


def _finite(value: Any) -> bool:
    """A number that fits a float and is finite (huge integers do not)."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def _check_version(data: Any, source: str) -> int:
    """The format version the file says it is (refusing what no version can be)."""
    if not isinstance(data, dict):
        raise ProjectError(f"expected a JSON object at the top, received {_kind(data)}", source)
    if data.get("format") != FORMAT:
        raise ProjectError(f"format: expected \"netcanvas\", received {show(data.get('format'))}", source)
    version = data.get("version")
    if not is_int(version):
        raise ProjectError(f"version: expected an integer, received {show(version)}", source)
    if version > VERSION:
        raise ProjectError(
            f"version: the file is format version {show(version)}, but this NetCanvas reads "
            f"versions up to {VERSION}; open it with a newer NetCanvas", source)
    return version


def _migrate(data: Any, source: str) -> Any:
    version = _check_version(data, source)
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectError(f"version: no migration from format version {version} to {VERSION}", source)
        data = step(dict(data))
        version += 1
        data["version"] = version
    return data


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


class _Parser:
    def __init__(self, source: str, version: int = VERSION):
        self.source = source
        self.version = version  # the version the file says it is (before migrating)
        self.blocks = Blocks()

    def since(self, introduced: int, where: str, what: str) -> None:
        """Refuse ``what`` in a file of a version older than the one that introduced it."""
        if introduced > max(self.version, 1):  # (a version-0 file migrated: version 1's own)
            self.fail(where, f"{what} is new in format version {introduced}; this file says "
                             f"version {self.version}")

    def fail(self, where: str, message: str) -> None:
        raise ProjectError(message, f"{self.source}: {where}")

    def expect(self, value: Any, kind: type, where: str, what: str) -> Any:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(where, f"expected {what}, received {show(value)}")
        return value

    def project(self, data: dict[str, Any]) -> Project:
        for key in data:
            if key not in TOP_KEYS:
                self.fail(key, "unknown key at the top level; allowed: " + ", ".join(TOP_KEYS))
        name = data.get("name", "Untitled")
        self.expect(name, str, "name", "a string")
        if "blocks" in data:
            self.since(2, "blocks", "blocks (reusable sub-networks)")
            self.block_definitions(data["blocks"])
        if "graph" not in data:
            self.fail("graph", "missing; a project needs a graph with nodes and edges")
        graph = self.graph(data["graph"], "graph")
        sections = {}
        for section, fields in (("dataset", config.DATASET_FIELDS), ("training", config.TRAINING_FIELDS)):
            settings, problems = config.check_section(section, data.get(section, {}), fields)
            if problems:
                self.fail(*problems[0])
            sections[section] = settings
        editor = data.get("editor")
        if "editor" in data:
            self.expect(editor, dict, "editor", "an object")
            self.json_only(editor, "editor")
        return Project(graph, name, sections["dataset"], sections["training"], editor)

    def json_only(self, value: Any, where: str) -> None:
        """Carried data must save again: JSON values only, numbers finite."""
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as e:
            self.fail(where, f"expected JSON values only (finite numbers); {e}")

    def block_definitions(self, data: Any) -> None:
        """Read ``blocks`` into ``self.blocks``: every name first (blocks may use blocks
        defined after them), then each definition."""
        self.expect(data, dict, "blocks", "an object naming each block")
        for name, raw in data.items():
            where = f"blocks.{name}"
            if not ID_PATTERN.match(name) or keyword.iskeyword(name):
                self.fail(where, f"a block name must be a Python identifier (letters, digits and _, not "
                                 f"starting with a digit, not a keyword); received {name!r}")
            if get_spec(name) is not None:
                self.fail(where, f"{name} is a layer type of the catalogue; a block needs a name of its own")
            self.expect(raw, dict, where, "an object with params and graph")
            for key in raw:
                if key not in BLOCK_KEYS:
                    self.fail(f"{where}.{key}", "unknown key; a block takes: " + ", ".join(BLOCK_KEYS))
            params = self.expect(raw.get("params", {}), dict, f"{where}.params",
                                 "an object of parameter names and their defaults")
            for param, value in params.items():
                if not ID_PATTERN.match(param):
                    self.fail(f"{where}.params", f"a block parameter's name must be an identifier; "
                                                 f"received {param!r}")
                self.json_only(value, f"{where}.params.{param}")
            self.blocks.add(Block(name, dict(params), Graph(self.blocks)))
        for name, raw in data.items():
            where = f"blocks.{name}.graph"
            if "graph" not in raw:
                self.fail(where, "missing; a block needs a graph with nodes and edges")
            block = self.blocks[name]
            parsed = self.graph(raw["graph"], where, block)
            block.graph.nodes.update(parsed.nodes)
            block.graph.edges.extend(parsed.edges)
            self.block_shape(block, where)
        self.blocks.touch()  # (block types were looked up while the definitions were being read)
        cycle = self.blocks.cycle()
        if cycle:
            self.fail(f"blocks.{cycle[0]}", "a block cannot use itself, directly or not: " + " -> ".join(cycle))

    def block_shape(self, block: Block, where: str) -> None:
        """At least one Input and exactly one sink (the block's output)."""
        if not block.inputs():
            self.fail(f"{where}.nodes", "a block needs at least one Input node (its k-th Input takes "
                                        "input slot k of the block's nodes)")
        fed = {e.source for e in block.graph.edges}
        sinks = [n for n in block.graph.nodes if n not in fed]
        if len(sinks) != 1:
            self.fail(f"{where}.nodes", f"a block has exactly one output (a node that feeds nothing); "
                                        f"this one has {len(sinks)}: " + ", ".join(sinks))

    def graph(self, data: Any, where: str, block: Block | None = None) -> Graph:
        """A graph, the project's (at ``where`` "graph") or ``block``'s."""
        self.expect(data, dict, where, "an object with nodes and edges")
        for key in data:
            if key not in ("nodes", "edges"):
                self.fail(f"{where}.{key}", "unknown key; graph takes: nodes, edges")
        nodes = self.expect(data.get("nodes"), list, f"{where}.nodes", "a list of nodes")
        edges = self.expect(data.get("edges", []), list, f"{where}.edges", "a list of edges")
        g = Graph(self.blocks)
        for i, raw in enumerate(nodes):
            node = self.node(raw, f"{where}.nodes[{i}]", block)
            if node.id in g.nodes:
                self.fail(f"{where}.nodes[{i}].id", f"the id {node.id!r} is used by two nodes; ids must be unique")
            g.nodes[node.id] = node
        for i, raw in enumerate(edges):
            g.edges.append(self.edge(raw, f"{where}.edges[{i}]", g))
        return g

    def node(self, raw: Any, where: str, block: Block | None = None) -> Node:
        self.expect(raw, dict, where, "an object with id, type and params")
        for key in raw:
            if key not in NODE_KEYS:
                self.fail(f"{where}.{key}", "unknown key; a node takes: " + ", ".join(NODE_KEYS))
        if "id" not in raw:
            self.fail(f"{where}.id", "missing")
        problem = id_problem(raw["id"])
        if problem:
            self.fail(f"{where}.id", problem)
        node_id = raw["id"]
        where = f"{where} ({node_id})"
        type_name = raw.get("type")
        spec = None
        if isinstance(type_name, str):
            spec = self.blocks.spec(type_name) if type_name in self.blocks else get_spec(type_name)
        if spec is None:
            blocks = f"; the file's blocks: {', '.join(self.blocks)}" if len(self.blocks) else ""
            self.fail(f"{where}.type", f"unknown layer type {show(type_name)}; known types: "
                      + ", ".join(sorted(CATALOGUE)) + blocks)
        self.since(spec.since, f"{where}.type", f"type {type_name!r}")
        for key in V2_KEYS.intersection(raw):
            self.since(2, f"{where}.{key}", f"the node key {key!r}")
        params = raw.get("params", {})
        self.expect(params, dict, f"{where}.params", "an object")
        for name in params:
            if name in spec.param_index:
                self.since(spec.param_since(name), f"{where}.params.{name}",
                           f"the parameter {name!r} of {type_name}")
        if block is not None:
            self.block_node_params(block, type_name, params, where)
        checked = {k: v for k, v in params.items() if block is None or reference(v) is None}
        _, problems = resolve_params(spec, checked)
        if block is not None:  # a parameter set by "$name" is checked where the block is used
            problems = [(k, m) for k, m in problems
                        if type_name != "Input" and (k not in params or k in checked)]
        if problems:
            param, message = problems[0]
            self.fail(f"{where}.params" + (f".{param}" if param else ""), message)
        position = raw.get("position")
        if "position" in raw:
            if not (isinstance(position, list) and len(position) == 2
                    and all(map(_finite, position))):
                self.fail(f"{where}.position", f"expected [x, y] (two numbers), received {show(position)}")
            position = (float(position[0]), float(position[1]))
        repeat = raw.get("repeat", 1)
        if not is_int(repeat) or not 1 <= repeat <= MAX_REPEAT:
            self.fail(f"{where}.repeat", f"expected an integer from 1 to {MAX_REPEAT}, received {show(repeat)}")
        if repeat != 1 and (spec.max_inputs == 0 or spec.multi_output()):
            self.fail(f"{where}.repeat", f"{type_name} cannot repeat: only a node with one input and "
                                         "one output can")
        trainable = raw.get("trainable", True)
        self.expect(trainable, bool, f"{where}.trainable", "true or false")
        return Node(node_id, type_name, dict(params), position, repeat, trainable)

    def block_node_params(self, block: Block, type_name: str, params: dict[str, Any], where: str) -> None:
        """Inside ``block``: an Input takes no parameters; a ``"$name"`` must be declared."""
        if type_name == "Input" and params:
            self.fail(f"{where}.params", "a block's Input takes no parameters: its shape comes from the "
                                         "edge into the block's node")
        for param, value in params.items():
            name = reference(value)
            if name is not None and name not in block.params:
                declared = ", ".join(block.params) or "none"
                self.fail(f"{where}.params.{param}", f"refers to \"${name}\", which block {block.name} does "
                                                     f"not declare (it declares: {declared})")

    def edge(self, raw: Any, where: str, g: Graph) -> Edge:
        self.expect(raw, dict, where, "an object with source and target")
        for key in raw:
            if key not in EDGE_KEYS:
                self.fail(f"{where}.{key}", "unknown key; an edge takes: " + ", ".join(EDGE_KEYS))
            if key in V2_KEYS:
                self.since(2, f"{where}.{key}", f"the edge key {key!r}")
        for end in ("source", "target"):
            if end not in raw:
                self.fail(f"{where}.{end}", "missing")
            if not isinstance(raw[end], str) or raw[end] not in g.nodes:
                self.fail(f"{where}.{end}", f"no node has the id {show(raw[end])}")
        ports = []
        for key in ("target_port", "source_port"):
            port = raw.get(key, 0)
            # a port beyond what a node has is the analysis's to report; beyond INT_LIMIT
            # it is nobody's (and would be quoted in messages as a huge number)
            if not is_int(port) or not 0 <= port <= INT_LIMIT:
                self.fail(f"{where}.{key}", f"expected an integer >= 0, received {show(port)}")
            ports.append(port)
        return Edge(raw["source"], raw["target"], ports[0], ports[1])


# -- saving -------------------------------------------------------------------------------
def project_to_dict(project: Project) -> dict[str, Any]:
    """The project as format-version-2 JSON data. Settings equal to their defaults are
    written too, so a file states exactly what it trains with."""
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": project.name}
    if len(project.graph.blocks):
        data["blocks"] = {b.name: {"params": b.params, "graph": graph_to_dict(b.graph)}
                          for b in project.graph.blocks.values()}
    data["graph"] = graph_to_dict(project.graph)
    data["dataset"] = {k: v for k, v in project.dataset.items() if v is not None}
    data["training"] = {k: v for k, v in project.training.items()
                        if (v is not None or k in ("schedule", "early_stopping_patience"))
                        and not (k in EXTENSIONS and v == EXTENSIONS[k])}
    if project.editor is not None:
        data["editor"] = project.editor
    return data


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """A graph's ``nodes`` and ``edges`` as the file writes them."""
    nodes = []
    for n in graph.nodes.values():
        item: dict[str, Any] = {"id": n.id, "type": n.type, "params": n.params}
        if n.position is not None:
            item["position"] = [_tidy(n.position[0]), _tidy(n.position[1])]
        if n.repeat != 1:
            item["repeat"] = n.repeat
        if not n.trainable:
            item["trainable"] = False
        nodes.append(item)
    edges = []
    for e in graph.edges:
        item = {"source": e.source, "target": e.target}
        if e.target_port:
            item["target_port"] = e.target_port
        if e.source_port:
            item["source_port"] = e.source_port
        edges.append(item)
    return {"nodes": nodes, "edges": edges}


def dumps_project(project: Project) -> str:
    return json.dumps(project_to_dict(project), indent=2, allow_nan=False) + "\n"


def save_project(project: Project, path: str | Path | None = None) -> Path:
    """Write the project atomically to ``path`` (default: where it was loaded from)."""
    target = Path(path) if path is not None else project.path
    if target is None:
        raise ProjectError("the project has no file yet; give a path to save it to")
    atomic_write(target, dumps_project(project).encode("utf-8"))
    project.path = target
    return target


def _tidy(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 3)
