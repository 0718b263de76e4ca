"""Repeated structure becomes blocks: from ``torch_map``'s flat nodes to a project graph,
its block definitions and its weights.

Instances of a Python class (not a torch.nn class or container) that the module holds at
least twice are candidates: the flat nodes called inside an instance form its *region*.
Regions nest (a transformer layer's attention inside the layer) and become block nodes from
the outside in; a region of one layer alone (torchvision's ``Permute``, ``StochasticDepth``)
or whose inside feeds more than one value out (or a value of a several-output layer) is not
a block, its nodes stay where they are. Regions of one class with the same structure (node
ids, types, edges) share one block definition named after the class (``Bottleneck``;
``Bottleneck_2`` for a second structure); parameters whose values differ between instances
become block parameters (``"$stride"``), one per distinct pattern of values, named after an
attribute every instance holds with those values (``self.stride = stride``), else
``in_channels`` / ``out_channels`` (``_features``) when they are the block's input or output
size, else after the parameter (``conv1_out_channels`` where two patterns share a name). Then consecutive block nodes of one block with the same parameters, each
feeding only the next, become one node with ``repeat``; so do consecutive calls of torch.nn
layers of one type and parameters (a stack of encoder layers).
Weights are named as the compiled module names them: ``layer1_0.conv1.weight``,
``layer2_1.0.conv1.weight`` for copy 0 of a repeated node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..graph import Block, Blocks, Edge, Graph, Node, id_problem
from ..layers import get_spec
from ..layout import layered_layout
from .torch_layers import plain
from .torch_map import CONTAINERS, Flat

@dataclass
class Unit:
    """A node of a region: a flat node, or (``inner``) a nested region."""

    id: str
    type: str
    params: dict[str, Any]
    inputs: list[tuple]  # ("in", k, 0) or ("unit", i, port)
    flat: Flat | None = None
    inner: "Region | None" = None


@dataclass
class Region:
    """The units called inside one module instance (or the whole model), its inputs (values
    from outside, in the order first used) and its output ``("unit", i, port)``."""

    units: list[Unit]
    inputs: list[tuple[str, int]]
    output: tuple
    cls: type | None = None
    block: "Def | None" = None
    owner: Unit | None = None  # the block node standing for this region
    path: str = ""  # of the module instance (its qualified name in the model)
    value: tuple[str, int] | None = None  # the flat value it gives out


@dataclass
class Def:
    """One block definition: the class and structure its ``instances`` share; after
    ``finalize``, its declared ``params``, which unit parameters refer to them (``refs``)
    and which of its units repeat (``chains``)."""

    name: str
    cls: type
    signature: tuple
    instances: list[Region] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # declared, with defaults
    refs: dict[tuple[int, str], str] = field(default_factory=dict)  # (unit, param) -> block param
    chains: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # unit -> (head, k, n)


def _candidates(flats: list[Flat]) -> set[type]:
    instances: dict[type, set[str]] = {}
    for f in flats:
        for path, cls in f.scope:
            if issubclass(cls, CONTAINERS) or cls.__module__.startswith("torch."):
                continue
            instances.setdefault(cls, set()).add(path)
    return {cls for cls, paths in instances.items() if len(paths) >= 2}


def _prune(flats: list[Flat], output: tuple[str, int]) -> list[Flat]:
    """The flat nodes that the output depends on (fx keeps calls whose value is unused)."""
    by_name = {f.name: f for f in flats}
    needed, stack = set(), [output[0]]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(src for src, _ in by_name[name].inputs)
    return [f for f in flats if f.name in needed or f.type == "Input"]


class Assembler:
    """Builds regions, block definitions, the project graph and the state dict."""

    def __init__(self, flats: list[Flat], output: tuple[str, int], modules: dict[str, nn.Module] | None = None):
        """``modules``: the model's modules by qualified name, whose attributes name block
        parameters (``self.stride = stride``)."""
        self.modules = modules or {}
        self.flats = _prune(flats, output)
        self.output = output
        classes = _candidates(self.flats)
        self.chain = {f.name: [(p, c) for p, c in f.scope if c in classes] for f in self.flats}
        self.defs: list[Def] = []
        self.names: set[str] = set()

    def run(self) -> tuple[Graph, dict[str, torch.Tensor]]:
        top = self.region(self.flats, 0, "", [], self.output, None)
        for d in self.defs:
            self.finalize(d)
        blocks = Blocks()
        for d in self.defs:
            g = self.graph_of(d.instances[0], blocks, d)
            blocks.add(Block(d.name, dict(d.params), g))
        top_chains = _chains(top, {i: u.params for i, u in enumerate(top.units)})
        graph = self.graph_of(top, blocks, None, top_chains)
        state: dict[str, torch.Tensor] = {}
        self.weights(top, top_chains, "", state)
        return graph, state

    # -- regions --------------------------------------------------------------------------
    def region(self, flats: list[Flat], level: int, path: str, inputs: list[tuple[str, int]],
               output: tuple[str, int], cls: type | None) -> Region:
        while True:
            groups: dict[str, list[Flat]] = {}
            for f in flats:
                chain = self.chain[f.name]
                if len(chain) > level:
                    groups.setdefault(chain[level][0], []).append(f)
            # one layer alone (torchvision's Permute, StochasticDepth) is no block: it stays a layer
            bad = [p for p, members in groups.items()
                   if len(members) == 1 or self.group_output(members, output) is None]
            if not bad:
                break
            for f in flats:  # not a block: its nodes stay at this level
                chain = self.chain[f.name]
                if len(chain) > level and chain[level][0] in bad:
                    chain.pop(level)
        units: list[Unit] = []
        raw_inputs: list[list[tuple[str, int]]] = []  # each unit's input values, resolved below
        made: dict[str, int] = {}  # flat name -> its unit (a block unit for its output only)
        done: set[str] = set()
        used_ids: set[str] = set()
        for f in flats:
            if f.name in done:
                continue
            chain = self.chain[f.name]
            if len(chain) > level:
                inst_path, inst_cls = chain[level]
                members = groups[inst_path]
                done.update(m.name for m in members)
                member_names = {m.name for m in members}
                ins: list[tuple[str, int]] = []
                for m in members:
                    ins += [v for v in m.inputs if v[0] not in member_names and v not in ins]
                out = self.group_output(members, output)
                inner = self.region(members, level + 1, inst_path, ins, out, inst_cls)
                unit = Unit(_unique(_relative(inst_path, path), used_ids), "", {}, [], inner=inner)
                self.assign(inner, inst_cls)
                unit.type = inner.block.name
                inner.owner = unit
                made[out[0]] = len(units)
                raw_inputs.append(ins)
            else:
                done.add(f.name)
                if f.type == "Input":
                    local = "input"
                elif f.local.startswith("module:"):
                    local = _relative(f.local[len("module:"):], path)
                else:
                    local = re.sub(r"_\d+$", "", f.local)
                unit = Unit(_unique(local, used_ids), f.type, dict(f.params), [], flat=f)
                made[f.name] = len(units)
                raw_inputs.append(list(f.inputs))
            units.append(unit)
        outside = {v: ("in", k, 0) for k, v in enumerate(inputs)}

        def ref(value: tuple[str, int]) -> tuple:
            return outside[value] if value in outside else ("unit", made[value[0]], value[1])

        for unit, values in zip(units, raw_inputs):
            unit.inputs = [ref(v) for v in values]
        return Region(units, inputs, ref(output), cls, path=path, value=output)

    def group_output(self, members: list[Flat], output: tuple[str, int]) -> tuple[str, int] | None:
        """The one value the group feeds out, or None when it feeds out several, or a port
        of a several-output layer."""
        inside = {m.name for m in members}
        leaving = set()
        for f in self.flats:
            if f.name not in inside:
                leaving.update(v for v in f.inputs if v[0] in inside)
        if output[0] in inside:
            leaving.add(output)
        if len(leaving) != 1:
            return None
        value = next(iter(leaving))
        sink = next(m for m in members if m.name == value[0])
        spec = get_spec(sink.type)
        if value[1] != 0 or spec is None or spec.multi_output() or sink.type == "Input":
            return None
        return value

    def assign(self, region: Region, cls: type) -> None:
        sig = _signature(region)
        for d in self.defs:
            if d.cls is cls and d.signature == sig:
                d.instances.append(region)
                region.block = d
                return
        name = re.sub(r"\W", "_", cls.__name__) or "Block"
        if get_spec(name) is not None or id_problem(name):
            name += "Block"
        base, k = name, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        d = Def(name, cls, sig, [region])
        region.block = d
        self.defs.append(d)

    def finalize(self, d: Def) -> None:
        """The block's parameters: one per distinct pattern of values that differ between
        its instances; then which of its units repeat."""
        patterns: dict[tuple, str] = {}
        first = d.instances[0]
        taken = {}
        varying = []
        for i, unit in enumerate(first.units):
            keys = []  # every parameter any instance sets (the others take its default)
            for inst in d.instances:
                keys += [k for k in inst.units[i].params if k not in keys]
            for key in keys:
                for inst in d.instances:
                    inst.units[i].params.setdefault(key, self.default(unit, key))
                values = tuple(_key(inst.units[i].params[key]) for inst in d.instances)
                if len(set(values)) > 1:
                    varying.append((i, key, values))
        counts: dict[str, int] = {}
        for _, key, values in varying:
            if values not in patterns:
                patterns[values] = key
                counts[key] = counts.get(key, 0) + 1
        for i, key, values in varying:
            name = patterns[values]
            if counts[name] > 1 and name == key:
                name = f"{first.units[i].id}_{key}"
            if values not in taken:
                name = self.attribute_for(d, values, key, set(d.params)) or self.size_for(d, values, key) or name
                base, k = name, 2
                while name in d.params:
                    name, k = f"{base}_{k}", k + 1
                taken[values] = name
                d.params[name] = first.units[i].params[key]
            d.refs[(i, key)] = taken[values]
        for inst in d.instances:
            # the block node's parameters: each instance's values
            if inst.owner is not None:
                inst.owner.params = {name: inst.units[i].params[key] for (i, key), name in d.refs.items()}
        d.chains = _chains(first, {i: {k: ("$" + d.refs[(i, k)]) if (i, k) in d.refs else v
                                       for k, v in u.params.items()} for i, u in enumerate(first.units)})

    def attribute_for(self, d: Def, values: tuple, key: str, taken: set[str]) -> str | None:
        """The name of an attribute that every instance's module holds with exactly its
        value of this parameter (``self.stride = stride``, ``self.out_channels = oup``):
        ``key`` itself if one is called so, else the first in the order they were set."""
        modules = [self.modules.get(inst.path) for inst in d.instances]
        if not modules or any(m is None for m in modules):
            return None
        found = []
        for attr in vars(modules[0]):
            if attr.startswith("_") or attr in taken or id_problem(attr) or get_spec(attr) is not None:
                continue
            try:
                mine = tuple(_key(plain(getattr(m, attr))) for m in modules)
            except AttributeError:
                continue
            if mine == values and all(isinstance(getattr(m, attr), (int, float, str, tuple, list)) for m in modules):
                found.append(attr)
        return key if key in found else (found[0] if found else None)

    def size_for(self, d: Def, values: tuple, key: str) -> str | None:
        """``in_channels`` / ``out_channels`` (``in_features`` / ``out_features``) when this
        parameter is, in every instance, the channel count (the last dimension) of the
        block's input or of its output; else None."""
        kind = "channels" if key.endswith("channels") else "features" if key.endswith("features") else None
        if kind is None:
            return None
        axis = 1 if kind == "channels" else -1
        by_name = {f.name: f for f in self.flats}
        for side, pick in (("out", lambda r: r.value), ("in", lambda r: r.inputs[0] if r.inputs else None)):
            name = f"{side}_{kind}"
            if name in d.params:
                continue
            sizes = []
            for inst in d.instances:
                value = pick(inst)
                shape = by_name[value[0]].shape if value is not None and value[0] in by_name else None
                if shape is None or value[1] != 0 or len(shape) < 2:
                    break
                sizes.append(_key(int(shape[axis])))
            if tuple(sizes) == values:
                return name
        return None

    def default(self, unit: Unit, key: str) -> Any:
        """The value a unit's parameter ``key`` has when not set."""
        if unit.inner is not None:
            return unit.inner.block.params[key]
        return get_spec(unit.type).param_index[key].default

    # -- output ---------------------------------------------------------------------------
    def graph_of(self, region: Region, blocks: Blocks, d: Def | None,
                 chains: dict[int, tuple[int, int, int]] | None = None) -> Graph:
        chains = d.chains if d is not None else chains
        g = Graph(blocks)
        in_ids = []
        if d is not None:
            for k in range(len(region.inputs)):
                node_id = "x" if k == 0 else f"x{k + 1}"
                while node_id in {u.id for u in region.units}:
                    node_id += "_"
                in_ids.append(node_id)
                g.nodes[node_id] = Node(node_id, "Input", {})
        kept = {}
        for i, unit in enumerate(region.units):
            head, k, n = chains.get(i, (i, 0, 1))
            if k:
                continue
            params = unit.params if d is None else {
                key: ("$" + d.refs[(i, key)]) if (i, key) in d.refs else v for key, v in unit.params.items()
                if (i, key) in d.refs or unit.inner is not None or not _is_default(unit.type, key, v)}
            if unit.type == "Input" and d is not None:
                continue
            g.nodes[unit.id] = Node(unit.id, unit.type, params, None, n)
            kept[i] = unit.id
        # the last copy of a chain gives its output; the first takes its inputs
        last = {}
        for i in range(len(region.units)):
            head, k, n = chains.get(i, (i, 0, 1))
            last[i] = kept[head]

        def source(ref):
            kind, index, port = ref
            return (in_ids[index], port) if kind == "in" else (last[index], port)

        for i, unit in enumerate(region.units):
            if i not in kept:
                continue
            for slot, ref in enumerate(unit.inputs):
                src, port = source(ref)
                g.edges.append(Edge(src, unit.id, slot, port))
        for node_id, pos in layered_layout(g).items():
            g.nodes[node_id].position = pos
        return g

    def weights(self, region: Region, chains: dict, prefix: str, state: dict) -> None:
        for i, unit in enumerate(region.units):
            head, k, n = chains.get(i, (i, 0, 1))
            name = prefix + region.units[head].id + (f".{k}" if n > 1 else "") + "."
            if unit.flat is not None:
                for key, t in unit.flat.tensors.items():
                    state[name + key] = t.detach().clone()
            elif unit.inner is not None:
                self.weights(unit.inner, unit.inner.block.chains, name, state)


def _chains(region: Region, params: dict[int, dict]) -> dict[int, tuple[int, int, int]]:
    """Runs of consecutive units of one type (a block, or a torch.nn layer) with equal
    parameters, each feeding only the next: unit -> (first unit of the run, copy number,
    run length)."""
    consumers: dict[int, list[tuple[int, int]]] = {}
    for i, unit in enumerate(region.units):
        for kind, index, port in unit.inputs:
            if kind == "unit":
                consumers.setdefault(index, []).append((i, port))
    out_unit = region.output[1] if region.output[0] == "unit" else None
    chains: dict[int, tuple[int, int, int]] = {}
    for i, unit in enumerate(region.units):
        if not _may_repeat(unit) or i in chains:
            continue
        run = [i]
        current = i
        while True:
            users = consumers.get(current, [])
            if current == out_unit or len(users) != 1:
                break
            nxt = users[0][0]
            nu = region.units[nxt]
            if not _may_repeat(nu) or nu.type != unit.type or _key(params[nxt]) != _key(params[i]):
                break
            run.append(nxt)
            current = nxt
        if len(run) > 1:
            for k, j in enumerate(run):
                chains[j] = (i, k, len(run))
    return chains


def _may_repeat(unit: Unit) -> bool:
    """Whether ``unit`` may be a copy in a repeated node: a block node, or a call of a
    torch.nn layer (not a functional call), of one input and one output."""
    if len(unit.inputs) != 1:
        return False
    if unit.inner is not None:
        return True
    spec = get_spec(unit.type)
    return unit.flat is not None and unit.flat.local.startswith("module:") and not spec.multi_output()


def _signature(region: Region) -> tuple:
    return (len(region.inputs), region.output,
            tuple((u.id, u.type, tuple(u.inputs))
                  for u in region.units))


def _is_default(type_name: str, key: str, value: Any) -> bool:
    default = get_spec(type_name).param_index[key].default
    return value == default and type(value) is type(default)


def _key(value: Any) -> str:
    return repr(value)


def _relative(path: str, base: str) -> str:
    rel = path[len(base) + 1:] if base and path.startswith(base + ".") else path
    ident = re.sub(r"\W", "_", rel)
    if not ident or ident[0].isdigit():
        ident = "m" + ident
    return ident


def _unique(name: str, used: set[str]) -> str:
    base, k = name, 2
    while name in used or id_problem(name):
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name
