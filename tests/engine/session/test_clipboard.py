"""Copy, paste and duplicate without a screen: the clipboard's text read back safely (it is
outside data), fresh ids, the edges among the layers pasted, and their offset."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine.examples import load_example
from app.engine.graph import Edge, Graph, Node
from app.engine.layers import CATALOGUE
from app.engine.project import Project
from app.engine.session.clipboard import (CLIPBOARD_KEY, MAX_TEXT_CHARS, PASTE_OFFSET, ClipboardError, Clipping,
                                          clipping, new_node_params, parse_clipboard, paste_command, to_text)
from app.engine.session.document import Document


@pytest.fixture
def doc(tmp_path):
    return Document(load_example("lenet5"), scratch_dir=lambda: tmp_path / "scratch")


def test_layers_copied_and_pasted_get_fresh_ids_their_edges_and_an_offset(doc):
    clip = parse_clipboard(to_text(clipping(doc.graph, ["conv1", "relu1", "conv2"])))
    assert [n.id for n in clip.nodes] == ["conv1", "relu1", "conv2"]  # the file's order
    assert clip.edges == (Edge("conv1", "relu1", 0),)  # relu1 -> pool1 -> conv2: pool1 not copied
    step = paste_command(doc, clip)
    doc.push(step)
    new = [n.id for n in step.nodes]
    assert new == ["conv3", "relu5", "conv4"]  # numbered on, never twice the same
    assert Edge("conv3", "relu5", 0) in doc.graph.edges
    assert not any(e.target == "conv4" or e.source == "conv4" for e in doc.graph.edges)
    for old, fresh in zip(["conv1", "relu1", "conv2"], new):
        x, y = doc.graph.nodes[old].position
        assert doc.graph.nodes[fresh].position == (x + PASTE_OFFSET, y + PASTE_OFFSET)
        assert doc.graph.nodes[fresh].params == doc.graph.nodes[old].params
    assert step.text == "Paste 3 layers" and len(doc.graph.nodes) == 16
    doc.undo()
    assert len(doc.graph.nodes) == 13 and "conv3" not in doc.graph.nodes


def test_a_paste_never_shares_the_params_it_came_from(doc):
    clip = clipping(doc.graph, ["conv1"])
    doc.push(paste_command(doc, clip, offset=10.0))
    doc.graph.nodes["conv3"].params["out_channels"] = 99
    assert doc.graph.nodes["conv1"].params["out_channels"] != 99 and clip.nodes[0].params["out_channels"] != 99


def test_nothing_to_paste_is_no_step(doc):
    assert paste_command(doc, Clipping((), ())) is None
    assert paste_command(doc, clipping(doc.graph, [])) is None


def test_a_node_without_a_position_is_pasted_as_if_at_the_origin(doc):
    step = paste_command(doc, Clipping((Node("fc", "Linear", {"out_features": 3}),), ()), offset=5.0)
    assert step.nodes[0].position == (5.0, 5.0) and step.nodes[0].id == "fc4"


@pytest.mark.parametrize("text", ["", "hello", "[1, 2]", '{"nodes": []}', '{"netcanvas-layers": 2, "nodes": []}',
                                  "{not json", '{"netcanvas-layers": NaN}', "{" * 100_000, '{"a": ' + "9" * 5000 + "}"])
def test_text_that_is_not_our_layers_is_none(text):
    assert parse_clipboard(text) is None


@pytest.mark.parametrize("data, where", [
    ({"nodes": "x"}, "graph.nodes"),
    ({"nodes": [{"id": "a", "type": "Linear", "params": {"out_features": "ten"}}]}, "out_features"),
    ({"nodes": [{"id": "a", "type": 3}]}, "type"),
    ({"nodes": [{"id": "1a", "type": "ReLU"}]}, ".id"),
    ({"nodes": [{"id": "a", "type": "ReLU", "position": [1e308, "x"]}]}, "position"),
    ({"nodes": [{"id": "a", "type": "ReLU"}], "edges": [{"source": "a", "target": "b"}]}, "target"),
    ({"nodes": [{"id": "a", "type": "ReLU"}, {"id": "a", "type": "ReLU"}]}, ".id"),
])
def test_our_layers_broken_say_what_and_where(data, where):
    with pytest.raises(ClipboardError) as caught:
        parse_clipboard(json.dumps({CLIPBOARD_KEY: 1, **data}))
    assert where in str(caught.value) and "the layers copied" in str(caught.value)


def test_layers_of_an_unknown_type_are_left_out_with_their_edges():
    text = json.dumps({CLIPBOARD_KEY: 1, "nodes": [
        {"id": "a", "type": "ReLU"}, {"id": "b", "type": "FutureLayer"}, {"id": "c", "type": "ReLU"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "a", "target": "c"}]})
    clip = parse_clipboard(text)
    assert [n.id for n in clip.nodes] == ["a", "c"] and clip.edges == (Edge("a", "c", 0),)


def test_too_much_text_of_ours_is_refused_and_any_other_is_passed_over():
    filler = " " * (MAX_TEXT_CHARS + 1)
    with pytest.raises(ClipboardError, match="too many"):
        parse_clipboard(to_text(Clipping((), ()))[:-1] + filler + "}")
    assert parse_clipboard("{" + filler + "}") is None


def test_a_new_layer_starts_with_what_it_must_be_given():
    assert new_node_params("Linear") == {"out_features": 10}
    assert new_node_params("Reshape") == {"shape": [-1]}
    assert new_node_params("ReLU") == {}
    with pytest.raises(KeyError):
        new_node_params("NoSuchLayer")
    for type_name in CATALOGUE:  # every layer the palette offers can be made
        assert isinstance(new_node_params(type_name), dict)


# -- fuzzing: whatever the clipboard holds, a paste is None, a Clipping or ClipboardError ---------
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
ids = st.sampled_from(["a", "b", "conv1", "1x", "", "class", "_", "fc9"]) | st.text(max_size=6)
edge_ends = st.sampled_from(["a", "b", "conv1", "fc9"]) | ids | json_values
types = st.sampled_from(sorted(CATALOGUE) + ["Nope", ""]) | json_values
params = st.dictionaries(st.text(max_size=12), json_values, max_size=3) | json_values
positions = st.lists(st.floats() | st.integers(), max_size=3) | json_values
raw_nodes = st.fixed_dictionaries({"id": ids | json_values, "type": types},
                                  optional={"params": params, "position": positions})
plausible_nodes = st.fixed_dictionaries(  # most of these paste: the fuzz reaches paste_command too
    {"id": st.sampled_from(["a", "b", "conv1", "fc9"]), "type": st.sampled_from(["ReLU", "Flatten", "Dropout"])},
    optional={"params": st.just({}) | st.fixed_dictionaries({"p": st.floats(0, 1)}),
              "position": st.lists(st.floats(-1e6, 1e6) | st.integers(-10**6, 10**6), min_size=2, max_size=2)})
raw_edges = st.fixed_dictionaries({"source": edge_ends, "target": edge_ends},
                                  optional={"target_port": st.integers(-2, 3) | json_values})
ours = st.fixed_dictionaries({CLIPBOARD_KEY: st.just(1)},
                             optional={"nodes": st.lists(plausible_nodes | raw_nodes, max_size=5) | json_values,
                                       "edges": st.lists(raw_edges, max_size=5) | json_values})


def pasted_or_refused(text: str) -> None:
    started = time.perf_counter()
    try:
        clip = parse_clipboard(text)
    except ClipboardError as e:
        assert str(e)
        return
    finally:
        assert time.perf_counter() - started < 5.0  # bounded work, never a hang
    if clip is None:
        return
    doc = Document(Project(graph=Graph()))
    doc.push(paste_command(doc, clip) or paste_command(doc, Clipping((Node("x", "ReLU"),), ())))
    doc.undo()
    assert doc.graph.nodes == {}


@FUZZ
@given(ours)
def test_fuzz_layers_of_ours_with_anything_inside(data):
    pasted_or_refused(json.dumps(data, allow_nan=True))


@FUZZ
@given(json_values)
def test_fuzz_any_json(value):
    pasted_or_refused(json.dumps(value, allow_nan=True))
    pasted_or_refused(json.dumps({CLIPBOARD_KEY: 1, "nodes": value}, allow_nan=True))


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(raw):
    pasted_or_refused(raw.decode("utf-8", errors="replace"))
    pasted_or_refused(raw.decode("latin-1"))


@FUZZ
@given(st.binary(max_size=30), st.integers(0, 400))
def test_fuzz_bytes_spliced_into_layers_copied(junk, at):
    text = to_text(clipping(load_example("lenet5").graph, ["conv1", "relu1", "pool1"]))
    at = min(at, len(text))
    pasted_or_refused(text[:at] + junk.decode("latin-1") + text[at:])
    pasted_or_refused(text[:at])


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_layers_with_numbers_a_project_file_cannot_hold_are_refused(number):
    text = f'{{"{CLIPBOARD_KEY}": 1, "nodes": [{{"id": "d", "type": "Dropout", "params": {{"p": {number}}}}}]}}'
    with pytest.raises(ClipboardError, match=r"\(d\)\.params\.p: expected a number"):
        parse_clipboard(text)
    position = f'{{"{CLIPBOARD_KEY}": 1, "nodes": [{{"id": "r", "type": "ReLU", "position": [0, {number}]}}]}}'
    with pytest.raises(ClipboardError, match="position"):
        parse_clipboard(position)


@pytest.mark.parametrize("type_name, param", [("Dropout", "p"), ("Reshape", "shape"), ("ReLU", "nope")])
def test_parameters_nested_near_pythons_limit_are_refused_cleanly(type_name, param):
    for depth in range(960, 1010, 3):
        value = "[" * depth + "1" + "]" * depth
        pasted_or_refused(f'{{"{CLIPBOARD_KEY}": 1, "nodes": [{{"id": "a", "type": "{type_name}", '
                          f'"params": {{"{param}": {value}}}}}]}}')
