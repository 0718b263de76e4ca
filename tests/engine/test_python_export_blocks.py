"""PyTorch code export of projects with blocks: one class per block in model.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from app.engine.compiler import compile_graph
from app.engine.export.onnx_export import ExportError
from app.engine.export import python_export
from app.engine.export.python_export import export_python
from app.engine.inference import analyze
from app.engine.project import Project, parse_project
from tests.engine.test_blocks import res_block
from tests.engine.test_python_export import check_export, run_script, sample_inputs


def project(blocks: dict, nodes: list[dict], edges: list[dict] | None = None, name: str = "blocks") -> Project:
    ids = [n["id"] for n in nodes]
    edges = edges if edges is not None else [{"source": a, "target": b} for a, b in zip(ids, ids[1:])]
    data = {"format": "netcanvas", "version": 2, "name": name, "blocks": blocks,
            "graph": {"nodes": nodes, "edges": edges}}
    p = parse_project(json.dumps(data))
    assert analyze(p.graph).ok, analyze(p.graph).errors
    return p


def exported(p: Project, tmp_path: Path) -> tuple[str, object]:
    """Export ``p`` (checked as every export is: see ``check_export``), then import
    model.py in a fresh interpreter that has nothing of NetCanvas, and run it there on
    the inputs the compiled graph was run on; returns model.py's text and the module."""
    out, _ = check_export(p, tmp_path)
    compiled = compile_graph(p.graph).eval()
    compiled.load_state_dict(load_file(str(out / "weights.safetensors")))
    inputs = sample_inputs(p)
    with torch.no_grad():
        expected = compiled(*inputs)
    save_file({**{f"in{k}": t for k, t in enumerate(inputs)}, "out": expected}, str(out / "io.safetensors"))
    class_name = next(line.split()[1].split("(")[0] for line in (out / "model.py").read_text().splitlines()[::-1]
                      if line.startswith("class "))
    script = textwrap.dedent(f"""
        import sys
        import torch
        from safetensors.torch import load_file
        import model
        m = model.{class_name}()
        m.load_state_dict(load_file("weights.safetensors"))
        io = load_file("io.safetensors")
        inputs = [io[f"in{{k}}"] for k in range({len(inputs)})]
        with torch.no_grad():
            got = m.eval()(*inputs)
        assert torch.allclose(got, io["out"], rtol=0, atol=1e-6), (got - io["out"]).abs().max()
        assert not [n for n in sys.modules if n == "app" or n.startswith("app.")]
        print("frozen:", sorted({{n.split(".")[0] for n, t in m.named_parameters() if not t.requires_grad}}))
    """)
    proc = run_script(["-c", script], out)
    return (out / "model.py").read_text(), proc.stdout


def test_instances_with_different_input_channels_share_one_class(tmp_path):
    p = project({"Res": res_block()}, [
        {"id": "input", "type": "Input", "params": {"shape": [1, 12, 12]}},
        {"id": "layer1", "type": "Res", "params": {"width": 4}},
        {"id": "layer2", "type": "Res", "params": {"width": 6, "stride": 2}, "repeat": 3},
        {"id": "flat", "type": "Flatten"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 5}},
    ])
    text, _ = exported(p, tmp_path)
    assert text.count("class Res(nn.Module):") == 1
    assert "    def __init__(self, in_channels, width=8, stride=1):\n" in text
    # the block's parameter sets the out_channels; the input size is the class's keyword
    # (one for conv1 and proj, equal in every instance); conv2 reads width channels
    assert "self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=stride, padding=1, bias=False)" in text
    # no shape comment where every size differs between instances
    assert "self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)\n" in text
    assert "self.proj = nn.Conv2d(in_channels, width, kernel_size=1, stride=stride)" in text
    assert "self.bn1 = nn.BatchNorm2d(width)" in text
    assert "self.layer1 = Res(in_channels=1, width=4)  # -> [4, 12, 12]" in text
    # a repeated block: the first copy reads the node's input, the others the previous copy's
    assert ("self.layer2 = nn.Sequential(Res(in_channels=4, width=6, stride=2), "
            "*[Res(in_channels=6, width=6, stride=2) for _ in range(2)])") in text
    assert "    def forward(self, x):\n" in text and "add = self.add(conv2, proj)" in text
    assert "GraphModule" not in text and "= None" not in text


def test_nested_blocks_inner_class_first_with_parameters_passed_down(tmp_path):
    blocks = {
        "Res": res_block(),
        "Stage": {"params": {"w": 3}, "graph": {
            "nodes": [{"id": "inp", "type": "Input"},
                      {"id": "first", "type": "Res", "params": {"width": "$w", "stride": 2}},
                      {"id": "second", "type": "Res", "params": {"width": "$w"}}],
            "edges": [{"source": "inp", "target": "first"}, {"source": "first", "target": "second"}]}},
    }
    p = project(blocks, [
        {"id": "input", "type": "Input", "params": {"shape": [2, 8, 8]}},
        {"id": "stage1", "type": "Stage", "params": {"w": 5}},
        {"id": "stage2", "type": "Stage", "params": {"w": 4}},
    ])
    text, _ = exported(p, tmp_path)
    assert text.index("class Res(nn.Module):") < text.index("class Stage(nn.Module):")
    assert text.count("class Res(") == 1 and text.count("class Stage(") == 1
    # the inner block's input channels: the stage's input size, then its own parameter w
    assert "self.first = Res(in_channels=in_channels, width=w, stride=2)" in text
    assert "self.second = Res(in_channels=w, width=w)" in text
    assert "    def __init__(self, in_channels, w=3):\n" in text
    assert "self.stage1 = Stage(in_channels=2, w=5)" in text and "self.stage2 = Stage(in_channels=5, w=4)" in text


def test_a_block_with_two_inputs_and_a_multi_output_layer_inside(tmp_path):
    blocks = {"Mix": {"params": {"h": 6}, "graph": {
        "nodes": [{"id": "seq", "type": "Input"}, {"id": "side", "type": "Input"},
                  {"id": "lstm", "type": "LSTM", "params": {"hidden_size": "$h"}},
                  {"id": "fc", "type": "Linear", "params": {"out_features": "$h"}},
                  {"id": "add", "type": "Add"}],
        "edges": [{"source": "seq", "target": "lstm"},
                  {"source": "lstm", "target": "add", "source_port": 1},
                  {"source": "side", "target": "fc"},
                  {"source": "fc", "target": "add", "target_port": 1}]}}}
    p = project(blocks, [
        {"id": "tokens", "type": "Input", "params": {"shape": [5, 3]}},
        {"id": "extra", "type": "Input", "params": {"shape": [4]}},
        {"id": "mix", "type": "Mix"},
        {"id": "out", "type": "Linear", "params": {"out_features": 2}},
    ], [{"source": "tokens", "target": "mix"}, {"source": "extra", "target": "mix", "target_port": 1},
        {"source": "mix", "target": "out"}])
    text, _ = exported(p, tmp_path)
    assert "    def forward(self, seq, side):\n" in text and "lstm_1 = lstm[1]" in text
    assert "self.lstm = LSTM(3, h, batch_first=True)" in text and "self.fc = nn.Linear(4, h)" in text
    assert "mix = self.mix(tokens, extra)" in text


def test_a_frozen_block_node_and_a_frozen_node_inside(tmp_path):
    p = project({"Res": res_block(trainable=False)}, [
        {"id": "input", "type": "Input", "params": {"shape": [1, 6, 6]}},
        {"id": "layer1", "type": "Res", "params": {"width": 2}, "trainable": False},
        {"id": "layer2", "type": "Res", "params": {"width": 2}},
        {"id": "flat", "type": "Flatten"},
    ])
    text, stdout = exported(p, tmp_path)
    assert "self.layer1.requires_grad_(False)  # frozen in NetCanvas (trainable: false)" in text
    assert "self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False)  # -> [2, 6, 6]" in text
    assert "        self.bn1.requires_grad_(False)  # frozen in NetCanvas (trainable: false)" in text
    assert "frozen: ['layer1', 'layer2']" in stdout  # layer2: only its bn1
    frozen = {n for n, t in compile_graph(p.graph).named_parameters() if not t.requires_grad}
    assert "layer2.bn1.weight" in frozen and "layer2.conv1.weight" not in frozen


def test_instances_built_by_different_classes_get_a_class_each(tmp_path):
    block = {"params": {"pad": 0}, "graph": {
        "nodes": [{"id": "x", "type": "Input"},
                  {"id": "conv", "type": "Conv2d", "params": {"out_channels": 3, "kernel_size": 4, "padding": "$pad"}}],
        "edges": [{"source": "x", "target": "conv"}]}}
    p = project({"Pad": block}, [
        {"id": "input", "type": "Input", "params": {"shape": [1, 9, 9]}},
        {"id": "a", "type": "Pad", "params": {"pad": "same"}},
        {"id": "b", "type": "Pad"},
        {"id": "c", "type": "Pad", "params": {"pad": "same"}},
    ])
    text, _ = exported(p, tmp_path)
    assert "class Pad(nn.Module):" in text and "class Pad_2(nn.Module):" in text
    assert "# Pad_2: block Pad again, for b, whose inside cannot share the class Pad: conv is built by nn.Conv2d, not SameConv2d" in text
    assert "self.a = Pad(in_channels=1, pad='same')" in text and "self.c = Pad(in_channels=3, pad='same')" in text
    assert "self.b = Pad_2()" in text and "self.conv = nn.Conv2d(3, 3, kernel_size=4)  # -> [3, 6, 6]" in text
    # sizes that differ between the instances of a class read "*"
    assert "self.conv = SameConv2d(in_channels, 3, kernel_size=4)  # -> [3, *, *]" in text


@pytest.mark.parametrize("block_name, project_name, expected", [
    ("SameConv2d", "blocks", "SameConv2dBlock"),  # a NetCanvas class copied into model.py
    ("Net", "Net", "NetBlock"),  # the model's own class
    ("super", "blocks", "superBlock"),  # a builtin the classes themselves use
])
def test_a_block_class_never_takes_a_name_model_py_uses(tmp_path, block_name, project_name, expected):
    block = {"params": {"nn": 3, "SameConv2d": 0}, "graph": {
        "nodes": [{"id": "x", "type": "Input"},
                  {"id": "conv", "type": "Conv2d", "params": {"out_channels": "$nn", "kernel_size": 4, "padding": "same"}}],
        "edges": [{"source": "x", "target": "conv"}]}}
    p = project({block_name: block}, [
        {"id": "input", "type": "Input", "params": {"shape": [1, 5, 5]}},
        {"id": "b", "type": block_name},
    ], name=project_name)
    text, _ = exported(p, tmp_path)
    assert f"class {expected}(nn.Module):" in text and f"self.b = {expected}()" in text
    assert f"# block {block_name} is the class {expected} here: model.py already uses the name {block_name}" in text
    assert "# block parameter 'nn' is the argument nn_ (model.py uses the name nn)" in text
    # a parameter called like the torch module or a class that __init__ calls is renamed
    assert "def __init__(self, nn_=3, SameConv2d_=0):" in text and "SameConv2d(1, nn_, kernel_size=4)" in text


def test_an_inner_layer_without_source_is_still_an_error_naming_its_path(tmp_path, monkeypatch):
    p = project({"Res": res_block()}, [
        {"id": "input", "type": "Input", "params": {"shape": [1, 6, 6]}},
        {"id": "layer1", "type": "Res", "repeat": 2},
    ])
    def refuse(node_id, module):
        raise ExportError(f"node {node_id!r} refused")

    monkeypatch.setattr(python_export, "layer_call", refuse)
    with pytest.raises(ExportError, match=r"node 'layer1\.0\.conv1' refused"):
        export_python(p, tmp_path, data=False)
