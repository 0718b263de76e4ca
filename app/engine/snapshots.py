"""What the training panel draws of a model: its filters and its activations.

Plain numpy arrays out; the panel only draws them (DESIGN rule 6).
"""

from __future__ import annotations

import numpy as np

from .graph import Graph
from .inference import Analysis
from .lazy import LazyModule, nn

torch = LazyModule("torch")  # the panel imports this module at the editor's start: torch loads at first use

_PASS_THROUGH = {"Flatten", "Reshape", "Dropout", "Identity"}


def conv_filters(model: nn.Module, graph: Graph, prefix: str = "") -> dict[str, np.ndarray]:
    """Each Conv1d/Conv2d/ConvTranspose2d node's kernels, ``[out, in, kh, kw]`` (1-d kernels
    as ``[out, in, 1, k]``), and, for a first Linear fed (through Flatten or Reshape only) by
    an image Input, its weights shaped like the image, ``[out, C, H, W]``: the classic
    MNIST templates. A repeated node shows its first copy; the layers inside a block node
    are named by their path (``layer1/conv1``)."""
    out: dict[str, np.ndarray] = {}
    for node in graph.nodes.values():
        module = getattr(model, node.id, None) if node.type != "Input" else None
        if module is None:
            continue
        if node.repeat > 1 and isinstance(module, nn.Sequential):
            module = module[0]
        if node.type in graph.blocks:
            out.update(conv_filters(module, graph.blocks[node.type].graph, f"{prefix}{node.id}/"))
        elif node.type in ("Conv2d", "Conv1d", "ConvTranspose2d") and isinstance(
                getattr(module, "weight", None), torch.Tensor):
            w = module.weight.detach().float().cpu()
            if node.type == "ConvTranspose2d":
                w = w.transpose(0, 1)  # torch stores [in, out, kh, kw]
            if w.dim() == 3:
                w = w.unsqueeze(2)
            out[prefix + node.id] = w.numpy().copy()
    image_linear = _first_linear_on_image(graph) if not prefix else None
    if image_linear is not None and graph.nodes[image_linear[0]].repeat == 1:
        node_id, shape = image_linear
        w = getattr(model, node_id).weight.detach().float().cpu()
        out[node_id] = w.reshape(w.shape[0], *shape).numpy().copy()
    return out


def _first_linear_on_image(graph: Graph) -> tuple[str, tuple[int, ...]] | None:
    for node in graph.nodes.values():
        if node.type != "Input":
            continue
        shape = tuple(node.params.get("shape", ()))
        if len(shape) != 3 and not (len(shape) == 1 and _square(shape[0])):
            continue
        if len(shape) == 1:
            side = int(round(shape[0] ** 0.5))
            shape = (1, side, side)
        current = node.id
        while True:
            nxt = [e.target for e in graph.edges if e.source == current]
            if len(nxt) != 1:
                break
            target = graph.nodes[nxt[0]]
            if target.type == "Linear":
                return target.id, shape
            if target.type not in _PASS_THROUGH:
                break
            current = target.id
    return None


def _square(n: int) -> bool:
    side = int(round(n ** 0.5))
    return side * side == n and n >= 16


def activations(model: nn.Module, analysis: Analysis, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Every node's output for the samples ``x`` ``[n, *input_shape]``, in eval mode (the
    model's mode is restored after), without gradients. Input nodes map to ``x`` itself."""
    captured: dict[str, np.ndarray] = {}
    hooks = [(module, _keep(captured, node_id)) for node_id in analysis.order
             if isinstance(module := getattr(model, node_id, None), nn.Module)]
    with torch.no_grad():
        run_hooked(model, hooks, x)
    for node_id in analysis.inputs:
        captured[node_id] = x.detach().float().cpu().numpy()
    return captured


def run_hooked(model: nn.Module, hooks, x: torch.Tensor) -> None:
    """Run ``model(x)`` in eval mode with forward ``hooks`` ``[(module, hook)]`` registered
    for the call alone; the model's mode is restored after, even when the call raises."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def _keep(store: dict[str, np.ndarray], node_id: str):
    def hook(module, inputs, output):
        if isinstance(output, tuple) and output:  # several outputs (LSTM, Split, attention): port 0
            output = output[0]
        if isinstance(output, torch.Tensor):
            store[node_id] = output.detach().float().cpu().numpy()

    return hook
