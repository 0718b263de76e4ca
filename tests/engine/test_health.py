"""Layer health: the figures per node, and the flags courses teach (vanishing gradients in a
deep sigmoid MLP, dead ReLUs, saturation, update ratios far from 1e-3)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from app.engine import health
from app.engine.compiler import compile_graph
from app.engine.datasets.base import Split
from app.engine.health import HealthPacer, HealthProbe, flags, probe_batch
from app.engine.inference import analyze
from tests.helpers import chain

KEYS = {"mean", "std", "dead", "saturated", "grad_norm", "weight_norm", "update_ratio", "flags"}


def probe_step(graph, x, y, lr=0.1, setup=None):
    """One SGD step bracketed by the probe; returns (stats, model)."""
    torch.manual_seed(0)
    a = analyze(graph)
    model = compile_graph(graph, a)
    if setup:
        setup(model)
    probe = HealthProbe(model, graph, a)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    probe.before_step(model)
    optimizer.step()
    probe.after_step(model)
    assert probe.fresh
    stats = probe.measure(model, x)
    assert not probe.fresh  # reported once
    return stats, model


def codes(stats, node):
    return [f["code"] for f in stats[node]["flags"]]


def test_a_deep_sigmoid_mlp_shows_vanishing_gradients_at_its_first_layers():
    layers = [("input", "Input", {"shape": [8]})]
    for i in range(1, 11):
        layers += [(f"fc{i}", "Linear", {"out_features": 16}), (f"sig{i}", "Sigmoid")]
    layers.append(("out", "Linear", {"out_features": 3}))
    torch.manual_seed(1)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    stats, _ = probe_step(chain(*layers), x, y)
    assert "vanishing_gradient" in codes(stats, "fc1") and "vanishing_gradient" in codes(stats, "fc2")
    assert "vanishing_gradient" not in codes(stats, "out")
    assert stats["fc1"]["grad_norm"] < 1e-3 * stats["out"]["grad_norm"]
    flag = next(f for f in stats["fc1"]["flags"] if f["code"] == "vanishing_gradient")
    assert len(flag["title"]) <= 30 and "ReLU" in flag["explain"]
    assert "update_too_small" not in codes(stats, "fc1")  # the vanishing gradient explains it
    assert stats["sig1"]["saturated"] is not None and stats["sig1"]["dead"] is None
    assert stats["sig1"]["grad_norm"] is None and stats["sig1"]["weight_norm"] is None


def test_a_relu_behind_a_huge_negative_bias_is_dead_and_every_key_is_the_contracts():
    graph = chain(("input", "Input", {"shape": [4]}), ("fc1", "Linear", {"out_features": 16}), ("relu", "ReLU"),
                  ("fc2", "Linear", {"out_features": 2}))

    def negative(model):
        with torch.no_grad():
            model.fc1.bias.fill_(-100.0)

    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    stats, model = probe_step(graph, x, y, setup=negative)
    assert set(stats) == {"fc1", "relu", "fc2"}  # every non-Input node
    for node_stats in stats.values():
        assert set(node_stats) == KEYS
        for f in node_stats["flags"]:
            assert set(f) == {"code", "title", "explain"} and f["code"] in health.CODES and len(f["title"]) <= 30
    assert stats["relu"]["dead"] == 1.0 and stats["relu"]["mean"] == 0.0
    dead = next(f for f in stats["relu"]["flags"] if f["code"] == "dead_units")
    assert dead["title"] == "Dead ReLUs: 100 %" and "LeakyReLU" in dead["explain"]
    assert stats["fc1"]["dead"] is None and stats["fc1"]["saturated"] is None
    w = torch.cat([model.fc1.weight.detach().flatten(), model.fc1.bias.detach()])
    assert stats["fc1"]["weight_norm"] == pytest.approx(float(w.norm()), rel=1e-5)
    assert stats["fc1"]["grad_norm"] == 0.0  # nothing flows back through dead units
    assert stats["fc2"]["update_ratio"] > 0 and model.training  # the mode is restored


def test_a_repeated_node_is_one_node_with_all_its_copies_weights():
    graph = chain(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 4}), ("tanh", "Tanh"),
                  ("out", "Linear", {"out_features": 2}))
    graph.nodes["fc"].repeat = 3
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    stats, model = probe_step(graph, x, y)
    copies = torch.cat([p.detach().flatten() for p in model.fc.parameters()])
    assert copies.numel() == 3 * (16 + 4)
    assert stats["fc"]["weight_norm"] == pytest.approx(float(copies.norm()), rel=1e-5)
    assert stats["fc"]["std"] == pytest.approx(float(model.fc(x).detach().std(unbiased=False)), rel=1e-4)


def test_saturation_and_the_update_ratio_flags():
    out = torch.tensor([[0.999, 0.001, 0.5, 0.99]])
    assert health.saturated_fraction(out, "Sigmoid") == 0.75
    assert health.saturated_fraction(torch.tensor([5.9, 3.0]), "Hardtanh", {"min_val": 0.0, "max_val": 6.0}) == 0.5
    assert health.saturated_fraction(out, "ReLU") is None
    sat = flags("Tanh", {"saturated": 0.9})
    assert [f["code"] for f in sat] == ["saturated"] and sat[0]["title"] == "Saturated Tanh: 90 %"
    base = {"grad_norm": 1.0, "weight_norm": 10.0}
    assert [f["code"] for f in flags("Linear", {**base, "update_ratio": 0.5})] == ["update_too_large"]
    assert [f["code"] for f in flags("Linear", {**base, "update_ratio": 1e-7})] == ["update_too_small"]
    assert flags("Linear", {**base, "update_ratio": 1e-3}) == []
    assert [f["code"] for f in flags("Linear", {"grad_norm": 5e3, "weight_norm": 1.0})] == ["exploding_gradient"]
    assert [f["code"] for f in flags("Linear", {"grad_norm": math.nan, "weight_norm": 1.0})] == ["exploding_gradient"]
    context = {"max_relative_grad": 1.0, "median_relative_grad": 1e-5}
    assert [f["code"] for f in flags("Linear", base, context=context)] == ["exploding_gradient"]  # 0.1 > 1000 x 1e-5


def test_measure_without_a_step_has_no_gradient_figures():
    graph = chain(("input", "Input", {"shape": [3]}), ("fc", "Linear", {"out_features": 2}))
    a = analyze(graph)
    model = compile_graph(graph, a)
    stats = HealthProbe(model, graph, a).measure(model, torch.randn(5, 3))
    assert stats["fc"]["grad_norm"] is None and stats["fc"]["update_ratio"] is None
    assert stats["fc"]["weight_norm"] > 0 and stats["fc"]["flags"] == []


def test_the_probe_batch_is_two_minibatches_at_most_256_and_the_same_every_time():
    split = Split(torch.arange(1000, dtype=torch.float32).reshape(500, 2), torch.zeros(500, dtype=torch.long))
    assert len(probe_batch(split, 16)) == 32
    assert len(probe_batch(split, 400)) == 256
    assert torch.equal(probe_batch(split, 16), probe_batch(split, 16))
    assert len(probe_batch(Split(split.x[:5], split.y[:5]), 16)) == 5


def test_the_pacer_measures_at_once_then_at_most_every_so_often():
    pacer = HealthPacer()
    assert pacer.due(0.0)
    pacer.measured(0.0, 0.001)
    assert not pacer.due(0.5)
    for _ in range(health.HEALTH_EVERY_SNAPSHOTS):
        pacer.served()
    assert not pacer.due(health.HEALTH_MIN_SECONDS / 2) and pacer.due(health.HEALTH_MIN_SECONDS)
    pacer.measured(10.0, 0.1)  # an expensive measurement waits longer (HEALTH_DUTY)
    for _ in range(health.HEALTH_EVERY_SNAPSHOTS):
        pacer.served()
    assert not pacer.due(10.0 + health.HEALTH_MIN_SECONDS) and pacer.due(10.0 + 0.1 / health.HEALTH_DUTY)


def test_the_probe_batch_of_large_samples_stays_within_its_bytes():
    split = Split(torch.zeros(300, 3, 224, 224), torch.zeros(300, dtype=torch.long))
    probe = probe_batch(split, 128)
    assert 1 <= len(probe) and probe.numel() * 4 <= health.PROBE_MAX_BYTES


def test_weights_near_zero_are_not_judged_by_their_ratios():
    tiny = {"grad_norm": 1e-2, "weight_norm": 1e-3, "update_ratio": 5.0}  # a zero-initialized token's first steps
    assert flags("ClassToken", tiny) == []
    assert health.model_context({"cls": tiny, "fc": {"grad_norm": 1e-3, "weight_norm": 1.0}}) == {
        "max_relative_grad": 1e-3, "median_relative_grad": 1e-3}
