"""The profiler: FLOPs as FlopCounterMode counts them, node by node and in total; every
node timed; bad input is refused. (How the times add up: bench/node_profile.py.)"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from app.engine.cli_io import open_project
from app.engine.compiler import compile_graph
from app.engine.errors import GraphError
from app.engine.profiler import profile
from app.engine.project import Project
from tests.helpers import chain


@pytest.fixture(scope="module")
def lenet():
    project, _ = open_project("lenet5")
    return project


def test_flops_equal_flop_counter_modes_total_on_the_same_model(lenet):
    result = profile(lenet, 8, repeats=1)
    gm = compile_graph(lenet.graph)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gm(torch.randn(8, 1, 28, 28))
    assert counter.get_total_flops() > 0
    assert result.total_flops == counter.get_total_flops()
    assert sum(n.flops for n in result.nodes) == result.total_flops


def test_a_linear_nodes_flops_are_two_in_out_batch(lenet):
    batch = 8
    result = profile(lenet, batch, repeats=1)
    rows = {n.id: n for n in result.nodes}
    fc1 = rows["fc1"]
    in_features, out_features = 16 * 4 * 4, 120
    assert fc1.flops == 2 * in_features * out_features * batch
    assert fc1.params == in_features * out_features + out_features
    assert fc1.output_bytes == batch * out_features * 4
    assert rows["relu1"].flops == 0 and rows["relu1"].params == 0
    assert [n.id for n in result.nodes] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
                                            "fc1", "relu3", "fc2", "relu4", "fc3"]


def test_every_node_is_timed_and_the_loss_and_step_apart(lenet):
    # how well the nodes' times add up to the whole model's is a measurement on a noisy
    # machine: bench/node_profile.py prints it; here, that every part was timed
    result = profile(lenet, 8, repeats=2)
    assert result.forward_ms > 0 and result.backward_ms > 0 and result.node_ms() > 0
    assert all(n.forward_ms > 0 for n in result.nodes)
    assert any(n.backward_ms > 0 for n in result.nodes)
    assert result.loss_ms > 0 and result.optimizer_ms > 0


def test_a_graph_with_errors_and_a_bad_batch_are_refused(lenet):
    lenet.graph.nodes["conv1"].params["kernel_size"] = 99  # larger than the 28x28 input
    try:
        with pytest.raises(GraphError, match="conv1"):
            profile(lenet, 4, repeats=1)
    finally:
        lenet.graph.nodes["conv1"].params["kernel_size"] = 5
    with pytest.raises(ValueError, match="batch size"):
        profile(lenet, 0)


def fusable(kernels):
    graph = chain(("input", "Input", {"shape": [4]}), ("fc1", "Linear", {"out_features": 8}), ("relu", "ReLU"),
                  ("fc2", "Linear", {"out_features": 3}))
    project = Project(graph, "blobs")
    project.training.update({"kernels": kernels, "loss": "CrossEntropyLoss"})
    return project


def test_a_fused_chain_is_one_row_as_the_trainer_runs_it(monkeypatch):
    # on the CPU the fused kernels run only where NETCANVAS_KERNELS_CPU allows (the tests run
    # Triton in its interpreter): the same switch the trainer's compile obeys
    monkeypatch.setenv("NETCANVAS_KERNELS_CPU", "1")
    result = profile(fusable("on"), 4, repeats=1)
    assert result.kernels == "on" and any("fused fc1+relu" in n for n in result.notes)
    assert [(n.id, n.type, n.group) for n in result.nodes] == [("fc1", "Linear+ReLU", ["fc1", "relu"]),
                                                                ("fc2", "Linear", ["fc2"])]
    fc1 = result.nodes[0]
    assert fc1.params == 4 * 8 + 8 and fc1.flops == 2 * 4 * 8 * 4 and fc1.output_bytes == 4 * 8 * 4
    assert fc1.forward_ms > 0 and fc1.backward_ms > 0
    gm = compile_graph(fusable("off").graph)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gm(torch.randn(4, 4))
    assert result.total_flops == counter.get_total_flops() == sum(n.flops for n in result.nodes)
    assert result.to_json()["nodes"][0]["group"] == ["fc1", "relu"]


def test_without_fusion_every_node_is_its_own_group_and_the_notes_say_why(monkeypatch):
    monkeypatch.delenv("NETCANVAS_KERNELS_CPU", raising=False)
    result = profile(fusable("on"), 4, repeats=1)  # a CPU model: the trainer runs it unfused too
    assert [n.group for n in result.nodes] == [["fc1"], ["relu"], ["fc2"]]
    assert any("runs unfused" in n for n in result.notes)
    assert [n.group for n in profile(fusable("off"), 4, repeats=1, kernels="off").nodes] == [["fc1"], ["relu"], ["fc2"]]
    with pytest.raises(ValueError, match="kernels"):
        profile(fusable("off"), 4, kernels="fast")
