"""Sample inputs for checking a model against another run of it (an export against the
compiled graph, onnxruntime against torch): random values a graph's Inputs accept."""

from __future__ import annotations

import numpy as np
import torch

from .graph import Graph
from .inference import Analysis


def vocabulary(graph: Graph, analysis: Analysis, input_id: str | None) -> int:
    """The vocabulary (``num_embeddings``) of the Embedding that the Input ``input_id``
    feeds, or 0 when it feeds none."""
    for e in graph.edges:
        if e.source == input_id and graph.nodes[e.target].type == "Embedding":
            return analysis.params[e.target]["num_embeddings"]
    return 0


def sample_input(graph: Graph, analysis: Analysis, input_id: str | None, shape: list[int],
                 rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Random values of ``shape`` (batch first) and ``dtype`` for the Input ``input_id``
    (None: an input the graph does not use): token ids within the vocabulary where it
    feeds an Embedding, 0 or 1 for another integer ``dtype``, else standard normal."""
    n = vocabulary(graph, analysis, input_id)
    if n or np.issubdtype(dtype, np.integer):
        return rng.integers(0, n or 2, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def input_numpy_dtype(analysis: Analysis, input_id: str) -> type:
    """The numpy dtype of the Input ``input_id``'s values: its ``dtype`` (float32 default)."""
    return np.int64 if analysis.params.get(input_id, {}).get("dtype") == "int64" else np.float32


def sample_tensors(graph: Graph, analysis: Analysis, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    """One tensor of ``batch`` samples per Input (float32, or int64 token ids where the
    Input says so), in ``analysis.inputs`` order (what the compiled module's ``forward``
    takes), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return tuple(torch.from_numpy(sample_input(graph, analysis, i, [batch, *analysis.shapes[i]], rng,
                                               input_numpy_dtype(analysis, i)))
                 for i in analysis.inputs)
