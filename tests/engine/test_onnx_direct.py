"""ONNX written from the layer declarations (export/onnx_direct.py): the direct path is taken
for the examples and layer types it covers, its files compute what torch computes and import
back as the same project with the same weights, and anything else falls back to torch's
exporter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.examples import list_examples, load_example
from app.engine.export import onnx_direct, onnx_export
from app.engine.export.onnx_direct import CONVERTERS, Unsupported, direct_model
from app.engine.export.onnx_export import export_onnx
from app.engine.graph import Edge, Graph, Node
from app.engine.importers import compare_with_onnxruntime, import_onnx
from app.engine.inference import analyze
from app.engine.layers import CATALOGUE
from app.engine.project import Project, project_to_dict
from app.engine.weights import save_tensors
from tests.engine.test_catalogue import one_node

ROOT = Path(__file__).resolve().parents[2]
# the samples (type, index into its ``samples``) that need torch's exporter, and why
NEEDS_TORCH = {
    ("Conv2d", 3): "circular padding",
    ("AvgPool2d", 3): "divisor_override", ("AvgPool3d", 2): "divisor_override",
    ("AdaptiveAvgPool1d", 1): "7 into 3", ("AdaptiveAvgPool1d", 2): "3 into 5",
    ("AdaptiveAvgPool2d", 1): "9 into 4", ("AdaptiveAvgPool2d", 2): "5 into 2",
    ("AdaptiveAvgPool3d", 2): "5 into 2", ("AdaptiveMaxPool1d", 1): "7 into 3",
    ("AdaptiveMaxPool2d", 1): "9 into 4", ("AdaptiveMaxPool3d", 1): "5 into 2",
    ("BatchNorm1d", 3): "batch statistics", ("BatchNorm2d", 2): "batch statistics",
    ("BatchNorm3d", 2): "batch statistics",
    ("GELU", 2): "tanh approximation before opset 20",
    ("ConvTranspose1d", 2): "output_padding 2 >= stride 1 (onnxruntime refuses it)",
}
SAMPLES = [pytest.param(name, k, id=f"{name}-{k}") for name in sorted(CONVERTERS)
           for k in range(len(CATALOGUE[name].samples))]


def random_state(project: Project) -> dict[str, torch.Tensor]:
    """The compiled model's state_dict with random values (variances positive)."""
    torch.manual_seed(1)
    state = {k: (torch.randn(v.shape) if v.is_floating_point() else v)
             for k, v in compile_graph(project.graph).state_dict().items()}
    return {k: (v.abs() + 0.5 if k.endswith("running_var") else v) for k, v in state.items()}


def export_with(project: Project, folder: Path, name: str, **kw):
    """Export ``project`` with random weights: ``(report, state)``."""
    state = random_state(project)
    save_tensors(state, folder / f"{name}.safetensors")
    report = export_onnx(project, folder / f"{name}.onnx", weights=folder / f"{name}.safetensors", **kw)
    return report, state


def assert_comes_back(project: Project, path: Path, state: dict[str, torch.Tensor]) -> None:
    """The file imports as ``project`` (view state aside) with the weights ``state``."""
    result = import_onnx(path)
    back, sent = project_to_dict(result.project), project_to_dict(project)
    back.pop("editor", None), sent.pop("editor", None)
    assert back == sent
    assert set(result.state) == set(state)
    for key, value in state.items():
        assert torch.equal(result.state[key], value), key
    assert compare_with_onnxruntime(result) <= 1e-4


def direct_ok(project: Project, opset: int = 18) -> bool:
    a = analyze(project.graph)
    state = {k: v.numpy() for k, v in compile_graph(project.graph, a).state_dict().items()}
    try:
        direct_model(project.graph, a, state, opset)
    except Unsupported:
        return False
    return True


@pytest.mark.parametrize("name, k", SAMPLES)
def test_each_sample_of_a_covered_type_is_written_directly_and_matches_torch(name, k, tmp_path):
    shapes, params = CATALOGUE[name].samples[k]
    project = one_node(name, shapes, params)
    assert direct_ok(project) == ((name, k) not in NEEDS_TORCH)
    if (name, k) in NEEDS_TORCH:
        return
    report, state = export_with(project, tmp_path, name)
    assert report.writer == "direct"  # no fallback after a failed check either
    # onnxruntime on the file against the torch model, on inputs of a new batch size
    model = compile_graph(project.graph).eval()
    model.load_state_dict(state)
    torch.manual_seed(2)
    xs = [torch.randn(4, *s) for s in shapes]
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), xs)})[0]
    with torch.no_grad():
        want = model(*xs).numpy()
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-5, rtol=1e-4)
    assert_comes_back(project, report.path, state)


COVERED = [e.name for e in list_examples() if all(
    n.type == "Input" or n.type in CONVERTERS for n in load_example(e.name).graph.nodes.values())]


def test_the_common_examples_are_covered():
    assert {"lenet5", "mlp", "resnet", "unet", "autoencoder", "three_conv", "xor"} <= set(COVERED)


@pytest.mark.parametrize("name", COVERED)
def test_a_covered_example_is_written_directly_and_comes_back(name, tmp_path):
    project = load_example(name)
    report, state = export_with(project, tmp_path, name)
    assert report.writer == "direct" and report.max_difference <= 1e-4
    assert_comes_back(project, report.path, state)


def test_a_repeated_node_and_an_unused_branch(tmp_path):
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": [6]}))
    g.add_node(Node("fc", "Linear", {"out_features": 6}, repeat=3))
    g.add_node(Node("act", "Tanh"))
    for a, b in (("x", "fc"), ("fc", "act")):
        g.add_edge(Edge(a, b, 0))
    project = Project(graph=g, name="repeated")
    report, state = export_with(project, tmp_path, "repeated")
    assert report.writer == "direct"
    assert "fc.2.weight" in state
    assert_comes_back(project, report.path, state)


def test_opsets(tmp_path):
    layernorm = one_node("LayerNorm", *CATALOGUE["LayerNorm"].samples[0])
    assert direct_ok(layernorm, 17) and not direct_ok(layernorm, 16)
    assert not direct_ok(load_example("lenet5"), onnx_direct.MIN_OPSET - 1)
    report, _ = export_with(load_example("lenet5"), tmp_path, "lenet5", opset=13)
    assert report.writer == "direct" and report.opset == 13


def test_unsupported_graphs_and_failed_checks_fall_back_to_torch(tmp_path, monkeypatch):
    project = one_node("Split", *CATALOGUE["Split"].samples[0])  # several outputs: not covered
    assert not direct_ok(project)
    project = one_node("Mean", *CATALOGUE["Mean"].samples[0])
    assert not direct_ok(project)
    report, state = export_with(project, tmp_path, "mean")
    assert report.writer == "torch"
    assert_comes_back(project, report.path, state)
    # a converter that computes the wrong thing: the check catches it, torch's exporter writes
    monkeypatch.setitem(CONVERTERS, "Tanh", CONVERTERS["Sigmoid"])
    project = one_node("Tanh", *CATALOGUE["Tanh"].samples[0])
    report, state = export_with(project, tmp_path, "tanh")
    assert report.writer == "torch" and report.max_difference <= 1e-4
    assert_comes_back(project, report.path, state)
    assert export_onnx(project, tmp_path / "t.onnx", direct=False).writer == "torch"
    # and when torch's exporter fails too, the wrong direct file is not left behind
    def failing(*args, **kwargs):
        raise onnx_export.ExportError("torch could not export the model to ONNX: no")

    monkeypatch.setattr(onnx_export, "_torch_model", failing)
    with pytest.raises(onnx_export.ExportError, match="torch could not"):
        export_onnx(project, tmp_path / "gone.onnx")
    assert not (tmp_path / "gone.onnx").exists()


def test_the_direct_export_loads_no_exporter_machinery(tmp_path):
    """torch.onnx, dynamo and onnxscript cost seconds to import; the direct path needs none."""
    code = ("import sys\nfrom app.engine.examples import load_example\n"
            "from app.engine.export.onnx_export import export_onnx\n"
            f"assert export_onnx(load_example('lenet5'), {str(tmp_path / 'l.onnx')!r}).writer == 'direct'\n"
            "print(sorted(m for m in ('torch.onnx', 'torch._dynamo', 'onnxscript') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_float_parameters_given_as_whole_numbers_are_written_directly(tmp_path):
    from app.engine.examples import load_example

    project = load_example("mlp")
    relu = next(n for n in project.graph.nodes.values() if n.type == "ReLU")
    relu.type, relu.params = "LeakyReLU", {"negative_slope": 1}  # an int where a float is declared
    report = export_onnx(project, tmp_path / "m.onnx")
    assert report.writer == "direct" and report.max_difference <= 1e-4
