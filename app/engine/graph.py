"""The graph model: plain Python that announces its changes.

The canvas, the inspector and the undo commands act on a ``Graph`` and listen to its
signals (``node_added``, ``node_removed``, ``edge_added``, ``edge_removed``,
``params_changed``, ``options_changed`` (repeat, trainable), ``node_moved``,
``nodes_reordered``, and ``changed`` after any of them). A graph may hold a
structure that is not a valid model (a file can say anything); ``inference.analyze``
reports what is wrong. Edits made through the editor are checked first with
``connection_problem`` so they never create a cycle or fill an occupied slot.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from .layers import get_spec
from .layers.spec import LayerSpec
from .signals import Signal

ID_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Attributes of torch.nn.Module and of the torch.fx.GraphModule the compiler builds (plus
# the two it sets itself): a submodule named like one of them cannot be added, or would be
# shadowed in the generated forward. tests/engine/test_graph.py checks this list against
# torch's own.
MODULE_ATTRIBUTES = frozenset(
    "T_destination add_module apply bfloat16 buffers call_super_init children compile cpu "
    "cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state "
    "get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers "
    "named_children named_modules named_parameters parameters register_backward_hook "
    "register_buffer register_forward_hook register_forward_pre_hook "
    "register_full_backward_hook register_full_backward_pre_hook "
    "register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module "
    "register_parameter register_state_dict_post_hook register_state_dict_pre_hook "
    "requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty "
    "train training type xpu zero_grad code graph meta "
    "add_submodule delete_all_unused_submodules delete_submodule print_readable recompile "
    "to_folder shape_env input_shapes input_dtypes output_shape".split()
)

# Their private attributes (names with one leading underscore); any ``__dunder__`` name is
# refused as well.
PRIVATE_MODULE_ATTRIBUTES = frozenset(
    "_apply _backward_hooks _backward_pre_hooks _boxed_call _buffers _call_impl _code "
    "_compiled_call_impl _create_node_hooks _deepcopy_hooks _deepcopy_init "
    "_erase_node_hooks _forward_hooks _forward_hooks_always_called "
    "_forward_hooks_with_kwargs _forward_pre_hooks _forward_pre_hooks_with_kwargs "
    "_get_backward_hooks _get_backward_pre_hooks _get_name _graph _is_full_backward_hook "
    "_lineno_map _load_from_state_dict _load_state_dict_post_hooks "
    "_load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules _named_members "
    "_non_persistent_buffers_set _parameters _prologue_start _recompile_submodules "
    "_register_create_node_hook _register_deepcopy_hook _register_erase_node_hook "
    "_register_load_state_dict_pre_hook _register_replace_node_hook "
    "_register_state_dict_hook _replace_hooks _replicate_for_data_parallel "
    "_save_to_state_dict _set_replace_hook _slow_forward _state_dict_hooks "
    "_state_dict_pre_hooks _tracer_cls _tracer_extras _unregister_create_node_hook "
    "_unregister_deepcopy_hook _unregister_erase_node_hook _unregister_replace_node_hook "
    "_version _wrapped_call _wrapped_call_impl"
    # set on every module once torch._dynamo has been imported (ONNX export imports it)
    " ___needs_generation_tag_patch".split()
)


def id_problem(node_id: Any) -> str | None:
    """Why ``node_id`` cannot name a node, or None when it can."""
    if not isinstance(node_id, str) or not ID_PATTERN.match(node_id):
        return (
            "a node id must be a Python identifier (letters, digits and _, not starting "
            f"with a digit); received {node_id!r}"
        )
    if keyword.iskeyword(node_id):
        return f"node id {node_id!r} is a Python keyword and cannot name a module attribute"
    if node_id in MODULE_ATTRIBUTES or node_id in PRIVATE_MODULE_ATTRIBUTES or _is_dunder(node_id):
        return f"node id {node_id!r} is the name of a torch.nn.Module attribute; choose another"
    return None


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


@dataclass
class Node:
    """A layer on the canvas. ``params`` holds only what was set explicitly; the layer's
    declared defaults fill in the rest (``inference.resolve_params``). ``repeat``: that many
    copies in a chain, each with its own weights; ``trainable`` false freezes the node's
    parameters and normalization statistics (format version 2)."""

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] | None = None
    repeat: int = 1
    trainable: bool = True


@dataclass(frozen=True)
class Edge:
    """Output port ``source_port`` of ``source`` feeding input slot ``target_port`` of
    ``target`` (most types have one output, port 0)."""

    source: str
    target: str
    target_port: int = 0
    source_port: int = 0


@dataclass
class Block:
    """A named sub-graph with parameters (format version 2, "Blocks"): ``params`` declares
    the block's parameters with their defaults; inside ``graph``, a parameter value that is
    exactly ``"$name"`` takes that parameter's value. Nodes use ``name`` as their type."""

    name: str
    params: dict[str, Any]
    graph: "Graph"

    def inputs(self) -> list[str]:
        """The block's Input nodes in file order: the k-th takes the node's input slot k."""
        return [n.id for n in self.graph.nodes.values() if n.type == "Input"]

    def uses(self) -> set[str]:
        """The types of the block's nodes (those that are blocks are the blocks it uses)."""
        return {n.type for n in self.graph.nodes.values()}


class Blocks:
    """The block definitions of one project, shared by its graph and by the graphs inside
    its blocks (blocks may use other blocks). Announces ``changed()`` after a definition is
    added, removed or given new parameters, and after any edit inside one; the layer
    declarations made from the definitions (``spec``) are rebuilt after each change."""

    def __init__(self) -> None:
        self._defs: dict[str, Block] = {}
        self._specs: dict[str, LayerSpec] = {}
        self.expanding: list[str] = []  # the blocks being expanded (a block using itself)
        self.changed = Signal()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._defs

    def __getitem__(self, name: str) -> Block:
        return self._defs[name]

    def __iter__(self):
        return iter(self._defs)

    def __len__(self) -> int:
        return len(self._defs)

    def get(self, name: str) -> Block | None:
        return self._defs.get(name)

    def values(self):
        return self._defs.values()

    def items(self):
        return self._defs.items()

    def spec(self, name: str) -> LayerSpec | None:
        """The layer declaration of block ``name`` (None when there is no such block)."""
        if name not in self._defs:
            return None
        spec = self._specs.get(name)
        if spec is None:
            from .blocks import block_spec  # (blocks.py needs the analysis, which needs this module)
            spec = self._specs[name] = block_spec(self._defs[name], self)
        return spec

    def add(self, block: Block) -> Block:
        """Add a definition (its graph then shares these blocks). Raises ValueError for a
        name already taken."""
        if block.name in self._defs:
            raise ValueError(f"there is already a block {block.name!r}")
        self._defs[block.name] = block
        block.graph.blocks = self
        block.graph.changed.connect(self.touch)
        self.touch()
        return block

    def remove(self, name: str) -> Block:
        block = self._defs.pop(name)
        block.graph.changed.disconnect(self.touch)
        self.touch()
        return block

    def set_params(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Give block ``name`` new declared parameters; returns the old ones."""
        block = self._defs[name]
        old, block.params = block.params, dict(params)
        self.touch()
        return old

    def touch(self) -> None:
        """Forget what was derived from the definitions, and announce the change."""
        self._specs.clear()
        self.changed.emit()

    def cycle(self) -> list[str] | None:
        """A chain of blocks that uses itself, as [a, b, ..., a], or None when there is none."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done

        def visit(name: str, path: list[str]) -> list[str] | None:
            state[name] = 1
            for used in sorted(self._defs[name].uses()):
                if used not in self._defs:
                    continue
                if state.get(used) == 1:
                    return path[path.index(used):] + [used] if used in path else [name, used]
                if used not in state:
                    found = visit(used, path + [used])
                    if found:
                        return found
            state[name] = 2
            return None

        for name in self._defs:
            if name not in state:
                found = visit(name, [name])
                if found:
                    return found
        return None

    def copy(self) -> "Blocks":
        """A deep copy (the definitions' graphs copied), without listeners."""
        other = Blocks()
        for block in self._defs.values():
            other.add(Block(block.name, _deep(block.params), block.graph.copy(other)))
        return other


class Graph:
    """Nodes in insertion order and the edges between them, with change signals. ``blocks``:
    the block definitions its nodes may use as types (shared with the graphs inside them)."""

    def __init__(self, blocks: Blocks | None = None) -> None:
        self.blocks: Blocks = blocks if blocks is not None else Blocks()
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.node_added = Signal()
        self.node_removed = Signal()
        self.edge_added = Signal()
        self.edge_removed = Signal()
        self.params_changed = Signal()
        self.options_changed = Signal()
        self.node_moved = Signal()
        self.nodes_reordered = Signal()
        self.changed = Signal()

    # -- queries ---------------------------------------------------------------------
    def spec(self, type_name: str) -> LayerSpec | None:
        """The declaration of ``type_name``: one of the project's blocks, or a catalogue
        type (block names never equal catalogue types), or None."""
        return self.blocks.spec(type_name) if type_name in self.blocks else get_spec(type_name)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def incoming(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, ordered by input slot."""
        return sorted((e for e in self.edges if e.target == node_id), key=lambda e: e.target_port)

    def outgoing(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.source == node_id]

    def reaches(self, start: str, goal: str) -> bool:
        """Whether a path of edges leads from ``start`` to ``goal``."""
        successors: dict[str, list[str]] = {}
        for e in self.edges:
            successors.setdefault(e.source, []).append(e.target)
        stack, seen = [start], {start}
        while stack:
            current = stack.pop()
            if current == goal:
                return True
            for nxt in successors.get(current, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    def unique_id(self, prefix: str) -> str:
        """A fresh node id such as ``conv3`` for prefix ``conv``."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", prefix).lower() or "node"
        if base[0].isdigit():
            base = "n" + base
        n = 1
        while f"{base}{n}" in self.nodes or id_problem(f"{base}{n}"):
            n += 1
        return f"{base}{n}"

    def connection_problem(self, source: str, target: str, port: int, source_port: int = 0) -> str | None:
        """Why connecting output ``source_port`` of ``source`` to slot ``port`` of
        ``target`` must be refused, or None. (Whether ``source`` has that output depends on
        its type and parameters: ``inference.analyze`` reports a port it lacks.)"""
        if source_port < 0 or port < 0:
            return "port numbers start at 0"
        if source not in self.nodes or target not in self.nodes:
            missing = source if source not in self.nodes else target
            return f"there is no node {missing!r}"
        if source == target:
            return "a node cannot feed itself"
        for e in self.edges:
            if e.target == target and e.target_port == port:
                return f"input slot {port} of {target!r} is already fed by {e.source!r}"
        if self.reaches(target, source):
            return f"connecting {source!r} to {target!r} would make a cycle"
        return None

    # -- edits -----------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        if node.id in self.nodes:
            raise ValueError(f"there is already a node {node.id!r}")
        self.nodes[node.id] = node
        self.node_added.emit(node)
        self.changed.emit()
        return node

    def remove_node(self, node_id: str) -> Node:
        """Remove a node and every edge touching it (each announced first)."""
        for edge in [e for e in self.edges if node_id in (e.source, e.target)]:
            self.remove_edge(edge)
        node = self.nodes.pop(node_id)
        self.node_removed.emit(node)
        self.changed.emit()
        return node

    def add_edge(self, edge: Edge, check: bool = True, index: int | None = None) -> Edge:
        """Add an edge, last in the file's order or at ``index`` (undoing a removal); with
        ``check`` refuse (ValueError) one that ``connection_problem`` objects to."""
        if check:
            problem = self.connection_problem(edge.source, edge.target, edge.target_port, edge.source_port)
            if problem:
                raise ValueError(problem)
        if index is None:
            self.edges.append(edge)
        else:
            self.edges.insert(index, edge)
        self.edge_added.emit(edge)
        self.changed.emit()
        return edge

    def remove_edge(self, edge: Edge) -> None:
        self.edges.remove(edge)
        self.edge_removed.emit(edge)
        self.changed.emit()

    def set_params(self, node_id: str, params: dict[str, Any]) -> None:
        node = self.nodes[node_id]
        old, node.params = node.params, dict(params)
        self.params_changed.emit(node, old)
        self.changed.emit()

    def set_options(self, node_id: str, repeat: int | None = None, trainable: bool | None = None) -> None:
        """Set a node's ``repeat`` and/or ``trainable``; announced as
        ``options_changed(node, (old_repeat, old_trainable))``."""
        node = self.nodes[node_id]
        old = (node.repeat, node.trainable)
        if repeat is not None:
            node.repeat = int(repeat)
        if trainable is not None:
            node.trainable = bool(trainable)
        self.options_changed.emit(node, old)
        self.changed.emit()

    def move_node(self, node_id: str, position: tuple[float, float] | None) -> None:
        """Place a node; ``None`` leaves it without a position (placed where a view sees fit)."""
        node = self.nodes[node_id]
        node.position = None if position is None else (float(position[0]), float(position[1]))
        self.node_moved.emit(node)
        self.changed.emit()

    def reorder(self, order: list[str]) -> None:
        """Put the nodes in ``order`` (the order a saved file lists them in); announced as
        ``nodes_reordered(order)``. Raises ValueError unless ``order`` names every node once."""
        if len(order) != len(self.nodes) or set(order) != set(self.nodes):
            raise ValueError(f"a new node order must name every node once; received {order!r}")
        ordered = {i: self.nodes[i] for i in order}
        self.nodes.clear()  # in place: whoever holds ``nodes`` sees the new order
        self.nodes.update(ordered)
        self.nodes_reordered.emit(list(order))
        self.changed.emit()

    def copy(self, blocks: Blocks | None = None) -> "Graph":
        """A deep copy without any connected listeners; its block definitions are copied
        too, unless ``blocks`` gives the ones it is to share (the copy of a block's graph)."""
        other = Graph(blocks if blocks is not None else self.blocks.copy())
        for n in self.nodes.values():
            other.nodes[n.id] = Node(n.id, n.type, _deep(n.params), n.position, n.repeat, n.trainable)
        other.edges = list(self.edges)
        return other


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value
