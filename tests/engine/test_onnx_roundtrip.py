"""The project NetCanvas records in its ONNX files: the file's own weights are the ones read
back, weights the exporter moves are found, and a recorded project that is unusable falls
back to the ops with a note, never an escape. (That every catalogue type comes back as the
same file is checked where each is exported: tests/engine/test_catalogue.py.)"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from onnx import numpy_helper

from app.engine.examples import load_example
from app.engine.export.onnx_export import export_onnx
from app.engine.importers import OnnxImportError, compare_with_onnxruntime, import_onnx
from app.engine.importers.onnx_project import PROJECT_KEY, WEIGHTS_KEY
from app.engine.project import project_to_dict
from tests.engine.test_catalogue import export_one
from tests.fuzz.onnx_cases import fuzz_one, project_metadata_models

@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("roundtrip"))


@lru_cache(maxsize=None)
def exported(name: str, folder: str) -> tuple:
    """The one-layer project of ``name`` (its first example), exported with random weights."""
    return export_one(name, Path(folder))


def test_the_weights_are_the_files_own(folder):
    """A weight changed in the file (as another tool may) is the imported one."""
    project, path, state = exported("Linear", folder)
    model = onnx.load(path)
    init = next(i for i in model.graph.initializer if i.name == "layer.weight")
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 2, "layer.weight"))
    changed = path.with_name("changed.onnx")
    onnx.save(model, changed)
    result = import_onnx(changed)
    assert torch.equal(result.state["layer.weight"], state["layer.weight"] * 2)
    assert compare_with_onnxruntime(result) <= 1e-4


def test_weights_the_exporter_moves_are_found(folder):
    """LSTM gates reordered, attention weights transposed: the recorded locations find them."""
    for name in ("LSTM", "MultiheadAttention"):
        _, path, state = exported(name, folder)
        recipes = json.loads({p.key: p.value for p in onnx.load(path).metadata_props}[WEIGHTS_KEY])
        assert recipes and all(r is not None for r in recipes.values())
        assert all(torch.equal(import_onnx(path).state[k], v) for k, v in state.items())


def _rewritten(path: Path, out: str, **props) -> Path:
    model = onnx.load(path)
    values = {p.key: p.value for p in model.metadata_props}
    values.update(props)
    del model.metadata_props[:]
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    target = path.with_name(out)
    onnx.save(model, target)
    return target


def test_an_unusable_project_falls_back_to_the_ops_with_a_note(folder):
    project, path, _ = exported("Dropout", folder)
    text = {p.key: p.value for p in onnx.load(path).metadata_props}[PROJECT_KEY]
    data = json.loads(text)
    data["graph"]["nodes"][0]["params"]["shape"] = [99]  # another input shape
    cases = {"not JSON": "{", "huge": " " * (17 * 1024 * 1024), "no fit": json.dumps(data),
             "unknown type": text.replace('"Dropout"', '"NoSuchLayer"')}
    reasons = {"not JSON": "invalid JSON", "huge": "more than", "no fit": "input 'in0'",
               "unknown type": "unknown layer type"}
    for case, value in cases.items():
        result = import_onnx(_rewritten(path, "bad.onnx", **{PROJECT_KEY: value}))
        assert "not used" in result.notes[0] and reasons[case] in result.notes[0], case
        assert [n.type for n in result.project.graph.nodes.values()] == ["Input", "Identity"]


def test_a_missing_weight_falls_back_and_a_failing_op_import_says_why(folder):
    project, path, _ = exported("ClassToken", folder)
    model = onnx.load(path)
    model.graph.initializer.remove(next(i for i in model.graph.initializer if i.name == "layer.token"))
    broken = path.with_name("broken.onnx")
    onnx.save(model, broken)
    with pytest.raises(OnnxImportError, match="recorded in the file was not used"):
        import_onnx(broken)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=project_metadata_models())
def test_a_damaged_recorded_project_never_escapes(data):
    assert fuzz_one(data) == "ok"  # the seeds import from their ops when the project is unusable


def test_a_project_with_blocks_comes_back_as_the_same_file(tmp_path):
    project = load_example("resnet_blocks")
    report = export_onnx(project, tmp_path / "blocks.onnx")
    result = import_onnx(report.path)
    back, sent = project_to_dict(result.project), project_to_dict(project)
    assert back["blocks"] and back["blocks"] == sent["blocks"]
    back.pop("editor", None), sent.pop("editor", None)  # (view state is not recorded)
    assert back == sent
    assert compare_with_onnxruntime(result) <= 1e-4
