"""Convolution and pooling declarations (app/engine/layers/conv.py, pooling.py): the edge cases
of their shape rules against torch (ceil_mode, padding modes, output_padding), the
int-or-tuple parameters of 1-d and 3-d layers, and the messages of their errors."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from app.engine import modules
from app.engine.export.onnx_export import ExportError, export_onnx
from app.engine.graph import Edge, Graph, Node
from app.engine.layers import CATALOGUE, conv, pooling
from app.engine.layers.spec import ShapeError
from tests.layer_cases import complete, infer, infer_error
from app.engine.project import Project

SPECS = {s.type: s for s in conv.SPECS + pooling.SPECS}


def torch_shape(module: nn.Module, shape) -> tuple[int, ...] | None:
    """The output shape (no batch) torch gives, or None where torch refuses the input."""
    try:
        with torch.no_grad():
            return tuple(module(torch.zeros(1, *shape)).shape[1:])
    except (RuntimeError, ValueError, IndexError):
        return None


def ours(name: str, shape, given: dict) -> tuple[int, ...] | None:
    try:
        return infer(name, shape, given)
    except ShapeError:
        return None


# -- int-or-tuple parameters ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Conv3d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d",
                                  "AdaptiveAvgPool3d", "AdaptiveMaxPool3d"])
def test_3d_sizes_take_an_int_or_three(name):
    spec = SPECS[name]
    for p in spec.params:
        if p.kind in ("int_or_pair", "padding"):
            assert p.check(2) == 2 and p.check([1, 2, 3]) == [1, 2, 3]
            with pytest.raises(ValueError, match="a list of three such integers"):
                p.check([1, 2])


def test_2d_sizes_still_take_pairs():
    p = SPECS["MaxPool2d"].param_index["kernel_size"]
    assert p.check([2, 3]) == [2, 3]
    with pytest.raises(ValueError, match="a list of two such integers"):
        p.check([1, 2, 3])


@pytest.mark.parametrize("name, given", [
    ("ConvTranspose1d", {"out_channels": 2, "kernel_size": 3}),
    ("MaxPool1d", {"kernel_size": 2}),
    ("AvgPool1d", {"kernel_size": 2}),
])
@pytest.mark.parametrize("param", ["kernel_size", "stride", "padding"])
def test_1d_layers_refuse_pairs_naming_the_parameter(name, given, param):
    e = infer_error(name, (3, 9), {**given, param: [1, 1]})
    assert e.param == param and "1-d layer is one integer" in str(e)


def test_adaptive_output_size_of_another_length():
    e = infer_error("AdaptiveMaxPool1d", (3, 9), {"output_size": [2, 2]})
    assert e.param == "output_size"


@pytest.mark.parametrize("name, shape", [("Conv3d", (3, 8, 8)), ("MaxPool3d", (8, 8)),
                                         ("AdaptiveAvgPool1d", (3, 4, 5))])
def test_rank_messages(name, shape):
    given = {"out_channels": 2, "kernel_size": 2} if name == "Conv3d" else (
        {"kernel_size": 2} if "Adaptive" not in name else {"output_size": 2})
    e = infer_error(name, shape, given)
    assert str(list(shape)).replace(" ", "") in str(e).replace(" ", "")
    assert "[channels" in str(e)


# -- pooling: ceil_mode, dilation and padding as torch ------------------------------------------
def test_max_pool_1d_agrees_with_torch_on_every_small_case():
    for n in range(1, 9):
        for k in range(1, 5):
            for s in (1, 2, 3):
                for pad in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            given = {"kernel_size": k, "stride": s, "padding": pad, "dilation": d, "ceil_mode": ceil}
                            expected = torch_shape(nn.MaxPool1d(k, s, pad, d, ceil_mode=ceil), (2, n))
                            assert ours("MaxPool1d", (2, n), given) == expected, (n, given)


def test_avg_pool_1d_agrees_with_torch_on_every_small_case():
    for n in range(1, 9):
        for k in range(1, 5):
            for s in (1, 2, 3):
                for pad in range(0, k // 2 + 1):
                    for ceil in (False, True):
                        given = {"kernel_size": k, "stride": s, "padding": pad, "ceil_mode": ceil}
                        expected = torch_shape(nn.AvgPool1d(k, s, pad, ceil), (2, n))
                        assert ours("AvgPool1d", (2, n), given) == expected, (n, given)


def test_ceil_mode_last_window_starts_inside_the_input_or_left_padding():
    # 5 wide, kernel 2, stride 2, padding 1: windows start at -1, 1, 3, 5; the one at 5 would
    # start in the right padding, so torch (and we) give 3, not 4
    assert infer("MaxPool2d", (1, 5, 5), {"kernel_size": 2, "padding": 1, "ceil_mode": True}) == (1, 3, 3)
    assert torch_shape(nn.MaxPool2d(2, padding=1, ceil_mode=True), (1, 5, 5)) == (1, 3, 3)


def test_ceil_mode_lets_a_window_hang_over_the_end():
    assert infer("MaxPool1d", (2, 7), {"kernel_size": 8, "stride": 2, "ceil_mode": True}) == (2, 1)
    e = infer_error("MaxPool1d", (2, 7), {"kernel_size": 8, "stride": 2})
    assert e.param == "kernel_size" and "larger than its padded input" in str(e)


@pytest.mark.parametrize("name", ["MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d"])
def test_pool_padding_at_most_half_the_kernel(name):
    ndim = int(name[-2])
    shape = (2,) + (9,) * ndim
    e = infer_error(name, shape, {"kernel_size": 3, "padding": 2})
    assert e.param == "padding" and "at most half" in str(e)
    assert torch_shape(getattr(nn, name)(3, padding=2), shape) is None


def test_max_pool_padding_limit_ignores_dilation_as_torch():
    e = infer_error("MaxPool1d", (2, 20), {"kernel_size": 3, "padding": 2, "dilation": 3})
    assert e.param == "padding"
    assert torch_shape(nn.MaxPool1d(3, padding=2, dilation=3), (2, 20)) is None


# -- convolutions ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, pad, n, ok", [
    ("reflect", 6, 7, True), ("reflect", 7, 7, False),
    ("circular", 7, 7, True), ("circular", 8, 7, False),
    ("replicate", 30, 7, True), ("zeros", 30, 7, True),
])
def test_padding_mode_limits_are_torchs(mode, pad, n, ok):
    given = {"out_channels": 2, "kernel_size": 3, "padding": pad, "padding_mode": mode}
    expected = torch_shape(nn.Conv1d(3, 2, 3, padding=pad, padding_mode=mode), (3, n))
    assert (expected is not None) == ok
    assert ours("Conv1d", (3, n), given) == expected
    if not ok:
        e = infer_error("Conv1d", (3, n), given)
        assert e.param == "padding" and mode in str(e) and str(pad) in str(e)


def test_reflect_same_padding_checks_the_amounts_it_pads():
    given = {"out_channels": 2, "kernel_size": 9, "padding": "same", "padding_mode": "reflect"}
    e = infer_error("Conv2d", (1, 4, 9), given)
    assert e.param == "padding"
    assert infer("Conv2d", (1, 5, 9), given) == (2, 5, 9)


@pytest.mark.parametrize("k, d", [(4, 1), ([2, 3, 4], 1), (3, [2, 1, 1])])
def test_conv3d_same_padding_matches_torch_without_its_warning(k, d):
    params = complete("Conv3d", {"out_channels": 3, "kernel_size": k, "padding": "same", "dilation": d})
    built = SPECS["Conv3d"].build([(2, 5, 6, 7)], params)
    reference = nn.Conv3d(2, 3, tuple(k) if isinstance(k, list) else k, padding="same",
                          dilation=tuple(d) if isinstance(d, list) else d)
    reference.load_state_dict(built.state_dict())
    x = torch.randn(2, 2, 5, 6, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours_out = built(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(x)
    assert torch.allclose(ours_out, expected, atol=1e-5)


def test_modules_declare_same_conv3d():
    """modules/core.py needs ``SameConv3d = _same_padding(nn.Conv3d)`` (as 1d and 2d)."""
    assert hasattr(modules, "SameConv3d")


@pytest.mark.parametrize("s, d, op, ok", [(2, 1, 1, True), (1, 3, 2, True), (2, 2, 2, False), (1, 1, 1, False)])
def test_conv_transpose_output_padding_below_stride_or_dilation(s, d, op, ok):
    given = {"out_channels": 2, "kernel_size": 3, "stride": s, "dilation": d, "output_padding": op}
    expected = torch_shape(nn.ConvTranspose1d(3, 2, 3, s, 0, op, dilation=d), (3, 5))
    assert (expected is not None) == ok
    assert ours("ConvTranspose1d", (3, 5), given) == expected
    if not ok:
        assert infer_error("ConvTranspose1d", (3, 5), given).param == "output_padding"


def test_conv_transpose_groups():
    e = infer_error("ConvTranspose2d", (3, 4, 4), {"out_channels": 4, "kernel_size": 3, "groups": 2})
    assert e.param == "groups" and "(3)" in str(e)
    params = complete("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "groups": 2})
    built = SPECS["ConvTranspose2d"].build([(4, 5, 5)], params)
    assert SPECS["ConvTranspose2d"].count([(4, 5, 5)], params) == sum(p.numel() for p in built.parameters())


def test_conv_transpose_padding_mode_only_zeros():
    p = SPECS["ConvTranspose2d"].param_index["padding_mode"]
    assert p.check("zeros") == "zeros"
    with pytest.raises(ValueError):
        p.check("reflect")


# -- what ONNX cannot hold: the export says so instead of writing a wrong file ---------------------
def one_node(name: str, shape, params: dict) -> Project:
    g = Graph()
    g.add_node(Node("in0", "Input", {"shape": list(shape)}))
    g.add_node(Node("layer", name, dict(params)))
    g.add_edge(Edge("in0", "layer", 0))
    return Project(graph=g, name=f"one {name}")


@pytest.mark.parametrize("name, shape, params", [
    # torch's exporter: no conversion (onnx_direct writes only sizes that divide the input's)
    ("AdaptiveAvgPool3d", (2, 4, 6, 7), {"output_size": [2, 3, 4]}),
    ("AvgPool2d", (1, 6, 6), {"kernel_size": 3, "divisor_override": 2}),  # exported, but wrong
])
def test_onnx_export_refuses_what_it_cannot_express(name, shape, params, tmp_path):
    assert name in CATALOGUE
    with pytest.raises(ExportError):
        export_onnx(one_node(name, shape, params), tmp_path / "model.onnx")


def test_avgpool3d_refuses_a_window_larger_than_its_padded_input():
    from app.engine.layers import CATALOGUE
    from app.engine.layers.spec import ShapeError

    spec = CATALOGUE["AvgPool3d"]
    params = {**spec.defaults(), "kernel_size": 9, "stride": 9, "ceil_mode": True}
    with pytest.raises(ShapeError, match=r"larger than its input \[8, 8, 8\]"):
        spec.infer([(1, 8, 8, 8)], params)
    assert spec.infer([(1, 9, 9, 9)], params) == (1, 1, 1, 1)
