"""ONNX import and predict: NetCanvas' own exports come back with the same ids and outputs,
converter-style files (folded shape arithmetic, Gemm, MatMul + Add, recurrent ops) import
and match onnxruntime, and what cannot be imported is refused by name."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import warnings
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from app.engine import cli_io
from app.engine.compiler import compile_graph
from app.engine.errors import DatasetError, WeightsError
from app.engine.examples import list_examples, load_example
from app.engine.export.onnx_export import ExportError, export_onnx
from app.engine.importers import OnnxFileError, OnnxImportError, compare_with_onnxruntime, import_onnx, save_imported
from app.engine.importers import onnx_import as onnx_import_module
from app.engine.importers.onnx_compare import onnxruntime_difference
from app.engine.importers.torch_import import import_module
from app.engine.importers.torch_import import save_imported as save_torch_import
from app.engine.inference import analyze, resolve_params
from app.engine.layers import get_spec
from app.engine.predict import predict
from app.engine.project import Project, load_project, weights_path_for
from app.engine.weights import apply_weights, load_weights, read_weights, save_weights
from tests.engine import torch_models as tm
from tests.engine.test_catalogue import BY_OPS
from tests.helpers import chain, without_metadata

EXAMPLES = [e.name for e in list_examples()]
# dynamo exports cost seconds each: export -> import -> export is run where the imported graph
# differs from the original (a BatchNorm fused into its Conv, a Dropout dropped); elsewhere
# the imported graph is checked to equal the original, so its export cannot differ
REEXPORT = {"resnet", "three_conv"}


def _randomized(project, seed=0):
    """The compiled model with every weight and statistic drawn at random (trained-like)."""
    torch.manual_seed(seed)
    model = compile_graph(project.graph).eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand_like(t) + 0.5 if name.endswith("running_var") else torch.randn_like(t) * 0.3)
    return model


def _sample(project, batch=4, seed=1):
    net = compile_graph(project.graph)
    shape, generator = net.input_shapes[0], torch.Generator().manual_seed(seed)
    if net.input_dtypes[0] == torch.int64:  # token ids, below every Embedding's vocabulary size
        vocabulary = min(n.params["num_embeddings"] for n in project.graph.nodes.values() if n.type == "Embedding")
        return torch.randint(0, vocabulary, (batch, *shape), generator=generator)
    return torch.randn((batch, *shape), generator=generator)


def _onnx_nodes(path):
    return [(n.name, n.op_type) for n in onnx.load(str(path)).graph.node]


def _as_exported(graph):
    """What an export keeps of ``graph``: Dropout and Identity vanish (eval mode), and
    "same" padding of an odd kernel is the number it stands for. (The examples are written
    from their layers, export/onnx_direct.py: a BatchNorm2d stays itself, where torch's
    exporter folds it into the Conv before it.)"""
    nodes = {n.id: (n.type, dict(n.params)) for n in graph.nodes.values()}
    edges = {(e.source, e.target, e.target_port) for e in graph.edges}

    def bypass(node_id):
        (src, _, _), = [e for e in edges if e[1] == node_id]
        for e in [e for e in edges if e[0] == node_id]:
            edges.discard(e)
            edges.add((src, e[1], e[2]))
        edges.discard((src, node_id, 0))

    for node_id, (kind, params) in list(nodes.items()):
        k = params.get("kernel_size")
        if params.get("padding") == "same" and isinstance(k, int) and k % 2 and params.get("stride", 1) == 1:
            params["padding"] = (k - 1) // 2 * params.get("dilation", 1)  # ONNX cannot tell them apart
        if kind in ("Dropout", "Identity"):
            bypass(node_id)
            del nodes[node_id]
    return [(k, *v) for k, v in nodes.items()], edges


def _resolved(type_name: str, params: dict) -> dict:
    return resolve_params(get_spec(type_name), params)[0]


def _imports_by_ops(name: str) -> bool:
    """Whether an example's layers all come back as themselves from their ONNX ops (the
    transformer examples' attention is exported as MatMul/Softmax, which reads otherwise)."""
    graph = load_example(name).graph
    return not len(graph.blocks) and all(n.type in {*BY_OPS, "Input", "Dropout"} for n in graph.nodes.values())


@pytest.mark.parametrize("name", [e for e in EXAMPLES if _imports_by_ops(e)])
def test_exported_examples_import_with_their_ids_and_outputs(name, tmp_path):
    project = load_example(name)
    model = _randomized(project)
    save_weights(model, tmp_path / "w.safetensors")
    first = export_onnx(project, tmp_path / "a.onnx", tmp_path / "w.safetensors").path

    result = import_onnx(without_metadata(first))  # (with it, the file comes back as its project)
    graph = result.project.graph
    nodes, edges = _as_exported(project.graph)
    # parameters compared with their defaults filled in (a file may write a default, an import does not)
    assert [(n.id, n.type, _resolved(n.type, n.params)) for n in graph.nodes.values()] == \
        [(i, t, _resolved(t, p)) for i, t, p in nodes]
    assert {(e.source, e.target, e.target_port) for e in graph.edges} == edges
    assert all(n.position is not None for n in graph.nodes.values())

    x = _sample(project)
    net = compile_graph(graph).eval()
    apply_weights(net, result.state)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-4), (net(x) - model(x)).abs().max()
    assert compare_with_onnxruntime(result) <= 1e-4

    if name in REEXPORT:
        _, weights = save_imported(result, tmp_path / f"{name}.netcanvas.json")
        again = export_onnx(load_project(tmp_path / f"{name}.netcanvas.json"), tmp_path / "b.onnx")
        assert again.weights == str(weights)
        assert _onnx_nodes(again.path) == _onnx_nodes(first)


def test_torchs_export_of_resnet_with_its_batchnorms_folded_imports_and_matches(tmp_path):
    """The examples are written directly now (BatchNorm kept); torch's exporter, still used for
    what the direct writer does not cover, folds each BatchNorm into the Conv before it."""
    project = load_example("resnet")
    model = _randomized(project)
    save_weights(model, tmp_path / "w.safetensors")
    report = export_onnx(project, tmp_path / "t.onnx", tmp_path / "w.safetensors", direct=False)
    assert report.writer == "torch"
    result = import_onnx(without_metadata(report.path))
    types = [n.type for n in result.project.graph.nodes.values()]
    assert "BatchNorm2d" not in types and types.count("Conv2d") == \
        sum(n.type == "Conv2d" for n in project.graph.nodes.values())
    x = _sample(project)
    net = compile_graph(result.project.graph).eval()
    apply_weights(net, result.state)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-4), (net(x) - model(x)).abs().max()
    back = import_onnx(report.path).project  # with the metadata: the project itself, BatchNorms and all
    assert [(n.id, n.type) for n in back.graph.nodes.values()] == \
        [(n.id, n.type) for n in project.graph.nodes.values()]


# -- converter style ------------------------------------------------------------------------
def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _const_node(name, array):
    return helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(array)))


def _converter_model(path, extra_nodes=(), output="out", output_shape=("N", 6), extra_inits=()):
    """Conv (bias added afterwards, as converters do), GlobalAveragePool, a Reshape whose
    target is computed with Shape/Gather/Unsqueeze/Concat/Cast, Gemm with transB=0 and
    alpha, MatMul + Add, Sum, Mul, a written-out GELU, Clip(min=0), Transposes that cancel out."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["c"], name="features/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "conv_b"], ["cb"], name="features/conv/BiasAdd"),
        helper.make_node("Transpose", ["cb"], ["nhwc"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Relu", ["nhwc"], ["r_nhwc"], name="features/relu/Relu"),
        helper.make_node("Transpose", ["r_nhwc"], ["r"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Shape", ["g"], ["g_shape"], name="shape"),
        _const_node("zero", np.array(0, dtype=np.int64)),
        helper.make_node("Gather", ["g_shape", "zero"], ["batch"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="unsqueeze"),
        _const_node("minus_one", np.array([-1], dtype=np.int64)),
        helper.make_node("Concat", ["batch1", "minus_one"], ["target64"], name="concat", axis=0),
        helper.make_node("Cast", ["target64"], ["target32"], name="cast32", to=TensorProto.INT32),
        helper.make_node("Cast", ["target32"], ["target"], name="cast64", to=TensorProto.INT64),
        helper.make_node("Identity", ["target"], ["target_id"], name="identity"),
        helper.make_node("Reshape", ["g", "target_id"], ["flat"], name="flatten/Reshape"),
        helper.make_node("Gemm", ["flat", "gemm_b", "gemm_c"], ["h1"], name="dense1/Gemm", alpha=0.5, transB=0),
        helper.make_node("MatMul", ["flat", "mm_w"], ["h2_"], name="dense2/MatMul"),
        helper.make_node("Add", ["h2_", "mm_b"], ["h2"], name="dense2/Add"),
        helper.make_node("Sum", ["h1", "h2"], ["s"], name="sum"),
        helper.make_node("Mul", ["s", "h2"], ["m"], name="gate/Mul"),
        # GELU written out the TensorFlow way: x * 0.5 * (1 + erf(x * 0.7071...))
        helper.make_node("Mul", ["m", "inv_sqrt2"], ["m_scaled"], name="act/Mul"),
        helper.make_node("Erf", ["m_scaled"], ["m_erf"], name="act/Erf"),
        helper.make_node("Add", ["m_erf", "one"], ["m_erf1"], name="act/Add"),
        helper.make_node("Mul", ["m", "half"], ["m_half"], name="act/Mul_1"),
        helper.make_node("Mul", ["m_half", "m_erf1"], ["gelu"], name="act/Mul_2"),
        helper.make_node("Clip", ["gelu", "zero_f"], ["clipped"], name="clip"),  # Clip(min=0) is ReLU
        helper.make_node("LeakyRelu", ["clipped"], ["out"], name="out/LeakyRelu", alpha=0.2),
        *extra_nodes,
    ]
    inits = [
        _init("conv_w", f(4, 3, 3, 3)), _init("conv_b", f(1, 4, 1, 1)),
        _init("axes0", np.array([0], dtype=np.int64)),
        _init("gemm_b", f(4, 6)), _init("gemm_c", f(6)), _init("mm_w", f(4, 6)), _init("mm_b", f(6)),
        _init("inv_sqrt2", np.array(1 / np.sqrt(2), dtype=np.float32)),
        _init("one", np.array(1.0, dtype=np.float32)), _init("half", np.array(0.5, dtype=np.float32)),
        _init("zero_f", np.array(0.0, dtype=np.float32)), *extra_inits,
    ]
    graph = helper.make_graph(
        nodes, "converted", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_converter_style_model_imports_and_matches_onnxruntime(tmp_path):
    result = import_onnx(_converter_model(tmp_path / "conv.onnx"))
    nodes = result.project.graph.nodes
    kinds = {n.id: n.type for n in nodes.values()}
    assert kinds == {"x": "Input", "features_conv": "Conv2d", "features_relu": "ReLU",
                     "gap": "AdaptiveAvgPool2d", "flatten": "Flatten", "dense1": "Linear",
                     "dense2": "Linear", "sum": "Add", "gate": "Multiply", "act": "GELU",
                     "clip": "ReLU", "out": "LeakyReLU"}
    assert nodes["features_conv"].params == {"out_channels": 4, "kernel_size": 3, "padding": 1}
    assert nodes["out"].params == {"negative_slope": 0.2}
    assert nodes["x"].params == {"shape": [3, 8, 8]}
    assert compare_with_onnxruntime(result) <= 1e-4


def test_torchscript_recurrent_export_imports(tmp_path):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
            self.gru = nn.GRU(8, 5, batch_first=True)
            self.rnn = nn.RNN(5, 6, batch_first=True)
            self.norm = nn.LayerNorm(6)
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            y = self.norm(self.rnn(self.gru(self.lstm(x)[0])[0])[0])
            return torch.nn.functional.gelu(self.fc(y[:, -1]))

    torch.manual_seed(0)
    module = Model().eval()
    path = tmp_path / "rnn.onnx"
    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy, and about RNNs
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 7, 3),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}}, opset_version=17)
    result = import_onnx(path)
    graph = result.project.graph
    assert [(n.id, n.type) for n in graph.nodes.values()] == [
        ("x", "Input"), ("lstm", "LSTM"), ("gru", "GRU"), ("rnn", "RNN"), ("norm", "LayerNorm"),
        ("laststep", "LastStep"), ("fc", "Linear"), ("gelu", "GELU")]
    assert graph.nodes["lstm"].params == {"hidden_size": 4, "bidirectional": True, "num_layers": 2}
    # the weights are torch's own, gates reordered back from ONNX's order
    for key, value in module.state_dict().items():
        assert torch.equal(result.state[key], value), key
    assert compare_with_onnxruntime(result) <= 1e-4


def _small_model(path, nodes, inits, x_shape, outputs, opset=14):
    rng = np.random.default_rng(0)
    inits = [_init(n, a if isinstance(a, np.ndarray) else rng.standard_normal(a).astype(np.float32))
             for n, a in inits.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


SMALL = {
    # the final hidden state of a forward LSTM is its last step
    "lstm_final_state": ([
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2], name="t"),
        helper.make_node("LSTM", ["xt", "W", "R", "B"], ["", "yh"], hidden_size=4, name="rnn/LSTM"),
        helper.make_node("Squeeze", ["yh", "ax"], ["h"], name="rnn/Squeeze"),
        helper.make_node("Gemm", ["h", "fw", "fb"], ["y"], transB=1, name="fc")],
        {"W": (1, 16, 3), "R": (1, 16, 4), "B": (1, 32), "ax": np.array([0]), "fw": (2, 4), "fb": (2,)},
        ["N", 5, 3], ["N", 2], [("Input", {"shape": [5, 3]}), ("LSTM", {"hidden_size": 4}), ("LastStep", {}),
                      ("Linear", {"out_features": 2})]),
    # a zero Pad before a Conv becomes the Conv's padding; SAME_UPPER at stride 1 is "same"
    "pad_conv_same": ([
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w"], ["c"], name="conv"),
        helper.make_node("Conv", ["c", "w2", "b2"], ["y"], name="conv2", auto_pad="SAME_UPPER")],
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1]), "w": (2, 1, 3, 3), "w2": (3, 2, 4, 4), "b2": (3,)},
        ["N", 1, 6, 6], ["N", 3, 6, 6], [("Input", {"shape": [1, 6, 6]}),
                         ("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1, "bias": False}),
                         ("Conv2d", {"out_channels": 3, "kernel_size": 4, "padding": "same"})]),
    # exported at batch size 1: the batch is spelled 1 in the Reshape target
    "fixed_batch": ([
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="flat"),
        helper.make_node("MatMul", ["r", "w"], ["y"], name="fc")],
        {"shape": np.array([1, -1]), "w": (12, 3)}, [1, 3, 4], [1, 3],
        [("Input", {"shape": [3, 4]}), ("Flatten", {}), ("Linear", {"out_features": 3, "bias": False})]),
}


@pytest.mark.parametrize("case", sorted(SMALL))
def test_small_converter_patterns(case, tmp_path):
    nodes, inits, x_shape, y_shape, expected = SMALL[case]
    result = import_onnx(_small_model(tmp_path / "m.onnx", nodes, inits, x_shape, [("y", y_shape)]))
    assert [(n.type, n.params) for n in result.project.graph.nodes.values()] == expected
    assert compare_with_onnxruntime(result) <= 1e-4
    if case == "fixed_batch":
        assert any("fixed batch size of 1" in note for note in result.notes)


def test_a_model_with_several_outputs_imports_the_one_chosen(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Sigmoid", ["x"], ["b"], name="sigmoid")]
    path = _small_model(tmp_path / "two.onnx", nodes, {}, ["N", 3], [("a", ["N", 3]), ("b", ["N", 3])])
    with pytest.raises(OnnxImportError, match=r"2 outputs \('a', 'b'\)"):
        import_onnx(path)
    result = import_onnx(path, output="b")
    assert [n.type for n in result.project.graph.nodes.values()] == ["Input", "Sigmoid"]
    assert compare_with_onnxruntime(result) <= 1e-6


# -- refusals -------------------------------------------------------------------------------
def test_unsupported_nodes_are_all_named_and_nothing_is_written(tmp_path):
    extra = [helper.make_node("TopK", ["out", "k"], ["top", "idx"], name="foo", axis=1),
             helper.make_node("Hardmax", ["top"], ["y"], name="bar")]
    path = _converter_model(tmp_path / "bad.onnx", extra, output="y", output_shape=("N", 2),
                            extra_inits=[_init("k", np.array([2], dtype=np.int64))])
    with pytest.raises(OnnxImportError) as info:
        import_onnx(path)
    assert "cannot import 2 nodes: 'foo' (TopK), 'bar' (Hardmax)" in str(info.value)
    assert [f[:2] for f in info.value.failures] == [("foo", "TopK"), ("bar", "Hardmax")]

    out, err = io.StringIO(), io.StringIO()
    code = cli_io.run(_parse(["import", str(path), str(tmp_path / "bad.netcanvas.json")]), out, err)
    assert code == 1 and "'foo' (TopK)" in err.getvalue() and len(err.getvalue().splitlines()) == 1
    assert not (tmp_path / "bad.netcanvas.json").exists() and not (tmp_path / "bad.safetensors").exists()


def test_a_transpose_that_is_not_undone_becomes_a_permute(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Flatten", ["t"], ["f"], name="flat"),
             helper.make_node("Relu", ["f"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w"], ["y"], name="dense", transB=1)]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
                              [_init("w", np.random.default_rng(0).standard_normal((5, 24)).astype(np.float32))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "t.onnx"))
    result = import_onnx(tmp_path / "t.onnx")
    types = [n.type for n in result.project.graph.nodes.values()]
    assert types == ["Input", "ReLU", "Permute", "Flatten", "Linear"]
    assert [n.params for n in result.project.graph.nodes.values() if n.type == "Permute"] == [{"dims": [0, 2, 3, 1]}]
    assert [n.id for n in result.project.graph.nodes.values()][2:4] == ["nhwc", "nhwc_flatten"]
    assert compare_with_onnxruntime(result) <= 1e-5


def test_a_transpose_that_moves_the_batch_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3])
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="swap", perm=[1, 0, 2]),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, "N", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "t.onnx"))
    with pytest.raises(OnnxImportError, match=r"cannot import 1 node: 'swap' \(Transpose: moves the batch axis"):
        import_onnx(tmp_path / "t.onnx")


def test_uneven_conv_padding_becomes_a_padding_layer(tmp_path):
    # TensorFlow's "same" at stride 2 pads only the end
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[0, 0, 1, 1], strides=[2, 2])]
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 3, 3])],
                              [_init("w", np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "c.onnx"))
    result = import_onnx(tmp_path / "c.onnx")
    assert [(n.id, n.type, n.params) for n in result.project.graph.nodes.values()] == [
        ("x", "Input", {"shape": [1, 6, 6]}), ("c_pad", "ZeroPad2d", {"padding": [0, 1, 0, 1]}),
        ("c", "Conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 2, "bias": False})]
    assert compare_with_onnxruntime(result) <= 1e-5


@pytest.mark.parametrize("content", [b"", b"this is not an onnx model\n", bytes(range(256)) * 8])
def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(OnnxFileError, match="model.onnx: is not an ONNX model"):
        import_onnx(path)
    out, err = io.StringIO(), io.StringIO()
    assert cli_io.run(_parse(["import", str(path), str(tmp_path / "m.netcanvas.json")]), out, err) == 2
    assert err.getvalue().startswith("error: ") and len(err.getvalue().splitlines()) == 1
    with pytest.raises(OnnxFileError, match="no such file"):
        import_onnx(tmp_path / "missing.onnx")


# -- the CLI and predict --------------------------------------------------------------------
def _parse(argv):
    parser = argparse.ArgumentParser(prog="netcanvas")
    cli_io.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_import_then_predict(tmp_path):
    model = _converter_model(tmp_path / "conv.onnx")
    out, err = io.StringIO(), io.StringIO()
    code = cli_io.run(_parse(["import", str(model), str(tmp_path / "conv")]), out, err)
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "imported" in text and "largest difference" in text and "relative where outputs exceed 1" in text and "conv.netcanvas.json" in text
    project = load_project(tmp_path / "conv.netcanvas.json")
    assert weights_path_for(project.path).exists()

    x = np.random.default_rng(3).standard_normal((5, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = cli_io.run(_parse(["predict", str(project.path), "--input", str(tmp_path / "x.npy"),
                              "--output", str(tmp_path / "y.npy")]), out, err)
    assert code == 0, err.getvalue()
    y = np.load(tmp_path / "y.npy")
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert y.shape == (5, 6)
    assert np.allclose(y, session.run(None, {"x": x})[0], atol=1e-4)

    # a wrong shape names both shapes; an unreadable .npy is a read error
    np.save(tmp_path / "bad.npy", x.reshape(5, -1))
    err = io.StringIO()
    code = cli_io.run(_parse(["predict", str(project.path), "--input", str(tmp_path / "bad.npy"),
                              "--output", str(tmp_path / "z.npy")]), out, err)
    assert code == 1 and "[3, 8, 8]" in err.getvalue() and "[5, 192]" in err.getvalue()
    (tmp_path / "junk.npy").write_bytes(b"junk")
    err = io.StringIO()
    code = cli_io.run(_parse(["predict", str(project.path), "--input", str(tmp_path / "junk.npy"),
                              "--output", str(tmp_path / "z.npy")]), out, err)
    assert code == 2 and "junk.npy" in err.getvalue()


def test_predict_normalizes_with_the_training_statistics(tmp_path):
    project = load_example("xor")
    model = _randomized(project)
    mean, std = [0.5, -1.0], [2.0, 0.25]
    meta = {"input_mean": json.dumps(mean), "input_std": json.dumps(std), "input_shape": "[2]"}
    save_weights(model, tmp_path / "w.safetensors", meta)
    raw = np.random.default_rng(0).standard_normal((7, 2)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy((raw - np.array(mean, np.float32)) / np.array(std, np.float32)))
        unnormalized = model(torch.from_numpy(raw))
    got = predict(project, tmp_path / "w.safetensors", raw)
    assert got.dtype == np.float32 and got.shape == (7, 1)
    assert np.allclose(got, expected.numpy(), atol=1e-6)
    assert np.allclose(predict(project, tmp_path / "w.safetensors", raw, normalize=False),
                       unnormalized.numpy(), atol=1e-6)

    with pytest.raises(DatasetError, match=r"takes samples of shape \[2\].*received \[7, 3\]"):
        predict(project, tmp_path / "w.safetensors", np.zeros((7, 3), np.float32))
    save_weights(model, tmp_path / "v.safetensors", {"input_mean": "[1, 2, 3]", "input_std": "[1, 1, 1]"})
    with pytest.raises(WeightsError, match="3 values per sample"):
        predict(project, tmp_path / "v.safetensors", raw)
    with pytest.raises(WeightsError, match="no trained weights"):
        predict(project, None, raw)
    assert read_weights(tmp_path / "w.safetensors").keys() == model.state_dict().keys()


# -- what the exporter records comes back ----------------------------------------------------
def _exported_with_normalization(tmp_path, name="mlp"):
    project = load_example(name)
    project.dataset = {**project.dataset, "normalize": True, "seed": 3, "validation_fraction": 0.25}
    model = _randomized(project)
    shape = compile_graph(project.graph).input_shapes[0]
    rng = np.random.default_rng(7)
    mean = rng.standard_normal(shape).astype(np.float32)
    std = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    meta = {"input_mean": json.dumps(mean.ravel().tolist()), "input_std": json.dumps(std.ravel().tolist()),
            "input_shape": json.dumps(list(shape)), "class_names": json.dumps([str(i) for i in range(10)])}
    save_weights(model, tmp_path / "w.safetensors", meta)
    export_onnx(project, tmp_path / "m.onnx", tmp_path / "w.safetensors")
    return project, tmp_path / "m.onnx", mean, std


def test_an_import_keeps_the_input_normalization_its_export_recorded(tmp_path):
    from app.engine.predict import read_metadata

    project, path, mean, std = _exported_with_normalization(tmp_path)
    result = import_onnx(path)
    # the dataset settings come back, so the training panel (and its activation pad)
    # normalizes the data as the exported project did
    assert result.project.dataset == project.dataset
    _, weights = save_imported(result, tmp_path / "imported.netcanvas.json")
    meta = read_metadata(weights)
    assert np.array_equal(np.array(json.loads(meta["input_mean"]), np.float32), mean.ravel())
    assert np.array_equal(np.array(json.loads(meta["input_std"]), np.float32), std.ravel())
    assert json.loads(meta["class_names"]) == [str(i) for i in range(10)]
    assert meta["source"] == "onnx import" and meta["onnx_file"] == "m.onnx"
    assert result.weights_metadata() == meta

    # predict prepares raw inputs the same way before and after the round trip
    raw = np.random.default_rng(1).uniform(0, 1, (5, *mean.shape)).astype(np.float32)
    expected = predict(project, tmp_path / "w.safetensors", raw)
    got = predict(load_project(tmp_path / "imported.netcanvas.json"), None, raw)
    assert np.allclose(got, expected, atol=1e-4)
    assert not np.allclose(got, predict(project, tmp_path / "w.safetensors", raw, normalize=False), atol=1e-3)


def test_a_recorded_normalization_that_does_not_fit_is_left_out_with_a_note(tmp_path):
    _, path, _, _ = _exported_with_normalization(tmp_path, "xor")
    model = onnx.load(str(path))
    del model.metadata_props[[p.key for p in model.metadata_props].index("netcanvas.project")]
    for prop in model.metadata_props:
        if prop.key == "input_std":
            prop.value = json.dumps([1.0, 0.0])  # a zero std
        if prop.key == "netcanvas.dataset":
            prop.value = '{"name": "no such data"}'
    onnx.save(model, str(path))
    result = import_onnx(path)
    assert "input_mean" not in result.metadata and "input_std" not in result.metadata
    assert any("normalization recorded in the file was left out" in n for n in result.notes), result.notes
    assert any("dataset settings recorded in the file were left out" in n for n in result.notes), result.notes
    assert result.project.dataset["name"] == "moons"  # the guess from the input shape, as without a record


# -- the one onnxruntime comparison (importers/onnx_compare.py), shared with the export ------
def _embedding_project():
    g = chain(("tokens", "Input", {"shape": [6]}), ("emb", "Embedding", {"num_embeddings": 9, "embedding_dim": 4}),
              ("flat", "Flatten"), ("fc", "Linear", {"out_features": 3}))
    return Project(g, "tokens")


def test_the_comparison_feeds_token_ids_within_the_vocabulary_and_matches(tmp_path):
    project = _embedding_project()
    report = export_onnx(project, tmp_path / "t.onnx")
    a = analyze(project.graph)
    torch.manual_seed(0)
    net = compile_graph(project.graph, a).eval()
    seen = []
    original = net.forward
    net.forward = lambda tokens: (seen.append(tokens), original(tokens))[1]
    difference = onnxruntime_difference(report.path, net, project.graph, a, {"tokens": "tokens"}, batch=5)
    assert seen and seen[0].shape == (5, 6) and 0 <= seen[0].min() and seen[0].max() <= 8
    assert difference <= 1e-6
    assert compare_with_onnxruntime(import_onnx(report.path)) <= 1e-6


def test_the_comparison_is_relative_to_outputs_above_one_and_catches_other_weights(tmp_path):
    project = load_example("xor")
    torch.manual_seed(0)
    model = compile_graph(project.graph)
    save_weights(model, tmp_path / "w.safetensors")
    path = export_onnx(project, tmp_path / "x.onnx", tmp_path / "w.safetensors").path
    a = analyze(project.graph)
    net = compile_graph(project.graph, a).eval()
    load_weights(net, tmp_path / "w.safetensors")
    assert onnxruntime_difference(path, net, project.graph, a, {"input": "input"}) <= 1e-6

    class Shifted(nn.Module):  # the same outputs plus 1000: the difference relative to 1000
        def forward(self, x):
            return net(x) + 1000.0

    relative = onnxruntime_difference(path, Shifted(), project.graph, a, {"input": "input"})
    assert 0.998 < relative < 1.0  # 1000 / max(|output + 1000|), the output within [0, 1]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    assert onnxruntime_difference(path, net, project.graph, a, {"input": "input"}) > 1e-3


def test_the_comparison_raises_the_callers_error_saying_what_it_checks(tmp_path):
    project = load_example("xor")
    a = analyze(project.graph)
    net = compile_graph(project.graph, a).eval()
    with pytest.raises(OnnxImportError, match="onnxruntime cannot load the model to check the import"):
        onnxruntime_difference(b"not onnx", net, project.graph, a, {}, error=OnnxImportError,
                               checking="the import")
    path = export_onnx(project, tmp_path / "x.onnx").path
    with pytest.raises(ExportError, match=r"onnxruntime gives shape \[3, 1\], torch \[3, 1, 1\]"):
        onnxruntime_difference(path, lambda x: net(x).unsqueeze(1), project.graph, a, {"input": "input"},
                               error=ExportError, checking="the export")


# -- converters' patterns, widened (issue 17) -----------------------------------------------
def _arr(*values):
    return np.array(values, dtype=np.int64)


_CHANNELS = np.linspace(0.5, 1.5, 3, dtype=np.float32).reshape(3, 1, 1)
WIDENED = {
    # (nodes, initializers, x shape, y shape, the imported nodes' types and params, opset)
    "lrn": ([helper.make_node("LRN", ["x"], ["y"], name="lrn", size=3, alpha=1e-3, bias=2.0)],
            {}, ["N", 5, 4, 4], ["N", 5, 4, 4],
            [("Input", {"shape": [5, 4, 4]}), ("LocalResponseNorm", {"size": 3, "alpha": 0.001, "k": 2.0})], 14),
    # a BatchNorm then a scale and shift per channel (Caffe2's DenseNet): one BatchNorm
    "bn_scale_shift": ([
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"], name="bn"),
        helper.make_node("Mul", ["n", "c"], ["mul"], name="scale"),
        helper.make_node("Add", ["mul", "d"], ["y"], name="shift")],
        {"s": (3,), "b": (3,), "m": (3,), "v": np.full(3, 0.7, np.float32), "c": _CHANNELS, "d": _CHANNELS - 1},
        ["N", 3, 4, 4], ["N", 3, 4, 4], [("Input", {"shape": [3, 4, 4]}), ("BatchNorm2d", {})], 14),
    "conv_scale": ([
        helper.make_node("Conv", ["x", "w", "wb"], ["c"], name="conv"),
        helper.make_node("Mul", ["c", "k"], ["y"], name="scale")],
        {"w": (3, 2, 1, 1), "wb": (3,), "k": _CHANNELS[None]}, ["N", 2, 4, 4], ["N", 3, 4, 4],
        [("Input", {"shape": [2, 4, 4]}), ("Conv2d", {"out_channels": 3, "kernel_size": 1})], 14),
    "reflect_pad": ([helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode="reflect")],
                    {"p": _arr(0, 0, 1, 2, 0, 0, 2, 1)}, ["N", 2, 5, 5], ["N", 2, 8, 8],
                    [("Input", {"shape": [2, 5, 5]}), ("ReflectionPad2d", {"padding": [2, 1, 1, 2]})], 14),
    "edge_pad_1d": ([helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode="edge")],
                    {"p": _arr(0, 0, 3, 0, 0, 1)}, ["N", 2, 5], ["N", 2, 9],
                    [("Input", {"shape": [2, 5]}), ("ReplicationPad1d", {"padding": [3, 1]})], 14),
    "constant_pad": ([helper.make_node("Pad", ["x", "p", "v"], ["y"], name="pad")],
                     {"p": _arr(0, 0, 1, 1, 0, 0, 1, 1), "v": np.array(1.5, np.float32)}, ["N", 2, 3, 3],
                     ["N", 2, 5, 5], [("Input", {"shape": [2, 3, 3]}), ("ConstantPad2d", {"padding": 1, "value": 1.5})],
                     14),
    # a zero Pad read by two nodes cannot go into a Conv: a padding layer (of the last axis)
    "zero_pad_shared": ([
        helper.make_node("Pad", ["x", "p"], ["z"], name="pad"),
        helper.make_node("Relu", ["z"], ["r"], name="relu"),
        helper.make_node("Sigmoid", ["z"], ["s"], name="sig"),
        helper.make_node("Add", ["r", "s"], ["y"], name="add")],
        {"p": _arr(0, 0, 0, 1, 0, 0, 0, 1)}, ["N", 2, 3, 3], ["N", 2, 3, 5],
        [("Input", {"shape": [2, 3, 3]}), ("ZeroPad1d", {"padding": 1}), ("ReLU", {}), ("Sigmoid", {}),
         ("Add", {})], 14),
    "space_to_depth": ([helper.make_node("SpaceToDepth", ["x"], ["y"], name="s2d", blocksize=2)],
                       {}, ["N", 3, 4, 6], ["N", 12, 2, 3],
                       [("Input", {"shape": [3, 4, 6]}), ("PixelUnshuffle", {"downscale_factor": 2}),
                        ("ChannelShuffle", {"groups": 3})], 14),
    "depth_to_space_dcr": ([helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=2)],
                           {}, ["N", 8, 3, 3], ["N", 2, 6, 6],
                           [("Input", {"shape": [8, 3, 3]}), ("ChannelShuffle", {"groups": 4}),
                            ("PixelShuffle", {"upscale_factor": 2})], 14),
    "dilated_max_pool": ([helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3, 3], dilations=[2, 2],
                                           pads=[1, 1, 1, 1])],
                         {}, ["N", 2, 7, 7], ["N", 2, 5, 5],
                         [("Input", {"shape": [2, 7, 7]}),
                          ("MaxPool2d", {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2})], 14),
    "global_max": ([helper.make_node("GlobalMaxPool", ["x"], ["g"], name="gmax"),
                    helper.make_node("ReduceMax", ["x"], ["r"], name="rmax", axes=[2, 3], keepdims=1),
                    helper.make_node("Add", ["g", "r"], ["y"], name="add")],
                   {}, ["N", 2, 3, 5], ["N", 2, 1, 1],
                   [("Input", {"shape": [2, 3, 5]}), ("AdaptiveMaxPool2d", {"output_size": 1}),
                    ("AdaptiveMaxPool2d", {"output_size": 1}), ("Add", {})], 14),
    "split": ([helper.make_node("Split", ["x", "sizes"], ["a", "b"], name="split", axis=1),
               helper.make_node("Relu", ["b"], ["r"], name="relu"),
               helper.make_node("Concat", ["r", "a", "b"], ["y"], name="cat", axis=1)],
              {"sizes": _arr(2, 4)}, ["N", 6, 3], ["N", 10, 3],
              [("Input", {"shape": [6, 3]}), ("Split", {"sizes": [2, 4]}), ("ReLU", {}), ("Concat", {})], 14),
    "channel_shuffle": ([helper.make_node("Reshape", ["x", "s1"], ["r"], name="split_groups"),
                         helper.make_node("Transpose", ["r"], ["t"], name="shuffle", perm=[0, 2, 1, 3, 4]),
                         helper.make_node("Reshape", ["t", "s2"], ["y"], name="merge")],
                        {"s1": _arr(0, 2, 3, 4, 4), "s2": _arr(0, 6, 4, 4)}, ["N", 6, 4, 4], ["N", 6, 4, 4],
                        [("Input", {"shape": [6, 4, 4]}), ("ChannelShuffle", {"groups": 2})], 14),
    # before opset 13, Softmax normalizes the axes from `axis` on together: the file is
    # converted to opset 13 first, which spells that out
    "old_softmax": ([helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=1)],
                    {}, ["N", 3, 4], ["N", 3, 4],
                    [("Input", {"shape": [3, 4]}), ("Flatten", {}), ("Softmax", {}), ("Reshape", {"shape": [3, 4]})], 11),
    "softplus_softsign": ([helper.make_node("Softplus", ["x"], ["s"], name="softplus"),
                           helper.make_node("Abs", ["s"], ["a"], name="abs"),
                           helper.make_node("Add", ["a", "one"], ["d"], name="plus_one"),
                           helper.make_node("Div", ["s", "d"], ["y"], name="divide")],
                          {"one": np.array(1.0, np.float32)}, ["N", 5], ["N", 5],
                          [("Input", {"shape": [5]}), ("Softplus", {}), ("Softsign", {})], 14),
}


@pytest.mark.parametrize("case", sorted(WIDENED))
def test_widened_converter_patterns(case, tmp_path):
    nodes, inits, x_shape, y_shape, expected, opset = WIDENED[case]
    result = import_onnx(_small_model(tmp_path / "m.onnx", nodes, inits, x_shape, [("y", y_shape)], opset))
    assert [(n.type, n.params) for n in result.project.graph.nodes.values()] == expected
    assert compare_with_onnxruntime(result) <= 1e-5


def test_old_softmax_is_mapped_exactly_where_the_file_is_not_converted(tmp_path, monkeypatch):
    # the converter's refusal leaves the old operators: Softmax over axes 1.. of [N, 3, 4]
    monkeypatch.setattr(onnx_import_module, "CONVERT_BELOW", 1)
    nodes, inits, x_shape, y_shape, _, _ = WIDENED["old_softmax"]
    result = import_onnx(_small_model(tmp_path / "m.onnx", nodes, inits, x_shape, [("y", y_shape)], 11))
    assert [n.type for n in result.project.graph.nodes.values()] == ["Input", "Reshape", "Softmax", "Reshape"]
    assert compare_with_onnxruntime(result) <= 1e-6


def test_a_torch_import_exported_and_imported_back_is_the_same_project(tmp_path):
    # torch's exporter folds each BatchNorm into its Conv: the project recorded in the file
    # still comes back, with the weights it was exported with
    imported = import_module(tm.ResNet("basic", layers=(1, 1), width=4), [3, 8, 8])
    path, _ = save_torch_import(imported, tmp_path / "resnet.netcanvas.json")
    project = load_project(path)
    export_onnx(project, tmp_path / "resnet.onnx")
    back = import_onnx(tmp_path / "resnet.onnx")
    assert back.notes[0] == "the project recorded in the file was restored, with the file's weights"
    def nodes(graph):
        return [(n.id, n.type, n.params) for n in graph.nodes.values()], graph.edges

    def shape_of(graph):
        return nodes(graph), {name: (b.params, nodes(b.graph)) for name, b in graph.blocks.items()}

    assert shape_of(back.project.graph) == shape_of(project.graph) and project.graph.blocks
    assert set(back.state) == set(imported.state)
    for key, value in imported.state.items():
        assert torch.equal(back.state[key], value.to(back.state[key].dtype)), key


class _HeadsAttention(nn.Module):
    """Multi-head attention as a model file writes it: heads by view and transpose, a scaled
    q @ k^T, softmax, @ v, heads merged back."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (f(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = ((q @ k.transpose(-2, -1)) / (d // self.heads) ** 0.5).softmax(-1)
        return self.out((a @ v).transpose(1, 2).reshape(b, t, d))


@pytest.mark.parametrize(("model", "dynamo"), [("heads", False), ("chunk", False), ("chunk", True)])
def test_attention_as_torchs_exporters_write_it(model, dynamo, tmp_path):
    # MatMul / Softmax / MatMul with the transposes between; q, k, v cut by a chunk (Slices
    # from the TorchScript exporter, a Split from the dynamo one) become one Split
    module = (_HeadsAttention() if model == "heads" else tm.Attention(8, 1)).eval()
    path = tmp_path / "attention.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        extra = ({"dynamic_shapes": {"x": {0: torch.export.Dim("batch")}}} if dynamo
                 else {"dynamic_axes": {"x": {0: "batch"}}})
        torch.onnx.export(module, (torch.randn(2, 5, 8),), str(path), input_names=["x"], dynamo=dynamo,
                          opset_version=18, **extra)
    result = import_onnx(path)
    types = Counter(n.type for n in result.project.graph.nodes.values())
    assert types["MatMul"] == 2 and types["Softmax"] == 1 and types["Scale"] == 1
    assert types["Split"] == (1 if model == "chunk" else 0)
    assert compare_with_onnxruntime(result) <= 1e-5


def test_torchs_split_count_is_accepted_before_opset_18(tmp_path):
    # torch's dynamo exporter writes opset 18's num_outputs on the Split of opset 17
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1, num_outputs=2),
             helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph(nodes, "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "s.onnx"))
    graph = import_onnx(tmp_path / "s.onnx").project.graph
    assert [(n.type, n.params) for n in graph.nodes.values()] == [
        ("Input", {"shape": [4]}), ("Split", {"sizes": [2, 2]}), ("Add", {})]
    assert sorted((e.source_port, e.target_port) for e in graph.edges if e.target == "add") == [(0, 0), (1, 1)]


def test_repeated_modules_in_a_torch_export_become_blocks(tmp_path):
    # torch's dynamo exporter records the module instances each node was called in
    path = tmp_path / "resnet.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(tm.ResNet("basic", layers=(2, 2), width=4).eval(), (torch.randn(2, 3, 16, 16),), str(path),
                          input_names=["x"], dynamo=True, opset_version=18,
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    result = import_onnx(path)
    graph = result.project.graph
    assert result.notes[-1] == "2 blocks made from repeated structure: BasicBlock, BasicBlock_2"
    blocks = [(n.id, n.type, n.repeat) for n in graph.nodes.values() if n.type in graph.blocks]
    assert blocks == [("layer1_0", "BasicBlock", 2), ("layer2_0", "BasicBlock_2", 1), ("layer2_1", "BasicBlock", 1)]
    assert compare_with_onnxruntime(result) <= 1e-5
