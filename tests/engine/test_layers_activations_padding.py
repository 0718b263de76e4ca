"""Activation and padding declarations (app/engine/layers/activations.py, padding.py): their
shape rules against torch at the edges, and the messages of their errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from app.engine.layers import activations, padding
from app.engine.layers.spec import ShapeError
from tests.layer_cases import complete, infer, infer_error

SPECS = {s.type: s for s in activations.SPECS + padding.SPECS}


def torch_shape(module: nn.Module, shape) -> tuple[int, ...] | None:
    """The output shape (no batch) torch gives, or None where torch refuses the input."""
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, *shape))
    except (RuntimeError, ValueError, IndexError, NotImplementedError):
        return None
    return tuple(out.shape[1:]) if out.numel() else None  # an empty output is no output


def ours(name: str, shape, given: dict):
    try:
        return infer(name, shape, given)
    except ShapeError:
        return None


def test_activation_category():
    assert {s.category for s in activations.SPECS} == {"Activation"}
    assert {s.category for s in padding.SPECS} == {"Padding"}


# -- activations -------------------------------------------------------------------------------
def test_prelu_num_parameters_is_one_or_the_channels():
    e = infer_error("PReLU", (3, 5, 5), {"num_parameters": 4})
    assert e.param == "num_parameters" and "3" in str(e) and "4" in str(e) and "[3, 5, 5]" in str(e)
    assert torch_shape(nn.PReLU(4), (3, 5, 5)) is None
    assert infer("PReLU", (3, 5, 5), {"num_parameters": 3}) == (3, 5, 5)
    assert SPECS["PReLU"].count([(3, 5, 5)], complete("PReLU", {"num_parameters": 3})) == 3


@pytest.mark.parametrize("shape, dim", [((8,), -1), ((8,), 1), ((6, 5, 4), 1), ((3, 4, 5), -2), ((3, 4, 6), 3)])
def test_glu_halves_its_dimension_as_torch(shape, dim):
    assert infer("GLU", shape, {"dim": dim}) == torch_shape(nn.GLU(dim), shape)


def test_glu_odd_size_is_refused():
    e = infer_error("GLU", (3, 5), {"dim": 1})
    assert e.param == "dim" and "even" in str(e) and "[3, 5]" in str(e)
    assert torch_shape(nn.GLU(1), (3, 5)) is None


@pytest.mark.parametrize("dim", [0, 3, -3])
def test_glu_dim_outside_the_sample(dim):
    assert infer_error("GLU", (4, 6), {"dim": dim}).param == "dim"


@pytest.mark.parametrize("name, given, param", [
    ("CELU", {"alpha": 0.0}, "alpha"),
    ("Hardtanh", {"min_val": 1.0, "max_val": 1.0}, "max_val"),
    ("Hardtanh", {"min_val": 2.0, "max_val": -2.0}, "max_val"),
    ("Softplus", {"beta": 0.0}, "beta"),
])
def test_values_torch_cannot_use(name, given, param):
    assert infer_error(name, (4,), given).param == param


def test_activations_keep_the_shape():
    for spec in activations.SPECS:
        if spec.type not in ("GLU", "PReLU"):
            assert spec.infer([(2, 3, 5)], spec.defaults()) == (2, 3, 5)


# -- padding -----------------------------------------------------------------------------------
def test_constant_pad_value_is_required_as_in_torch():
    for name in ("ConstantPad1d", "ConstantPad2d"):
        spec = SPECS[name]
        assert spec.param_index["value"].required and spec.param_index["padding"].required


def test_2d_padding_takes_an_int_or_four():
    p = SPECS["ZeroPad2d"].param_index["padding"]
    assert p.check(1) == 1 and p.check([1, 2, 3, 4]) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="a list of four such integers"):
        p.check([1, 2])
    assert SPECS["ZeroPad1d"].param_index["padding"].check([1, 2]) == [1, 2]


def test_reflection_and_replication_refuse_negative_padding():
    for name in ("ReflectionPad1d", "ReplicationPad2d"):
        with pytest.raises(ValueError):
            SPECS[name].param_index["padding"].check(-1)


def test_padding_order_is_torchs():
    # (left, right, top, bottom): width gains 1 + 2, height 3 + 4
    assert infer("ZeroPad2d", (2, 5, 7), {"padding": [1, 2, 3, 4]}) == (2, 12, 10)


@pytest.mark.parametrize("name", ["ZeroPad1d", "ReflectionPad1d", "ReplicationPad1d"])
def test_1d_padding_agrees_with_torch_on_every_small_case(name):
    cls = getattr(nn, name)
    low = -3 if name == "ZeroPad1d" else 0
    for n, left, right in itertools.product(range(1, 5), range(low, 6), range(low, 6)):
        expected = torch_shape(cls((left, right)), (2, n))
        assert ours(name, (2, n), {"padding": [left, right]}) == expected, (n, left, right)


@pytest.mark.parametrize("name", ["ZeroPad2d", "ReflectionPad2d", "ReplicationPad2d"])
def test_2d_padding_agrees_with_torch(name):
    cls = getattr(nn, name)
    low = -2 if name == "ZeroPad2d" else 0
    for pads in itertools.product(range(low, 4), repeat=4):
        expected = torch_shape(cls(pads), (1, 3, 2))
        assert ours(name, (1, 3, 2), {"padding": list(pads)}) == expected, pads


def test_reflection_message_names_padding_and_input():
    e = infer_error("ReflectionPad1d", (3, 4), {"padding": [4, 0]})
    assert e.param == "padding" and "[4, 0]" in str(e) and "[3, 4]" in str(e)


def test_cropping_everything_is_refused():
    e = infer_error("ZeroPad1d", (3, 4), {"padding": [-5, 2]})
    assert torch_shape(nn.ZeroPad1d((-5, 2)), (3, 4)) is None
    assert e.param == "padding" and "crops away" in str(e)


@pytest.mark.parametrize("name, shape, ok", [
    ("ReflectionPad1d", (2, 3, 4), False), ("ReflectionPad1d", (4,), True),
    ("ReplicationPad2d", (2, 3, 4, 5), False), ("ReplicationPad2d", (4, 5), True),
    ("ZeroPad1d", (2, 3, 4, 5), True), ("ConstantPad2d", (4,), False),
])
def test_ranks_as_torch(name, shape, ok):
    given = {"padding": 1, "value": 0.0} if "Constant" in name else {"padding": 1}
    module = getattr(nn, name)(1, 0.0) if "Constant" in name else getattr(nn, name)(1)
    expected = torch_shape(module, shape)
    if name == "ConstantPad2d":  # torch pads the batch dimension of a [N, L] input: wrong, refused
        expected = None
    assert (ours(name, shape, given) is not None) == ok
    if ok:
        assert ours(name, shape, given) == expected
