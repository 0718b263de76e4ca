"""The editor meets values torch cannot hold (issue 14, item 12): a file whose values are out
of range is refused with the engine's message and the editor carries on; one whose values
are in range but whose shapes outgrow torch opens, with the error at the node."""

from __future__ import annotations

import json

from app.engine import config
from app.engine.layers import CATALOGUE
from app.engine.params import INT_LIMIT, Param
from app.widgets.param_fields import make_field


def write(tmp_path, nodes) -> str:
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:])]
    doc = {"format": "netcanvas", "version": 1, "name": "extreme", "graph": {"nodes": nodes, "edges": edges}}
    path = tmp_path / "extreme.netcanvas.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_shapes_torch_cannot_hold_open_with_the_error_at_the_node(window, tmp_path):
    path = write(tmp_path, [{"id": "input", "type": "Input", "params": {"shape": [1, INT_LIMIT]}},
                            {"id": "up", "type": "Upsample", "params": {"scale_factor": 1000}},
                            {"id": "relu", "type": "ReLU", "params": {}}])
    assert window.open_file(path, ask=False)
    item = window.scene.nodes["up"]
    assert item.severity == "error" and "larger than 2147483647" in item.problem
    assert window.scene.nodes["input"].severity == ""
    assert not window.grab().isNull()  # the canvas paints it


def test_values_torch_cannot_hold_are_refused_and_the_editor_carries_on(window, tmp_path):
    """Upsample's scale 1e308 made the editor exit with status 1 (an OverflowError)."""
    path = write(tmp_path, [{"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}},
                            {"id": "up", "type": "Upsample", "params": {"scale_factor": 1e308}}])
    assert not window.open_file(path, ask=False)
    assert "(up).params.scale_factor: expected a number from 0.01 to 1000" in window.last_error
    window._error_box.close()
    assert window.isVisible()


def field_for(qtbot, param: Param):
    field = make_field(param, lambda: None)
    qtbot.addWidget(field.container)
    return field


def test_integer_fields_take_the_parameter_range(qtbot):
    layers = field_for(qtbot, CATALOGUE["LSTM"].param_index["num_layers"])
    assert (layers.editor.minimum(), layers.editor.maximum()) == (1, 1000)
    seed = next(p for p in config.TRAINING_FIELDS if p.name == "seed")
    field = field_for(qtbot, seed)
    assert (field.editor.minimum(), field.editor.maximum()) == (0, INT_LIMIT)
    assert field.editor.accessibleName() == "initialization seed"
    assert "initial weights" in field.editor.toolTip()
    # a range wider than a spin box holds is clamped, not an OverflowError
    wide = field_for(qtbot, Param("n", "int", 0, minimum=-(2**40), maximum=2**40, nullable=True))
    assert wide.editor.maximum() == INT_LIMIT and wide.editor.minimum() == -INT_LIMIT - 1


def test_the_settings_forms_name_the_two_seeds(qtbot):
    from app.widgets.settings_form import SettingsForm

    training = SettingsForm(config.TRAINING_FIELDS)
    data = SettingsForm(config.DATASET_FIELDS)
    qtbot.addWidget(training)
    qtbot.addWidget(data)
    assert training.rows["seed"][0].text() == "initialization seed"
    assert data.rows["seed"][0].text() == "data split seed"
    assert training.rows["batch_size"][0].text() == "batch size"
