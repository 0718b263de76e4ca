"""Copy, paste and duplicate without a screen: the layers copied (``Clipping``), the text
they travel as on the system clipboard, reading that text back (it is outside data: any
program may have put anything there), and the command that inserts them with fresh ids.

The text is plain JSON with a marker key, not a format of our own: PySide and the system
clipboard would both own a QMimeData and free it twice at exit. What a paste accepts is
what a project file accepts for its graph (``parse_project``), less the layer types this
version does not know (a copy from a newer NetCanvas pastes the rest).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from ..errors import NetCanvasError, ProjectError
from ..graph import Block, Edge, Graph, Node, id_problem
from ..layers import get_spec
from ..project import FORMAT, VERSION, graph_to_dict, parse_project
from .block_commands import AddBlocks, free_block_name
from .commands import AddItems
from .document import Document

CLIPBOARD_KEY = "netcanvas-layers"  # tells our JSON from any other text on the clipboard
MAX_TEXT_CHARS = 8_000_000  # far above any graph the editor shows; longer text is not read
PASTE_OFFSET = 40.0  # scene units right and down from the layers copied

# values a new node starts with for the parameters it must be given
STARTING_VALUES = {"shape": [1, 28, 28], "out_features": 10, "out_channels": 8, "kernel_size": 3,
                   "output_size": 1, "hidden_size": 32, "num_embeddings": 100, "embedding_dim": 16}


class ClipboardError(NetCanvasError):
    """Text marked as NetCanvas layers that cannot be pasted (cut short, edited, too large)."""


@dataclass(frozen=True)
class Clipping:
    """Layers copied: ``nodes`` with the ids and positions they had, the ``edges``
    among them, and the definitions of the blocks they use (and those use)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    blocks: tuple[Block, ...] = ()


def new_node_params(type_name: str) -> dict:
    """The parameters a new layer of ``type_name`` starts with: a starting value for each
    one it must be given (a common value, else the value of the type's first example use),
    the declared defaults for the rest (left out). Raises KeyError for a type the catalogue
    does not have."""
    spec = get_spec(type_name)
    if spec is None:
        raise KeyError(f"unknown layer type {type_name!r}")
    example = dict(spec.samples[0][1]) if spec.samples else {}
    params = {}
    for p in spec.params:
        if p.required:
            if (type_name, p.name) == ("Reshape", "shape"):
                params[p.name] = [-1]
            elif p.name in STARTING_VALUES:
                params[p.name] = STARTING_VALUES[p.name]
            else:
                params[p.name] = copy.deepcopy(example[p.name])
    return params


def clipping(graph: Graph, node_ids) -> Clipping:
    """The nodes of ``graph`` named in ``node_ids`` (copies, in the file's order) and the
    edges between two of them."""
    ids = set(node_ids)
    nodes = tuple(copy.deepcopy(n) for i, n in graph.nodes.items() if i in ids)
    edges = tuple(e for e in graph.edges if e.source in ids and e.target in ids)
    used: list[str] = []
    pending = [n.type for n in nodes]
    while pending:
        name = pending.pop()
        if name in graph.blocks and name not in used:
            used.append(name)
            pending += sorted(graph.blocks[name].uses())
    blocks = tuple(Block(b, copy.deepcopy(graph.blocks[b].params), graph.blocks[b].graph.copy(graph.blocks))
                   for b in used)
    return Clipping(nodes, edges, blocks)


def to_text(clip: Clipping) -> str:
    """The clipboard text of ``clip`` (what ``parse_clipboard`` reads back): its graph as
    a project file writes it, with the blocks it uses."""
    g = Graph()
    for n in clip.nodes:
        g.nodes[n.id] = Node(n.id, n.type, n.params, n.position or (0.0, 0.0), n.repeat, n.trainable)
    g.edges = list(clip.edges)
    data = {CLIPBOARD_KEY: 1, **graph_to_dict(g)}
    if clip.blocks:
        data["blocks"] = {b.name: {"params": b.params, "graph": graph_to_dict(b.graph)} for b in clip.blocks}
    return json.dumps(data)


def parse_clipboard(text: str) -> Clipping | None:
    """The layers in the clipboard's ``text``; None when it is not NetCanvas layers (any
    other text, not JSON, no marker). Raises ``ClipboardError`` (and nothing else) when it
    is marked as ours but cannot be pasted: longer than ``MAX_TEXT_CHARS``, or not what a
    project file's graph accepts. Nodes of unknown layer types are left out, with their
    edges."""
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    if len(text) > MAX_TEXT_CHARS:
        if CLIPBOARD_KEY in text[:200]:  # ours (the marker comes first), but more than we read
            raise ClipboardError(f"the layers copied are too many to paste ({len(text):,} characters)")
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an integer longer than Python reads, nested too deep
        return None
    if not isinstance(data, dict) or data.get(CLIPBOARD_KEY) != 1:
        return None
    nodes, edges = data.get("nodes"), data.get("edges", [])
    blocks = data.get("blocks", {})
    names = set(blocks) if isinstance(blocks, dict) else set()
    if isinstance(nodes, list) and isinstance(edges, list):
        # layer types of a newer NetCanvas: paste the rest (their edges go with them)
        unknown = {n.get("id") for n in nodes if _unknown_type(n, names) and isinstance(n.get("id"), str)}
        nodes = [n for n in nodes if not _unknown_type(n, names)]
        edges = [e for e in edges if not (isinstance(e, dict) and _touches(e, unknown))]
    text_project = {"format": FORMAT, "version": VERSION, "graph": {"nodes": nodes, "edges": edges}}
    if "blocks" in data:
        text_project["blocks"] = blocks
    try:
        graph = parse_project(text_project, source="the layers copied").graph
    except ProjectError as e:
        raise ClipboardError(e.message, e.where) from None
    except RecursionError:  # a parameter nested deeper than Python compares
        raise ClipboardError("a parameter is nested too deeply", "the layers copied") from None
    return Clipping(tuple(graph.nodes.values()), tuple(graph.edges), tuple(graph.blocks.values()))


def paste_command(doc: Document, clip: Clipping, offset: float = PASTE_OFFSET,
                  graph: Graph | None = None) -> AddItems | AddBlocks | None:
    """The step that adds ``clip`` to ``graph`` (the project's, or one inside a block):
    each node under a fresh id (its old one's letters, numbered on from the graph's),
    placed ``offset`` right of and below where it was (a node without a position as if at
    the origin), with the edges among them renamed. The blocks the nodes use come along:
    a block the project has with the same definition is used as it is; one that differs
    is added under a new name. None when ``clip`` has no nodes."""
    if not clip.nodes:
        return None
    graph = graph if graph is not None else doc.graph
    added, types = _paste_blocks(graph, clip.blocks)
    taken = set(graph.nodes)
    renamed: dict[str, str] = {}
    nodes = []
    for node in clip.nodes:
        new_id = _fresh_id(graph, node.id, taken)
        taken.add(new_id)
        renamed[node.id] = new_id
        x, y = node.position or (0.0, 0.0)
        nodes.append(Node(new_id, types.get(node.type, node.type), copy.deepcopy(node.params),
                          (x + offset, y + offset), node.repeat, node.trainable))
    edges = [Edge(renamed[e.source], renamed[e.target], e.target_port, e.source_port)
             for e in clip.edges if e.source in renamed and e.target in renamed]
    add = AddItems(doc, nodes, edges, f"Paste {len(nodes)} layers", graph=graph)
    return AddBlocks(doc, added, add) if added else add


def _paste_blocks(graph: Graph, blocks) -> tuple[list[Block], dict[str, str]]:
    """The definitions to add for pasted ``blocks`` (copies, renamed where the project has
    a different block of the same name) and the renaming of block types."""
    types: dict[str, str] = {}
    fresh = []
    for b in blocks:
        mine = graph.blocks.get(b.name)
        if mine is not None and _same(mine, b):
            continue
        name = b.name if mine is None else free_block_name(graph, b.name + "_")
        while name in types.values():
            name = free_block_name(graph, name + "_")
        types[b.name] = name
        fresh.append(b)
    added = []
    for b in fresh:
        inner = b.graph.copy(graph.blocks)
        for n in inner.nodes.values():
            n.type = types.get(n.type, n.type)
        added.append(Block(types[b.name], copy.deepcopy(b.params), inner))
    return added, types


def _same(a: Block, b: Block) -> bool:
    return a.params == b.params and graph_to_dict(a.graph) == graph_to_dict(b.graph)


def _fresh_id(graph: Graph, old_id: str, taken: set[str]) -> str:
    """An id for a copy of ``old_id``: its letters numbered on (``conv1`` -> ``conv3`` when
    ``conv1`` and ``conv2`` exist), free in the graph and not in ``taken``."""
    candidate = graph.unique_id(old_id.rstrip("0123456789") or "node")
    stem = candidate.rstrip("0123456789")
    number = int(candidate[len(stem):])
    while candidate in taken or candidate in graph.nodes or id_problem(candidate):
        number += 1
        candidate = f"{stem}{number}"
    return candidate


def _unknown_type(raw, blocks: set) -> bool:
    """A node whose type is a name this version does not know, nor one of the ``blocks``
    copied (a type that is no string is no type at all: the parser says so)."""
    return (isinstance(raw, dict) and isinstance(raw.get("type"), str) and get_spec(raw["type"]) is None
            and raw["type"] not in blocks)


def _touches(raw_edge: dict, ids: set) -> bool:
    return any(isinstance(raw_edge.get(end), str) and raw_edge[end] in ids for end in ("source", "target"))
