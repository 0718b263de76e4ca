"""The issues list: an issue inside a block names its path, and a click says where it lies."""

from __future__ import annotations

import json

from app.engine.inference import analyze
from app.engine.project import parse_project
from app.widgets.issues import IssuesList
from tests.engine.test_blocks import _project


def test_an_issue_inside_a_block_shows_its_path_and_a_click_gives_it(qtbot):
    data = _project()
    data["graph"]["nodes"][1]["params"] = {"width": 0}
    a = analyze(parse_project(json.dumps(data)).graph)
    issues = IssuesList()
    qtbot.addWidget(issues)
    issues.show_analysis(a)
    item = issues.topLevelItem(0)
    assert item.text(0) == "layer1/conv1.out_channels"
    nodes, paths = [], []
    issues.node_chosen.connect(nodes.append)
    issues.path_chosen.connect(paths.append)
    issues._clicked(item)
    assert nodes == ["layer1"] and paths == [("layer1", "conv1")]


def test_a_click_on_an_issue_inside_a_block_opens_it_at_the_layer(window):
    data = _project()
    data["graph"]["nodes"][1]["params"] = {"width": 0}
    window.set_project(parse_project(json.dumps(data)))
    item = window.issues.topLevelItem(0)
    window.issues._clicked(item)
    assert window.doc.scope == ("layer1",)
    assert window.scene.selected_node_ids() == ["conv1"]
