"""Compile a graph into a real ``torch.fx.GraphModule``.

Every non-Input node becomes a submodule named after its id, so ``state_dict()`` keys read
``<node id>.<torch name>`` and the generated ``forward`` reads like hand-written code:

    def forward(self, input):
        conv1 = self.conv1(input);  input = None
        relu1 = self.relu1(conv1);  conv1 = None
        ...

A node of a type with several outputs returns a tuple; an edge from its port k takes item k
(``split_1 = split[1]``). A repeated node is an ``nn.Sequential`` of its copies (weights
``<node id>.<k>.<torch name>``); a node with ``trainable`` false has no gradients and keeps
its normalization layers in eval mode, also while the model trains.

There is no per-forward interpretation: fx generates and compiles Python source once.
With ``kernels="on"`` (or "auto") chains such as Linear -> ReLU or Conv2d -> BatchNorm2d ->
ReLU are then swapped for fused Triton modules (``kernels/fuse.py``); node ids still name
modules and ``state_dict`` keys do not change. Exports compile with the default, "off".
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from .errors import GraphError
from .graph import Graph
from .inference import Analysis, analyze, ancestors
from .kernels.fuse import fuse_graph_module


def build_modules(graph: Graph, analysis: Analysis) -> nn.Module:
    """A plain module holding one freshly initialized submodule per non-Input node."""
    root = nn.Module()
    for node_id in analysis.order:
        node = graph.nodes[node_id]
        if node.type == "Input":
            continue
        spec = graph.spec(node.type)
        shapes = analysis.input_shapes(node_id)
        params = analysis.params[node_id]
        if node.repeat == 1:
            module = spec.build(shapes, params)
        else:
            copies = []
            for _ in range(node.repeat):  # each copy takes the previous copy's output
                copies.append(spec.build(shapes, params))
                shapes = [spec.output_shape(shapes, params)]
            module = nn.Sequential(*copies)
        if not node.trainable:
            freeze(module)
        root.add_module(node_id, module)
    return root


def freeze(module: nn.Module) -> None:
    """No gradients for ``module``'s parameters, and its normalization statistics fixed:
    its normalization layers stay in eval mode whatever mode the model is put in."""
    module.requires_grad_(False)
    if any(isinstance(m, _NORMS) for m in module.modules()):
        module.register_forward_pre_hook(_norms_in_eval)


# the layers that keep running statistics (BatchNorm*, InstanceNorm* tracking them)
_NORMS = (nn.modules.batchnorm._NormBase,)


def _norms_in_eval(module: nn.Module, args) -> None:
    """A frozen node's forward pre-hook: ``model.train()`` set every submodule training;
    its normalization layers go back to eval before they run."""
    for m in module.modules():
        if isinstance(m, _NORMS) and m.training:
            m.eval()


def compile_graph(
    graph: Graph,
    analysis: Analysis | None = None,
    *,
    device: str | torch.device | None = None,
    output: str | None = None,
    modules: nn.Module | None = None,
    kernels: str = "off",
    allow_cpu: bool | None = None,
    class_name: str = "NetCanvasModel",
) -> fx.GraphModule:
    """Compile ``graph`` (which must have no errors) into a ``GraphModule``.

    ``output`` picks another node as the output (the trainer uses it to compute a loss on
    the logits before a final Softmax); ``modules`` reuses the submodules of an earlier
    compile, so both modules share their weights. ``kernels`` ("off", "on", "auto") fuses
    chains into Triton kernels on a CUDA model (``allow_cpu``: on a CPU model too, for
    tests under ``TRITON_INTERPRET=1``); the result's ``kernel_notes`` say what was fused
    and why not, ``fused`` lists the fused chains. ``class_name``: the module's class name
    (a block's inside is compiled as a module named after the block). Raises ``GraphError`` listing the
    graph's errors when it has any, ``ValueError`` for an unknown ``kernels``.
    """
    a = analysis or analyze(graph)
    if not a.ok:
        raise GraphError(a.errors)
    root = modules if modules is not None else build_modules(graph, a)
    out_id = output or a.output
    if out_id not in graph.nodes:
        raise ValueError(f"there is no node {out_id!r} to take the output from")
    needed = ancestors(a, out_id)

    g = fx.Graph()
    values: dict[str, fx.Node] = {}
    for node_id, name in _argument_names(a.inputs).items():
        values[node_id] = g.placeholder(name)
    ports: dict[tuple[str, int], fx.Node] = {}

    def port(source: str, k: int) -> fx.Node:
        """The value of output ``k`` of ``source``: item k of a multi-output node's tuple."""
        if not graph.spec(graph.nodes[source].type).multi_output():
            return values[source]
        if (source, k) not in ports:
            ports[source, k] = g.create_node("call_function", operator.getitem, (values[source], k),
                                             name=f"{source}_{k}")
        return ports[source, k]

    for node_id in a.order:
        if node_id in values or node_id not in needed:
            continue
        args = tuple(port(e.source, e.source_port) for e in a.incoming.get(node_id, []))
        values[node_id] = g.call_module(node_id, args)
    g.output(port(out_id, 0))  # the model's output: port 0 of the sink
    g.lint()
    gm = fx.GraphModule(root, g, class_name=class_name)
    gm.input_shapes = [a.shapes[i] for i in a.inputs]  # type: ignore[attr-defined]
    gm.input_dtypes = [input_dtype(a, i) for i in a.inputs]  # type: ignore[attr-defined]
    gm.output_shape = a.shapes[out_id]  # type: ignore[attr-defined]
    if device is not None:
        gm.to(device)
    if kernels != "off":
        return fuse_graph_module(gm, a, mode=kernels, allow_cpu=allow_cpu, device=device)
    return gm


def input_dtype(a: Analysis, input_id: str) -> torch.dtype:
    """The torch dtype an Input takes: float32, or int64 for token ids."""
    return torch.int64 if a.params[input_id].get("dtype") == "int64" else torch.float32


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
