"""A sweep's search space: NAME=SPEC parsed and checked against the project's schema."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine.examples import example_path
from app.engine.project import load_project
from app.engine.runs.space import (SweepParam, SweepSpecError, apply_params, check_space, grid_size,
                                   parse_param)


@pytest.fixture(scope="module")
def lenet():
    return load_project(example_path("lenet5"))


def test_ranges_take_the_parameters_kind(lenet):
    assert parse_param("lr=1e-4:1e-1:log", lenet) == SweepParam("lr", "float", 1e-4, 1e-1, True)
    assert parse_param("batch_size=16:128", lenet) == SweepParam("batch_size", "int", 16, 128, False)
    assert parse_param("conv1.out_channels=4:16", lenet) == SweepParam("conv1.out_channels", "int", 4, 16)
    assert parse_param("momentum = 0:0.99", lenet).kind == "float"


def test_lists_are_categorical_with_typed_values(lenet):
    assert parse_param("conv1.out_channels=4,8,16", lenet).choices == [4, 8, 16]
    assert parse_param("optimizer=SGD,Adam", lenet).choices == ["SGD", "Adam"]
    assert parse_param("lr=0.01,0.1", lenet).choices == [0.01, 0.1]
    assert parse_param("drop_last=true,false", lenet).choices == [True, False]
    assert parse_param("early_stopping_patience=null,3", lenet).choices == [None, 3]
    assert parse_param("conv1.kernel_size=3,5.0", lenet).choices == [3, 5]


@pytest.mark.parametrize("text, where, words", [
    ("conv9.out_channels=4,8", "conv9.out_channels", "no node 'conv9'"),
    ("conv1.bogus=4,8", "conv1.bogus", "has no parameter 'bogus'"),
    ("bogus=1:2", "bogus", "unknown training setting"),
    ("device=cpu,cuda", "device", "cannot be swept"),
    ("momentum=0:2", "momentum", "from 0 to 1"),
    ("conv1.out_channels=0:8", "conv1.out_channels", ">= 1"),
    ("lr=0:1:log", "lr", ">= 1e-12"),
    ("lr=0.1:0.01", "lr", "LOW must be below HIGH"),
    ("batch_size=1.5:4", "batch_size", "an integer"),
    ("optimizer=0:1", "optimizer", "takes a list"),
    ("optimizer=SGD,Nope", "optimizer", "one of"),
    ("lr=1:nan", "lr", "finite"),
    ("lr=1,,2", "lr", "empty value"),
    ("lr=0.1,0.1", "lr", "twice"),
    ("lr=1:2:3", "lr", "LOW:HIGH"),
    ("lr", None, "NAME=SPEC"),
    ("lr=", "lr", "received nothing"),
])
def test_bad_specs_name_the_parameter(lenet, text, where, words):
    with pytest.raises(SweepSpecError) as e:
        parse_param(text, lenet)
    assert e.value.where == where
    assert words in str(e.value)


def test_grid_takes_lists_only_and_names_twice(lenet):
    rng, grid = parse_param("lr=1e-3:1e-1", lenet), parse_param("conv1.out_channels=4,8", lenet)
    check_space([grid], "grid")
    assert grid_size([grid, parse_param("lr=0.1,0.2,0.3", lenet)]) == 6
    with pytest.raises(SweepSpecError, match="grid sampler takes lists only") as e:
        check_space([grid, rng], "grid")
    assert e.value.where == "lr"
    check_space([grid, rng], "tpe")
    with pytest.raises(SweepSpecError, match="given twice"):
        check_space([rng, rng], "random")
    with pytest.raises(SweepSpecError, match="at least one"):
        check_space([], "tpe")


def test_apply_params_copies_the_project(lenet):
    changed = apply_params(lenet, {"lr": 0.05, "conv1.out_channels": 8, "optimizer": "Adam"})
    assert changed.training["lr"] == 0.05 and changed.training["optimizer"] == "Adam"
    assert changed.graph.nodes["conv1"].params["out_channels"] == 8
    assert changed.graph.nodes["conv1"].params["kernel_size"] == 5
    assert lenet.training["lr"] == 0.02 and lenet.graph.nodes["conv1"].params["out_channels"] == 6
    with pytest.raises(SweepSpecError):
        apply_params(lenet, {"nowhere.p": 1})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["lr", "batch_size", "optimizer", "conv1.out_channels", "conv1.padding", "fc3.bias",
                             "x.y", "", "lr.", ".lr", "conv1."]),
       spec=st.text(alphabet="0123456789.-+:,eEloginfatruTFNx ", max_size=20) | st.text(max_size=20))
def test_any_spec_parses_or_says_why(lenet, name, spec):
    try:
        param = parse_param(f"{name}={spec}", lenet)
    except SweepSpecError as e:
        assert str(e)
        return
    assert param.kind in ("float", "int", "categorical")
    values = param.choices if param.kind == "categorical" else [param.low, param.high]
    apply_params(lenet, {param.name: values[0]})  # whatever parses gives a valid project
