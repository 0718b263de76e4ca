"""``.pt2`` import: a program saved by ``torch.export.save`` imports as a project computing
what it computes, without unpickling anything; an archive whose entries would need an
unpickle or an evaluation is refused by name, and its payload never runs."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from app.engine import cli
from app.engine.compiler import compile_graph
from app.engine.importers.torch_pt2 import Pt2ArchiveError, import_pt2, load_program
from app.engine.project import load_project, weights_path_for
from app.engine.weights import load_weights
from tests.engine import torch_models as tm


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)) + x)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(_Block(8), _Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.blocks(torch.relu(self.stem(x)))
        return self.fc(self.norm(torch.flatten(self.pool(x), 1)))


def _trained_net() -> nn.Module:
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():  # running statistics that are not the defaults, so that they must come along
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[nn.Module, Path]:
    net = _trained_net()
    path = tmp_path_factory.mktemp("pt2") / "net.pt2"
    torch.export.save(torch.export.export(net, (torch.randn(2, 3, 16, 16),)), path)
    return net, path


def _rewrite(src: Path, dst: Path, change) -> Path:
    """A copy of the archive ``src`` with ``change(name without root, bytes) -> bytes | None``
    applied to every entry (None: unchanged)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            new = change(info.filename.split("/", 1)[1], data)
            zout.writestr(info, data if new is None else new)
    return dst


class _Payload:
    """Unpickled, it creates ``marker``: the code an archive could carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_saved_program_imports_as_layers_and_blocks_and_computes_the_same(saved, monkeypatch):
    net, path = saved

    def refuse(*_a, **_k):
        raise AssertionError("an unpickler was called")

    # nothing on the way may unpickle: torch's loaders and pickle's all fail if called
    for owner, attr in [(torch, "load"), (torch.serialization, "load"), (pickle, "load"), (pickle, "loads"),
                        (pickle, "Unpickler"), (torch._C, "_pickle_load_obj")]:
        monkeypatch.setattr(owner, attr, refuse)
    result = import_pt2(path)
    monkeypatch.undo()
    types = [n.type for n in result.project.graph.nodes.values()]
    assert types == ["Input", "Conv2d", "ReLU", "_Block", "AdaptiveAvgPool2d", "Flatten", "LayerNorm", "Linear"]
    block = next(n for n in result.project.graph.nodes.values() if n.type == "_Block")
    assert block.repeat == 2
    assert result.difference <= 1e-5
    net_out = compile_graph(result.project.graph).eval()
    net_out.load_state_dict(result.state)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net_out(x), net(x), atol=1e-5)


@pytest.mark.parametrize("factory", [tm.MobileNetV2, tm.VisionTransformer, tm.ConvNeXt],
                         ids=["in-place ReLU6", "MultiheadAttention", "F.layer_norm"])
def test_layers_without_weights_attention_and_functional_norms_import(factory, tmp_path):
    torch.manual_seed(0)
    model = factory().eval()
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(2, 3, 32, 32),)), path)
    result = import_pt2(path)
    assert result.difference <= 1e-5 and result.project.graph.blocks
    net = compile_graph(result.project.graph).eval()
    net.load_state_dict(result.state)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-5)


def test_cli_imports_a_pt2_and_writes_project_and_weights(saved, tmp_path):
    net, path = saved
    out = tmp_path / "net.netcanvas.json"
    code, text, err = _run(["import", str(path), str(out)])
    assert code == 0, err
    assert f"imported {path}" in text and "largest difference" in text and f"wrote {out}" in text
    assert "on a batch of 2," in text  # the program's own (exported with 2 samples)
    model = compile_graph(load_project(out).graph).eval()
    load_weights(model, weights_path_for(out))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5)
    code, _, err = _run(["import", str(path), str(out), "--input-shape", "3,16,16"])
    assert code == 2 and "takes no --input-shape" in err


def test_a_pickled_weight_is_refused_by_name_and_its_payload_never_runs(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Payload(marker))

    def change(name, data):
        if name == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["stem.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        if name == f"data/weights/{json.loads(data_config)['config']['stem.weight']['path_name']}":
            return evil
        return None

    with zipfile.ZipFile(path) as z:
        data_config = z.read(next(n for n in z.namelist() if n.endswith("model_weights_config.json")))
    tampered = _rewrite(path, tmp_path / "evil.pt2", change)
    with pytest.raises(Pt2ArchiveError, match=r"entry data/weights/weight_\d+ \(stem.weight\) is a tensor subclass "
                                              r"saved with pickle: reading it needs a full unpickle"):
        import_pt2(tampered)
    assert not marker.exists()
    code, _, err = _run(["import", str(tampered), str(tmp_path / "x.netcanvas.json")])
    assert code == 2 and "stem.weight" in err and not marker.exists()
    # the payload is live: torch's own loader runs it
    with pytest.raises(Exception):
        torch.export.load(tampered)
    assert marker.exists()


def test_pickled_example_inputs_are_never_read(saved, tmp_path):
    net, path = saved
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Payload(marker))
    tampered = _rewrite(path, tmp_path / "inputs.pt2",
                        lambda name, _d: evil if name.startswith("data/sample_inputs/") else None)
    result = import_pt2(tampered)
    assert result.difference <= 1e-5 and not marker.exists()


def test_a_constant_object_is_refused_naming_its_entry(saved, tmp_path):
    _, path = saved

    def change(name, data):
        if name == "data/constants/model_constants_config.json":
            return json.dumps({"config": {"obj": {"path_name": "opaque_obj_0", "is_param": False,
                                                  "use_pickle": True, "tensor_meta": None}}}).encode()
        return None

    with pytest.raises(Pt2ArchiveError, match=r"data/constants/opaque_obj_0 \(obj\) is a Python object saved "
                                              "with pickle"):
        import_pt2(_rewrite(path, tmp_path / "const.pt2", change))


def _with_graph(path: Path, dst: Path, edit) -> Path:
    def change(name, data):
        if name.startswith("models/") and name.endswith(".json"):
            program = json.loads(data)
            edit(program)
            return json.dumps(program).encode()
        return None
    return _rewrite(path, dst, change)


def test_an_op_outside_aten_is_refused_before_anything_resolves_it(saved, tmp_path):
    _, path = saved

    def edit(program):  # torch's deserializer would resolve this dotted name under torch
        program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    with pytest.raises(Pt2ArchiveError, match=r"op 'torch.os.system' is not an ATen op"):
        load_program(_with_graph(path, tmp_path / "op.pt2", edit))


def test_a_shape_expression_that_is_not_arithmetic_is_not_evaluated(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "ran"

    def edit(program):  # sympy.sympify would eval this string
        program["graph_module"]["graph"]["tensor_values"]["x"]["sizes"][0] = {
            "as_expr": {"expr_str": f"__import__('builtins').open('{marker}', 'w')", "hint": None}}

    with pytest.raises(Pt2ArchiveError, match="is not plain arithmetic on shape symbols"):
        load_program(_with_graph(path, tmp_path / "expr.pt2", edit))
    assert not marker.exists()


def test_files_that_are_not_archives_are_refused(tmp_path):
    with pytest.raises(Pt2ArchiveError, match="no such file"):
        import_pt2(tmp_path / "missing.pt2")
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip")
    with pytest.raises(Pt2ArchiveError, match="not a zip file"):
        import_pt2(bad)
    legacy = tmp_path / "legacy.pt2"
    with zipfile.ZipFile(legacy, "w") as z:
        z.writestr("m/archive_format", "pt2")
        z.writestr("m/models/model.json", "{}")
        z.writestr("m/data/weights/model.pt", pickle.dumps(_Payload(tmp_path / "ran")))
    with pytest.raises(Pt2ArchiveError, match=r"entry data/weights/model.pt is a pickled file"):
        import_pt2(legacy)
    assert not (tmp_path / "ran").exists()


def test_ops_without_a_layer_are_named_with_their_lines_and_nothing_is_written(tmp_path):
    path = tmp_path / "u.pt2"
    torch.export.save(torch.export.export(tm.Unmappable().eval(), (torch.randn(2, 6),)), path)
    out = tmp_path / "u.netcanvas.json"
    code, _, err = _run(["import", str(path), str(out)])
    assert code == 1 and "torch.roll at torch_models.py:" in err and "torch.exp at torch_models.py:" in err
    assert not out.exists() and not weights_path_for(out).exists()
