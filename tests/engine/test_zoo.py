"""torchvision's ImageNet classics written as project files (tests/zoo, made by make_zoo.py
from the format document alone): each loads, checks without errors, has exactly
torchvision's parameter count and a [1000] output. One small one is compiled and run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from app.engine.blocks import is_block
from app.engine.compiler import compile_graph
from app.engine.inference import analyze
from app.engine.project import load_project

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def _make_zoo():
    spec = importlib.util.spec_from_file_location("make_zoo", ZOO / "make_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_ZOO = _make_zoo()


@pytest.mark.parametrize("name", sorted(MAKE_ZOO.MODELS))
def test_zoo_model_checks_with_torchvisions_count_and_shape(name):
    project = load_project(ZOO / f"{name}.netcanvas.json")
    a = analyze(project.graph)
    assert a.errors == []
    assert a.total_params == MAKE_ZOO.MODELS[name][1]
    assert a.shapes[a.output] == (1000,)
    assert [project.graph.nodes[i].params["shape"] for i in a.inputs] == [[3, 224, 224]]


@pytest.mark.parametrize("name", sorted(MAKE_ZOO.MODELS))
def test_committed_files_are_what_the_generator_writes(name, tmp_path):
    MAKE_ZOO.main(tmp_path)
    written = tmp_path / f"{name}.netcanvas.json"
    assert written.read_text(encoding="utf-8") == (ZOO / written.name).read_text(encoding="utf-8")
    assert json.loads(written.read_text(encoding="utf-8"))["version"] == 2


def test_resnet50_is_about_twenty_top_level_nodes_with_sixteen_bottlenecks():
    graph = load_project(ZOO / "resnet50.netcanvas.json").graph
    blocks = [n for n in graph.nodes.values() if is_block(graph.spec(n.type))]
    assert sum(n.repeat for n in blocks) == 16
    assert 16 <= len(graph.nodes) <= 25
    assert {n.type for n in blocks} == {"Bottleneck", "BottleneckDown"}


def test_shufflenet_compiles_and_runs_forward_with_torchvision_weight_names():
    project = load_project(ZOO / "shufflenet_v2_x1_0.netcanvas.json")
    a = analyze(project.graph)
    model = compile_graph(project.graph, a).eval()
    assert sum(p.numel() for p in model.parameters()) == 2_278_604
    names = model.state_dict()
    # torchvision: stage2.0.branch1.0.weight, stage3.1.branch2.3.weight (depthwise), ...
    assert names["stage2_0.branch1_0.weight"].shape == (24, 1, 3, 3)
    assert names["stage3_1.0.branch2_3.weight"].shape == (116, 1, 3, 3)
    assert names["stage4_1.2.branch2_5.weight"].shape == (232, 232, 1, 1)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()
