"""torchvision's classification models, as the fixtures in torch_models.py write them (the
same classes, layouts and forward() code, small sizes): each imports and computes what the
module computes, or is refused naming what NetCanvas has no layer for; an imported model
exported as PyTorch code runs on its own (a fresh interpreter that cannot see NetCanvas)
and gives the module's outputs."""

from __future__ import annotations

import io
import subprocess
import sys
from collections import Counter
from functools import cache

import pytest
import torch
from safetensors.torch import save_file

from app.engine import cli
from app.engine.importers.torch_import import TorchImportError, import_module, save_imported
from tests.engine import torch_models as tm

# name -> (model factory, image size); AlexNet keeps its 11x11 stride-4 stem, so 64x64
ZOO = {
    "resnet18": (lambda: tm.ResNet("basic", (2, 2, 2, 2)), 32),
    "resnet50": (lambda: tm.ResNet("bottleneck", (3, 4, 6, 3)), 32),
    "mobilenet_v2": (tm.MobileNetV2, 32),
    "mobilenet_v3": (tm.MobileNetV3, 32),
    "efficientnet_b0": (tm.EfficientNet, 32),
    "densenet121": (tm.DenseNet, 32),
    "squeezenet": (tm.SqueezeNet, 32),
    "shufflenet_v2": (tm.ShuffleNetV2, 32),
    "googlenet": (tm.GoogLeNet, 32),
    "vgg": (tm.VGG, 32),
    "alexnet": (tm.AlexNet, 64),
    "mnasnet": (tm.MNASNet, 32),
    "regnet": (tm.RegNet, 32),
    "vit_b_16": (tm.VisionTransformer, 32),
    "convnext_tiny": (tm.ConvNeXt, 32),
}


@cache  # each model imported once for all the tests (none changes what it is given)
def _import(name: str):
    factory, size = ZOO[name]
    torch.manual_seed(0)
    model = factory().eval()
    return model, size, import_module(model, [3, size, size])


def _types(graph) -> Counter:
    """Every layer type in the graph and in its blocks."""
    found = Counter(n.type for n in graph.nodes.values())
    for block in graph.blocks.values():
        found.update(n.type for n in block.graph.nodes.values())
    return found


@pytest.mark.parametrize("name", sorted(ZOO))
def test_each_model_imports_and_matches_the_module(name):
    model, size, result = _import(name)
    assert result.difference <= 1e-5
    # the outputs are not trivially equal: the model's output varies with its input
    with torch.no_grad():
        a, b = model(torch.randn(2, 3, size, size)), model(torch.randn(2, 3, size, size))
    assert not torch.allclose(a, b)
    assert result.project.graph.nodes["input"].params == {"shape": [3, size, size]}


def test_what_each_style_became():
    """The calls that make each architecture what it is map to their catalogue types."""
    expected = {
        "mobilenet_v3": {"Hardswish", "Hardsigmoid", "Multiply", "AdaptiveAvgPool2d"},  # SE: scale * input
        "efficientnet_b0": {"SiLU", "Sigmoid", "StochasticDepth"},  # torchvision.ops' fx-wrapped stochastic_depth
        "densenet121": {"Concat"},
        "shufflenet_v2": {"Split", "Concat", "ChannelShuffle"},  # view / transpose / contiguous / view
        "vit_b_16": {"ClassToken", "PositionalEmbedding", "MultiheadAttention", "Select"},
        "convnext_tiny": {"Permute", "LayerNorm", "LayerScale", "StochasticDepth"},
        "alexnet": {"AdaptiveAvgPool2d", "Dropout", "Flatten"},
    }
    for name, types in expected.items():
        found = _types(_import(name)[2].project.graph)
        assert types <= set(found), (name, types - set(found))
    graph = _import("alexnet")[2].project.graph
    assert [n.params for n in graph.nodes.values() if n.type == "AdaptiveAvgPool2d"] == [{"output_size": 6}]
    shuffle = _import("shufflenet_v2")[2].project.graph.blocks["ShuffleInvertedResidual"].graph
    assert shuffle.nodes["channel_shuffle"].params == {"groups": 2}
    assert not {"Reshape", "Transpose"} & {n.type for n in shuffle.nodes.values()}


def test_repeated_structure_of_the_zoo_becomes_blocks():
    vit = _import("vit_b_16")[2].project.graph
    encoder = [n for n in vit.nodes.values() if n.type == "ViTEncoderBlock"]
    assert len(encoder) == 1 and encoder[0].repeat == 3
    googlenet = _import("googlenet")[2].project.graph
    assert [(n.id, n.repeat) for n in googlenet.nodes.values() if n.type == "Inception"] == [
        ("inception3a", 2), ("inception4a", 2)]
    assert Counter(n.type for n in googlenet.blocks["Inception"].graph.nodes.values())["Concat"] == 1
    # ConvNeXt: every CNBlock is one definition, what differs between stages its parameters
    # (torchvision's Permute and StochasticDepth wrap one layer each: they stay layers)
    convnext = _import("convnext_tiny")[2].project.graph
    assert sorted(convnext.blocks) == ["CNBlock", "LayerNorm2d"]
    cn = [n for n in convnext.nodes.values() if n.type == "CNBlock"]
    assert len(cn) == 7 and len({n.params["p"] for n in cn}) == 7
    # DenseNet: each layer takes every earlier feature map (a block of several inputs)
    dense = _import("densenet121")[2].project.graph
    assert sorted(sum(1 for n in b.graph.nodes.values() if n.type == "Input") for b in dense.blocks.values()) == \
        [1, 2, 3]


def test_swin_is_refused_naming_torch_roll_and_its_line():
    with pytest.raises(TorchImportError) as e:
        import_module(tm.SwinTransformer(), [3, 32, 32])
    message = str(e.value)
    assert "torch.roll at torch_models.py:" in message and "nothing was imported" in message
    assert {f.op for f in e.value.failures} >= {"torch.roll"}
    # torch.fx keeps the fx-wrapped window attention whole: torch.export looks inside; an op
    # of a block (twice here) is named once, with its count
    assert "shifted_window_attention whole (torch.fx.wrap)" in message
    assert "torch.roll at torch_models.py:" in message and "(x2)" in message


def test_googlenet_transform_input_is_refused_naming_the_constant_shift():
    with pytest.raises(TorchImportError) as e:
        import_module(tm.GoogLeNet(transform_input=True), [3, 32, 32])
    assert [f.op for f in e.value.failures] == ["+"] * 3
    assert all("constant number" in f.why and f.where.startswith("torch_models.py:") for f in e.value.failures)


STANDALONE = """
import importlib.util, sys
import torch
from safetensors.torch import load_file
worst = 0.0
for folder, class_name in [tuple(a.split("=")) for a in sys.argv[1:]]:
    spec = importlib.util.spec_from_file_location("model_" + class_name, folder + "/model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = getattr(mod, class_name)().eval()
    net.load_state_dict(load_file(folder + "/weights.safetensors"))
    check = load_file(folder + "/check.safetensors")
    with torch.no_grad():
        worst = max(worst, float((net(check["x"]) - check["y"]).abs().max()))
    assert "app" not in sys.modules and "netcanvas" not in sys.modules
print("largest difference", worst)
"""


def test_an_imported_model_exported_as_python_runs_standalone_and_matches(tmp_path):
    runs = []
    for name in ("resnet50", "densenet121", "shufflenet_v2", "efficientnet_b0", "vit_b_16", "convnext_tiny"):
        model, size, result = _import(name)
        project_path, _ = save_imported(result, tmp_path / f"{name}.netcanvas.json")
        out = tmp_path / name
        stdout, stderr = io.StringIO(), io.StringIO()
        assert cli.main(["export", str(project_path), "--python", str(out)], stdout, stderr) == 0, stderr.getvalue()
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            save_file({"x": x, "y": model(x)}, str(out / "check.safetensors"))
        class_name = type(model).__name__
        assert f"class {class_name}(nn.Module):" in (out / "model.py").read_text()
        runs.append(f"{out}={class_name}")
    # -I: a fresh interpreter that sees neither the repository nor the current folder
    done = subprocess.run([sys.executable, "-I", "-c", STANDALONE, *runs], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    worst = float(done.stdout.split()[-1])
    assert worst <= 1e-4
