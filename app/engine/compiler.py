"""Compile a graph into a real ``torch.fx.GraphModule``.

Every non-Input node becomes a submodule named after its id, so ``state_dict()`` keys read
``<node id>.<torch name>`` and the generated ``forward`` reads like hand-written code:

    def forward(self, input):
        conv1 = self.conv1(input);  input = None
        relu1 = self.relu1(conv1);  conv1 = None
        ...

There is no per-forward interpretation: fx generates and compiles Python source once.
With ``kernels="on"`` (or "auto") chains such as Linear -> ReLU or Conv2d -> BatchNorm2d ->
ReLU are then swapped for fused Triton modules (``kernels/fuse.py``); node ids still name
modules and ``state_dict`` keys do not change. Exports compile with the default, "off".
"""

from __future__ import annotations

import torch
from torch import fx, nn

from .errors import GraphError
from .graph import Graph
from .inference import Analysis, analyze
from .kernels.fuse import fuse_graph_module
from .layers import get_spec


def build_modules(graph: Graph, analysis: Analysis) -> nn.Module:
    """A plain module holding one freshly initialized submodule per non-Input node."""
    root = nn.Module()
    for node_id in analysis.order:
        node = graph.nodes[node_id]
        if node.type == "Input":
            continue
        spec = get_spec(node.type)
        shapes = analysis.input_shapes(node_id)
        root.add_module(node_id, spec.build(shapes, analysis.params[node_id]))
    return root


def compile_graph(
    graph: Graph,
    analysis: Analysis | None = None,
    *,
    device: str | torch.device | None = None,
    output: str | None = None,
    modules: nn.Module | None = None,
    kernels: str = "off",
    allow_cpu: bool | None = None,
) -> fx.GraphModule:
    """Compile ``graph`` (which must have no errors) into a ``GraphModule``.

    ``output`` picks another node as the output (the trainer uses it to compute a loss on
    the logits before a final Softmax); ``modules`` reuses the submodules of an earlier
    compile, so both modules share their weights. ``kernels`` ("off", "on", "auto") fuses
    chains into Triton kernels on a CUDA model (``allow_cpu``: on a CPU model too, for
    tests under ``TRITON_INTERPRET=1``); the result's ``kernel_notes`` say what was fused
    and why not, ``fused`` lists the fused chains. Raises ``GraphError`` listing the
    graph's errors when it has any, ``ValueError`` for an unknown ``kernels``.
    """
    a = analysis or analyze(graph)
    if not a.ok:
        raise GraphError(a.errors)
    root = modules if modules is not None else build_modules(graph, a)
    out_id = output or a.output
    if out_id not in graph.nodes:
        raise ValueError(f"there is no node {out_id!r} to take the output from")
    needed = _ancestors(a, out_id)

    g = fx.Graph()
    values: dict[str, fx.Node] = {}
    for node_id, name in _argument_names(a.inputs).items():
        values[node_id] = g.placeholder(name)
    for node_id in a.order:
        if node_id in values or node_id not in needed:
            continue
        args = tuple(values[e.source] for e in a.incoming.get(node_id, []))
        values[node_id] = g.call_module(node_id, args)
    g.output(values[out_id])
    g.lint()
    gm = fx.GraphModule(root, g, class_name="NetCanvasModel")
    gm.input_shapes = [a.shapes[i] for i in a.inputs]  # type: ignore[attr-defined]
    gm.output_shape = a.shapes[out_id]  # type: ignore[attr-defined]
    if device is not None:
        gm.to(device)
    if kernels != "off":
        return fuse_graph_module(gm, a, mode=kernels, allow_cpu=allow_cpu, device=device)
    return gm


def _argument_names(inputs: list[str]) -> dict[str, str]:
    """The ``forward`` argument of each Input: its id, except that ``self`` is taken by
    the module itself (an Input called ``self`` becomes ``self_``, or ``self__`` ...)."""
    names: dict[str, str] = {}
    for node_id in inputs:
        name = node_id
        while name == "self" or (name != node_id and name in inputs):
            name += "_"
        names[node_id] = name
    return names


def _ancestors(a: Analysis, node_id: str) -> set[str]:
    seen, stack = {node_id}, [node_id]
    while stack:
        for e in a.incoming.get(stack.pop(), []):
            if e.source not in seen:
                seen.add(e.source)
                stack.append(e.source)
    return seen
