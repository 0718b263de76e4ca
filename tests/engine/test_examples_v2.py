"""The format-2 examples (vit, text_transformer, unet) and what they need: the
``sorted_digits`` dataset of int64 token ids and the training target ``"mask"``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.engine.datasets import load_dataset
from app.engine.datasets.sequences import SEQUENCE_LENGTH, make_sorted_digits
from app.engine.errors import DatasetError, ProjectError, TrainingError
from app.engine.examples import load_example
from app.engine.inference import analyze
from app.engine.project import parse_project
from app.engine.training import Trainer, prepare_run

EXAMPLES = {"vit": (1, 28, 28), "text_transformer": (SEQUENCE_LENGTH,), "unet": (1, 28, 28),
            "resnet_blocks": (1, 28, 28), "mobilenet": (1, 28, 28)}
STEPS = {"resnet_blocks": 30, "unet": 30}  # their loss drops slowly for the first dozen steps


def few_steps(project, steps: int = 12, batch: int = 32):
    """The losses of the first ``steps`` minibatches, each taken on the same fixed batch
    (so that the loss going down means the model learns, not that the batch changed)."""
    run = prepare_run(project, device="cpu", batch_size=batch)
    trainer = Trainer(run)
    x, y = run.dataset.train.x[:batch], run.dataset.train.y[:batch]
    losses = []
    for _ in range(steps):
        loss = run.objective.loss(trainer.train_model(x), x, y)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        losses.append(loss.item())
    return run, trainer, losses


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_loads_checks_and_learns(name):
    torch.manual_seed(0)
    project = load_example(name)
    a = analyze(project.graph)
    assert a.ok, a.errors
    assert a.shapes[a.inputs[0]] == EXAMPLES[name]
    run, trainer, losses = few_steps(project, STEPS.get(name, 12))
    assert losses[-1] < 0.7 * losses[0], losses
    # what a full run reports, on a few test samples: an accuracy between 0 and 1
    _, accuracy = trainer.evaluate(type(run.dataset.test)(run.dataset.test.x[:40], run.dataset.test.y[:40]))
    assert 0.0 <= accuracy <= 1.0


def test_examples_use_format_2_features():
    vit = load_example("vit").graph
    assert vit.nodes["encoder"].repeat >= 2
    assert {n.type for n in vit.nodes.values()} >= {"Conv2d", "ClassToken", "PositionalEmbedding",
                                                    "TransformerEncoderLayer", "Select", "Linear"}
    text = load_example("text_transformer")
    assert text.graph.nodes["tokens"].params["dtype"] == "int64" and text.dataset["name"] == "sorted_digits"
    unet = load_example("unet")
    assert unet.training["target"] == "mask" and unet.training["loss"] == "BCEWithLogitsLoss"
    assert {n.type for n in unet.graph.nodes.values()} >= {"MaxPool2d", "ConvTranspose2d", "Concat"}


# -- sorted_digits ----------------------------------------------------------------------------------

def test_sorted_digits_shapes_labels_and_hard_negatives():
    raw = make_sorted_digits(800, seed=3)
    assert raw.x.shape == (800, SEQUENCE_LENGTH) and raw.x.dtype == np.int64 and raw.tokens
    assert raw.x.min() >= 0 and raw.x.max() <= 9
    is_sorted = np.all(np.diff(raw.x, axis=1) >= 0, axis=1)
    assert np.array_equal(raw.y, is_sorted.astype(np.int64))
    assert raw.y.sum() == 400  # half sorted
    descents = (np.diff(raw.x[raw.y == 0], axis=1) < 0).sum(axis=1)
    assert (descents == 1).mean() > 0.6  # most negatives are broken in one place only


def test_sorted_digits_is_deterministic_and_seeded():
    a, b, c = make_sorted_digits(200, 1), make_sorted_digits(200, 1), make_sorted_digits(200, 2)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


def test_sorted_digits_loads_as_int64_tokens_without_normalization():
    data = load_dataset({"name": "sorted_digits", "samples": 500}, None, (SEQUENCE_LENGTH,), "tokens")
    assert data.train.x.dtype == torch.int64 and data.mean is None and data.num_classes == 2
    assert len(data.train) + len(data.val) + len(data.test) == 500
    assert data.class_names == ["unsorted", "sorted"]


def test_sorted_digits_bad_settings_say_what_to_fix():
    with pytest.raises(DatasetError, match="at least 10 samples"):
        load_dataset({"name": "sorted_digits", "samples": 5})
    with pytest.raises(DatasetError, match=r"Input 'tokens' expects \[16\].*set the Input shape to \[12\]"):
        load_dataset({"name": "sorted_digits"}, None, (16,), "tokens")


def _project(nodes, edges, dataset, training) -> object:
    return parse_project({"format": "netcanvas", "version": 2, "name": "t",
                          "graph": {"nodes": nodes, "edges": edges}, "dataset": dataset, "training": training})


def test_token_data_and_a_float_input_do_not_mix():
    chain = [{"source": "x", "target": "fc"}]
    floats = _project([{"id": "x", "type": "Input", "params": {"shape": [12]}},
                       {"id": "fc", "type": "Linear", "params": {"out_features": 2}}], chain,
                      {"name": "sorted_digits", "samples": 50}, {})
    with pytest.raises(DatasetError, match="int64 token ids, but Input 'x' takes float32.*dtype to int64"):
        prepare_run(floats, device="cpu")
    tokens = _project([{"id": "x", "type": "Input", "params": {"shape": [64], "dtype": "int64"}},
                       {"id": "emb", "type": "Embedding", "params": {"num_embeddings": 17, "embedding_dim": 4}},
                       {"id": "pool", "type": "Mean", "params": {"dims": [1]}},
                       {"id": "fc", "type": "Linear", "params": {"out_features": 10}}],
                      [{"source": "x", "target": "emb"}, {"source": "emb", "target": "pool"},
                       {"source": "pool", "target": "fc"}], {"name": "digits"}, {})
    with pytest.raises(DatasetError, match="float32 values, but Input 'x' has dtype int64"):
        prepare_run(tokens, device="cpu")


def test_snapshots_of_a_token_model_take_the_float_samples_the_editor_sends():
    run = prepare_run(load_example("text_transformer"), device="cpu")
    trainer = Trainer(run)
    event = trainer.snapshot(run.dataset.test.x[:2].float())
    assert event.activations["head"].shape == (2, 2)


# -- target "mask" ----------------------------------------------------------------------------------

def _segmenter(out_channels=1, loss="BCEWithLogitsLoss", target="mask", pool=False, sigmoid=False):
    nodes = [{"id": "x", "type": "Input", "params": {"shape": [1, 8, 8]}},
             {"id": "conv", "type": "Conv2d", "params": {"out_channels": out_channels, "kernel_size": 3,
                                                         "padding": 1}}]
    if pool:
        nodes.append({"id": "pool", "type": "MaxPool2d", "params": {"kernel_size": 2}})
    if sigmoid:
        nodes.append({"id": "sig", "type": "Sigmoid"})
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:])]
    return _project(nodes, edges, {"name": "digits"}, {"loss": loss, "target": target, "optimizer": "Adam",
                                                        "lr": 0.05})


def test_mask_target_is_the_input_above_half_before_normalization():
    run = prepare_run(_segmenter(), device="cpu")
    data = run.dataset
    x = data.train.x[:16]
    raw = x * data.std + data.mean
    expected = (raw > 0.5).float()
    # a perfect prediction: logits +-10 where the mask is 1 / 0
    perfect = expected * 20 - 10
    assert float(run.objective.correct(perfect, data.train.y[:16], x)) == pytest.approx(16.0)
    assert float(run.objective.correct(-perfect, data.train.y[:16], x)) == pytest.approx(0.0)
    assert float(run.objective.loss(perfect, x, data.train.y[:16])) < 1e-3
    assert 0.1 < float(expected.mean()) < 0.6  # digits: ink on a fair share of the pixels
    assert run.objective.predict is None
    assert any("target 'mask'" in n for n in run.notes)


def test_mask_target_trains_and_reports_pixel_accuracy():
    torch.manual_seed(0)
    run = prepare_run(_segmenter(), device="cpu", epochs=10, batch_size=128)
    result = Trainer(run).run()
    test = run.dataset.test
    ink = float(((test.x * run.dataset.std + run.dataset.mean) > 0.5).float().mean())
    baseline = max(ink, 1 - ink)  # the accuracy of predicting every pixel the same
    assert result.reason == "completed" and result.test_accuracy > baseline + 0.05, (result.test_accuracy, ink)
    assert result.confusion is None  # a mask has no classes to confuse


def test_mask_target_with_bce_after_a_sigmoid():
    run = prepare_run(_segmenter(loss="BCELoss", sigmoid=True), device="cpu")
    x = run.dataset.train.x[:4]
    half = torch.full((4, 1, 8, 8), 0.5)
    assert float(run.objective.loss(half, x, run.dataset.train.y[:4])) == pytest.approx(np.log(2), rel=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"pool": True}, r"target 'mask' the output 'pool' must have the input's shape \[1, 8, 8\].*\[1, 4, 4\]"),
    ({"out_channels": 2}, r"must have the input's shape \[1, 8, 8\]"),
    ({"loss": "MSELoss"}, "MSELoss does not fit a mask.*BCEWithLogitsLoss"),
    ({"loss": "CrossEntropyLoss"}, "CrossEntropyLoss does not fit a mask"),
])
def test_mask_target_misfits_say_what_to_fix(kwargs, message):
    with pytest.raises(TrainingError, match=message):
        prepare_run(_segmenter(**kwargs), device="cpu")


def test_an_unknown_target_names_the_choices():
    with pytest.raises(ProjectError, match=r"training\.target.*labels.*input.*mask"):
        _segmenter(target="pixels")
