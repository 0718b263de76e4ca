"""Decision boundaries over the plane of two input features: shapes, the grid's meaning
(the predicted class agrees with the model at grid points), per-unit maps, fixed points."""

from __future__ import annotations

import numpy as np
import torch

from app.engine import boundary
from app.engine.boundary import boundary_maps
from app.engine.compiler import compile_graph
from app.engine.datasets.base import RawData, prepare
from app.engine.examples import load_example
from app.engine.inference import analyze
from app.engine.training import prepare_run
from tests.helpers import chain


def xor():
    run = prepare_run(load_example("xor"), device="cpu")
    torch.manual_seed(0)
    return compile_graph(run.project.graph, run.analysis), run


def test_xor_has_the_contracts_shapes_and_the_grid_agrees_with_the_model():
    model, run = xor()
    r = 32
    maps = boundary_maps(model, run.analysis, run.dataset, resolution=r)
    assert set(maps) == {"x_range", "y_range", "resolution", "classes", "probs", "predicted", "units", "points"}
    assert maps["resolution"] == r and maps["classes"] == ["0", "1"]
    assert maps["probs"].shape == (r, r, 1) and maps["probs"].dtype == np.float32  # one sigmoid output: P(1)
    assert maps["predicted"].shape == (r, r) and maps["predicted"].dtype == np.int16
    assert {k: v.shape for k, v in maps["units"].items()} == {"fc1": (8, r, r), "tanh": (8, r, r), "fc2": (1, r, r)}
    pts = maps["points"]
    assert pts["train"].shape == (144, 2) and pts["train_y"].shape == (144,) and pts["test"].shape == (40, 2)
    # the data's own units (xor's corners are near 0 and 1), inside the plane with a margin
    (x0, x1), (y0, y1) = maps["x_range"], maps["y_range"]
    assert x0 < pts["train"][:, 0].min() < 0.2 and 0.8 < pts["train"][:, 0].max() < x1
    assert y0 < pts["train"][:, 1].min() and pts["train"][:, 1].max() < y1
    # row r is y, column c is x, at the cell centres; the model sees them normalized
    data = run.dataset
    model.eval()
    with torch.no_grad():
        for row, col in [(0, 0), (3, 29), (17, 5), (31, 31)]:
            point = torch.tensor([[x0 + (col + 0.5) * (x1 - x0) / r, y0 + (row + 0.5) * (y1 - y0) / r]])
            p = float(model((point - data.mean) / data.std))
            assert abs(p - maps["probs"][row, col, 0]) < 1e-5
            assert maps["predicted"][row, col] == int(p > 0.5)
            unit = float(model.fc1((point - data.mean) / data.std)[0, 2])
            assert abs(unit - maps["units"]["fc1"][2, row, col]) < 1e-5


def test_a_softmax_output_gives_one_probability_per_class_and_points_are_a_fixed_subsample():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    x = (rng.normal(0, 3, (3, 2))[y] + rng.normal(0, 0.5, (3000, 2))).astype(np.float32)
    data = prepare(RawData(x, y, ["a", "b", "c"], "blobs"), "blobs", {})
    layers = [("input", "Input", {"shape": [2]})]
    for i in range(4):  # 7 hidden nodes: too many for unit maps
        layers += [(f"fc{i}", "Linear", {"out_features": 8}), (f"relu{i}", "ReLU")]
    layers[-1] = ("out", "Linear", {"out_features": 3})
    graph = chain(*layers)
    a = analyze(graph)
    model = compile_graph(graph, a)
    maps = boundary_maps(model, a, data, resolution=16, class_names=["x", "y", "z"])
    assert maps["probs"].shape == (16, 16, 3) and maps["classes"] == ["x", "y", "z"]
    np.testing.assert_allclose(maps["probs"].sum(-1), 1.0, rtol=1e-5)  # raw scores through softmax
    assert (maps["predicted"] == maps["probs"].argmax(-1)).all()
    assert maps["units"] == {}
    assert len(maps["points"]["train"]) == boundary.MAX_POINTS
    again = boundary_maps(model, a, data, resolution=16)
    np.testing.assert_array_equal(maps["points"]["train"], again["points"]["train"])


def test_a_model_without_two_features_has_no_boundary():
    graph = chain(("input", "Input", {"shape": [3]}), ("fc", "Linear", {"out_features": 2}))
    a = analyze(graph)
    data = prepare(RawData(np.zeros((10, 3), np.float32), np.zeros(10, np.int64), ["a", "b"], "z"), "z", {})
    assert boundary_maps(compile_graph(graph, a), a, data) is None
    lenet = load_example("lenet5")
    assert not boundary.applies(analyze(lenet.graph))
