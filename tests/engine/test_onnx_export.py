"""ONNX export: every example, with trained weights, checked and compared with torch."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from app.engine import cli
from app.engine.compiler import compile_graph
from app.engine.examples import list_examples, load_example
from app.engine.export import onnx_export
from app.engine.export.onnx_export import ExportError, export_onnx
from app.engine.errors import GraphError, WeightsError
from app.engine.weights import save_weights


@pytest.mark.parametrize("name", [e.name for e in list_examples()])
def test_every_example_exports_checks_and_matches_onnxruntime(name, tmp_path):
    report = export_onnx(load_example(name), tmp_path / f"{name}.onnx")
    assert report.max_difference <= 1e-4
    model = onnx.load(str(report.path))
    onnx.checker.check_model(model, full_check=True)
    ids = set(load_example(name).graph.nodes)
    named = [n.name.split("/")[0].split(".")[0] for n in model.graph.node]  # (inside a block: node.inner)
    assert sum(n in ids for n in named) >= len(named) * 0.6, named  # names come from node ids
    # the batch axis is dynamic
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert isinstance(shape[0], str)


def test_trained_weights_are_exported(tmp_path):
    project = load_example("mlp")
    torch.manual_seed(5)
    trained = compile_graph(project.graph)
    for p in trained.parameters():
        torch.nn.init.normal_(p, std=0.3)
    save_weights(trained, tmp_path / "w.safetensors")
    report = export_onnx(project, tmp_path / "mlp.onnx", tmp_path / "w.safetensors")
    assert report.weights.endswith("w.safetensors")
    session = ort.InferenceSession(str(tmp_path / "mlp.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 1, 28, 28)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(got, trained.eval()(x).numpy(), atol=1e-5)
    names = {i.name for i in onnx.load(str(tmp_path / "mlp.onnx")).graph.initializer}
    assert {"fc1.weight", "fc1.bias", "fc3.weight"} <= names


def test_a_difference_above_the_tolerance_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "onnxruntime_difference", lambda *a, **k: 0.5)
    with pytest.raises(ExportError, match="differs from torch's by 0.5"):
        export_onnx(load_example("xor"), tmp_path / "x.onnx")


def test_graph_errors_and_bad_weights_are_refused(tmp_path):
    project = load_example("xor")
    project.graph.nodes["fc1"].params["out_features"] = 0
    with pytest.raises(GraphError):
        export_onnx(project, tmp_path / "x.onnx")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsError):
        export_onnx(load_example("xor"), tmp_path / "x.onnx", tmp_path / "bad.safetensors")


def test_cli_export(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["export", "lenet5", "--onnx", str(tmp_path / "l.onnx")], out, err)
    assert code == 0, err.getvalue()
    assert "checker passed" in out.getvalue() and "onnxruntime matches torch" in out.getvalue()
    code = cli.main(["export", "nope", "--onnx", str(tmp_path / "n.onnx")], out, err)
    assert code == 2


def test_the_input_normalization_and_dataset_settings_are_recorded(tmp_path):
    import json

    project = load_example("xor")
    project.dataset = {**project.dataset, "seed": 4, "normalize": False}
    model = compile_graph(project.graph)
    meta = {"input_mean": "[0.5, -1.0]", "input_std": "[2.0, 0.25]", "input_shape": "[2]",
            "class_names": '["0", "1"]', "steps": "12"}
    save_weights(model, tmp_path / "w.safetensors", meta)
    export_onnx(project, tmp_path / "x.onnx", tmp_path / "w.safetensors")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "x.onnx")).metadata_props}
    assert {k: props[k] for k in ("input_mean", "input_std", "input_shape", "class_names")} == {
        k: meta[k] for k in ("input_mean", "input_std", "input_shape", "class_names")}
    assert "steps" not in props
    assert json.loads(props["netcanvas.dataset"]) == {k: v for k, v in project.dataset.items() if v is not None}
    # freshly initialized weights carry no normalization: only the dataset settings
    export_onnx(load_example("xor"), tmp_path / "y.onnx")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "y.onnx")).metadata_props}
    assert "input_mean" not in props and json.loads(props["netcanvas.dataset"])["name"] == "xor"
