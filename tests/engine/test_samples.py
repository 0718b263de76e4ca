"""Sample inputs (app/engine/samples.py): what the exporters and the ONNX checks feed a graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.samples import sample_input, sample_tensors, vocabulary
from tests.helpers import chain


def _two_inputs() -> Graph:
    """``tokens`` feeds an Embedding of 7 rows; ``pixels`` a Linear; both meet in a Concat."""
    g = chain(("tokens", "Input", {"shape": [5]}), ("emb", "Embedding", {"num_embeddings": 7, "embedding_dim": 2}),
              ("flat", "Flatten"))
    g.add_node(Node("pixels", "Input", {"shape": [3]}))
    g.add_node(Node("fc", "Linear", {"out_features": 10}))
    g.add_node(Node("cat", "Concat", {}))
    g.add_edge(Edge("pixels", "fc"))
    g.add_edge(Edge("flat", "cat", 0))
    g.add_edge(Edge("fc", "cat", 1))
    return g


def test_the_vocabulary_is_that_of_the_embedding_an_input_feeds():
    g = _two_inputs()
    a = analyze(g)
    assert a.ok, a.errors
    assert vocabulary(g, a, "tokens") == 7
    assert vocabulary(g, a, "pixels") == 0
    assert vocabulary(g, a, None) == 0


def test_token_ids_stay_within_the_vocabulary_and_other_inputs_are_normal():
    g = _two_inputs()
    a = analyze(g)
    rng = np.random.default_rng(0)
    ids = sample_input(g, a, "tokens", [400, 5], rng)
    assert ids.dtype == np.float32 and ids.shape == (400, 5)
    assert set(np.unique(ids)) == set(range(7))
    values = sample_input(g, a, "pixels", [400, 3], rng)
    assert values.dtype == np.float32 and (values != np.round(values)).any() and (values < 0).any()
    as_int = sample_input(g, a, "pixels", [50, 3], rng, np.int64)
    assert as_int.dtype == np.int64 and set(np.unique(as_int)) == {0, 1}
    assert set(np.unique(sample_input(g, a, "tokens", [50, 5], rng, np.int32))) <= set(range(7))


def test_sample_tensors_follow_the_inputs_order_and_the_seed():
    g = _two_inputs()
    a = analyze(g)
    tokens, pixels = sample_tensors(g, a, 3, seed=4)
    assert a.inputs == ["tokens", "pixels"]
    assert tokens.shape == (3, 5) and pixels.shape == (3, 3) and tokens.dtype == pixels.dtype == torch.float32
    again = sample_tensors(g, a, 3, seed=4)
    assert all(torch.equal(x, y) for x, y in zip((tokens, pixels), again))
    assert not torch.equal(pixels, sample_tensors(g, a, 3, seed=5)[1])


@pytest.mark.parametrize("batch", [1, 6])
def test_the_samples_run_through_the_compiled_graph(batch):
    g = _two_inputs()
    a = analyze(g)
    out = compile_graph(g, a)(*sample_tensors(g, a, batch, seed=0))
    assert out.shape == (batch, 20)
