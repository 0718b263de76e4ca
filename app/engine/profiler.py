"""Profile a project's compiled model, node by node: what ``netcanvas profile`` prints.

Per node of the ``GraphModule`` that ``compile_graph`` builds (one submodule per node id; a
block or a repeated node is one submodule, so one row), taken by hooks on that submodule
while the model runs ordinary training steps (forward, loss, backward): the forward time
(from its forward pre-hook to its forward hook), the backward time (from the moment its
output's gradient is complete to the next node's; see ``_per_node``), the output's bytes,
the parameter count, and the forward FLOPs as ``torch.utils.flop_counter.FlopCounterMode``
counts them (its per-module breakdown, so the nodes' FLOPs add up to its total). Times are
medians over ``repeats`` after warm-up runs, with ``torch.cuda.synchronize`` at each
timestamp on a GPU.

The whole model is measured apart, without hooks, on the same batch, in turn with the
hooked steps: its forward, its backward (from the loss's gradient at the output), the
loss (forward and its own backward) and the optimizer's step, so that the per-node
figures can be checked against them.

The model is the one the trainer steps: compiled with the output the loss reads (the
logits before a final Softmax) and with the project's ``kernels`` setting, as the trainer
compiles it (``compile_graph(..., kernels=...)``): where chains are fused (a CUDA GPU with
Triton, kernels "on", or "auto" at measured shapes; on the CPU only with
``NETCANVAS_KERNELS_CPU=1``), a fused chain is one module, so it is one row, whose ``group``
lists its node ids (an unfused node's row: ``[its id]``). The loss is the project's too,
fused cross-entropy included.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import fx, nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from .compiler import compile_graph, input_dtype
from .errors import GraphError, TrainingError
from .inference import Analysis, analyze
from .kernels.runtime import check_mode
from .optimizers import OPTIMIZERS, keyword_arguments
from .project import Project
from .training.objective import make_objective

WARMUP = 2  # untimed runs first: allocator, caches and lazy initialization settle


@dataclass
class NodeProfile:
    """One row: a node id, its type, median forward / backward milliseconds, the bytes of
    its output (all items of a node with several outputs), its parameters, its forward FLOPs;
    ``group``: the node ids the row stands for, in graph order: ``[id]``, or a fused chain's
    (then ``id`` is its first node's, ``type`` its types joined by "+", and the figures the
    chain's: times, parameters and FLOPs added up, the output its last node's)."""

    id: str
    type: str
    forward_ms: float
    backward_ms: float
    output_bytes: int
    params: int
    flops: int
    group: list[str] = field(default_factory=list)


@dataclass
class Profile:
    """What ``profile`` returns: the rows in the graph's order; the whole model's FLOPs
    (FlopCounterMode's total), forward and backward milliseconds; the loss's (``loss``
    names it) and the optimizer step's milliseconds; the batch, the device, the repeats;
    ``notes``: how it was measured where a choice was made (what the kernels fused, and
    why not); ``kernels``: the setting the model was compiled with."""

    nodes: list[NodeProfile]
    total_flops: int
    forward_ms: float
    backward_ms: float
    loss_ms: float
    optimizer_ms: float
    batch_size: int
    device: str
    repeats: int
    loss: str
    notes: list[str] = field(default_factory=list)
    kernels: str = "off"

    def to_json(self) -> dict:
        """The ``profile --json`` object."""
        data = asdict(self)
        data["nodes"] = [asdict(n) for n in self.nodes]
        return data

    def node_ms(self) -> float:
        """The nodes' forward and backward milliseconds added up."""
        return sum(n.forward_ms + n.backward_ms for n in self.nodes)

    def top(self, k: int = 5) -> list[NodeProfile]:
        """The ``k`` nodes taking the most forward + backward time, most first."""
        return sorted(self.nodes, key=lambda n: -(n.forward_ms + n.backward_ms))[:k]


def profile(project: Project, batch_size: int, device: torch.device | str = "cpu", repeats: int = 10,
            seed: int = 0, kernels: str | None = None) -> Profile:
    """Profile ``project``'s model on a random batch of ``batch_size`` on ``device``, compiled
    with ``kernels`` (default: the project's ``training.kernels``, as the trainer does).

    Raises ``GraphError`` when the graph has errors, ``ValueError`` for a batch size or a
    repeat count below 1, or an unknown ``kernels``.
    """
    if batch_size < 1:
        raise ValueError(f"the batch size must be at least 1; received {batch_size}")
    if repeats < 1:
        raise ValueError(f"the repeat count must be at least 1; received {repeats}")
    a = analyze(project.graph)
    if not a.ok:
        raise GraphError(a.errors)
    device = torch.device(device)
    kernels = kernels or project.training.get("kernels", "off")
    check_mode(kernels)
    torch.manual_seed(seed)
    notes: list[str] = []
    loss_name, loss_node, loss_fn = _loss(project, a, notes, kernels)
    # as the trainer builds its training module: the unfused one, then the fused chains over
    # the same submodules (an unfused compile when nothing was fused)
    gm = compile_graph(project.graph, a, output=loss_node, device=device)
    if kernels != "off":
        fused = compile_graph(project.graph, a, output=loss_node, modules=gm, kernels=kernels)
        notes += getattr(fused, "kernel_notes", [])
        if getattr(fused, "fused", None):
            gm = fused
    gm.train()
    xs = [_random_input(a, i, batch_size, device) for i in a.inputs]
    sync = _synchronizer(device)

    total_flops, flops = _flops(gm, xs)
    whole_step, whole = _whole(gm, xs, loss_fn, project.training, sync)
    rows, forward, backward = _per_node(gm, xs, loss_fn, repeats, sync, whole_step)
    called = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    chain_of = {i: chain for chain in getattr(gm, "fused", []) for i in chain}
    nodes = []
    for node_id in a.order:
        if node_id not in called or chain_of.get(node_id, [node_id])[0] != node_id:
            continue  # an Input, a node the loss does not read, or a fused chain's later node
        group = chain_of.get(node_id, [node_id])
        nodes.append(NodeProfile(
            id=node_id, type="+".join(project.graph.nodes[i].type for i in group),
            # per repeat, the chain's nodes added up, then the median over the repeats
            forward_ms=_median([sum(t) for t in zip(*(forward[i] for i in group))]),
            backward_ms=_median([sum(t) for t in zip(*(backward[i] for i in group))]),
            output_bytes=rows.get(group[-1], 0),
            params=sum(p.numel() for i in group for p in gm.get_submodule(i).parameters()),
            flops=sum(flops.get(i, 0) for i in group), group=list(group)))
    return Profile(nodes, total_flops, *whole(), batch_size=batch_size, device=str(device), repeats=repeats,
                   loss=loss_name, notes=notes, kernels=kernels)


def _loss(project: Project, a: Analysis, notes: list[str], kernels: str = "off") -> tuple[str, str, Callable]:
    """The loss's name, the node it reads, and ``loss(output, x)`` on random targets: the
    project's own objective where it fits a random batch, else CrossEntropyLoss for a
    vector of scores and MSELoss for anything else."""
    out_shape = a.shapes[a.output]
    settings = project.training
    classes = out_shape[0] if out_shape and len(out_shape) == 1 and out_shape[0] > 1 else 2
    if len(a.inputs) == 1 and settings.get("target", "labels") in ("labels", "input"):
        try:
            objective = make_objective(project.graph, a, {**settings, "kernels": kernels}, classes,
                                       a.shapes[a.inputs[0]])
        except TrainingError as e:
            notes.append(f"the project's {settings.get('loss')} does not fit a random batch ({e})")
        else:
            notes += objective.notes
            notes.append(f"loss: the project's {settings['loss']} on random targets")

            def loss(out, x):
                y = torch.randint(0, classes, (out.shape[0],), device=out.device)
                return objective.loss(out, x, y)
            return settings["loss"], objective.loss_node, loss
    if out_shape and len(out_shape) == 1 and out_shape[0] > 1:
        notes.append("loss: CrossEntropyLoss on random labels (the project's objective does not apply)")
        return "CrossEntropyLoss", a.output, lambda out, x: F.cross_entropy(
            out, torch.randint(0, out.shape[1], (out.shape[0],), device=out.device))
    notes.append("loss: MSELoss against zeros (the project's objective does not apply)")
    return "MSELoss", a.output, lambda out, x: F.mse_loss(out, torch.zeros_like(out))


def _random_input(a: Analysis, input_id: str, batch: int, device: torch.device) -> torch.Tensor:
    shape = (batch, *a.shapes[input_id])
    if input_dtype(a, input_id) == torch.int64:
        vocab = int(a.params[input_id].get("vocab_size") or 2)  # token ids below the vocabulary
        return torch.randint(0, max(vocab, 1), shape, device=device)
    return torch.randn(shape, device=device)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def _flops(gm: fx.GraphModule, xs: list[torch.Tensor]) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total over one forward, and its count per top-level submodule."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gm(*xs)
    counts = counter.get_flop_counts()
    prefix = type(gm).__name__ + "."
    per_node = {key[len(prefix):]: sum(ops.values()) for key, ops in counts.items()
                if key.startswith(prefix) and "." not in key[len(prefix):]}
    return counter.get_total_flops(), per_node


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 0


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _per_node(gm: fx.GraphModule, xs: list[torch.Tensor], loss_fn, repeats: int, sync,
              plain_step: Callable[[int], None]):
    """Per node: output bytes, and the forward and backward milliseconds of each repeat,
    taken by hooks during ordinary training steps of ``gm`` (forward, loss, backward).
    ``plain_step(i)`` runs after each, with the hooks off: the whole model measured apart
    in turn with the nodes, so that both meet the same load on a shared machine.

    Forward: from a submodule's forward pre-hook to its forward hook. Backward: a hook on
    each node's output fires when its gradient is complete, just before autograd runs that
    node's backward; autograd runs a node's backward functions (and the accumulation of its
    parameters' gradients) before turning to another node's, so the time from one node's
    hook to the next hook (or to the end of the backward) is that node's backward.
    """
    ids = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    out_bytes: dict[str, int] = {}
    forward: dict[str, float] = {}
    events: list[tuple[str, float]] = []
    started: dict[str, float] = {}
    on = [True]

    def now() -> float:
        sync()
        return time.perf_counter()

    def pre(node_id):
        def hook(module, args):
            if on[0]:
                started[node_id] = now()
        return hook

    def post(node_id):
        def hook(module, args, output):
            if not on[0]:
                return
            forward[node_id] = forward.get(node_id, 0.0) + (now() - started[node_id]) * 1000
            out_bytes[node_id] = _nbytes(output)
            for t in _tensors(output):
                if t.requires_grad:
                    t.register_hook(lambda grad: events.append((node_id, now())))
        return hook

    handles = []
    for node_id in ids:
        module = gm.get_submodule(node_id)
        handles += [module.register_forward_pre_hook(pre(node_id)), module.register_forward_hook(post(node_id))]
    fwd_runs: dict[str, list[float]] = {k: [] for k in ids}
    bwd_runs: dict[str, list[float]] = {k: [] for k in ids}
    try:
        for i in range(WARMUP + repeats):
            gm.zero_grad(set_to_none=True)
            forward.clear()
            events.clear()
            out = gm(*xs)
            if out.requires_grad:  # a model with nothing trainable has no backward
                out.backward(torch.autograd.grad(loss_fn(out, xs[0]), out)[0])
            end = now()
            on[0] = False
            plain_step(i)
            on[0] = True
            if i < WARMUP:
                continue
            backward = dict.fromkeys(ids, 0.0)
            for (node_id, t), (_, t_next) in zip(events, [*events[1:], ("", end)]):
                backward[node_id] += (t_next - t) * 1000
            for k in ids:
                fwd_runs[k].append(forward.get(k, 0.0))
                bwd_runs[k].append(backward[k])
    finally:
        for h in handles:
            h.remove()
    return out_bytes, fwd_runs, bwd_runs


def _whole(gm: fx.GraphModule, xs: list[torch.Tensor], loss_fn, settings: dict, sync):
    """``step(i)``, one training step timed in parts, and ``medians()``: the medians of the
    whole model's forward, backward (from the loss's gradient at the output), loss (its
    forward and its backward to the output) and optimizer step over the steps after
    warm-up."""
    optimizer = _optimizer(gm, settings)
    times: dict[str, list[float]] = {"forward": [], "backward": [], "loss": [], "step": []}

    def timed(key: str, i: int, fn):
        sync()
        start = time.perf_counter()
        value = fn()
        sync()
        if i >= WARMUP:
            times[key].append((time.perf_counter() - start) * 1000)
        return value

    def step(i: int) -> None:
        gm.zero_grad(set_to_none=True)
        out = timed("forward", i, lambda: gm(*xs))
        if not out.requires_grad:  # nothing trainable: the loss alone, no backward
            timed("loss", i, lambda: loss_fn(out, xs[0]))
            return
        grad = timed("loss", i, lambda: torch.autograd.grad(loss_fn(out, xs[0]), out)[0])
        timed("backward", i, lambda: out.backward(grad))
        if optimizer is not None:
            timed("step", i, optimizer.step)

    def medians() -> tuple[float, float, float, float]:
        return (_median(times["forward"]), _median(times["backward"]), _median(times["loss"]),
                _median(times["step"]))
    return step, medians


def _optimizer(gm: nn.Module, settings: dict) -> torch.optim.Optimizer | None:
    """The project's optimizer, as the trainer builds it (None: nothing is trainable)."""
    trainable = [p for p in gm.parameters() if p.requires_grad]
    choice = OPTIMIZERS.get(settings.get("optimizer", "SGD"), OPTIMIZERS["SGD"])
    if not trainable:
        return None
    merged = {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0, **settings}
    return getattr(torch.optim, choice.cls)(trainable, lr=merged["lr"], **keyword_arguments(choice, merged))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
