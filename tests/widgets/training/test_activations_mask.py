"""The activations view with training target "mask": the output node is drawn as the
predicted mask beside the target; token-id samples stay int64."""

from __future__ import annotations

import numpy as np
import pytest

from app.widgets.training.activations import ActivationsView
from tests.helpers import shown

MEAN, STD = 0.2, 0.4


@pytest.fixture
def view(qtbot):
    return shown(qtbot, ActivationsView(), 900, 450)


def blob() -> np.ndarray:
    """A [1, 8, 8] image in [0, 1] with a bright square, and its mask (pixels above 0.5)."""
    img = np.zeros((1, 8, 8), np.float32)
    img[0, 2:6, 3:7] = 0.9
    img[0, 1, 1] = 0.4  # below the threshold: not in the mask
    return img, (img > 0.5).astype(np.float32)


def test_mask_target_draws_sigmoid_of_the_logits_beside_the_target(view):
    img, mask = blob()
    x = ((img - MEAN) / STD)[None]
    view.set_samples(x, np.array([0]), ["digit"])
    view.set_normalization(np.full(img.shape, MEAN), np.full(img.shape, STD))
    logits = (mask * 8 - 4)[None]  # confident and right
    acts = {"input": x, "out": logits}
    view.show_activations(acts, ["input", "out"], "out", ["digit"])
    view.select_node("out")
    assert view.current_kind() == "maps"  # without the target: logits on the diverging scale
    view.set_target("mask")
    assert view.current_kind() == "mask"
    drawn = view.current_values()
    assert drawn.shape == (2, 8, 8)
    np.testing.assert_allclose(drawn[0], 1 / (1 + np.exp(-logits[0, 0])), rtol=1e-5)
    np.testing.assert_array_equal(drawn[1], mask[0])  # the target: the raw pixels above 0.5
    assert "predicted mask" in view.title.text() and "target" in view.title.text()
    assert not view.probability_bars.isVisible()  # an image output has no classes


def test_a_sigmoid_output_is_drawn_as_it_is_and_other_nodes_as_before(view):
    img, mask = blob()
    view.set_samples(img[None], np.array([0]), ["digit"])
    view.set_target("mask", output_is_probability=True)
    probabilities = np.full((1, 1, 8, 8), 0.25, np.float32)
    view.show_activations({"input": img[None], "out": probabilities}, ["input", "out"], "out", ["digit"])
    view.select_node("out")
    np.testing.assert_allclose(view.current_values()[0], 0.25)
    np.testing.assert_array_equal(view.current_values()[1], mask[0])
    view.select_node("input")
    assert view.current_kind() == "maps"


def test_token_samples_stay_int64(view, qtbot):
    tokens = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.int64)
    with qtbot.waitSignal(view.sample_changed) as sent:
        view.set_samples(tokens, np.array([1, 0]), ["unsorted", "sorted"])
    assert sent.args[0].dtype == np.int64
    np.testing.assert_array_equal(sent.args[0], tokens[:1])
