"""Transformer building blocks (layers/tokens.py, modules/tokens.py): weight names and
shapes as the project format gives them, their initialization, and StochasticDepth as
torchvision's. Shapes and counts of every sample are test_catalogue.py's."""

from __future__ import annotations

import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.layers import CATALOGUE, ShapeError
from app.engine.modules import StochasticDepth


def params(name: str, given: dict) -> dict:
    return {**CATALOGUE[name].defaults(), **given}


def build(name: str, shape, **given):
    return CATALOGUE[name].build([tuple(shape)], params(name, given))


def compiled(name: str, shape, given: dict):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": list(shape)}))
    g.add_node(Node("t", name, given))
    g.add_edge(Edge("x", "t", 0))
    a = analyze(g)
    assert a.ok, a.errors
    return compile_graph(g, a), a


@pytest.mark.parametrize("name, shape, given, weights", [
    ("ClassToken", (196, 8), {}, {"t.token": (1, 1, 8)}),
    ("PositionalEmbedding", (197, 8), {}, {"t.table": (1, 197, 8)}),
    ("LayerScale", (6, 5, 7), {}, {"t.gamma": (6, 1, 1)}),
    ("LayerScale", (4, 9), {"dim": 2}, {"t.gamma": (9,)}),
    ("LayerScale", (4, 9), {"dim": -2}, {"t.gamma": (4, 1)}),
    ("Scale", (4, 9), {"factor": 0.5}, {}),
    ("StochasticDepth", (4, 9), {"p": 0.1}, {}),
])
def test_weights_are_named_and_shaped_as_the_format_says(name, shape, given, weights):
    model, a = compiled(name, shape, given)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == weights
    assert a.param_counts["t"] == sum(torch.Size(s).numel() for s in weights.values())


def test_class_token_prepends_a_zero_initialized_token():
    module = build("ClassToken", (3, 4))
    assert torch.equal(module.token, torch.zeros(1, 1, 4))
    with torch.no_grad():
        module.token.fill_(7.0)
    x = torch.randn(2, 3, 4)
    out = module(x)
    assert out.shape == (2, 4, 4) and torch.equal(out[:, 1:], x) and torch.all(out[:, 0] == 7.0)


def test_positional_embedding_is_initialized_like_vit():
    torch.manual_seed(0)
    table = build("PositionalEmbedding", (197, 64)).table
    assert abs(table.std().item() - 0.02) < 0.002 and abs(table.mean().item()) < 0.002
    module = build("PositionalEmbedding", (197, 64))
    x = torch.randn(2, 197, 64)
    assert torch.equal(module(x), x + module.table)


def test_sequence_types_need_tokens_by_features():
    for name in ("ClassToken", "PositionalEmbedding"):
        with pytest.raises(ShapeError, match=rf"{name} needs an input of shape \[T, D\]"):
            CATALOGUE[name].infer([(3, 5, 7)], {})


def test_layer_scale_starts_at_init_value_and_refuses_the_batch():
    module = build("LayerScale", (6, 5, 7), init_value=1e-5)
    assert torch.allclose(module.gamma, torch.full((6, 1, 1), 1e-5))
    x = torch.randn(2, 6, 5, 7)
    assert torch.allclose(module(x), x * 1e-5)
    with pytest.raises(ShapeError) as info:
        CATALOGUE["LayerScale"].infer([(4, 9)], params("LayerScale", {"dim": 0}))
    assert info.value.param == "dim" and "batch dimension" in str(info.value)
    assert CATALOGUE["LayerScale"].defaults() == {"dim": 1, "init_value": 1e-6}


def test_scale_multiplies_by_its_factor():
    x = torch.randn(2, 3)
    assert torch.equal(build("Scale", (3,), factor=-2.5)(x), x * -2.5)
    assert CATALOGUE["Scale"].param_index["factor"].required


def _torchvision_stochastic_depth(x, p, mode, training):
    """torchvision.ops.stochastic_depth, as written there (torchvision is not installed)."""
    if not training or p == 0.0:
        return x
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


@pytest.mark.parametrize("p, mode", [(0.3, "row"), (0.5, "batch"), (1.0, "row"), (0.0, "batch")])
def test_stochastic_depth_is_torchvisions(p, mode):
    module = build("StochasticDepth", (3, 4), p=p, mode=mode)
    x = torch.randn(64, 3, 4)
    torch.manual_seed(1)
    got = module.train()(x)
    torch.manual_seed(1)
    assert torch.equal(got, _torchvision_stochastic_depth(x, p, mode, True))
    assert torch.equal(module.eval()(x), x)
    if 0 < p < 1:
        kept = (got != 0).flatten(1).all(1)
        dropped = (got == 0).flatten(1).all(1)
        assert torch.all(kept | dropped)
        if mode == "batch":
            assert kept.all() or dropped.all()


def test_stochastic_depth_module_refuses_what_torchvision_refuses():
    with pytest.raises(ValueError):
        StochasticDepth(1.5)
    with pytest.raises(ValueError):
        StochasticDepth(0.5, "column")
    assert CATALOGUE["StochasticDepth"].param_index["mode"].choices == ("row", "batch")
