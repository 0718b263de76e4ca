"""ONNX import of hostile and malformed files: external data stays inside the model's
folder, every malformed node or tensor is refused by name, folding and metadata parsing are
bounded, and mutated exports never end in anything but the engine's import error."""

from __future__ import annotations

import builtins
import os
import time
from datetime import timedelta

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper, numpy_helper

from app.engine.importers import OnnxFileError, OnnxImportError, import_onnx
from app.engine.importers import onnx_checks
from app.engine.importers.onnx_names import torch_scope
from tests.fuzz.onnx_cases import fuzz_one, onnx_models, seeds

SECRET = np.arange(6, dtype=np.float32).tobytes()  # 24 bytes: exactly what a [2, 3] float tensor needs


def _gemm_model(weight: TensorProto, as_constant: bool, opset: int = 17) -> onnx.ModelProto:
    """x [N, 3] -> Gemm with B = ``weight`` ([2, 3], transB) -> y [N, 2]; B is an
    initializer or the value of a Constant node named ``w``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    inits = []
    if as_constant:
        nodes.insert(0, helper.make_node("Constant", [], ["w"], name="w", value=weight))
    else:
        weight.name = "w"
        inits.append(weight)
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", opset)])


def _external(location: str, length: int | None = None) -> TensorProto:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3])
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    if length is not None:
        t.external_data.add(key="length", value=str(length))
    return t


@pytest.fixture
def opened(monkeypatch):
    """Every path the process opens from Python while the test runs."""
    paths: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *args, **kwargs):
        paths.append(os.path.realpath(path))
        return real_os_open(path, *args, **kwargs)

    def spy_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            paths.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(builtins, "open", spy_open)
    return paths


# -- item 10: external data only from the model's own folder --------------------------------
@pytest.mark.parametrize("as_constant", [True, False], ids=["Constant", "initializer"])
@pytest.mark.parametrize("how", ["dotdot", "nested_dotdot", "absolute", "symlink", "symlinked_folder"])
def test_external_data_outside_the_model_folder_is_refused_unread(tmp_path, how, as_constant, opened):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET)
    folder = tmp_path / "model"
    folder.mkdir()
    location = {"dotdot": "../secret.bin", "nested_dotdot": "sub/../../secret.bin",
                "absolute": str(secret), "symlink": "link.bin", "symlinked_folder": "outside/secret.bin"}[how]
    if how == "symlink":
        (folder / "link.bin").symlink_to(secret)
    if how == "symlinked_folder":
        (folder / "outside").symlink_to(tmp_path)
    path = folder / "m.onnx"
    onnx.save(_gemm_model(_external(location), as_constant), str(path))
    del opened[:]
    with pytest.raises(OnnxFileError) as info:
        import_onnx(path)
    message = str(info.value)
    where = "attribute 'value' of node 'w' (Constant)" if as_constant else "initializer 'w'"
    assert where in message and repr(location) in message, message
    assert "model's own folder" in message or "out of the model's folder" in message, message
    assert str(secret) not in opened and str(folder / "link.bin") not in opened


def test_a_constant_is_never_read_from_the_working_directory(tmp_path, monkeypatch, opened):
    """The reported attack: the Constant names a file that is not beside the model but in
    the directory the app was started from; it must not end up in the weights."""
    cwd = tmp_path / "home"
    cwd.mkdir()
    (cwd / "id_rsa").write_bytes(SECRET)
    monkeypatch.chdir(cwd)
    folder = tmp_path / "downloads"
    folder.mkdir()
    onnx.save(_gemm_model(_external("id_rsa"), True), str(folder / "m.onnx"))
    del opened[:]
    with pytest.raises(OnnxFileError, match=r"attribute 'value' of node 'w' \(Constant\) has its data in "
                                            r"'id_rsa', which does not exist beside the model"):
        import_onnx(folder / "m.onnx")
    assert str(cwd / "id_rsa") not in opened


def test_nothing_is_read_when_any_reference_is_bad(tmp_path, opened):
    """Every reference is checked before the first byte of any is read."""
    (tmp_path / "secret.bin").write_bytes(SECRET)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "good.bin").write_bytes(SECRET)
    model = _gemm_model(_external("good.bin"), False)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["unused"], name="c",
                                                value=_external("../secret.bin")))
    onnx.save(model, str(folder / "m.onnx"))
    del opened[:]
    with pytest.raises(OnnxFileError, match="'../secret.bin'"):
        import_onnx(folder / "m.onnx")
    assert not any(p.endswith(".bin") for p in opened), opened


@pytest.mark.parametrize("as_constant", [True, False], ids=["Constant", "initializer"])
def test_external_data_in_the_model_folder_imports(tmp_path, as_constant, monkeypatch):
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    weights = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    (folder / "data" / "w.bin").write_bytes(b"\0" * 8 + weights.tobytes())
    t = _external("data/w.bin", 24)
    t.external_data.add(key="offset", value="8")
    onnx.save(_gemm_model(t, as_constant), str(folder / "m.onnx"))
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    result = import_onnx(folder / "m.onnx")
    assert np.array_equal(result.state["fc.weight"].numpy(), weights)


def test_onnx_saved_external_weights_import(tmp_path):
    """What onnx.save(save_as_external_data=True) writes (one file beside the model)."""
    weights = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    model = _gemm_model(numpy_helper.from_array(weights), False)
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").exists()
    result = import_onnx(tmp_path / "m.onnx")
    assert np.array_equal(result.state["fc.weight"].numpy(), weights)


@pytest.mark.parametrize("location, length, expected", [
    ("w.bin", 20, r"length 20; its dims \[2, 3\] need 24 bytes"),
    ("missing.bin", None, "does not exist beside the model"),
    ("", None, "names no file"),
    ("short.bin", None, "24 bytes, but the file holds 4"),
])
def test_bad_external_references_are_named(tmp_path, location, length, expected):
    (tmp_path / "w.bin").write_bytes(SECRET)
    (tmp_path / "short.bin").write_bytes(b"1234")
    onnx.save(_gemm_model(_external(location, length), True), str(tmp_path / "m.onnx"))
    with pytest.raises(OnnxFileError, match=expected):
        import_onnx(tmp_path / "m.onnx")


# -- item 11: malformed nodes and tensors are refused by name --------------------------------
def _weights() -> TensorProto:
    return numpy_helper.from_array(np.ones((2, 3), np.float32))


def _truncated() -> onnx.ModelProto:
    m = _gemm_model(_weights(), False)
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:20]
    return m


def _dims_changed() -> onnx.ModelProto:
    m = _gemm_model(_weights(), True)
    m.graph.node[0].attribute[0].t.dims[0] = 4  # 24 values stored, 32 claimed
    return m


def _edited(op: str, **change) -> onnx.ModelProto:
    m = _gemm_model(_weights(), False)
    node = m.graph.node[0]
    if "inputs" in change:
        del node.input[:]
        node.input.extend(change["inputs"])
    if "op_type" in change:
        node.op_type = change["op_type"]
    for name, value in change.get("attrs", {}).items():
        for a in [a for a in node.attribute if a.name == name]:
            node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(name, value))
    return m


def _conv(**attrs) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)]
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)])


def _lstm_wrong_weights() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="rnn", hidden_size=4, layout=1)]
    inits = [numpy_helper.from_array(np.ones((1, 16, 4), np.float32), "W"),  # 4 features, the data has 3
             numpy_helper.from_array(np.ones((1, 16, 4), np.float32), "R")]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 14)])


def _bad_name() -> bytes:
    data = _gemm_model(_weights(), False).SerializeToString()
    return data.replace(b"Gemm", b"G\xffmm")


MALFORMED = {
    "truncated raw_data": (_truncated, r"initializer 'w' has dims \[2, 3\] \(24 bytes of FLOAT\) but stores 20 bytes"),
    "dims changed": (_dims_changed, r"attribute 'value' of node 'w' \(Constant\) has dims \[4, 3\] \(12 values\) "
                                    r"but stores 0|attribute 'value' of node 'w' \(Constant\) has dims \[4, 3\] "
                                    r"\(48 bytes of FLOAT\) but stores 24 bytes"),
    "input dropped": (lambda: _edited("Gemm", inputs=["x"]), r"'fc' \(Gemm: has 1 inputs; Gemm takes 2 to 3\)"),
    "input renamed": (lambda: _edited("Gemm", inputs=["x", "nothing"]), r"node 'fc' \(Gemm\) reads 'nothing'"),
    "required input empty": (lambda: _edited("Gemm", inputs=["", "w"]), r"'fc' \(Gemm: its input 0 \(A\) is missing\)"),
    "attribute of the wrong type": (lambda: _edited("Gemm", attrs={"transB": 1.5}),
                                    r"'fc' \(Gemm: its attribute 'transB' is FLOAT; Gemm takes INT\)"),
    "NaN attribute": (lambda: _edited("Gemm", attrs={"alpha": float("nan")}),
                      r"'fc' \(Gemm: its attribute 'alpha' holds nan, not a finite number\)"),
    "unknown attribute": (lambda: _edited("Gemm", attrs={"kernel_shape": [3]}),
                          r"'fc' \(Gemm: has an attribute 'kernel_shape' that Gemm does not take\)"),
    "op type changed": (lambda: _edited("Gemm", op_type="BatchNormalization"),
                        r"'fc' \(BatchNormalization: has 2 inputs; BatchNormalization takes 5\)"),
    "zero stride": (lambda: _conv(strides=[0, 1]), r"'conv' \(Conv: its attribute 'strides' holds 0; the valid "
                                                   r"range is 1 to 2147483647\)"),
    "huge group": (lambda: _conv(group=2 ** 40), r"'conv' \(Conv: its attribute 'group' holds 1099511627776"),
    "pads of the wrong length": (lambda: _conv(pads=[1, 1]), r"'conv' \(Conv: its pads \[1, 1\] has 2 values; "
                                                             r"4 are needed for 2-d data\)"),
    "strides of the wrong length": (lambda: _conv(strides=[1, 1, 1]), r"'conv' \(Conv: its strides \[1, 1, 1\]"),
    "LSTM weights that do not fit": (_lstm_wrong_weights, r"'rnn' \(LSTM: has weights W \[1, 16, 4\] and R "
                                                          r"\[1, 16, 4\]; forward with hidden_size 4 on 3 features"),
    "opset 0": (lambda: _gemm_model(_weights(), False, opset=0), "operator set 0; ONNX defines 1 to"),
    "name not UTF-8": (_bad_name, r"node 0 \(b'G\\xffmm'\) is not valid UTF-8"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_models_are_refused_naming_node_and_problem(tmp_path, case):
    make, expected = MALFORMED[case]
    model = make()
    data = model if isinstance(model, bytes) else model.SerializeToString()
    (tmp_path / "m.onnx").write_bytes(data)
    with pytest.raises(OnnxImportError, match=expected):
        import_onnx(tmp_path / "m.onnx")
    assert fuzz_one(data) == "clean"


def test_a_converter_crash_still_names_the_node(tmp_path, monkeypatch):
    """The last line of defence: a case the checks did not foresee is still our error,
    naming the node, never a traceback."""
    from app.engine.importers import onnx_ops

    def crash(ctx, node, ins):
        return [][0]

    monkeypatch.setitem(onnx_ops.CONVERTERS, "Gemm", crash)
    onnx.save(_gemm_model(_weights(), False), str(tmp_path / "m.onnx"))
    with pytest.raises(OnnxImportError, match=r"'fc' \(Gemm: cannot be read \(IndexError: list index out of range\)\)"):
        import_onnx(tmp_path / "m.onnx")


def _bomb(size: int, consumer_op: str = "Add") -> onnx.ModelProto:
    """A few hundred bytes asking constant folding for ``size`` float32 zeros."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = numpy_helper.from_array(np.array([size // 16, 4], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["zeros"], name="bomb"),
             helper.make_node("ReduceSum", ["zeros"], ["sum"], name="sum", keepdims=0),
             helper.make_node(consumer_op, ["x", "sum"], ["y"], name="add")]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], [shape]),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_a_folding_bomb_is_refused_before_allocating(tmp_path, monkeypatch):
    path = tmp_path / "bomb.onnx"
    onnx.save(_bomb(2 ** 31 + 2 ** 20), str(path))  # a little over 2 GiB
    assert path.stat().st_size < 1_000_000

    from onnx.reference import ReferenceEvaluator

    def never(*args, **kwargs):
        raise AssertionError("the bomb was evaluated")

    monkeypatch.setattr(ReferenceEvaluator, "run", never)
    started = time.perf_counter()
    with pytest.raises(OnnxImportError, match=r"'bomb' \(ConstantOfShape: evaluating it as a constant would "
                                              r"allocate 2.15 GB .* more than the import limit of 2.15 GB\)"):
        import_onnx(path)
    assert time.perf_counter() - started < 10


def test_the_folding_limit_is_configurable_and_counts_everything_folded(tmp_path):
    path = tmp_path / "small.onnx"
    onnx.save(_bomb(64_000), str(path))  # 64 kB of zeros, folded then summed
    assert onnx_checks.DEFAULT_MAX_BYTES == 2 * 1024 ** 3
    with pytest.raises(OnnxImportError, match=r"'bomb' \(ConstantOfShape: .*more than the import limit of 0.05 MB"):
        import_onnx(path, max_bytes=50_000)
    # the bomb itself (64 kB) fits, but with what the ReduceSum gives the total does not
    with pytest.raises(OnnxImportError, match=r"'sum' \(ReduceSum: .*\(with what was folded before"):
        import_onnx(path, max_bytes=64_002)
    # a model whose folded constants and weights are as large as VGG-19's (575 MB) is within
    # the default limit: what is checked is the estimate, before anything is allocated
    node = helper.make_node("ConstantOfShape", ["s"], ["y"])
    estimate = onnx_checks.folded_size(node, [np.array([143_700_000], np.int64)], 17)
    assert estimate == 574_800_000 and estimate < onnx_checks.DEFAULT_MAX_BYTES


def test_a_huge_declared_tensor_is_refused_without_reading_it(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20])
    onnx.save(_gemm_model(t, True), str(tmp_path / "m.onnx"))
    with pytest.raises(OnnxFileError, match=r"attribute 'value' of node 'w' \(Constant\) has dims "
                                            r"\[1048576, 1048576\] \(4.4e\+03 GB\), more than the import limit"):
        import_onnx(tmp_path / "m.onnx")


@pytest.mark.parametrize("dims, expected", [
    (["N", 2 ** 40], r"input 'x' has size 1099511627776 at axis 1; the valid range is 1 to 2147483647"),
    (["N", 2 ** 20, 2 ** 10], r"input 'x' has samples of shape \[1048576, 1024\], more than the import limit"),
])
def test_inputs_of_impossible_sizes_are_refused(tmp_path, dims, expected):
    model = _gemm_model(_weights(), False)
    del model.graph.input[0].type.tensor_type.shape.dim[:]
    for d in dims:
        dim = model.graph.input[0].type.tensor_type.shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(OnnxImportError, match=expected):
        import_onnx(tmp_path / "m.onnx", max_bytes=2 ** 30)


def test_node_metadata_is_parsed_with_a_bounded_parser(monkeypatch):
    import ast

    def refuse(*args, **kwargs):
        raise AssertionError("ast.literal_eval over file metadata")

    monkeypatch.setattr(ast, "literal_eval", refuse)
    node = helper.make_node("Relu", ["x"], ["y"])
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="[" * (4 * 1024 * 1024))
    node.metadata_props.add(key="pkg.torch.onnx.class_hierarchy", value="[" * (4 * 1024 * 1024))
    started = time.perf_counter()
    assert torch_scope(node) is None
    assert time.perf_counter() - started < 1
    monkeypatch.undo()
    assert onnx_checks.string_list("['', 'conv1', \"a'b\"]") == ["", "conv1", "a'b"]
    assert onnx_checks.string_list("['', 'layer1', 'layer1.0']") == ["", "layer1", "layer1.0"]
    for bad in ("[1, 2]", "['a', ['b']]", "{'a': 1}", "['a' + 'b']", "['a'] and x", "[" * 10000):
        assert onnx_checks.string_list(bad) is None, bad


# -- fuzzing: mutated exports end in our error or import ------------------------------------
@pytest.fixture(scope="module")
def fuzz_seeds():
    return seeds()  # the exports (cached on disk across runs)


@settings(max_examples=60, deadline=timedelta(seconds=30), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(data=onnx_models())
def test_mutated_exports_import_or_fail_cleanly(fuzz_seeds, data):
    started = time.perf_counter()
    outcome = fuzz_one(data)
    assert outcome in ("ok", "clean"), outcome
    assert time.perf_counter() - started < 30


def test_fuzz_one_reports_escapes(monkeypatch):
    """The runner's verdicts: a crash inside the importer is reported as an escape."""
    from app.engine.importers import onnx_import

    assert fuzz_one(b"not onnx") == "clean"
    assert fuzz_one(seeds()["xor"]) == "ok"

    def crash(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(onnx_import, "_load", crash)
    assert fuzz_one(seeds()["xor"]) == "escape:KeyError"


def test_seed_models_cover_the_converters():
    ops = {n.op_type for data in seeds().values() for n in onnx.load_from_string(data).graph.node}
    assert {"Conv", "Gemm", "LSTM", "ConstantOfShape", "Pad", "Resize", "Reshape", "MaxPool"} <= ops, ops
    assert {name: fuzz_one(data) for name, data in seeds().items()} == {name: "ok" for name in seeds()}
