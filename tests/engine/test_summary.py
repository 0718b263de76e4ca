"""The line of key parameters a node shows (engine/summary.py)."""

from __future__ import annotations

import json

from app.engine.graph import Node
from app.engine.project import parse_project
from app.engine.summary import inner_layers, key_summary
from tests.engine.test_blocks import _project


def test_a_layer_says_its_key_parameters_in_words():
    assert key_summary(Node("c", "Conv2d", {"out_channels": 6, "kernel_size": 5}),
                       {"out_channels": 6, "kernel_size": 5}) == "6 ch · 5×5"
    assert key_summary(Node("fc", "Linear", {}), {"out_features": 10}) == "10 units"
    assert key_summary(Node("d", "Dropout", {}), {"p": 0.5}) == "p = 0.5"


def test_a_four_side_padding_reads_as_its_four_numbers():
    node = Node("pad", "ZeroPad2d", {"padding": [1, 2, 3, 4]})
    assert key_summary(node, node.params) == "pad 1×2×3×4"


def test_an_unknown_type_says_nothing():
    assert key_summary(Node("n", "NoSuchLayer", {"x": 1}), {"x": 1}) == ""
    assert inner_layers(None) == 0


def test_a_block_counts_its_layers_and_names_its_parameters():
    graph = parse_project(json.dumps(_project())).graph
    spec = graph.spec("Res")
    assert inner_layers(spec) == 6  # its Input aside
    node = graph.nodes["layer2"]
    assert key_summary(node, {"width": 6, "stride": 2}, spec) == "6 layers · width 6 · stride 2"
