"""The layer catalogue (app/engine/layers/): every declared shape rule and parameter count
agrees with the torch module the layer builds, and the catalogue matches the file format."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
from torch import nn

from app.engine.layers import CATALOGUE, CATEGORIES, LayerSpec, ShapeError, get_spec
from app.engine.params import KINDS, REQUIRED

# Some layers have parameters that only torch checks at build time; the cases below keep
# to values torch accepts.

# (input shapes, params given) per type; params are completed with the declared defaults.
CASES: dict[str, list[tuple[list[tuple[int, ...]], dict]]] = {
    "Input": [([], {"shape": [1, 28, 28]}), ([], {"shape": [7]}), ([], {"shape": [3, 5]})],
    "Linear": [
        ([(784,)], {"out_features": 10}),
        ([(7,)], {"out_features": 3, "bias": False}),
        ([(5, 9)], {"out_features": 4}),  # acts on the last dimension of a sequence
        ([(1,)], {"out_features": 1}),
    ],
    "Conv1d": [
        ([(3, 17)], {"out_channels": 4, "kernel_size": 3}),
        ([(2, 20)], {"out_channels": 6, "kernel_size": 5, "stride": 3, "padding": 2}),
        ([(4, 15)], {"out_channels": 8, "kernel_size": 3, "dilation": 2, "groups": 4}),
        ([(3, 11)], {"out_channels": 5, "kernel_size": 7, "padding": "same"}),
        ([(3, 11)], {"out_channels": 5, "kernel_size": 3, "padding": "same", "dilation": 3}),
        ([(1, 5)], {"out_channels": 2, "kernel_size": 5, "bias": False}),
    ],
    "Conv2d": [
        ([(1, 28, 28)], {"out_channels": 6, "kernel_size": 5}),
        ([(3, 17, 13)], {"out_channels": 4, "kernel_size": [3, 5]}),
        ([(3, 17, 13)], {"out_channels": 8, "kernel_size": 3, "stride": [2, 3], "padding": [1, 2]}),
        ([(4, 19, 19)], {"out_channels": 6, "kernel_size": 3, "dilation": [2, 3], "groups": 2}),
        ([(4, 9, 9)], {"out_channels": 4, "kernel_size": 3, "groups": 4, "bias": False}),
        ([(1, 28, 28)], {"out_channels": 4, "kernel_size": 5, "padding": "same"}),
        ([(2, 7, 9)], {"out_channels": 3, "kernel_size": [3, 5], "padding": "same", "dilation": 2}),
        ([(2, 3, 3)], {"out_channels": 3, "kernel_size": 5, "padding": "same"}),  # kernel > input
        ([(8, 14, 14)], {"out_channels": 12, "kernel_size": 4, "stride": 2, "padding": 1}),
        ([(1, 5, 5)], {"out_channels": 1, "kernel_size": 5}),  # exactly fits: 1x1 out
        ([(1, 1, 1)], {"out_channels": 2, "kernel_size": 3, "padding": 1}),
    ],
    "ConvTranspose2d": [
        ([(4, 7, 7)], {"out_channels": 2, "kernel_size": 3}),
        ([(4, 7, 9)], {"out_channels": 3, "kernel_size": 4, "stride": 2, "padding": 1}),
        ([(3, 5, 6)], {"out_channels": 2, "kernel_size": [3, 2], "stride": [3, 2],
                       "padding": [1, 0], "output_padding": [2, 1], "bias": False}),
        ([(1, 1, 1)], {"out_channels": 1, "kernel_size": 1}),
    ],
    "MaxPool2d": [
        ([(6, 28, 28)], {"kernel_size": 2}),
        ([(3, 15, 11)], {"kernel_size": 3, "stride": 2, "padding": 1}),
        ([(2, 9, 10)], {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 0]}),
        ([(1, 7, 7)], {"kernel_size": 3, "stride": None}),
        ([(1, 2, 2)], {"kernel_size": 2, "padding": 1}),
    ],
    "AvgPool2d": [
        ([(6, 28, 28)], {"kernel_size": 2}),
        ([(3, 15, 11)], {"kernel_size": 3, "stride": 2, "padding": 1}),
        ([(2, 9, 10)], {"kernel_size": [2, 3], "stride": [3, 1]}),
    ],
    "AdaptiveAvgPool2d": [
        ([(3, 17, 13)], {"output_size": 1}),
        ([(3, 17, 13)], {"output_size": [4, 5]}),
        ([(2, 3, 3)], {"output_size": 7}),  # larger than the input
    ],
    "Upsample": [
        ([(3, 5, 7)], {}),
        ([(3, 5, 7)], {"scale_factor": 3, "mode": "nearest"}),
        ([(3, 5)], {"scale_factor": 2, "mode": "nearest"}),
        ([(3, 9)], {"scale_factor": 1.5, "mode": "linear"}),
        ([(3, 5, 7)], {"scale_factor": [2, 3], "mode": "bilinear"}),
        ([(3, 5, 7)], {"scale_factor": 2.5, "mode": "bicubic"}),
        ([(3, 10, 11)], {"scale_factor": 0.5, "mode": "nearest"}),
        ([(2, 7, 9)], {"scale_factor": [1.5, 0.5], "mode": "bilinear"}),
        ([(1, 10, 10)], {"scale_factor": 0.3, "mode": "nearest"}),
    ],
    "BatchNorm1d": [([(7,)], {}), ([(4, 9)], {"eps": 1e-3, "momentum": 0.5})],
    "BatchNorm2d": [([(6, 5, 7)], {}), ([(1, 3, 3)], {"momentum": 0.0})],
    "LayerNorm": [([(7,)], {}), ([(4, 9)], {"eps": 1e-3}), ([(3, 5, 6)], {})],
    "Dropout": [([(7,)], {}), ([(3, 5, 6)], {"p": 0.0}), ([(4, 9)], {"p": 1.0})],
    "Flatten": [
        ([(3, 5, 7)], {}),
        ([(3, 5, 7)], {"start_dim": 2}),
        ([(3, 5, 7)], {"start_dim": 3}),
        ([(11,)], {"start_dim": 1}),
        ([(2, 3, 4, 5)], {"start_dim": 2}),
    ],
    "Reshape": [
        ([(784,)], {"shape": [1, 28, 28]}),
        ([(784,)], {"shape": [-1, 28]}),
        ([(3, 4, 5)], {"shape": [5, -1]}),
        ([(3, 4, 5)], {"shape": [-1]}),
        ([(6,)], {"shape": [1, 2, -1, 1]}),
    ],
    "ReLU": [([(7,)], {}), ([(3, 5, 6)], {})],
    "Sigmoid": [([(7,)], {})],
    "Tanh": [([(4, 9)], {})],
    "GELU": [([(3, 5, 6)], {})],
    "Identity": [([(3, 5, 6)], {}), ([(1,)], {})],
    "LeakyReLU": [([(7,)], {}), ([(4, 9)], {"negative_slope": 0.2})],
    "ELU": [([(7,)], {}), ([(4, 9)], {"alpha": 0.5})],
    "Softmax": [([(10,)], {}), ([(4, 9)], {"dim": 2}), ([(4, 9)], {"dim": -1}),
                ([(3, 5, 6)], {"dim": -3})],
    "LogSoftmax": [([(10,)], {}), ([(4, 9)], {"dim": -2})],
    "Embedding": [
        ([(9,)], {"num_embeddings": 20, "embedding_dim": 4}),
        ([(3, 5)], {"num_embeddings": 7, "embedding_dim": 3}),
    ],
    "LastStep": [([(7, 3)], {}), ([(1, 5)], {})],
    "Add": [([(3, 5, 7)] * 2, {}), ([(4,)] * 3, {})],
    "Multiply": [([(3, 5, 7)] * 2, {}), ([(4, 9)] * 4, {})],
    "Concat": [
        ([(3, 5, 7), (4, 5, 7)], {}),
        ([(3, 5, 7), (3, 2, 7)], {"dim": 2}),
        ([(3, 5, 7), (3, 5, 1), (3, 5, 2)], {"dim": 3}),
        ([(3, 5, 7), (3, 5, 2)], {"dim": -1}),
        ([(3, 5, 7), (6, 5, 7)], {"dim": -3}),
        ([(4,), (6,)], {}),
        ([(4,), (6,)], {"dim": -1}),
    ],
}

for _rnn in ("RNN", "LSTM", "GRU"):
    CASES[_rnn] = [
        ([(7, 5)], {"hidden_size": 6}),
        ([(1, 3)], {"hidden_size": 4, "bidirectional": True}),
        ([(9, 4)], {"hidden_size": 5, "num_layers": 3, "bidirectional": True, "dropout": 0.2}),
        ([(6, 2)], {"hidden_size": 3, "num_layers": 2}),
    ]

EVEN_SAME_CASES = [
    ("Conv2d", [(3, 9, 9)], {"out_channels": 4, "kernel_size": 4, "padding": "same"}),
    ("Conv2d", [(3, 9, 8)], {"out_channels": 4, "kernel_size": [2, 3], "padding": "same"}),
    ("Conv1d", [(3, 10)], {"out_channels": 2, "kernel_size": 6, "padding": "same"}),
]

# Sample values for required parameters, by kind, for types with no case above.
SAMPLE_VALUES = {"int": 3, "float": 0.5, "bool": False, "int_or_pair": 3, "padding": 1,
                 "shape": [2, 3], "scale": 2, "string": "x", "column": 0}
SAMPLE_SHAPES = [[(3, 9, 11)], [(5, 7)], [(12,)], [(2, 4, 6, 8)]]


def complete(spec: LayerSpec, given: dict) -> dict:
    params = spec.defaults()
    params.update(given)
    for p in spec.params:
        assert p.check(params[p.name]) == params[p.name]
    return params


def sample_params(spec: LayerSpec) -> dict:
    given = {}
    for p in spec.params:
        if p.required and p.kind == "choice":
            given[p.name] = p.choices[0]
        elif p.required and p.kind == "shape" and p.allow_minus_one:
            given[p.name] = [-1]
        elif p.required:
            given[p.name] = SAMPLE_VALUES[p.kind]
    return given


def generated_cases(spec: LayerSpec) -> list[tuple[list[tuple[int, ...]], dict]]:
    """Cases made from the declaration alone (required parameters at sample values, the
    sample shapes that infer accepts), so a new layer type is covered without edits here."""
    given = sample_params(spec)
    if spec.max_inputs == 0:
        return [([], given)]
    found = []
    for shape in SAMPLE_SHAPES:
        shapes = shape * max(spec.min_inputs, 1)
        try:
            spec.infer(shapes, complete(spec, given))
        except ShapeError:
            continue
        found.append((shapes, given))
    return found


def cases_for(spec: LayerSpec) -> list[tuple[list[tuple[int, ...]], dict]]:
    samples = [(list(shapes), dict(given)) for shapes, given in spec.samples]
    return CASES.get(spec.type, []) + samples + generated_cases(spec)


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def run_case(spec: LayerSpec, shapes, given) -> None:
    params = complete(spec, given)
    result = spec.infer(list(shapes), params)
    ports = len(spec.output_names(params))
    if spec.multi_output():  # a list of shapes, one per output port
        assert isinstance(result, list) and len(result) == ports, result
    else:
        assert isinstance(result, tuple) and ports == 1, result
    out_shapes = spec.port_shapes(list(shapes), params)
    out_shape = out_shapes[0]
    assert all(type(d) is int and d >= 1 for s in out_shapes for d in s), out_shapes
    count = spec.count(list(shapes), params)
    module = spec.build(list(shapes), params)
    if spec.max_inputs == 0:
        assert module is None and count == 0 and not shapes
        assert out_shape == tuple(params["shape"])
        return
    assert isinstance(module, nn.Module)
    assert count == trainable(module), (spec.type, shapes, given)
    torch.manual_seed(0)
    with torch.no_grad():
        for mode in (module.train, module.eval):
            mode()
            out = module(*[torch.zeros(2, *s) for s in shapes])
            outs = out if spec.multi_output() else (out,)
            assert isinstance(outs, tuple) and len(outs) == ports
            assert [tuple(o.shape) for o in outs] == [(2, *s) for s in out_shapes], (
                spec.type, shapes, given, mode.__name__)


@pytest.mark.parametrize("type_name", sorted(CATALOGUE))
def test_infer_and_count_agree_with_the_built_module(type_name):
    spec = CATALOGUE[type_name]
    cases = cases_for(spec)
    assert cases, f"no sample shape fits {type_name}; add a case to CASES"
    for shapes, given in cases:
        run_case(spec, shapes, given)


@pytest.mark.parametrize("type_name, shapes, given", EVEN_SAME_CASES)
def test_same_padding_with_an_even_kernel(type_name, shapes, given):
    spec = CATALOGUE[type_name]
    run_case(spec, shapes, given)
    assert spec.infer(shapes, complete(spec, given))[1:] == shapes[0][1:]


def test_cases_only_name_catalogue_types():
    assert set(CASES) <= set(CATALOGUE)


def test_upsample_fractional_scales_floor_like_torch():
    spec = CATALOGUE["Upsample"]
    for n in range(1, 14):
        for scale in (0.3, 0.5, 0.75, 1.1, 1.5, 2.5, 3.3):
            params = complete(spec, {"scale_factor": scale})
            expected = math.floor(n * scale)
            if expected < 1:
                with pytest.raises(ShapeError) as info:
                    spec.infer([(2, n, n)], params)
                assert info.value.param == "scale_factor"
                continue
            assert spec.infer([(2, n, n)], params) == (2, expected, expected)
            out = spec.build([(2, n, n)], params)(torch.zeros(1, 2, n, n))
            assert tuple(out.shape[2:]) == (expected, expected), (n, scale)


def test_recurrent_hint_for_dropout_on_one_layer():
    for name in ("RNN", "LSTM", "GRU"):
        spec = CATALOGUE[name]
        params = complete(spec, {"hidden_size": 4, "dropout": 0.3})
        assert [p for p, _ in spec.hints([(5, 3)], params)] == ["dropout"]
        params["num_layers"] = 2
        assert spec.hints([(5, 3)], params) == []
        # building with num_layers 1 and dropout set must not warn (the hint says it instead)
        params["num_layers"] = 1
        spec.build([(5, 3)], params)


def test_recurrent_state_dict_names_are_torch_names():
    module = CATALOGUE["LSTM"].build([(5, 3)], complete(CATALOGUE["LSTM"],
                                                        {"hidden_size": 4, "num_layers": 2}))
    assert "weight_ih_l0" in module.state_dict() and "bias_hh_l1" in module.state_dict()


# -- declarations -------------------------------------------------------------------------
@pytest.mark.parametrize("type_name", sorted(CATALOGUE))
def test_declaration_is_complete(type_name):
    spec = CATALOGUE[type_name]
    assert spec.type == type_name
    assert get_spec(type_name) is spec
    assert spec.doc and spec.doc.strip() == spec.doc
    assert spec.category in CATEGORIES
    assert spec.min_inputs >= 0
    assert spec.max_inputs is None or spec.max_inputs >= spec.min_inputs
    assert spec.arity_text()
    names = [p.name for p in spec.params]
    assert len(names) == len(set(names)), "duplicate parameter names"
    assert set(spec.param_index) == set(names)
    for p in spec.params:
        assert p.doc, f"{type_name}.{p.name} has no doc"
        assert p.kind in KINDS, f"{type_name}.{p.name} has kind {p.kind!r}"
        assert p.name.isidentifier()
        if p.kind == "choice":
            assert p.choices
        if not p.required:
            assert p.check(p.default) == p.default, f"{type_name}.{p.name} default"
    assert spec.defaults() == {p.name: p.default for p in spec.params if not p.required}


def test_get_spec_of_an_unknown_type():
    assert get_spec("Conv4d") is None
    assert get_spec("conv2d") is None


def test_arity_text():
    assert CATALOGUE["Input"].arity_text() == "no inputs"
    assert CATALOGUE["ReLU"].arity_text() == "1 input"
    assert CATALOGUE["Add"].arity_text() == "2 or more inputs"


# The layer catalogue table of PROJECT_FORMAT.md: type -> (parameters with defaults, inputs)
FORMAT_TABLE: dict[str, tuple[dict, tuple[int, int | None]]] = {
    "Input": ({"shape": REQUIRED}, (0, 0)),
    "Linear": ({"out_features": REQUIRED, "bias": True}, (1, 1)),
    "ConvTranspose2d": ({"out_channels": REQUIRED, "kernel_size": REQUIRED, "stride": 1,
                         "padding": 0, "output_padding": 0, "bias": True}, (1, 1)),
    "AdaptiveAvgPool2d": ({"output_size": REQUIRED}, (1, 1)),
    "Upsample": ({"scale_factor": 2, "mode": "nearest"}, (1, 1)),
    "LayerNorm": ({"eps": 1e-5}, (1, 1)),
    "Dropout": ({"p": 0.5}, (1, 1)),
    "Flatten": ({"start_dim": 1}, (1, 1)),
    "Reshape": ({"shape": REQUIRED}, (1, 1)),
    "LeakyReLU": ({"negative_slope": 0.01}, (1, 1)),
    "ELU": ({"alpha": 1.0}, (1, 1)),
    "Embedding": ({"num_embeddings": REQUIRED, "embedding_dim": REQUIRED}, (1, 1)),
    "LastStep": ({}, (1, 1)),
    "Concat": ({"dim": 1}, (2, None)),
}
for _t in ("Conv1d", "Conv2d"):
    FORMAT_TABLE[_t] = ({"out_channels": REQUIRED, "kernel_size": REQUIRED, "stride": 1,
                         "padding": 0, "dilation": 1, "groups": 1, "bias": True}, (1, 1))
for _t in ("MaxPool2d", "AvgPool2d"):
    FORMAT_TABLE[_t] = ({"kernel_size": REQUIRED, "stride": None, "padding": 0}, (1, 1))
for _t in ("BatchNorm1d", "BatchNorm2d"):
    FORMAT_TABLE[_t] = ({"eps": 1e-5, "momentum": 0.1}, (1, 1))
for _t in ("ReLU", "Sigmoid", "Tanh", "GELU", "Identity"):
    FORMAT_TABLE[_t] = ({}, (1, 1))
for _t in ("Softmax", "LogSoftmax"):
    FORMAT_TABLE[_t] = ({"dim": 1}, (1, 1))
for _t in ("RNN", "LSTM", "GRU"):
    FORMAT_TABLE[_t] = ({"hidden_size": REQUIRED, "num_layers": 1, "bidirectional": False,
                         "dropout": 0.0}, (1, 1))
for _t in ("Add", "Multiply"):
    FORMAT_TABLE[_t] = ({}, (2, None))

INT_OR_PAIR = {"kernel_size", "stride", "padding", "dilation", "output_size", "output_padding"}


@pytest.mark.parametrize("type_name", sorted(FORMAT_TABLE))
def test_format_table_type_exists_with_its_parameters(type_name):
    spec = get_spec(type_name)
    assert spec is not None, f"the format lists {type_name}, the catalogue lacks it"
    params, (lo, hi) = FORMAT_TABLE[type_name]
    for name, default in params.items():
        assert name in spec.param_index, f"{type_name} lacks {name}"
        p = spec.param_index[name]
        if default is REQUIRED:
            assert p.required, f"{type_name}.{name} should be required"
        else:
            assert not p.required and p.default == default and type(p.default) is type(default), (
                f"{type_name}.{name} default {p.default!r}, the format says {default!r}")
        if name in INT_OR_PAIR:
            assert p.check(3) == 3 and p.check([2, 3]) == [2, 3]
    assert (spec.min_inputs, spec.max_inputs) == (lo, hi)
    # input feature sizes are never written: shape inference derives them
    assert not {"in_features", "in_channels", "num_features", "input_size"} & set(spec.param_index)


def test_padding_accepts_same_where_the_format_says():
    for t in ("Conv1d", "Conv2d"):
        assert CATALOGUE[t].param_index["padding"].check("same") == "same"
    for t in ("ConvTranspose2d", "MaxPool2d", "AvgPool2d"):
        with pytest.raises(ValueError):
            CATALOGUE[t].param_index["padding"].check("same")


def test_adaptive_output_size_accepts_int_or_pair():
    p = CATALOGUE["AdaptiveAvgPool2d"].param_index["output_size"]
    assert p.check(4) == 4 and p.check([4, 5]) == [4, 5]


# parameters that PROJECT_FORMAT.md adds to a torch.nn class
NETCANVAS_PARAMS = {"LayerNorm": {"dims"}, "MultiheadAttention": {"causal"},
                    "TransformerEncoderLayer": {"causal"}, "TransformerDecoderLayer": {"causal"}}


@pytest.mark.parametrize("type_name", sorted(t for t in CATALOGUE if hasattr(nn, t)))
def test_parameter_names_are_those_of_torch_nn(type_name):
    cls = getattr(nn, type_name)
    accepted = set(inspect.signature(cls).parameters) | NETCANVAS_PARAMS.get(type_name, set())
    if issubclass(cls, nn.RNNBase):  # RNN, LSTM, GRU take *args, **kwargs
        accepted = set(inspect.signature(nn.RNNBase).parameters)
    assert set(CATALOGUE[type_name].param_index) <= accepted


# -- shape errors ---------------------------------------------------------------------------
def infer_error(type_name: str, shapes, given) -> ShapeError:
    spec = CATALOGUE[type_name]
    with pytest.raises(ShapeError) as info:
        spec.infer([tuple(s) for s in shapes], complete(spec, given))
    return info.value


def test_add_of_different_shapes_names_both():
    e = infer_error("Add", [(6, 24, 24), (6, 12, 12)], {})
    assert "[6, 24, 24]" in str(e) and "[6, 12, 12]" in str(e)
    assert str(e).startswith("Add needs inputs")  # (version 2: inputs that broadcast)
    e = infer_error("Multiply", [(4,), (4,), (5,)], {})
    assert "[4]" in str(e) and "[5]" in str(e)


@pytest.mark.parametrize("type_name, shape, given", [
    ("Conv2d", (1, 4, 4), {"out_channels": 2, "kernel_size": 5}),
    ("Conv2d", (1, 8, 3), {"out_channels": 2, "kernel_size": [3, 5]}),
    ("Conv2d", (1, 3, 3), {"out_channels": 2, "kernel_size": 5, "padding": 0}),
    ("Conv2d", (1, 6, 6), {"out_channels": 2, "kernel_size": 3, "dilation": 3}),  # 7x7 effective
    ("Conv1d", (1, 4), {"out_channels": 2, "kernel_size": 7, "padding": 1}),
    ("MaxPool2d", (1, 1, 1), {"kernel_size": 2}),
    ("AvgPool2d", (3, 5, 2), {"kernel_size": 3}),
])
def test_kernel_larger_than_padded_input(type_name, shape, given):
    e = infer_error(type_name, [shape], given)
    assert e.param == "kernel_size"
    assert "larger than its padded input" in str(e)


def test_kernel_message_gives_sizes():
    e = infer_error("Conv2d", [(1, 4, 4)], {"out_channels": 2, "kernel_size": 7, "padding": 1})
    assert str(e) == ("Conv2d kernel 7x7 is larger than its padded input 6x6 "
                      "(input 4x4, padding 1x1)")


def test_kernel_larger_than_input_agrees_with_torch():
    spec = CATALOGUE["Conv2d"]
    params = complete(spec, {"out_channels": 2, "kernel_size": 5, "padding": 0})
    with pytest.raises(RuntimeError):
        spec.build([(1, 4, 4)], params)(torch.zeros(2, 1, 4, 4))


@pytest.mark.parametrize("shape", [(16, 4, 4), (1, 28, 28), (2, 3, 4, 5)])
def test_linear_on_a_feature_map_suggests_flatten(shape):
    """torch's Linear acts on the last dimension of any shape; NetCanvas does too, and says
    how to connect every value, which a course's network usually meant."""
    spec = get_spec("Linear")
    params = {"out_features": 10, "bias": True}
    assert spec.infer([shape], params) == shape[:-1] + (10,)
    [(param, message)] = spec.hints([shape], params)
    assert "Flatten" in message and "[" + ", ".join(map(str, shape)) + "]" in message
    assert str(math.prod(shape)) in message


def test_conv2d_on_a_flat_input_suggests_reshape():
    e = infer_error("Conv2d", [(784,)], {"out_channels": 4, "kernel_size": 3})
    assert "Reshape" in str(e) and "[784]" in str(e) and "[channels, height, width]" in str(e)
    e = infer_error("Conv1d", [(784,)], {"out_channels": 4, "kernel_size": 3})
    assert "Reshape" in str(e) and "[channels, length]" in str(e)
    e = infer_error("MaxPool2d", [(784,)], {"kernel_size": 2})
    assert "Reshape" in str(e)


def test_rank_too_high_suggests_flatten_or_reshape():
    e = infer_error("Conv1d", [(2, 3, 4)], {"out_channels": 4, "kernel_size": 3})
    assert "Flatten" in str(e)
    e = infer_error("LSTM", [(2, 3, 4)], {"hidden_size": 4})
    assert "[time, features]" in str(e) and "[2, 3, 4]" in str(e)
    e = infer_error("LastStep", [(5,)], {})
    assert "[time, features]" in str(e)


@pytest.mark.parametrize("shapes, given", [
    ([(3, 8, 8)], {"out_channels": 4, "kernel_size": 3, "groups": 2}),  # 3 channels
    ([(4, 8, 8)], {"out_channels": 6, "kernel_size": 3, "groups": 4}),  # 6 out_channels
    ([(4, 8, 8)], {"out_channels": 4, "kernel_size": 3, "groups": 8}),
])
def test_groups_must_divide_channels(shapes, given):
    e = infer_error("Conv2d", shapes, given)
    assert e.param == "groups"
    assert f"groups {given['groups']}" in str(e)
    assert str(shapes[0][0]) in str(e) and str(given["out_channels"]) in str(e)


def test_groups_on_conv1d():
    e = infer_error("Conv1d", [(3, 8)], {"out_channels": 3, "kernel_size": 3, "groups": 2})
    assert e.param == "groups"


@pytest.mark.parametrize("stride", [2, [1, 2], [2, 1]])
def test_same_padding_needs_stride_one(stride):
    e = infer_error("Conv2d", [(3, 8, 8)], {"out_channels": 4, "kernel_size": 3,
                                            "padding": "same", "stride": stride})
    assert e.param == "padding"
    assert '"same"' in str(e) and "stride 1" in str(e)


def test_same_padding_needs_stride_one_as_torch_does():
    with pytest.raises(ValueError):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")


@pytest.mark.parametrize("type_name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape, dim", [((10,), 0), ((10,), -2), ((10, 4), -3)])
def test_softmax_dim_zero_is_the_batch(type_name, shape, dim):
    e = infer_error(type_name, [shape], {"dim": dim})
    assert e.param == "dim" and "batch" in str(e)


@pytest.mark.parametrize("dim", [3, -4, 8, -8])
def test_softmax_dim_out_of_range(dim):
    e = infer_error("Softmax", [(10, 4)], {"dim": dim})
    assert e.param == "dim" and "out of range" in str(e) and str(dim) in str(e)


@pytest.mark.parametrize("type_name", ["Softmax", "LogSoftmax", "Concat"])
@pytest.mark.parametrize("dim", [9, -9, 100, -(2**63)])
def test_dim_beyond_any_rank_is_refused_by_its_range(type_name, dim):
    """A shape has at most 8 dimensions (plus the batch), so dim takes -8 to 8."""
    with pytest.raises(ValueError, match="expected an integer from -8 to 8, received"):
        CATALOGUE[type_name].param_index["dim"].check(dim)


def test_softmax_dims_in_range():
    spec = CATALOGUE["Softmax"]
    for dim in (1, 2, -1, -2):
        assert spec.infer([(10, 4)], complete(spec, {"dim": dim})) == (10, 4)


@pytest.mark.parametrize("dim", [0, 4, -5])
def test_concat_dim_out_of_range(dim):
    e = infer_error("Concat", [(3, 4, 5), (3, 4, 5)], {"dim": dim})
    assert e.param == "dim"


def test_concat_mismatch_names_both_shapes():
    e = infer_error("Concat", [(3, 4, 5), (3, 6, 5)], {"dim": 1})
    assert "[3, 4, 5]" in str(e) and "[3, 6, 5]" in str(e)
    e = infer_error("Concat", [(3, 4), (3, 4, 1)], {"dim": 1})
    assert "[3, 4, 1]" in str(e)


@pytest.mark.parametrize("shape, target", [
    ((784,), [1, 28, 27]),
    ((3, 4, 5), [7, -1]),
    ((10,), [3, -1]),
    ((6,), [2, 2]),
])
def test_reshape_size_mismatch(shape, target):
    e = infer_error("Reshape", [shape], {"shape": target})
    assert e.param == "shape"
    assert "[" + ", ".join(map(str, shape)) + "]" in str(e)
    assert str(math.prod(shape)) in str(e)


def test_flatten_start_dim_past_the_end():
    e = infer_error("Flatten", [(3, 4)], {"start_dim": 3})
    assert e.param == "start_dim" and "[3, 4]" in str(e)


def test_conv1d_refuses_pairs():
    for name in ("kernel_size", "stride", "padding", "dilation"):
        given = {"out_channels": 2, "kernel_size": 3, name: [1, 1]}
        e = infer_error("Conv1d", [(3, 9)], given)
        assert e.param == name


def test_pool_padding_at_most_half_the_kernel():
    e = infer_error("MaxPool2d", [(3, 9, 9)], {"kernel_size": 2, "padding": 2})
    assert e.param == "padding"
    with pytest.raises(RuntimeError):
        nn.MaxPool2d(2, padding=2)(torch.zeros(1, 3, 9, 9))


def test_conv_transpose_output_padding_smaller_than_stride():
    e = infer_error("ConvTranspose2d", [(3, 5, 5)], {"out_channels": 2, "kernel_size": 3,
                                                      "stride": 2, "output_padding": 2})
    assert e.param == "output_padding"


def test_conv_transpose_padding_leaving_no_output():
    e = infer_error("ConvTranspose2d", [(3, 1, 1)], {"out_channels": 2, "kernel_size": 1,
                                                      "padding": 1})
    assert e.param == "padding"


@pytest.mark.parametrize("shape, given", [
    ((3, 9, 9), {"mode": "linear"}),
    ((3, 9), {"mode": "bilinear"}),
    ((3, 9), {"mode": "bicubic"}),
    ((9,), {"mode": "nearest"}),
])
def test_upsample_modes_need_their_rank(shape, given):
    e = infer_error("Upsample", [shape], given)
    assert given["mode"] in str(e)


def test_upsample_scale_errors():
    e = infer_error("Upsample", [(3, 9)], {"scale_factor": [2, 2]})
    assert e.param == "scale_factor"
    e = infer_error("Upsample", [(3, 2, 2)], {"scale_factor": 0.1})
    assert e.param == "scale_factor"


def test_batchnorm_ranks():
    infer_error("BatchNorm2d", [(3, 4)], {})
    infer_error("BatchNorm1d", [(3, 4, 5)], {})


def test_shape_error_is_a_value_error_with_param():
    e = ShapeError("message", "kernel_size")
    assert isinstance(e, ValueError) and e.param == "kernel_size" and str(e) == "message"
    assert ShapeError("m").param is None


@pytest.mark.parametrize("kernel,dilation", [(4, 1), ([2, 3], 1), (3, 2), ([4, 5], [1, 2])])
def test_even_same_padding_matches_torch_without_its_warning(kernel, dilation):
    spec = CATALOGUE["Conv2d"]
    params = complete(spec, {"out_channels": 3, "kernel_size": kernel, "padding": "same",
                             "dilation": dilation})
    ours = spec.build([(2, 9, 11)], params)
    k = tuple(kernel) if isinstance(kernel, list) else kernel
    d = tuple(dilation) if isinstance(dilation, list) else dilation
    reference = nn.Conv2d(2, 3, k, padding="same", dilation=d)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 2, 9, 11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning torch gives for its own even padding
        expected = reference(x)
    assert torch.allclose(ours(x), expected, atol=1e-6)

