"""PyTorch import: modules in the styles of torchvision and timm (tests/engine/torch_models.py)
import as projects that compute what the module computes, repeated structure as blocks
with ``repeat``, weights named as the format says; what cannot be imported is refused,
naming every offending node, and nothing is written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from app.engine import cli
from app.engine.compiler import compile_graph
from app.engine.importers import torch_handlers, torch_import
from app.engine.importers.torch_import import (TorchImportError, TorchLoadError, import_module, import_torch,
                                               load_module)
from app.engine.inference import analyze
from app.engine.project import dumps_project, load_project, weights_path_for
from app.engine.weights import load_weights
from tests.engine import torch_models as tm

MODELS = Path(tm.__file__)


def _types(project) -> list[tuple[str, str, int]]:
    return [(n.id, n.type, n.repeat) for n in project.graph.nodes.values()]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_sequential_lenet_imports_layer_by_layer():
    result = import_module(tm.lenet(), [1, 16, 16])
    assert [t for _, t, _ in _types(result.project)] == [
        "Input", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "Tanh", "AdaptiveAvgPool2d", "Flatten",
        "Dropout", "Linear"]
    nodes = result.project.graph.nodes
    assert nodes["m0"].params == {"out_channels": 4, "kernel_size": 5, "padding": 2}
    assert nodes["m8"].params == {"p": 0.2}
    assert result.difference <= 1e-6
    assert not result.project.graph.blocks


def test_functional_calls_and_tensor_methods_map_to_their_types():
    result = import_module(tm.Functional(), [3, 8, 8])
    nodes = result.project.graph.nodes
    by_type = {n.type: n for n in nodes.values()}
    assert {"ReLU", "MaxPool2d", "Split", "Scale", "Concat", "Reshape", "GELU", "Transpose", "Permute",
            "Flatten", "Add", "Softmax"} <= set(by_type)
    assert by_type["Split"].params == {"sizes": [4, 4], "dim": 1}
    assert by_type["Scale"].params == {"factor": 0.5}
    assert by_type["Reshape"].params == {"shape": [2, 3]}
    assert by_type["Softmax"].params == {"dim": 1}  # dim=-1 of [B, 6]
    # the two halves of the chunk swap places: cat([b, a * 0.5])
    edges = {(e.target, e.target_port): (e.source, e.source_port) for e in result.project.graph.edges}
    cat = by_type["Concat"].id
    assert edges[(cat, 0)] == (by_type["Split"].id, 1)
    assert result.difference <= 1e-6


def test_resnet_opens_as_stem_stages_of_blocks_and_head():
    model = tm.ResNet("bottleneck", layers=(2, 3, 2))
    result = import_module(model, [3, 16, 16])
    assert _types(result.project) == [
        ("input", "Input", 1), ("conv1", "Conv2d", 1), ("bn1", "BatchNorm2d", 1), ("relu", "ReLU", 1),
        ("maxpool", "MaxPool2d", 1),
        ("layer1_0", "Bottleneck", 1), ("layer1_1", "Bottleneck_2", 1),
        ("layer2_0", "Bottleneck", 1), ("layer2_1", "Bottleneck_2", 2),
        ("layer3_0", "Bottleneck", 1), ("layer3_1", "Bottleneck_2", 1),
        ("avgpool", "AdaptiveAvgPool2d", 1), ("flatten", "Flatten", 1), ("fc", "Linear", 1)]
    blocks = result.project.graph.blocks
    first, repeated = blocks["Bottleneck"], blocks["Bottleneck_2"]
    # the first block of a stage downsamples; what differs between stages is a parameter
    assert {"downsample_0", "downsample_1"} <= set(first.graph.nodes)
    assert "downsample_0" not in repeated.graph.nodes
    assert first.graph.nodes["conv2"].params["stride"] == "$stride"
    assert first.graph.nodes["downsample_0"].params["stride"] == "$stride"
    # named for what they are: the module's own attribute (self.stride), the block's output
    # channels; else after the layer and its parameter
    assert first.params == {"conv1_out_channels": 8, "stride": 1, "out_channels": 32}
    nodes = result.project.graph.nodes
    assert nodes["layer2_0"].params == {"conv1_out_channels": 16, "stride": 2, "out_channels": 64}
    # weights as the format names them, and the module's own tensors
    state = dict(model.named_parameters()) | dict(model.named_buffers())
    assert torch.equal(result.state["layer1_0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert torch.equal(result.state["layer2_1.0.conv1.weight"], state["layer2.1.conv1.weight"])
    assert torch.equal(result.state["layer2_1.1.bn3.running_var"], state["layer2.2.bn3.running_var"])
    assert torch.equal(result.state["layer3_0.downsample_0.weight"], state["layer3.0.downsample.0.weight"])
    assert len(result.state) == len(state)
    assert result.difference <= 1e-6
    assert analyze(result.project.graph).total_params == sum(p.numel() for p in model.parameters())


def test_resnet50_layout_opens_with_each_stage_as_a_first_block_and_a_repeated_one():
    result = import_module(tm.ResNet("bottleneck", layers=(3, 4, 6, 3), width=2), [3, 8, 8])
    stages = [(t, r) for _, t, r in _types(result.project)[5:13]]
    assert stages == [
        ("Bottleneck", 1), ("Bottleneck_2", 2), ("Bottleneck", 1), ("Bottleneck_2", 3),
        ("Bottleneck", 1), ("Bottleneck_2", 5), ("Bottleneck", 1), ("Bottleneck_2", 2)]
    assert result.difference <= 1e-6


def test_basic_blocks_of_a_stage_without_downsampling_become_one_repeated_node():
    result = import_module(tm.ResNet("basic", layers=(2, 3, 1)), [3, 16, 16])
    assert _types(result.project)[5:9] == [("layer1_0", "BasicBlock", 2), ("layer2_0", "BasicBlock_2", 1),
                                          ("layer2_1", "BasicBlock", 2), ("layer3_0", "BasicBlock_2", 1)]
    assert result.project.graph.nodes["layer1_0"].params == {"out_channels": 8}
    assert result.difference <= 1e-6


def test_vit_class_token_position_table_and_nested_blocks():
    model = tm.TinyViT(depth=3)
    result = import_module(model, [3, 8, 8])
    types = [t for _, t, _ in _types(result.project)]
    assert types == ["Input", "Conv2d", "Flatten", "Transpose", "ClassToken", "PositionalEmbedding", "EncoderBlock",
                     "LayerNorm", "Select", "Linear"]
    assert result.project.graph.nodes["blocks_0"].repeat == 3
    encoder = result.project.graph.blocks["EncoderBlock"]
    assert encoder.graph.nodes["attn"].type == "Attention"  # a block inside the block
    attention = result.project.graph.blocks["Attention"].graph.nodes
    assert {n.type for n in attention.values()} >= {"Split", "Transpose", "MatMul", "Scale", "Softmax", "Linear"}
    assert torch.equal(result.state["cat.token"], model.cls_token.detach())
    assert torch.equal(result.state["add.table"], model.pos_embed.detach())
    assert torch.equal(result.state["blocks_0.2.attn.qkv.weight"], model.blocks[2].attn.qkv.weight.detach())
    assert result.difference <= 1e-5


def test_torch_layers_attention_layer_scale_and_squeeze_excite():
    result = import_module(tm.Mixed(), [3, 8, 8])
    nodes = result.project.graph.nodes
    assert nodes["encoder"].type == "TransformerEncoderLayer"
    assert nodes["encoder"].params == {"nhead": 2, "dim_feedforward": 16, "dropout": 0.0}
    assert nodes["attn"].type == "MultiheadAttention"
    assert (nodes["body_0"].type, nodes["body_0"].repeat, nodes["body_2"].repeat) == ("InvertedResidual", 2, 1)
    inner = result.project.graph.blocks["InvertedResidual"].graph.nodes
    assert inner["mul"].type == "LayerScale" and inner["se"].type == "SqueezeExcite"
    assert inner["depthwise_0"].params["groups"] == "$out_channels"
    assert result.difference <= 1e-5


def test_unmappable_nodes_are_all_named_with_their_source_lines():
    with pytest.raises(TorchImportError) as caught:
        import_module(tm.Unmappable(), [6])
    message = str(caught.value)
    assert "2 nodes" in message
    assert "torch.roll at torch_models.py:" in message and "x.exp at torch_models.py:" in message
    assert [f.op for f in caught.value.failures] == ["torch.roll", "x.exp"]  # not the nodes after them


def test_a_module_neither_fx_nor_export_can_follow_is_refused_with_both_reasons(capfd):
    with pytest.raises(TorchImportError, match=r"torch.fx cannot trace Branchy \(TraceError: .*\), and "
                                               r"torch.export cannot export it \(GuardOnDataDependentSymNode"):
        import_module(tm.Branchy(), [4])
    assert not capfd.readouterr().err  # torch's own dump of the partial graph is not shown


def test_control_flow_on_shapes_falls_back_to_torch_export():
    model = tm.ShapeBranch()
    result = import_module(model, [3, 8, 8])
    assert result.notes[0].startswith("traced with torch.export: torch.fx cannot trace ShapeBranch (TraceError")
    assert [t for _, t, _ in _types(result.project)] == [
        "Input", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Residual", "Flatten", "Transpose", "ClassToken",
        "Select", "Linear", "Mean", "Linear", "Scale", "Add"]
    assert result.project.graph.nodes["blocks_0"].repeat == 2
    assert torch.equal(result.state["cat.token"], model.token.detach())
    assert torch.equal(result.state["blocks_0.1.conv.weight"], model.blocks[1].conv.weight.detach())
    assert result.difference <= 1e-6


def test_torch_transformer_encoder_is_exported_into_a_repeated_layer():
    model = tm.TorchEncoder(layers=3)
    result = import_module(model, [5, 8])
    assert _types(result.project) == [("input", "Input", 1), ("encoder_layers_0", "TransformerEncoderLayer", 3),
                                      ("mean", "Mean", 1), ("head", "Linear", 1)]
    assert result.project.graph.nodes["encoder_layers_0"].params["activation"] == "gelu"
    assert torch.equal(result.state["encoder_layers_0.2.self_attn.in_proj_weight"],
                       model.encoder.layers[2].self_attn.in_proj_weight.detach())
    assert result.difference <= 1e-5


def _no_fx(*args):
    raise TypeError("fx refused (test)")


def test_the_export_path_gives_the_same_project_as_fx(monkeypatch):
    torch.manual_seed(0)
    traced = import_module(tm.ResNet("basic", layers=(2, 2)), [3, 16, 16])
    monkeypatch.setattr(torch_import, "_trace", _no_fx)
    torch.manual_seed(0)
    exported = import_module(tm.ResNet("basic", layers=(2, 2)), [3, 16, 16])
    assert "fx refused (test)" in exported.notes[0]
    assert dumps_project(exported.project) == dumps_project(traced.project)
    assert exported.state.keys() == traced.state.keys()
    assert all(torch.equal(exported.state[k], traced.state[k]) for k in traced.state)


def test_the_export_path_names_unmappable_ops_with_their_lines(monkeypatch):
    monkeypatch.setattr(torch_import, "_trace", _no_fx)
    with pytest.raises(TorchImportError) as caught:
        import_module(tm.Unmappable(), [6])
    assert [str(f).split(":")[0] for f in caught.value.failures] == ["torch.roll at torch_models.py",
                                                                     "torch.exp at torch_models.py"]


def test_a_wrong_mapping_is_caught_by_the_comparison(monkeypatch):
    # gelu mapped to ReLU on purpose: the run against the module must refuse it
    monkeypatch.setitem(torch_handlers.FUNCTIONS, F.gelu, torch_handlers._unary("ReLU"))
    with pytest.raises(TorchImportError,
                       match=r"differs from Functional by .* \(more than 0.0001\); nothing was written"):
        import_module(tm.Functional(), [3, 8, 8])


def test_load_module_from_a_file_and_from_a_package():
    model = load_module(f"{MODELS}:ResNet", {"block": "basic", "layers": [1, 1]})
    assert isinstance(model, tm.nn.Module) and len(model.layer2) == 1
    head = load_module("tests.engine.torch_models:lenet", {"classes": 3}).get_submodule("9")
    assert isinstance(head, torch.nn.Linear) and head.out_features == 3
    with pytest.raises(TorchLoadError, match="expected MODULE:CALLABLE"):
        load_module("torch_models.py")
    with pytest.raises(TorchLoadError, match="no such file"):
        load_module("missing_dir/nets.py:Net")
    with pytest.raises(TorchLoadError, match="has no 'Nope'"):
        load_module("tests.engine.torch_models:Nope")
    with pytest.raises(TorchLoadError, match=r"calling lenet\(\*\*\{'colours': 3\}\) failed: TypeError"):
        load_module("tests.engine.torch_models:lenet", {"colours": 3})
    with pytest.raises(TorchLoadError, match="returned a str, not a torch.nn.Module"):
        load_module("json:dumps", {"obj": 1})


def test_a_file_imports_its_neighbours_and_a_package_is_found_in_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "nc_test_layers.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Pos(nn.Module):\n    def __init__(self, n=10):\n"
        "        super().__init__()\n        self.pos = nn.Parameter(torch.randn(1, n, 4))\n"
        "        self.fc = nn.Linear(4, 4)\n\n    def forward(self, x):\n"
        "        return self.fc(x + self.pos[:, :x.shape[1]])\n")
    (tmp_path / "nc_test_net.py").write_text("from nc_test_layers import Pos\n\n\ndef make(n):\n    return Pos(n)\n")
    result = import_torch(f"{tmp_path / 'nc_test_net.py'}:make", [6, 4], {"n": 9})
    assert [n.type for n in result.project.graph.nodes.values()] == ["Input", "PositionalEmbedding", "Linear"]
    assert result.state["add.table"].shape == (1, 6, 4)  # the rows the input's length takes
    monkeypatch.chdir(tmp_path)
    assert isinstance(load_module("nc_test_net:make", {"n": 3}), torch.nn.Module)


def test_import_torch_names_its_source():
    result = import_torch("tests.engine.torch_models:lenet", [1, 16, 16], {"classes": 3})
    assert result.source == "tests.engine.torch_models:lenet"
    assert result.project.graph.nodes["m9"].params == {"out_features": 3}


def test_cli_import_writes_a_project_that_computes_what_the_module_does(tmp_path):
    out = tmp_path / "resnet.netcanvas.json"
    torch.manual_seed(0)
    code, text, err = _run(["import", f"{MODELS}:ResNet", str(out), "--input-shape", "3,16,16",
                            "--kwargs", json.dumps({"layers": [1, 2], "classes": 4})])
    assert code == 0, err
    assert "note: 2 blocks made from repeated structure: Bottleneck, Bottleneck_2" in text
    assert "largest difference 0 " in text and f"wrote {out}" in text
    torch.manual_seed(0)  # the same initial weights as the module the command made
    model = tm.ResNet(layers=(1, 2), classes=4).eval()
    project = load_project(out)
    net = compile_graph(project.graph).eval()
    load_weights(net, weights_path_for(out))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-5)
    data = json.loads(out.read_text())
    assert data["version"] == 2 and set(data["blocks"]) == {"Bottleneck", "Bottleneck_2"}
    assert [n["type"] for n in data["graph"]["nodes"]][5:8] == ["Bottleneck", "Bottleneck", "Bottleneck_2"]


def test_cli_refuses_what_it_cannot_import_and_writes_nothing(tmp_path):
    out = tmp_path / "u.netcanvas.json"
    code, _, err = _run(["import", f"{MODELS}:Unmappable", str(out), "--input-shape", "6"])
    assert code == 1 and "torch.roll at torch_models.py:" in err and "x.exp at" in err
    assert not out.exists() and not weights_path_for(out).exists()
    code, _, err = _run(["import", "tests.engine.torch_models:lenet", str(out)])
    assert code == 2 and "--input-shape: a PyTorch module needs its input's shape once" in err
    code, _, err = _run(["import", "tests.engine.torch_models:lenet", str(out), "--input-shape", "1,0,4"])
    assert code == 2 and "positive integers" in err
    code, _, err = _run(["import", "tests.engine.torch_models:lenet", str(out), "--input-shape", "1,16,16",
                         "--kwargs", "{bad"])
    assert code == 2 and "--kwargs: not JSON" in err
    code, _, err = _run(["import", "no_such_package_here:Net", str(out), "--input-shape", "4"])
    assert code == 2 and "cannot import 'no_such_package_here'" in err
    code, _, err = _run(["import", str(tmp_path / "model.pt2"), str(out)])
    assert code == 2 and "model.pt2: no such file" in err
    code, _, err = _run(["import", "tests.engine.torch_models:lenet", str(out), "--input-shape", "1,3,3"])
    assert code == 1 and "cannot run on an input of shape [1, 3, 3]" in err
    assert not out.exists()


class _Squeezes(torch.nn.Module):
    """unsqueeze / squeeze, a size computed from sizes (h // 2 * w), F.layer_norm with the
    module's own tensors."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(4) + 0.5)
        self.bias = torch.nn.Parameter(torch.rand(4) - 0.5)

    def forward(self, x):
        n, c, h, w = x.shape
        y = torch.unsqueeze(x.reshape(n, c, h // 2 * w * 2), 1).squeeze(1)
        y = F.layer_norm(y.transpose(1, 2), (4,), self.weight, self.bias, 1e-6)
        return y.unsqueeze(-1).flatten(1)


def test_unsqueeze_squeeze_size_arithmetic_and_functional_layer_norm():
    model = _Squeezes()
    result = import_module(model, [4, 2, 3])
    types = [n.type for n in result.project.graph.nodes.values()]
    assert types.count("Reshape") == 4 and "LayerNorm" in types
    norm = next(n for n in result.project.graph.nodes.values() if n.type == "LayerNorm")
    assert norm.params == {"eps": 1e-6}
    assert torch.equal(result.state[f"{norm.id}.weight"], model.weight.detach())
    assert torch.equal(result.state[f"{norm.id}.bias"], model.bias.detach())
    assert result.difference <= 1e-6


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_token_ids_through_an_embedding_and_torch_recurrent_layers(kind):
    for use_state in (True, False):
        result = import_module(tm.TextClassifier(kind, use_state=use_state), [7])
        nodes = list(result.project.graph.nodes.values())
        assert nodes[0].params == {"shape": [7], "dtype": "int64"}  # token ids, as the Embedding takes them
        assert [n.type for n in nodes[1:3]] == ["Embedding", kind]
        assert nodes[2].params == {"hidden_size": 6, "num_layers": 2}
        # h_n[-1] is the layer's second output; out[:, -1] a Select of its first
        edges = {(e.target, e.target_port): (e.source, e.source_port) for e in result.project.graph.edges}
        head = nodes[-1]
        assert edges[(head.id, 0)] == ((nodes[2].id, 1) if use_state else (nodes[3].id, 0))
        assert result.difference <= 1e-6


def test_an_lstm_cell_state_is_refused_naming_it():
    with pytest.raises(TorchImportError) as e:
        import_module(tm.CellState(), [5, 4])
    assert "uses torch's LSTM state c_n" in str(e.value) or "of torch's LSTM c_n" in str(e.value)


def test_token_ids_and_recurrent_layers_on_the_export_path(monkeypatch):
    monkeypatch.setattr(torch_import, "_trace", _no_fx)
    result = import_module(tm.TextClassifier("GRU"), [7])
    assert [n.type for n in result.project.graph.nodes.values()][:3] == ["Input", "Embedding", "GRU"]
    assert "traced with torch.export" in result.notes[0] and result.difference <= 1e-6


def test_attention_with_tuple_outputs_on_the_export_path_gives_the_fx_project(monkeypatch):
    # attn, _ = self.attn(...) and nn.MultiheadAttention inside torchvision's ViT encoder block:
    # the export's ATen ops of one layer become one call again, its results picked from it
    torch.manual_seed(0)
    traced = import_module(tm.Mixed(), [3, 8, 8])
    monkeypatch.setattr(torch_import, "_trace", _no_fx)
    torch.manual_seed(0)
    exported = import_module(tm.Mixed(), [3, 8, 8])
    assert "fx refused (test)" in exported.notes[0]
    assert dumps_project(exported.project) == dumps_project(traced.project)
    vit = import_module(tm.VisionTransformer(), [3, 32, 32])
    assert vit.project.graph.nodes["encoder_layers_encoder_layer_0"].repeat == 3 and vit.difference <= 1e-5


def test_torchvisions_wrapped_functions_are_known_though_their_module_starts_with_torch():
    """torchvision.ops.stochastic_depth is kept whole by torch.fx.wrap; its module's name
    begins with "torch", yet it is not torch's own (real torchvision's EfficientNet and
    ConvNeXt were refused for it)."""
    from app.engine.importers.torch_handlers import is_opaque, wrapped_handler

    def stochastic_depth(input, p, mode, training=True):
        return input

    stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
    assert wrapped_handler(stochastic_depth) is not None
    assert not is_opaque(stochastic_depth)
    import torch.nn.functional as F
    assert wrapped_handler(F.relu) is None and not is_opaque(F.relu)
