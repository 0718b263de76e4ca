"""Pattern fusion: swap chains of a compiled ``GraphModule`` for fused Triton modules.

Patterns, each link only when the value has no other user:

- ``Linear -> activation``                                   -> ``FusedLinearAct``
- ``Conv2d [-> BatchNorm2d] [-> Add(., skip)] [-> activation]`` (at least one of them)
                                                             -> ``FusedConv2dAct``
- ``Add(a, b) -> activation``                                -> ``FusedAddAct``

(activations: ReLU, LeakyReLU, GELU (exact), Sigmoid, Tanh). The last Linear and the
cross-entropy are the objective's business: see ``loss.cross_entropy_for``.

The rewritten ``forward`` still calls one module per node id, in the original order,
except that a chain is computed where its last node stood (a residual is ready there)::

    conv1 = self.conv1(input_1, skip)  # FusedConv2dAct: conv + bn + add + relu
    bn1 = self.bn1(conv1)              # FusedInto: passes through, keeps bn1's state
    add1 = self.add1(bn1)
    relu1 = self.relu1(add1)

so every node id names a module, and ``state_dict`` keys are those of the unfused model.
A forward hook on a chain's inner node sees the chain's output (the unfused model is the
one to read per-node activations from).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

from .. import modules as engine_modules
from .fused import FusedAddAct, FusedConv2dAct, FusedInto, FusedLinearAct
from .policy import MEASURED, NOT_MEASURED, decide
from .runtime import check_mode, cpu_allowed, interpreting, triton_available

_ACTIVATIONS = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.GELU: "gelu", nn.Sigmoid: "sigmoid",
                nn.Tanh: "tanh"}
_CONVS = (nn.Conv2d, engine_modules.SameConv2d)


@dataclass
class Chain:
    """A run of fx nodes to replace: ``nodes[0]`` is the head (Linear, Conv2d or Add)."""

    op: str  # "linear_act", "conv_affine_act" or "add_act"
    nodes: list[fx.Node]
    act: str = "identity"
    slope: float = 0.0
    bn: fx.Node | None = None
    residual: fx.Node | None = None

    @property
    def ids(self) -> list[str]:
        return [str(n.target) for n in self.nodes]


def activation_of(module: nn.Module | None) -> tuple[str, float] | None:
    """(name, negative slope) of a module the epilogue can apply, else None."""
    name = _ACTIVATIONS.get(type(module))
    if name is None or (name == "gelu" and module.approximate != "none"):
        return None
    return name, float(getattr(module, "negative_slope", 0.0))


def find_chains(gm: fx.GraphModule) -> list[Chain]:
    """The fusable chains of ``gm``, in graph order, none overlapping."""
    mods = dict(gm.named_modules())

    def module(node):
        return mods.get(node.target) if node is not None and node.op == "call_module" else None

    def only_user(node):
        users = list(node.users)
        return users[0] if len(users) == 1 and users[0].op == "call_module" else None

    def activation_after(node):
        u = only_user(node)
        a = activation_of(module(u))
        return (u, a) if a is not None and u.args == (node,) and not u.kwargs else (None, None)

    chains, taken = [], set()
    for node in gm.graph.nodes:
        m = module(node)
        if m is None or node in taken or node.kwargs:
            continue
        chain = None
        if type(m) is nn.Linear and len(node.args) == 1:
            u, a = activation_after(node)
            if u is not None:
                chain = Chain("linear_act", [node, u], *a)
        elif type(m) in _CONVS and len(node.args) == 1 and m.padding_mode == "zeros":
            chain = Chain("conv_affine_act", [node])
            u = only_user(node)
            bn = module(u)
            if (type(bn) is nn.BatchNorm2d and bn.affine and bn.bias is not None and bn.track_running_stats
                    and u.args == (node,) and not u.kwargs):
                chain.nodes.append(u)
                chain.bn = u
            tail = chain.nodes[-1]
            u = only_user(tail)
            if (type(module(u)) is engine_modules.Add and not module(u).pads and len(u.args) == 2
                    and u.args.count(tail) == 1 and not u.kwargs):
                chain.residual = u.args[0] if u.args[1] is tail else u.args[1]
                chain.nodes.append(u)
            u, a = activation_after(chain.nodes[-1])
            if u is not None:
                chain.nodes.append(u)
                chain.act, chain.slope = a
            if len(chain.nodes) == 1:
                chain = None
        elif type(m) is engine_modules.Add and not m.pads and len(node.args) == 2:
            u, a = activation_after(node)
            if u is not None:
                chain = Chain("add_act", [node, u], *a)
        # a frozen node (trainable false) keeps its own module: its eval-mode hook stays
        if chain is not None and not any(_frozen(module(n)) for n in chain.nodes):
            chains.append(chain)
            taken.update(chain.nodes)
    return chains


def _frozen(module: nn.Module | None) -> bool:
    return module is not None and any(not p.requires_grad for p in module.parameters())


def _device_of(gm: nn.Module) -> torch.device:
    for t in gm.parameters():
        return t.device
    for t in gm.buffers():
        return t.device
    return torch.device("cpu")


def _fused_module(chain: Chain, mods: dict[str, nn.Module], absorbed: dict[str, nn.Module]):
    head = mods[str(chain.nodes[0].target)]
    if chain.op == "linear_act":
        return FusedLinearAct(head, chain.act, chain.slope)
    if chain.op == "add_act":
        return FusedAddAct(chain.act, chain.slope)
    bn = absorbed[str(chain.bn.target)] if chain.bn is not None else None
    return FusedConv2dAct(head, bn, chain.act, chain.slope, residual=chain.residual is not None)


def fuse_graph_module(gm: fx.GraphModule, analysis=None, *, mode: str = "on",
                      allow_cpu: bool | None = None, device: torch.device | str | None = None) -> fx.GraphModule:
    """``gm`` with its fusable chains swapped for fused modules, where ``mode`` allows:
    "off" never; "on" wherever a pattern matches, on a CUDA model with Triton installed
    (or on the CPU when ``allow_cpu``/``NETCANVAS_KERNELS_CPU=1``; the kernels then run in
    Triton's interpreter under ``TRITON_INTERPRET=1``, else the torch reference runs);
    "auto" only at the shapes ``policy.MEASURED`` lists as faster (none yet). The result
    shares every parameter and buffer with ``gm``; ``result.fused`` lists the fused chains
    (node ids), ``result.kernel_notes`` says what was and was not done, and why. Returns
    ``gm`` itself (with those two attributes) when nothing is fused. Raises
    ``ValueError`` for an unknown mode."""
    check_mode(mode)
    gm.fused, gm.kernel_notes = [], []
    if mode == "off":
        return gm
    chains = find_chains(gm)
    if not chains:
        return gm
    device = torch.device(device) if device is not None else _device_of(gm)
    notes = gm.kernel_notes
    if device.type == "cuda" and not triton_available():
        notes.append(f"kernels {mode!r}: Triton is not installed, so the model runs unfused")
        return gm
    if device.type != "cuda" and not (mode == "on" and cpu_allowed(allow_cpu)):
        if mode == "on":
            notes.append(f"kernels 'on': the fused kernels need a CUDA GPU and the model is on "
                         f"{device.type}, so it runs unfused")
        return gm
    if mode == "auto":
        dtype = next((p.dtype for p in gm.parameters()), torch.float32)
        chains = [c for c in chains if _measured_faster(c, analysis, device, dtype)]
        if not chains:
            notes.append(NOT_MEASURED if not MEASURED else
                         "kernels 'auto' fused nothing: no pattern of this model is at a shape "
                         "where the fused kernels were measured faster")
            return gm
    fused = _rewrite(gm, chains)
    how = "Triton" if device.type == "cuda" or interpreting() else "the torch reference (no Triton here)"
    fused.kernel_notes.append(f"kernels {mode!r}: fused " + ", ".join("+".join(c.ids) for c in chains)
                              + f" ({how})")
    return fused


def _measured_faster(chain: Chain, analysis, device: torch.device, dtype: torch.dtype) -> bool:
    last = str(chain.nodes[-1].target)
    shape = analysis.shapes.get(last, ()) if analysis is not None else ()
    if not shape:  # without shapes there is nothing to match a measurement with
        return False
    return decide(chain.op, device, shape, dtype, chain.act)[0]


def _rewrite(gm: fx.GraphModule, chains: list[Chain]) -> fx.GraphModule:
    mods = dict(gm.named_modules())
    absorbed: dict[str, nn.Module] = {}
    replaced: dict[str, nn.Module] = {}
    for chain in chains:
        head = str(chain.nodes[0].target)
        for node in chain.nodes[1:]:
            absorbed[str(node.target)] = _into(mods[str(node.target)], head)
        replaced[head] = _fused_module(chain, mods, absorbed)
    replaced.update(absorbed)
    for name, module in replaced.items():
        module.train(mods[name].training)

    members = {n for c in chains for n in c.nodes}
    last_of = {c.nodes[-1]: c for c in chains}
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in gm.graph.nodes:
        if node not in members:
            env[node] = g.node_copy(node, lambda n: env[n])
            continue
        chain = last_of.get(node)
        if chain is None:
            continue  # computed where its chain ends
        head = chain.nodes[0]
        args = tuple(env[a] for a in head.args)
        if chain.residual is not None:
            args += (env[chain.residual],)
        value = g.call_module(head.target, args)
        env[head] = value
        for member in chain.nodes[1:]:
            value = g.call_module(member.target, (value,))
            env[member] = value
    g.lint()

    root = nn.Module()
    for node in g.nodes:
        if node.op == "call_module":
            root.add_module(node.target, replaced.get(node.target, mods[node.target]))
    out = fx.GraphModule(root, g, class_name="NetCanvasModel")
    out.training = gm.training
    for name in ("input_shapes", "input_dtypes", "output_shape"):
        if hasattr(gm, name):
            setattr(out, name, getattr(gm, name))
    out.fused = [c.ids for c in chains]
    out.kernel_notes = []
    return out


def _into(module: nn.Module, head: str) -> nn.Module:
    return FusedInto(module, head)

