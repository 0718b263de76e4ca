"""onnxruntime against torch: the check that an exported ONNX file, or an imported one,
computes what the graph computes in NetCanvas."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from ..errors import NetCanvasError, first_line
from ..graph import Graph
from ..inference import Analysis
from ..samples import sample_input

# onnxruntime's names for the input types a model may declare
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
              "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16}


def onnxruntime_difference(model: str | Path | bytes, net: nn.Module, graph: Graph, analysis: Analysis,
                           inputs: Mapping[str, str], *, output: str | None = None, batch: int = 3,
                           seed: int = 0, error: type[NetCanvasError] = NetCanvasError,
                           checking: str = "the model") -> float:
    """The largest difference between onnxruntime running ``model`` (a path, so that it
    finds external weight files beside it, or the file's bytes) and ``net``, compiled from
    ``graph`` / ``analysis``, on the same random inputs (``sample_input``; ``batch`` samples
    where the file leaves the batch free). ``inputs`` maps the file's input names to Input
    node ids; ``output`` names the output compared (default: the first). The difference is
    relative to the outputs' magnitude where that is above 1: float32 rounding grows with it.
    Raises ``error`` (saying it was checking ``checking``) when onnxruntime cannot load or
    run the model, or gives another shape than torch."""
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # not the warnings about initializers no node reads
        session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types derive from Exception only
        raise error(f"onnxruntime cannot load the model to check {checking}: {first_line(e)}") from e
    rng = np.random.default_rng(seed)
    feeds, ours = {}, {}
    for info in session.get_inputs():
        node_id = inputs.get(info.name)
        dims = info.shape
        b = dims[0] if dims and isinstance(dims[0], int) else batch
        shape = [b, *(analysis.shapes[node_id] if node_id else [d if isinstance(d, int) else 1 for d in dims[1:]])]
        feeds[info.name] = sample_input(graph, analysis, node_id, shape, rng, _ORT_TYPES.get(info.type, np.float32))
        if node_id:
            ours[node_id] = torch.from_numpy(feeds[info.name].astype(np.float32))
    try:
        outputs = session.run([output] if output else None, feeds)
    except Exception as e:
        raise error(f"onnxruntime cannot run the model to check {checking}: {first_line(e)}") from e
    got = np.asarray(outputs[0], dtype=np.float64)
    with torch.no_grad():
        expected = net(*(ours[i] for i in analysis.inputs)).double().numpy()
    if got.shape != expected.shape:
        raise error(f"onnxruntime gives shape {list(got.shape)}, torch {list(expected.shape)}")
    if not got.size:
        return 0.0
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(got - expected))) / scale
