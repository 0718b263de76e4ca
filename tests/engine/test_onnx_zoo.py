"""ONNX's backend test data, shipped inside the onnx package: the pytorch-converted single
layers import and match their stored outputs; the real nets that import fast (all run in
``bench/onnx_zoo.py``) match their stored outputs, the smallest with random weights match
onnxruntime."""

from __future__ import annotations

from collections import Counter

import pytest

from app.engine.importers import OnnxImportError, import_onnx
from bench.onnx_zoo import DATA, run_case, run_random

# torch layers that are not catalogue types (a loss), refused by the op it needs
NOT_LAYERS = {"test_PoissonNLLLLoss_no_reduce": "Exp"}
CONVERTED = sorted(p.parent.name for p in (DATA / "pytorch-converted").glob("*/model.onnx"))
SMALL_NETS = ["light_squeezenet", "light_shufflenet"]
# under a second each here: LRN (Inception v1), a scale and shift after BatchNorm (DenseNet)
STORED = [*SMALL_NETS, "light_inception_v1", "light_densenet121", "light_resnet50"]


def test_the_data_is_there():
    assert len(CONVERTED) >= 80 and len(list((DATA / "light").glob("*.onnx"))) == 9


@pytest.mark.parametrize("name", [n for n in CONVERTED if n not in NOT_LAYERS])
def test_pytorch_converted_layers_match_their_stored_outputs(name):
    assert run_case(DATA / "pytorch-converted" / name / "model.onnx") <= 1e-5


@pytest.mark.parametrize("name", sorted(NOT_LAYERS))
def test_what_is_no_layer_is_refused_by_name(name):
    with pytest.raises(OnnxImportError, match=rf"\({NOT_LAYERS[name]}\)"):
        import_onnx(DATA / "pytorch-converted" / name / "model.onnx")


@pytest.mark.parametrize(("name", "types"), [
    ("test_PixelShuffle", {"PixelShuffle"}), ("test_ReflectionPad2d", {"ReflectionPad2d"}),
    ("test_ReplicationPad2d", {"ReplicationPad2d"}), ("test_ZeroPad2d", {"ZeroPad2d"}),
    ("test_ConstantPad2d", {"ConstantPad2d"}), ("test_Softplus", {"Softplus"}),
    ("test_Softsign", {"Softsign"}), ("test_GLU", {"Split", "Sigmoid", "Multiply"}),
    ("test_MaxPool2d_stride_padding_dilation", {"MaxPool2d"}), ("test_PReLU_2d_multiparam", {"PReLU"}),
    ("test_Softmin", {"Scale", "Softmax"})])
def test_converter_patterns_become_catalogue_layers(name, types):
    result = import_onnx(DATA / "pytorch-converted" / name / "model.onnx")
    assert {n.type for n in result.project.graph.nodes.values()} - {"Input"} == types


def test_a_split_feeds_its_consumers_from_its_ports():
    graph = import_onnx(DATA / "pytorch-converted" / "test_GLU" / "model.onnx").project.graph
    split = next(n.id for n in graph.nodes.values() if n.type == "Split")
    assert sorted(e.source_port for e in graph.edges if e.source == split) == [0, 1]


@pytest.mark.parametrize("name", STORED)
def test_small_real_nets_match_their_stored_outputs(name):
    assert run_case(DATA / "light" / f"{name}.onnx") <= 1e-5


@pytest.mark.parametrize("name", [*SMALL_NETS, "light_inception_v1", "light_densenet121"])
def test_small_real_nets_with_random_weights_match_onnxruntime(name):
    # the stored outputs come from constant weights, which give every class the same score
    assert run_random(DATA / "light" / f"{name}.onnx") <= 1e-4


def test_old_opsets_are_converted_and_their_patterns_mapped():
    result = import_onnx(DATA / "light" / "light_shufflenet.onnx")
    assert result.notes[0] == "the model was converted from operator set 9 to 13"
    types = Counter(n.type for n in result.project.graph.nodes.values())
    # the Reshape / Transpose / Reshape of each channel shuffle; Caffe's average pooling that
    # leaves the padding out, and its last one, a window over all the input
    assert types["ChannelShuffle"] == 16 and types["AvgPool2d"] == 3 and types["AdaptiveAvgPool2d"] == 1
    assert not types["Permute"] and not types["Reshape"]
    nodes = result.project.graph.nodes.values()
    assert all(n.params == {"groups": 4} for n in nodes if n.type == "ChannelShuffle")
    assert all(n.params["count_include_pad"] is False for n in nodes if n.type == "AvgPool2d")
