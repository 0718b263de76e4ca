"""Values torch cannot hold, and sizes that would make checking hang (issue 14, items 9 and
12): every parameter has a range torch can represent, shape inference and parameter counts
are closed-form, and ``analyze`` answers any value with an error at the node, quickly."""

from __future__ import annotations

import io
import json
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import config
from app.engine.cli import main
from app.engine.errors import ProjectError
from app.engine.graph import Edge, Graph, Node
from app.engine.inference import UNCOMPUTABLE, analyze
from app.engine.layers import CATALOGUE
from app.engine.layers.recurrent import recurrent_count
from app.engine.params import FLOAT_LIMIT, INT64_MAX, INT_LIMIT, MAX_RANK, Param
from app.engine.project import load_project
from tests.helpers import chain

SLOW = 1.0  # CPU seconds (of this thread, so a busy machine does not count) one small check may take


def write(tmp_path, nodes, edges=None, **sections) -> str:
    if edges is None:
        edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:])]
    doc = {"format": "netcanvas", "version": 1, "name": "limits",
           "graph": {"nodes": nodes, "edges": edges}, **sections}
    path = tmp_path / "limits.netcanvas.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def check(path: str) -> tuple[int, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.thread_time()
    rc = main(["check", path], out, err)
    return rc, err.getvalue() + out.getvalue(), time.thread_time() - start


def node(node_id, type_name, **params) -> dict:
    return {"id": node_id, "type": type_name, "params": params}


INPUT = node("input", "Input", shape=[1, 8, 8])
SEQUENCE = node("input", "Input", shape=[5, 3])
VECTOR = node("input", "Input", shape=[4])

# the cases the fuzzer found, each with the place and the range its message must name
REFUSED = [
    ([INPUT, node("pool", "MaxPool2d", kernel_size=2, stride=2**63)], "graph.nodes[1] (pool).params.stride",
     "from 1 to 2147483647"),
    ([INPUT, node("pool", "MaxPool2d", kernel_size=[2, 2**64])], "graph.nodes[1] (pool).params.kernel_size",
     "from 1 to 2147483647"),
    ([VECTOR, node("elu", "ELU", alpha=1e39)], "graph.nodes[1] (elu).params.alpha", "from -3.4e+38 to 3.4e+38"),
    ([VECTOR, node("leaky", "LeakyReLU", negative_slope=-1e39)], "graph.nodes[1] (leaky).params.negative_slope",
     "from -3.4e+38 to 3.4e+38"),
    ([INPUT, node("up", "Upsample", scale_factor=1e308)], "graph.nodes[1] (up).params.scale_factor",
     "from 0.01 to 1000"),
    ([INPUT, node("up", "Upsample", scale_factor=[2, 1e300])], "graph.nodes[1] (up).params.scale_factor",
     "from 0.01 to 1000"),
    ([node("input", "Input", shape=[10**2200, 4])], "graph.nodes[0] (input).params.shape",
     "a list of 1 to 8 positive integers up to 2147483647"),
    ([node("input", "Input", shape=[2] * 10**6)], "graph.nodes[0] (input).params.shape",
     "a list of 1 to 8 positive integers up to 2147483647"),
    ([VECTOR, node("reshape", "Reshape", shape=[-1, 2**40])], "graph.nodes[1] (reshape).params.shape",
     "up to 2147483647"),
    # 10^12 layers hung check; 10^7 took seconds (and a test that fails must end)
    *[([SEQUENCE, node("rnn", t, hidden_size=4, num_layers=10**7)], "graph.nodes[1] (rnn).params.num_layers",
       "from 1 to 1000") for t in ("RNN", "LSTM", "GRU")],
    ([VECTOR, node("fc", "Linear", out_features=2**31)], "graph.nodes[1] (fc).params.out_features",
     "from 1 to 2147483647"),
    ([INPUT, node("bn", "BatchNorm2d", eps=1e39)], "graph.nodes[1] (bn).params.eps", "from 1e-12 to 1"),
    ([VECTOR, node("soft", "Softmax", dim=2**63)], "graph.nodes[1] (soft).params.dim", "from -8 to 8"),
]


@pytest.mark.parametrize("nodes, where, rng", REFUSED, ids=lambda v: v if isinstance(v, str) else None)
def test_check_refuses_values_torch_cannot_hold_naming_node_parameter_and_range(tmp_path, nodes, where, rng):
    rc, text, seconds = check(write(tmp_path, nodes))
    assert rc == 2 and seconds < 5 * SLOW, (rc, seconds, text[:300])
    assert f"{where}: expected" in text and rng in text, text[:400]
    assert "Traceback" not in text and len(text) < 600  # a huge value is not printed whole


@pytest.mark.parametrize("section, key, value, rng", [
    ("training", "lr", 1e300, "from 1e-12 to 3.4e+38"),
    ("training", "lr", 1e39, "from 1e-12 to 3.4e+38"),
    ("training", "weight_decay", 10**400, "from 0 to 3.4e+38"),
    ("training", "batch_size", 2**63, "from 1 to 1000000"),
    ("training", "epochs", 10**12, "from 1 to 100000"),
    ("training", "step_size", 2**31, "from 1 to 100000"),
    ("training", "early_stopping_patience", 2**64, "from 1 to 100000"),
    ("training", "seed", 2**64, "from 0 to 9223372036854775807"),
    ("dataset", "seed", 2**63, "from 0 to 9223372036854775807"),
    ("dataset", "samples", 10**12, "from 4 to 1000000"),
    ("dataset", "noise", 1e39, "from 0 to 100"),
    ("dataset", "label_column", 2**63, "integer from 0 to 2147483647"),
])
def test_settings_torch_cannot_hold_are_refused_with_their_range(tmp_path, section, key, value, rng):
    sections = {section: {"name": "xor"} if section == "dataset" else {}}
    sections[section][key] = value
    rc, text, _ = check(write(tmp_path, [VECTOR, node("fc", "Linear", out_features=2)], **sections))
    assert rc == 2 and f"{section}.{key}: expected" in text and rng in text, text


@pytest.mark.parametrize("seed", [2**31, 1733150000000, INT64_MAX])
def test_seeds_take_what_torch_takes_and_such_a_run_trains(tmp_path, seed):
    """Time-based seeds are common: torch and numpy take 64 bits, only the spin box is narrower."""
    from app.engine.training import Trainer, prepare_run

    for name in ("xor", "moons"):
        path = write(tmp_path, [node("input", "Input", shape=[2]), node("fc", "Linear", out_features=2)],
                     dataset={"name": name, "seed": seed}, training={"seed": seed, "epochs": 1})
        rc, text, _ = check(path)
        assert rc == 0, text
        result = Trainer(prepare_run(load_project(path), device="cpu")).run()
        assert result.ok, result.message


def test_every_setting_has_a_range_torch_can_hold():
    for p in (*config.DATASET_FIELDS, *config.TRAINING_FIELDS):
        assert_representable(p)
        if p.kind == "int":
            assert p.maximum is not None, f"{p.name} declares no maximum"


def test_every_layer_parameter_has_a_range_torch_can_hold():
    for spec in CATALOGUE.values():
        for p in spec.params:
            assert_representable(p)


def assert_representable(p: Param) -> None:
    if p.wide:  # the seeds: torch.manual_seed and numpy take 64 bits
        assert p.kind == "int" and 0 <= p.low <= p.high <= INT64_MAX, p
        torch.tensor([p.low, p.high], dtype=torch.int64)
    elif p.kind in ("int", "int_or_pair", "padding", "shape", "column"):
        assert -INT_LIMIT <= p.low <= p.high <= INT_LIMIT, p
        torch.tensor([p.low, p.high], dtype=torch.int32)  # a C int holds either end
    elif p.kind in ("float", "scale"):
        ends = torch.tensor([p.low, p.high], dtype=torch.float32)
        assert torch.isfinite(ends).all(), p
        assert p.check(p.high) == p.high and p.check(p.low) == p.low


def test_the_seeds_say_what_they_seed():
    """Issue 14, item 7: the dataset's and the training's "seed" fields were unexplained."""
    data_seed = next(p for p in config.DATASET_FIELDS if p.name == "seed")
    init_seed = next(p for p in config.TRAINING_FIELDS if p.name == "seed")
    assert data_seed.title == "data split seed" and init_seed.title == "initialization seed"
    assert "training, validation and test" in data_seed.doc
    assert "initial weights" in init_seed.doc and "data split seed" in init_seed.doc


# -- item 9: closed-form counts -------------------------------------------------------
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_parameter_count_is_closed_form(name):
    """The count was a loop over num_layers: 10^12 layers hung check and the editor."""
    spec = CATALOGUE[name]
    params = {"hidden_size": 8, "num_layers": 10**7, "bidirectional": True, "dropout": 0.0}
    start = time.thread_time()
    count = spec.count([(5, 3)], params)
    assert time.thread_time() - start < 0.1  # a loop of 10^7 steps takes seconds
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[name]
    first = 2 * gates * (3 * 8 + 8 * 8 + 2 * 8)
    assert count == first + (10**7 - 1) * 2 * gates * (16 * 8 + 8 * 8 + 2 * 8)
    assert spec.count([(5, 3)], {**params, "num_layers": 10**12}) > 10**12


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("size_in, hidden, layers, bidirectional",
                         [(3, 4, 1, False), (3, 4, 3, True), (1, 1, 2, False), (7, 2, 4, True)])
def test_recurrent_closed_form_agrees_with_torch(name, size_in, hidden, layers, bidirectional):
    module = getattr(torch.nn, name)(size_in, hidden, layers, bidirectional=bidirectional)
    assert recurrent_count(name, size_in, hidden, layers, bidirectional) == sum(
        p.numel() for p in module.parameters())


# -- shapes derived from values in range that torch could not hold: errors at the node ----
def at_node(g: Graph, node_id: str, fragment: str) -> None:
    a = analyze(g)
    errors = [i for i in a.errors if i.node == node_id]
    assert errors and fragment in errors[0].message, [str(i) for i in a.issues]
    assert a.shapes[node_id] is None


def test_an_input_of_more_values_than_torch_holds():
    at_node(chain(("input", "Input", {"shape": [INT_LIMIT] * 8}), ("relu", "ReLU", {})), "input",
            "values per sample; a torch tensor holds at most 2^63 - 1")


def test_flatten_beyond_a_c_int():
    at_node(chain(("input", "Input", {"shape": [65536, 65536]}), ("flat", "Flatten", {})), "flat",
            "has a dimension larger than 2147483647")


def test_embedding_adding_a_ninth_dimension():
    at_node(chain(("input", "Input", {"shape": [2] * 8}),
                  ("emb", "Embedding", {"num_embeddings": 4, "embedding_dim": 3})), "emb",
            "has 9 dimensions; NetCanvas supports at most 8")


def test_upsample_and_transposed_convolutions_that_grow_too_far():
    at_node(chain(("input", "Input", {"shape": [1, INT_LIMIT]}), ("up", "Upsample", {"scale_factor": 1000})),
            "up", "larger than 2147483647")
    layers = [("input", "Input", {"shape": [1, 8, 8]})]
    layers += [(f"t{i}", "ConvTranspose2d", {"out_channels": 1, "kernel_size": INT_LIMIT, "stride": INT_LIMIT})
               for i in range(3)]
    g = chain(*layers)
    at_node(g, "t0", "larger than 2147483647")
    assert analyze(g).shapes["t2"] is None and analyze(g).issues_for("t2") == []  # no cascade


def test_a_layer_with_more_weights_than_a_tensor_holds():
    at_node(chain(("input", "Input", {"shape": [INT_LIMIT, 1, 1]}),
                  ("conv", "Conv2d", {"out_channels": INT_LIMIT, "kernel_size": INT_LIMIT, "padding": 2**30})),
            "conv", "trainable parameters; a torch tensor holds at most 2^63 - 1")


def test_concat_of_many_large_inputs():
    g = Graph()
    g.add_node(Node("cat", "Concat", {}))
    for i in range(3):
        g.add_node(Node(f"in{i}", "Input", {"shape": [INT_LIMIT]}))
        g.add_edge(Edge(f"in{i}", "cat", i))
    at_node(g, "cat", "larger than 2147483647")


def test_such_a_file_loads_and_check_names_the_node(tmp_path):
    """A file whose values are each in range but whose shapes outgrow torch loads (the
    editor shows the error at the node); check answers with exit 1 and the node."""
    path = write(tmp_path, [node("input", "Input", shape=[65536, 65536]), node("flat", "Flatten"),
                            node("fc", "Linear", out_features=10)])
    assert load_project(path).graph.nodes["flat"].type == "Flatten"
    rc, text, seconds = check(path)
    assert rc == 1 and "flat: Flatten cannot be built: its output [4294967296]" in text, text
    assert seconds < 5 * SLOW and "Traceback" not in text


# -- hypothesis: every layer type, values within and far outside their ranges -------------
HUGE_INTS = [0, -1, INT_LIMIT, INT_LIMIT + 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30, 10**2200]
HUGE_FLOATS = [1e-320, 3.4e38, 3.5e38, 1e39, 1e300, 1.7976931348623157e308, -1e308, 10**400,
               float("nan"), float("inf")]


def ints(p: Param):
    small = st.integers(max(int(p.low), 0), min(int(p.high), 4))
    return st.one_of(small, small, small, st.integers(int(p.low), int(p.high)), st.sampled_from(HUGE_INTS))


def numbers(p: Param):
    return (st.floats(p.low, p.high, allow_nan=False) | st.sampled_from(HUGE_FLOATS)
            | st.integers(-3, 3) | st.sampled_from([0.5, 2.0]))


def dims():
    return st.integers(1, 12) | st.sampled_from([INT_LIMIT, 65536, 2**31, 2**63, 10**30, 0, -1])


def value(p: Param):
    """A value of the parameter's kind: mostly small and valid, often huge or out of range."""
    return {
        "int": ints(p),
        "float": numbers(p),
        "bool": st.booleans(),
        "choice": st.sampled_from(p.choices),
        "int_or_pair": ints(p) | st.lists(ints(p), min_size=2, max_size=2),
        "padding": ints(p) | st.lists(ints(p), min_size=2, max_size=2) | st.just("same"),
        "shape": st.lists(dims(), min_size=1, max_size=3) | st.lists(dims(), min_size=1, max_size=12)
        | st.lists(st.integers(1, 4) | st.just(-1), min_size=1, max_size=MAX_RANK + 1),
        "scale": numbers(p) | st.lists(numbers(p), min_size=2, max_size=2),
        "string": st.text(max_size=4),
        "column": st.integers(0, 3) | st.sampled_from(HUGE_INTS),
        # any JSON value (dataset.classes, a block's parameters): lists of class indices, mostly
        "any": st.none() | st.booleans() | st.text(max_size=3) | st.sampled_from(HUGE_INTS)
        | st.lists(st.integers(-2, 12) | st.sampled_from(HUGE_INTS), max_size=12),
    }[p.kind]


@st.composite
def layer_graphs(draw, type_name: str):
    """Input(s) of a random shape (small or huge) feeding one node of ``type_name`` with
    random parameters, followed by a Linear (so the node's output shape is used)."""
    spec = CATALOGUE[type_name]
    params = {p.name: draw(value(p)) for p in spec.params if p.required or draw(st.booleans())}
    g = Graph()
    rank = st.sampled_from([1, 2, 2, 3, 3, 3, 4])
    small = rank.flatmap(lambda n: st.lists(st.integers(1, 12), min_size=n, max_size=n))
    huge = st.lists(dims(), min_size=1, max_size=MAX_RANK + 1)
    inputs = 0 if spec.max_inputs == 0 else max(spec.min_inputs, 1) + draw(st.integers(0, 1)) * (
        spec.max_inputs is None)
    shape = draw(st.one_of(small, small, huge))
    for i in range(inputs):
        g.add_node(Node(f"in{i}", "Input", {"shape": shape if draw(st.integers(0, 3)) else draw(small | huge)}))
    g.add_node(Node("layer", type_name, params))
    for i in range(inputs):
        g.add_edge(Edge(f"in{i}", "layer", i))
    if type_name != "Input":
        g.add_node(Node("after", "Flatten", {}))
        g.add_edge(Edge("layer", "after"))
    return g


def assert_answered(g: Graph) -> None:
    """analyze answers at once, with errors tied to nodes, nothing it did not foresee, and
    only shapes and counts torch can hold; the small valid ones agree with torch."""
    start = time.thread_time()
    a = analyze(g)
    assert time.thread_time() - start < SLOW
    for issue in a.issues:
        assert (issue.node is None or issue.node in g.nodes) and UNCOMPUTABLE not in issue.message, str(issue)
        assert len(issue.message) < 1000, issue.message[:200]
    for node_id, shape in a.shapes.items():
        if shape is not None:
            assert len(shape) <= MAX_RANK and all(1 <= d <= INT_LIMIT for d in shape), (node_id, shape)
            assert a.param_counts[node_id] <= INT64_MAX
    layer = g.nodes["layer"]
    if a.shapes.get("layer") and layer.type != "Input" and a.param_counts["layer"] < 10**5:
        spec = CATALOGUE[layer.type]
        in_shapes = a.input_shapes("layer")
        if max(_numel(s) for s in in_shapes) < 10**5 and _numel(a.shapes["layer"]) < 10**5:
            module = spec.build(in_shapes, a.params["layer"])
            assert sum(p.numel() for p in module.parameters()) == a.param_counts["layer"]


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


FUZZ = settings(max_examples=50, deadline=5000, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("type_name", sorted(CATALOGUE))
@FUZZ
@given(data=st.data())
def test_fuzz_every_layer_type_with_values_within_and_far_outside_its_ranges(type_name, data):
    assert_answered(data.draw(layer_graphs(type_name)))


def _setting(p: Param):
    return value(p) | st.none() | st.sampled_from(HUGE_INTS + HUGE_FLOATS)


@FUZZ
@given(st.data())
def test_fuzz_settings_accepted_are_within_what_torch_holds(data):
    for section, fields in (("dataset", config.DATASET_FIELDS), ("training", config.TRAINING_FIELDS)):
        given_values = {p.name: data.draw(_setting(p)) for p in fields if data.draw(st.booleans())}
        settings_, problems = config.check_section(section, given_values, fields)
        for p in fields:
            v = settings_[p.name]
            if (p.name in given_values and not any(path == f"{section}.{p.name}" for path, _ in problems)
                    and isinstance(v, (int, float)) and not isinstance(v, bool)):
                assert abs(v) <= (p.limit if p.kind in ("int", "column") else FLOAT_LIMIT), (p.name, v)
                assert p.limit == (INT64_MAX if p.name == "seed" else INT_LIMIT if p.kind in ("int", "column")
                                   else FLOAT_LIMIT)
        for path, message in problems:
            assert path.startswith(section) and len(message) < 1000


def test_values_nested_too_deep_to_copy_are_an_error_not_a_crash():
    deep: list = [1]
    for _ in range(10**5):
        deep = [deep]
    g = chain(("input", "Input", {"shape": deep}), ("relu", "ReLU", {}))
    for _ in range(2):  # and again, past the cache of checked parameters
        a = analyze(g)
        assert [(i.node, i.param) for i in a.errors] == [("input", "shape")]


def test_a_refused_file_never_reaches_analyze(tmp_path):
    """Out-of-range values are the file's error (ProjectError), as any wrong value is."""
    with pytest.raises(ProjectError, match=r"\(up\)\.params\.scale_factor: expected a number from 0\.01 to 1000"):
        load_project(write(tmp_path, [INPUT, node("up", "Upsample", scale_factor=1e308)]))
