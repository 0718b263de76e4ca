"""Layer health: what the courses teach to look for while a network learns, per node.

    probe = HealthProbe(model, graph, analysis)
    probe.before_step(model)         # only on a step whose health is wanted: copies the weights
    optimizer.step()
    probe.after_step(model)          # gradient norms and update ratios of that step
    stats = probe.measure(model, x)  # {node id: {"mean", "std", "dead", "saturated", ...}}

``measure`` runs the probe batch ``x`` forward (no gradients, eval mode, the model's mode
restored after) and reads every node's output through forward hooks on its top-level
submodule: a repeated node or a block node is one node (its last output, all its
parameters). ``flags`` turns one node's figures into the warnings a badge shows. No Qt here.
"""

from __future__ import annotations

import math
import statistics
import time

from .datasets.base import Split
from .graph import Graph
from .inference import Analysis
from .lazy import LazyModule, nn, no_grad
from .snapshots import run_hooked

# -- thresholds (why these values) -------------------------------------------------------------
# A node's gradient is judged relative to its weights (||grad|| / ||w||): that figure does not
# grow with the layer's size, so a 10-unit layer and a 10,000-unit one compare fairly.
#
# Vanishing: a relative gradient 1000 times smaller than the model's largest means that layer
# learns 1000 times slower than the others (a 10-layer sigmoid MLP reaches 1e-6 and below at its
# first layers); below 1e-7 relative, an SGD step changes the float32 weights by nothing at all.
VANISHING_FRACTION = 1e-3
VANISHING_RELATIVE = 1e-7
# Exploding: a gradient norm above 1e3 is far beyond anything a normalized input and a usual
# loss produce (those are of order 1-10 at initialization); 1000 times the median relative
# gradient of the model's nodes means one node's steps dwarf all others'.
EXPLODING_NORM = 1e3
EXPLODING_FACTOR = 1e3
# Dead units: more than half the units of a ReLU output zero for every probe sample: that
# half gets no gradient and cannot come back by itself (a few dead units are normal).
DEAD_FRACTION = 0.5
# Saturation: an output within 2 % of its range from an asymptote has a derivative of a few
# percent at most (sigmoid: < 0.02); more than 60 % of a node's outputs there stall learning.
SATURATION_MARGIN = 0.02
SATURATED_FRACTION = 0.6
# Update ratio ||w_after - w_before|| / ||w_before||: Karpathy's rule of thumb is about 1e-3
# per step. Two orders of magnitude either side is clearly off: below 1e-5 the weights barely
# move (learning rate too low, or a converged/stuck layer); above 1e-1 a tenth of the weights'
# size changes per step (learning rate too high: the loss jumps or diverges).
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1
# Both relative figures (gradient and update over the weights) say nothing about weights that
# start at or near zero (a ViT's class token, LayerScale's 1e-6, zero biases): a first step
# that moves them from 0 is an "infinite" ratio. Nodes whose weights have an L2 norm below this
# (freshly initialized layers have norms of order 1) are not judged by them.
MIN_WEIGHT_NORM = 0.1

# the probe batch: a couple of training minibatches, never more than this many samples, nor
# more than this many bytes of input (it is kept for the whole run: 256 RGB 224 x 224 images
# would hold 150 MB)
PROBE_BATCHES = 2
PROBE_MAX_SAMPLES = 256
PROBE_MAX_BYTES = 32 * 2**20

# how often the trainer measures health (health costs a forward of the probe batch and a copy
# of the weights on one step): at most every HEALTH_EVERY_SNAPSHOTS snapshots (the panel pulls
# one every 0.5-1 s), at most every HEALTH_MIN_SECONDS, and never more than HEALTH_DUTY of the
# wall time (a measurement that took 20 ms waits 1 s before the next)
HEALTH_EVERY_SNAPSHOTS = 2
HEALTH_MIN_SECONDS = 1.0
HEALTH_DUTY = 0.02

DEAD_TYPES = ("ReLU", "ReLU6")
# the asymptotes of each saturating type (Hardtanh's come from its parameters)
SATURATING = {"Sigmoid": (0.0, 1.0), "Hardsigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Hardtanh": None}

CODES = ("vanishing_gradient", "exploding_gradient", "dead_units", "saturated", "update_too_small",
         "update_too_large")
KEYS = ("mean", "std", "dead", "saturated", "grad_norm", "weight_norm", "update_ratio", "flags")

torch = LazyModule("torch")  # the editor's panel imports this at its start: torch loads at first use


def probe_batch(split: Split, batch_size: int, seed: int = 0) -> torch.Tensor:
    """A fixed sample of ``split``'s inputs: PROBE_BATCHES minibatches of ``batch_size``,
    at most PROBE_MAX_SAMPLES and PROBE_MAX_BYTES (at least one sample), drawn once with
    ``seed`` (the same samples every measurement, so figures over time compare)."""
    sample_bytes = split.x[0].numel() * split.x.element_size() if len(split) else 1
    n = min(len(split), PROBE_MAX_SAMPLES, max(1, PROBE_BATCHES * int(batch_size)),
            max(1, PROBE_MAX_BYTES // max(1, sample_bytes)))
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.x[order.sort().values]


class HealthProbe:
    """Per node of ``graph`` with a submodule in ``model``: its output statistics, and for
    a step bracketed by ``before_step``/``after_step`` its gradient norm and update ratio."""

    def __init__(self, model: nn.Module, graph: Graph, analysis: Analysis):
        self.graph = graph
        self.order = [n for n in analysis.order if graph.nodes[n].type != "Input"
                      and isinstance(getattr(model, n, None), nn.Module)]
        self._before: dict[str, list[torch.Tensor]] = {}
        self._step: dict[str, tuple[float, float | None]] = {}  # node: (grad norm, update ratio)
        self.step_seconds = 0.0  # what before_step and after_step took on the last measured step

    @property
    def fresh(self) -> bool:
        """Whether a step was measured (``after_step``) that ``measure`` has not reported yet."""
        return bool(self._step)

    def _trainable(self, model: nn.Module, node_id: str) -> list[nn.Parameter]:
        return [p for p in getattr(model, node_id).parameters() if p.requires_grad]

    @no_grad
    def before_step(self, model: nn.Module) -> None:
        """Copy the trainable weights of every node that has some (call just before
        ``optimizer.step()``, only on a step whose health is wanted)."""
        started = time.perf_counter()
        # on the CPU: a second copy of the model on a device near its memory limit would
        # run out of memory on the first measured step (the footprint check counts no copy)
        self._before = {n: [p.detach().to("cpu", copy=True) for p in ps] for n in self.order
                        if (ps := self._trainable(model, n))}
        self.step_seconds = time.perf_counter() - started

    @no_grad
    def after_step(self, model: nn.Module) -> None:
        """The gradient norm of every node with trainable weights (the gradients the step
        used) and, when ``before_step`` copied them, its update ratio."""
        started = time.perf_counter()
        self._step = {}
        for n in self.order:
            ps = self._trainable(model, n)
            grads = [p.grad for p in ps if p.grad is not None]
            if not grads:
                continue
            grad = _norm(grads)
            ratio = None
            before = self._before.get(n)
            if before is not None and len(before) == len(ps):
                size = _norm(before)
                if size > 0:
                    ratio = _norm([p.detach().cpu() - b for p, b in zip(ps, before)]) / size
            self._step[n] = (grad, ratio)
        self._before = {}
        self.step_seconds += time.perf_counter() - started

    @no_grad
    def measure(self, model: nn.Module, x: torch.Tensor) -> dict[str, dict]:
        """Every node's figures (the contract's keys, ``KEYS``) for the probe batch ``x``
        (on the model's device and dtype), with its ``flags``. ``grad_norm`` and
        ``update_ratio`` come from the step ``after_step`` last measured (None when none
        was, or when the node has no trainable weights); they are reported once."""
        # each output is summarized by its hook at once: holding every node's output for the
        # whole probe batch would take memory in proportion to the model's depth
        captured: dict[str, dict] = {}
        run_hooked(model, [(getattr(model, n), self._summarize(captured, n)) for n in self.order], x)
        stats: dict[str, dict] = {}
        for n in self.order:
            summary = captured.get(n)
            if summary is None:  # not on the path to the output: never ran
                continue
            ps = self._trainable(model, n)
            grad, ratio = self._step.get(n, (None, None))
            stats[n] = {
                **summary,
                "grad_norm": grad,
                "weight_norm": _norm([p.detach() for p in ps]) if ps else None,
                "update_ratio": ratio,
                "flags": []}
        self._step = {}
        context = model_context(stats)
        for n, s in stats.items():
            s["flags"] = flags(self.graph.nodes[n].type, s, context=context)
        return stats

    def _summarize(self, store: dict[str, dict], node_id: str):
        """A forward hook keeping the mean, std, dead and saturated share of the node's output."""
        node = self.graph.nodes[node_id]

        def hook(module, inputs, output):
            if isinstance(output, tuple) and output:  # several outputs (LSTM, Split): port 0
                output = output[0]
            if not isinstance(output, torch.Tensor):
                return
            out = output.detach().float()
            finite = out if bool(torch.isfinite(out).all()) else out[torch.isfinite(out)]
            store[node_id] = {
                "mean": float(finite.mean()) if finite.numel() else float("nan"),
                "std": float(finite.std(unbiased=False)) if finite.numel() > 0 else float("nan"),
                "dead": dead_fraction(out) if node.type in DEAD_TYPES else None,
                "saturated": saturated_fraction(out, node.type, node.params)}
        return hook


def dead_fraction(out: torch.Tensor) -> float:
    """The share of units (every value position of one sample: features, or channels x
    positions) that are exactly 0 for every sample of the batch ``out`` ``[N, ...]``."""
    if out.dim() < 2 or out.shape[0] == 0:
        return float((out == 0).all()) if out.numel() else 0.0
    return float((out == 0).all(dim=0).float().mean())


def saturated_fraction(out: torch.Tensor, node_type: str, params: dict | None = None) -> float | None:
    """The share of outputs within SATURATION_MARGIN of the range from an asymptote, for the
    saturating types (Sigmoid, Hardsigmoid, Tanh, Hardtanh); None for any other type."""
    if node_type not in SATURATING:
        return None
    low, high = SATURATING[node_type] or (float((params or {}).get("min_val", -1.0)),
                                         float((params or {}).get("max_val", 1.0)))
    if out.numel() == 0:
        return 0.0
    margin = SATURATION_MARGIN * (high - low)
    return float(((out <= low + margin) | (out >= high - margin)).float().mean())


def model_context(stats: dict[str, dict]) -> dict[str, float]:
    """What the relative tests of ``flags`` compare with: the largest and the median
    relative gradient (||grad|| / ||w||) over the nodes that have one."""
    rel = [r for s in stats.values() if (r := relative_gradient(s)) is not None and math.isfinite(r)]
    return {"max_relative_grad": max(rel), "median_relative_grad": statistics.median(rel)} if rel else {}


def relative_gradient(stats: dict) -> float | None:
    """||grad|| / ||w|| of a node, or None without both (or with weights whose norm is below
    MIN_WEIGHT_NORM)."""
    g, w = stats.get("grad_norm"), stats.get("weight_norm")
    if g is None or w is None or w < MIN_WEIGHT_NORM:
        return None
    return g / w


def flags(node_type: str, stats: dict, *, context: dict | None = None) -> list[dict]:
    """The warnings for one node of type ``node_type`` with the figures ``stats`` (the keys
    of ``HealthProbe.measure``): a list of {"code", "title", "explain"}, codes from
    ``CODES``. ``context`` (``model_context`` of all nodes; optional) enables the tests
    relative to the rest of the model."""
    out: list[dict] = []
    context = context or {}
    grad, rel = stats.get("grad_norm"), relative_gradient(stats)
    vanishing = False
    if grad is not None and not math.isfinite(grad):
        out.append(_flag("exploding_gradient", "Exploding gradients",
                         "The gradient of this layer's weights is NaN or infinite. Lower the learning rate, "
                         "clip gradients, or add normalization (BatchNorm, LayerNorm)."))
    elif grad is not None:
        top, median = context.get("max_relative_grad"), context.get("median_relative_grad")
        if rel is not None and (rel < VANISHING_RELATIVE or (top and rel < VANISHING_FRACTION * top)):
            vanishing = True
            than = f", {top / rel:.0f} times less than the model's largest" if top and rel > 0 else ""
            out.append(_flag("vanishing_gradient", "Vanishing gradients",
                             f"This layer's gradient is {rel:.1e} of its weights{than}: it barely learns. "
                             "Try ReLU-family activations instead of sigmoid/tanh, He initialization, "
                             "BatchNorm, residual connections, or fewer layers."))
        elif grad > EXPLODING_NORM or (rel is not None and median and rel > EXPLODING_FACTOR * median):
            out.append(_flag("exploding_gradient", "Exploding gradients",
                             f"This layer's gradient norm is {grad:.3g}, far larger than usual. Lower the "
                             "learning rate, clip gradients, normalize the inputs, or add BatchNorm."))
    dead = stats.get("dead")
    if dead is not None and dead > DEAD_FRACTION:
        out.append(_flag("dead_units", f"Dead ReLUs: {dead:.0%}".replace("%", " %"),
                         f"{dead:.0%} of this layer's units output 0 for every probe sample, so they get no "
                         "gradient and stop learning. Lower the learning rate, use LeakyReLU, He "
                         "initialization, or a small positive bias."))
    sat = stats.get("saturated")
    if sat is not None and sat > SATURATED_FRACTION:
        out.append(_flag("saturated", f"Saturated {node_type}: {sat:.0%}".replace("%", " %")[:30],
                         f"{sat:.0%} of the outputs sit at the ends of the {node_type}'s range, where its "
                         "slope is nearly 0 and gradients vanish. Normalize the inputs, use smaller initial "
                         "weights (Xavier), add BatchNorm before it, or use ReLU."))
    ratio = stats.get("update_ratio")
    if ratio is not None and math.isfinite(ratio) and (stats.get("weight_norm") or 0.0) >= MIN_WEIGHT_NORM:
        if ratio < UPDATE_RATIO_LOW and not vanishing:  # a vanishing gradient explains it already
            out.append(_flag("update_too_small", f"Update too small: {ratio:.0e}",
                             f"The last step changed the weights by {ratio:.1e} of their size (about 1e-3 "
                             "is healthy): learning is very slow. Raise the learning rate."))
        elif ratio > UPDATE_RATIO_HIGH:
            out.append(_flag("update_too_large", f"Update too large: {ratio:.0e}",
                             f"The last step changed the weights by {ratio:.1e} of their size (about 1e-3 "
                             "is healthy): training is unstable. Lower the learning rate."))
    return out


class HealthPacer:
    """When the trainer measures health: at most every HEALTH_EVERY_SNAPSHOTS snapshots, every
    HEALTH_MIN_SECONDS, and within HEALTH_DUTY of the wall time; the first time at once."""

    def __init__(self):
        self._last: float | None = None  # time.monotonic() of the last measurement
        self._cost = 0.0
        self._snapshots = 0

    def due(self, now: float) -> bool:
        if self._last is None:
            return True
        wait = max(HEALTH_MIN_SECONDS, self._cost / HEALTH_DUTY)
        return self._snapshots >= HEALTH_EVERY_SNAPSHOTS - 1 and now - self._last >= wait

    def served(self) -> None:
        """A snapshot went out without a measurement."""
        self._snapshots += 1

    def measured(self, now: float, cost: float) -> None:
        self._last, self._cost, self._snapshots = now, cost, 0


def _flag(code: str, title: str, explain: str) -> dict:
    return {"code": code, "title": title, "explain": explain}


def _norm(tensors: list[torch.Tensor]) -> float:
    """The L2 norm of all of ``tensors`` together."""
    if not tensors:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors])))
