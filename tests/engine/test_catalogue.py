"""Every catalogue type against torch, from the examples each declares (``LayerSpec.samples``):
the shape rule and the parameter count equal what the built module does and has; the first
example of each type also compiles into a model that exports to ONNX (onnxruntime agrees)
and to Python code (which runs standalone and matches)."""

from __future__ import annotations

import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.export.onnx_export import export_onnx
from app.engine.export.python_export import export_python
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.layers import CATALOGUE
from app.engine.project import Project

CASES = [pytest.param(name, shapes, params, id=f"{name}-{i}")
         for name, spec in CATALOGUE.items() for i, (shapes, params) in enumerate(spec.samples)]
FIRST = [pytest.param(name, *spec.samples[0], id=name) for name, spec in CATALOGUE.items() if spec.samples]
# types whose input holds integer indices (token ids) rather than values
INDEX_INPUTS = {"Embedding"}


def one_node(name: str, shapes, params: dict) -> Project:
    """Inputs of ``shapes`` feeding one node of type ``name`` (the model's output)."""
    g = Graph()
    dtype = {"dtype": "int64"} if name in INDEX_INPUTS and "dtype" in CATALOGUE["Input"].param_index else {}
    for k, shape in enumerate(shapes):
        g.add_node(Node(f"in{k}", "Input", {"shape": list(shape), **dtype}))
    g.add_node(Node("layer", name, dict(params)))
    for k in range(len(shapes)):
        g.add_edge(Edge(f"in{k}", "layer", k))
    return Project(graph=g, name=f"one {name}")


def sample_inputs(name: str, shapes, batch: int = 2) -> list[torch.Tensor]:
    torch.manual_seed(0)
    if name in INDEX_INPUTS:
        return [torch.randint(0, 3, (batch, *s)) for s in shapes]
    return [torch.randn(batch, *s) for s in shapes]


def test_every_type_declares_an_example():
    assert [name for name, spec in CATALOGUE.items() if name != "Input" and not spec.samples] == []


@pytest.mark.parametrize("name, shapes, params", CASES)
def test_the_shape_rule_and_count_are_torchs(name, shapes, params):
    project = one_node(name, shapes, params)
    a = analyze(project.graph)
    assert a.ok, a.errors
    model = compile_graph(project.graph, a).eval()
    with torch.no_grad():
        out = model(*sample_inputs(name, shapes))
    assert tuple(out.shape[1:]) == tuple(a.shapes["layer"])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert a.param_counts["layer"] == trainable


@pytest.mark.parametrize("name, shapes, params", FIRST)
def test_each_type_exports_to_onnx_and_python(name, shapes, params, tmp_path):
    project = one_node(name, shapes, params)
    report = export_onnx(project, tmp_path / "model.onnx")  # raises unless onnxruntime agrees
    assert (tmp_path / "model.onnx").exists() and report is not None
    python = export_python(project, tmp_path / "py", data=False)  # raises unless model.py matches
    assert (tmp_path / "py" / "model.py").exists() and python is not None
