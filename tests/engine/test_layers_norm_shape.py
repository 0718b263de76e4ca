"""Normalization, regularization and shape layers (layers/norm.py, regularization.py,
reshaping.py): their messages, their edge cases and their values against torch. Shapes and
counts of every sample are test_catalogue.py's."""

from __future__ import annotations

import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import analyze
from app.engine.layers import CATALOGUE, ShapeError


def complete(name: str, given: dict) -> dict:
    spec = CATALOGUE[name]
    params = {**spec.defaults(), **given}
    for p in spec.params:
        assert p.check(params[p.name]) == params[p.name]
    return params


def infer(name: str, shape, **given):
    return CATALOGUE[name].infer([tuple(shape)], complete(name, given))


def build(name: str, shape, **given):
    return CATALOGUE[name].build([tuple(shape)], complete(name, given))


def error(name: str, shape, **given) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer(name, shape, **given)
    return info.value


def one_node(name: str, shape, params: dict) -> Graph:
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": list(shape)}))
    g.add_node(Node("n", name, params))
    g.add_edge(Edge("x", "n", 0))
    return g


# -- normalization -----------------------------------------------------------------------
def test_groupnorm_needs_groups_that_divide_the_channels():
    e = error("GroupNorm", (6, 5, 5), num_groups=4)
    assert e.param == "num_groups"
    assert str(e) == "GroupNorm splits the 6 channels of [6, 5, 5] into 4 groups, and 4 does not divide 6"
    assert infer("GroupNorm", (6, 5, 5), num_groups=6) == (6, 5, 5)


def test_groupnorm_is_required_and_counts_only_with_affine():
    a = analyze(one_node("GroupNorm", (4, 3), {}))
    assert [(i.node, i.param) for i in a.errors] == [("n", "num_groups")]
    spec = CATALOGUE["GroupNorm"]
    assert spec.count([(8, 3)], complete("GroupNorm", {"num_groups": 2})) == 16
    assert spec.count([(8, 3)], complete("GroupNorm", {"num_groups": 2, "affine": False})) == 0


def test_layernorm_without_dims_builds_as_version_1_did():
    module = build("LayerNorm", (5, 9))
    assert module.normalized_shape == (9,) and module.weight.shape == (9,)
    assert set(module.state_dict()) == {"weight", "bias"}
    assert CATALOGUE["LayerNorm"].defaults() == {"eps": 1e-5, "dims": 1, "elementwise_affine": True, "bias": True}


def test_layernorm_dims_normalizes_trailing_dimensions():
    module = build("LayerNorm", (3, 5, 6), dims=2)
    assert module.normalized_shape == (5, 6)
    x = torch.randn(2, 3, 5, 6)
    with torch.no_grad():
        want = torch.nn.functional.layer_norm(x, (5, 6), module.weight, module.bias)
        assert torch.allclose(module(x), want)
    assert CATALOGUE["LayerNorm"].count([(3, 5, 6)], complete("LayerNorm", {"dims": 3, "bias": False})) == 90
    e = error("LayerNorm", (4, 9), dims=3)
    assert e.param == "dims" and "[4, 9] has 2" in str(e)


def test_instancenorm_defaults_are_torchs_and_one_position_is_refused():
    module = build("InstanceNorm2d", (3, 4, 4))
    assert not module.affine and not module.track_running_stats
    assert CATALOGUE["InstanceNorm2d"].count([(3, 4, 4)], complete("InstanceNorm2d", {})) == 0
    e = error("InstanceNorm1d", (3, 1))
    assert "one position" in str(e) and "[3, 1]" in str(e)
    e = error("InstanceNorm1d", (3, 4, 4))
    assert str(e).startswith("InstanceNorm1d needs an input of shape [C, L]; received [3, 4, 4]")


def test_batchnorm_gains_torchs_affine_and_track_running_stats():
    module = build("BatchNorm3d", (2, 3, 4, 5), affine=False, track_running_stats=False)
    assert module.weight is None and module.running_mean is None
    assert CATALOGUE["BatchNorm2d"].count([(4, 2, 2)], complete("BatchNorm2d", {"affine": False})) == 0
    assert "needs an input of shape [C, D, H, W]" in str(error("BatchNorm3d", (3, 4, 5)))


def test_local_response_norm_ranks_and_values():
    assert "received [7]" in str(error("LocalResponseNorm", (7,), size=2))
    module = build("LocalResponseNorm", (6, 5, 7), size=3, alpha=0.01, k=2.0)
    x = torch.randn(2, 6, 5, 7)
    want = torch.nn.functional.local_response_norm(x, 3, alpha=0.01, beta=0.75, k=2.0)
    assert torch.allclose(module(x), want)


# -- regularization ----------------------------------------------------------------------
@pytest.mark.parametrize("name, good, bad", [
    ("Dropout1d", (3, 8), (3, 4, 4)),
    ("Dropout2d", (3, 4, 4), (3, 8)),
    ("Dropout3d", (2, 3, 4, 4), (3, 4, 4)),
])
def test_channel_dropout_ranks(name, good, bad):
    assert infer(name, good) == good
    assert f"{name} needs an input of shape" in str(error(name, bad))


def test_channel_dropout_drops_whole_channels_and_is_identity_in_eval():
    module = build("Dropout2d", (8, 5, 5), p=0.5)
    torch.manual_seed(0)
    out = module.train()(torch.ones(4, 8, 5, 5))
    per_channel = out.flatten(2)
    assert torch.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(module.eval()(x), x)
    assert torch.equal(build("AlphaDropout", (3,)).eval()(x), x)


# -- shape -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, given, param", [
    ("Unflatten", {"dim": 0, "unflattened_size": [2, 2]}, "dim"),
    ("Transpose", {"dim0": 0, "dim1": 1}, "dim0"),
    ("Transpose", {"dim0": 1, "dim1": -4}, "dim1"),
    ("Select", {"dim": 0, "index": 0}, "dim"),
    ("Mean", {"dims": [1, 0]}, "dims"),
    ("Mean", {"dims": [-4]}, "dims"),
])
def test_the_batch_dimension_is_refused_with_its_reason(name, given, param):
    e = error(name, (4, 6, 8), **given)
    assert e.param == param
    assert "batch dimension" in str(e) and "use 1 to 3 or -1 to -3" in str(e)


def test_a_dimension_past_the_input_names_the_range():
    e = error("Transpose", (4, 6), dim0=1, dim1=3)
    assert e.param == "dim1"
    assert str(e) == ("dim1 3 is out of range for the input [4, 6] of Transpose (dimension 0 is "
                      "the batch); use 1 to 2 or -1 to -2")


def test_permute_keeps_the_batch_first_and_names_every_dimension():
    assert infer("Permute", (3, 5, 7), dims=[0, 2, 3, 1]) == (5, 7, 3)
    e = error("Permute", (3, 5, 7), dims=[1, 0, 2, 3])
    assert e.param == "dims" and "cannot move the batch dimension" in str(e)
    e = error("Permute", (3, 5, 7), dims=[0, 2, 1])
    assert "needs 4 dims for its input [3, 5, 7]" in str(e)
    e = error("Permute", (3, 5, 7), dims=[0, 1, 1, 3])
    assert "each of 0 to 3 once" in str(e)
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(build("Permute", (3, 5, 7), dims=[0, -1, 1, 2])(x), x.permute(0, 3, 1, 2))


def test_dims_parameter_takes_zero_and_negatives_within_its_range():
    p = CATALOGUE["Permute"].param_index["dims"]
    assert p.kind == "shape"
    assert p.check([0, -1, 2, 1]) == [0, -1, 2, 1]
    for bad in ([], [0, 1.5], [0, True], "0, 1", [0, 9], list(range(10))):
        with pytest.raises(ValueError, match="expected a list of 1 to 9 integers"):
            p.check(bad)
    assert CATALOGUE["Mean"].param_index["dims"].check([-8, 8]) == [-8, 8]
    with pytest.raises(ValueError):
        CATALOGUE["Mean"].param_index["dims"].check([-9])


def test_select_removes_its_dimension():
    assert infer("Select", (197, 768), index=0) == (768,)
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(build("Select", (3, 5, 7), dim=-1, index=-2)(x), x[..., -2])
    e = error("Select", (3, 5), dim=2, index=5)
    assert e.param == "index"
    assert str(e) == ("index 5 is out of range for dimension 2 of [3, 5] (size 5); use 0 to 4 "
                      "or -1 to -5")
    e = error("Select", (7,), index=0)
    assert "has no other" in str(e)


def test_mean_values_and_refusals():
    x = torch.randn(2, 3, 5, 7)
    assert torch.allclose(build("Mean", (3, 5, 7), dims=[2, -1])(x), x.mean((2, 3)))
    assert infer("Mean", (3, 5, 7), dims=[1, 3], keepdim=True) == (1, 5, 1)
    assert "twice" in str(error("Mean", (3, 5, 7), dims=[3, -1]))
    e = error("Mean", (3, 5), dims=[1, 2])
    assert "keepdim" in str(e) and e.param == "dims"
    assert infer("Mean", (3, 5), dims=[1, 2], keepdim=True) == (1, 1)


def test_unflatten_sizes_must_multiply_to_the_dimension():
    assert infer("Unflatten", (3, 20), dim=-1, unflattened_size=[4, -1]) == (3, 4, 5)
    e = error("Unflatten", (12,), dim=1, unflattened_size=[5, 2])
    assert e.param == "unflattened_size" and "must multiply to 12" in str(e)
    e = error("Unflatten", (12,), dim=1, unflattened_size=[5, -1])
    assert "not a multiple of 5" in str(e)


def test_pixel_and_channel_shuffles():
    e = error("PixelShuffle", (6, 3, 3), upscale_factor=2)
    assert e.param == "upscale_factor" and "divisible by 4" in str(e)
    e = error("PixelUnshuffle", (1, 6, 5), downscale_factor=2)
    assert e.param == "downscale_factor" and "received [1, 6, 5]" in str(e)
    assert "needs an input of shape [C * r^2, H, W]" in str(error("PixelShuffle", (8, 4), upscale_factor=2))
    e = error("ChannelShuffle", (6, 4), groups=4)
    assert e.param == "groups" and "4 does not divide 6" in str(e)
    assert "received [6]" in str(error("ChannelShuffle", (6,), groups=2))
    x = torch.arange(6.0).reshape(1, 6, 1)
    assert build("ChannelShuffle", (6, 1), groups=2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_shape_errors_reach_the_analysis_at_the_parameter():
    a = analyze(one_node("Select", (3, 5), {"dim": 2, "index": 9}))
    assert [(i.node, i.param) for i in a.errors] == [("n", "index")]
    a = analyze(one_node("Permute", (3, 5), {"dims": [0, 2, 1]}))
    assert a.ok and a.shapes["n"] == (5, 3)
    model = compile_graph(one_node("Permute", (3, 5), {"dims": [0, 2, 1]}), a)
    assert model(torch.zeros(2, 3, 5)).shape == (2, 5, 3)
