"""Fuzz cases for the ONNX importer: valid exports, mutated.

``onnx_models()`` is a hypothesis strategy of model bytes: one of the bundled examples
exported to ONNX with NetCanvas' own exporter (or a small converter-style model that
reaches the shape-arithmetic and recurrent converters), then mutated: inputs dropped,
duplicated or renamed, attributes of the wrong type or of huge values, raw data truncated,
dims changed, op types changed, initializers removed, allocation bombs, random bytes.

``fuzz_one(data)`` imports one case and says how it ended: ``"ok"`` (imported), ``"clean"``
(refused with the engine's import error) or ``"escape:<exception type>"`` (anything else:
a bug). Warnings count as escapes: a malformed file must be refused, not warned about.
The CI test (tests/engine/test_onnx_hardening.py) runs a few dozen cases; a fuzz runner
calls these functions for thousands.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

# -- seeds ----------------------------------------------------------------------------------
_SEED_CACHE = Path(tempfile.gettempdir()) / "netcanvas-onnx-fuzz-seeds"


def _export_key(name: str) -> str:
    """Seeds are cached on disk, keyed by everything that shapes the export."""
    import torch

    from app.engine.examples import example_path

    h = hashlib.sha256()
    h.update(example_path(name).read_bytes())
    h.update(Path(__file__).read_bytes())
    from app.engine.export import onnx_export

    h.update(Path(onnx_export.__file__).read_bytes())
    h.update(f"{torch.__version__} {onnx.__version__}".encode())
    return h.hexdigest()[:16]


def _exported(name: str) -> bytes:
    from app.engine.examples import load_example
    from app.engine.export.onnx_export import export_onnx

    _SEED_CACHE.mkdir(parents=True, exist_ok=True)
    cached = _SEED_CACHE / f"{name}-{_export_key(name)}.onnx"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(load_example(name), Path(tmp) / "m.onnx")
            data = (Path(tmp) / "m.onnx").read_bytes()
        partial = cached.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(cached)
    return cached.read_bytes()


def _handmade() -> dict[str, bytes]:
    """Converter-style models (what torch's TorchScript exporter and tf2onnx write): shape
    arithmetic on the batch size, a zero initial state, a Pad before a Conv, a Resize."""
    rng = np.random.default_rng(0)
    f = lambda *s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32))
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)

    def named(t, name):
        t.name = name
        return t

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w"], ["c"], name="conv/Conv", strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn", epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["mp"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["mp", "", "scales"], ["up"], name="up", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Shape", ["up"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["up", "target"], ["flat"], name="flat/Reshape"),
        helper.make_node("Gemm", ["flat", "gw", "gb"], ["y"], name="fc/Gemm", transB=1),
    ]
    inits = [i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), named(f(2, 1, 3, 3), "w"), named(f(2), "s"),
             named(f(2), "b"), named(f(2), "m"), numpy_helper.from_array(np.ones(2, np.float32), "v"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
             i64("zero", 0), i64("axes0", [0]), i64("minus1", [-1]), named(f(3, 72), "gw"), named(f(3), "gb")]
    conv = helper.make_model(helper.make_graph(nodes, "conv", [x], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, ["N", 3])], inits), opset_imports=[helper.make_opsetid("", 17)])

    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 5, 3])
    nodes = [
        helper.make_node("Transpose", ["s"], ["st"], name="t", perm=[1, 0, 2]),
        helper.make_node("Shape", ["st"], ["sh"], name="shape"),
        helper.make_node("Gather", ["sh", "one"], ["b"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["b", "axes0"], ["b1"], name="unsq"),
        helper.make_node("Concat", ["dirs", "b1", "hid"], ["hshape"], name="concat", axis=0),
        helper.make_node("ConstantOfShape", ["hshape"], ["h0"], name="zeros",
                         value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node("LSTM", ["st", "W", "R", "B", "", "h0", "h0"], ["ys", "yh"], hidden_size=4,
                         name="rnn/LSTM"),
        helper.make_node("Squeeze", ["yh", "axes0"], ["h"], name="rnn/Squeeze"),
        helper.make_node("Gemm", ["h", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    inits = [named(f(1, 16, 3), "W"), named(f(1, 16, 4), "R"), named(f(1, 32), "B"), i64("one", 1),
             i64("axes0", [0]), i64("dirs", [1]), i64("hid", [4]), named(f(2, 4), "fw"), named(f(2), "fb")]
    lstm = helper.make_model(helper.make_graph(nodes, "lstm", [s], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, ["N", 2])], inits), opset_imports=[helper.make_opsetid("", 14)])
    return {"conv_style": conv.SerializeToString(), "lstm_style": lstm.SerializeToString()}


SEED_NAMES = ("xor", "mlp", "lenet5", "resnet", "lstm", "autoencoder", "three_conv", "linear", "deep_mlp")


@lru_cache(maxsize=1)
def seeds() -> dict[str, bytes]:
    """Every seed model's bytes, by name (the exports are cached across runs)."""
    out = {name: _exported(name) for name in SEED_NAMES}
    out.update(_handmade())
    return out


# -- mutations ------------------------------------------------------------------------------
_OPS = ["Relu", "Conv", "Gemm", "MatMul", "Reshape", "Transpose", "Concat", "Gather", "Slice", "Squeeze",
        "Unsqueeze", "LSTM", "GRU", "RNN", "BatchNormalization", "LayerNormalization", "MaxPool",
        "AveragePool", "Resize", "Upsample", "Pad", "ConstantOfShape", "Expand", "Tile", "Range",
        "Flatten", "Softmax", "Cast", "Constant", "Shape", "Size", "Add", "Mul", "Div", "Sub", "Erf",
        "Dropout", "Clip", "ConvTranspose", "ReduceMean", "ReduceProd", "Identity", "Sum", "Where",
        "OneHot", "Einsum", "NotAnOp", "Loop", "If"]
_HUGE = [0, -1, -(2 ** 63), 2 ** 63 - 1, 2 ** 31, 10 ** 12, 3, 7]


def _bad_attribute(draw, name: str) -> AttributeProto:
    kind = draw(st.sampled_from(["int", "ints", "float", "floats", "string", "tensor", "huge_tensor",
                                 "graph", "undefined", "empty_ints"]))
    if kind == "int":
        return helper.make_attribute(name, draw(st.sampled_from(_HUGE)))
    if kind == "ints":
        return helper.make_attribute(name, draw(st.lists(st.sampled_from(_HUGE), min_size=1, max_size=6)))
    if kind == "float":
        return helper.make_attribute(name, draw(st.sampled_from([0.0, -1.0, 1e38, float("nan"), float("inf")])))
    if kind == "floats":
        return helper.make_attribute(name, [1e30, -2.5])
    if kind == "string":
        return helper.make_attribute(name, draw(st.sampled_from([b"", b"SAME_UPPER", b"\xff\xfe", b"x" * 50])))
    if kind == "tensor":
        return helper.make_attribute(name, numpy_helper.from_array(np.array([2.0, 3.0], np.float32)))
    if kind == "huge_tensor":
        t = TensorProto(name="t", data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20])  # no data at all
        return helper.make_attribute(name, t)
    if kind == "graph":
        return helper.make_attribute(name, helper.make_graph([], "sub", [], []))
    a = AttributeProto()
    a.name = name
    if kind == "empty_ints":
        a.type = AttributeProto.INTS
    return a  # UNDEFINED type


@st.composite
def _mutated(draw) -> bytes:
    name = draw(st.sampled_from(sorted(seeds())))
    data = seeds()[name]
    if draw(st.integers(0, 9)) == 0:  # raw byte damage
        raw = bytearray(data)
        how = draw(st.sampled_from(["truncate", "flip", "random"]))
        if how == "truncate":
            return bytes(raw[:draw(st.integers(0, len(raw)))])
        if how == "random":
            return draw(st.binary(min_size=0, max_size=512))
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
        return bytes(raw)
    model = onnx.load_from_string(data)
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, model)
    return model.SerializeToString()


def _mutate(draw, model) -> None:
    g = model.graph
    what = draw(st.sampled_from(["input", "attribute", "attr_value", "attr_value", "init_data", "init_dims",
                                 "init_reshape", "init_reshape", "init_type", "op_type", "remove_init",
                                 "remove_node", "bomb", "constant", "opset", "metadata", "graph_io",
                                 "project", "project"]))
    nodes = list(g.node)
    node = nodes[draw(st.integers(0, len(nodes) - 1))] if nodes else None
    inits = list(g.initializer)
    init = inits[draw(st.integers(0, len(inits) - 1))] if inits else None
    names = [i.name for i in g.input] + [i.name for i in inits] + [o for n in nodes for o in n.output]
    if what == "input" and node is not None:
        how = draw(st.sampled_from(["drop", "duplicate", "rename", "other", "empty", "add"]))
        ins = list(node.input)
        if how == "drop" and ins:
            del ins[draw(st.integers(0, len(ins) - 1))]
        elif how == "duplicate" and ins:
            ins.append(ins[draw(st.integers(0, len(ins) - 1))])
        elif how == "rename" and ins:
            ins[draw(st.integers(0, len(ins) - 1))] = "no_such_tensor"
        elif how == "other" and ins and names:
            ins[draw(st.integers(0, len(ins) - 1))] = draw(st.sampled_from(names))
        elif how == "empty" and ins:
            ins[draw(st.integers(0, len(ins) - 1))] = ""
        else:
            ins.append(draw(st.sampled_from(names)) if names else "x")
        del node.input[:]
        node.input.extend(ins)
    elif what == "attribute" and node is not None:
        attrs = list(node.attribute)
        known = [a.name for a in attrs] + ["axis", "perm", "kernel_shape", "strides", "pads", "dilations",
                                           "group", "hidden_size", "to", "value", "axes", "alpha", "mode",
                                           "auto_pad", "direction", "layout", "epsilon", "scales"]
        attr_name = draw(st.sampled_from(known))
        kept = [a for a in attrs if a.name != attr_name]
        del node.attribute[:]
        node.attribute.extend(kept)
        if draw(st.booleans()) or attr_name not in [a.name for a in attrs]:
            node.attribute.append(_bad_attribute(draw, attr_name))
    elif what == "attr_value" and node is not None and len(node.attribute):
        # the declared type kept, the value wrong: what only the converters can refuse
        a = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
        small = st.integers(-4, 9) | st.sampled_from([2 ** 31, -(2 ** 31), 2 ** 62])
        if a.type == AttributeProto.INT:
            a.i = draw(small)
        elif a.type == AttributeProto.INTS:
            del a.ints[:]
            a.ints.extend(draw(st.lists(small, max_size=8)))
        elif a.type == AttributeProto.FLOAT:
            a.f = draw(st.sampled_from([0.0, -1.0, 1e-30, 3e38, 0.5]))
        elif a.type == AttributeProto.STRING:
            a.s = draw(st.sampled_from([b"", b"VALID", b"SAME_LOWER", b"reverse", b"linear", b"cubic", b"nope"]))
        elif a.type == AttributeProto.TENSOR:
            a.t.CopyFrom(numpy_helper.from_array(draw(st.sampled_from(
                [np.zeros((2, 2), np.float32), np.array([], np.int64), np.array(7, np.int64)]))))
    elif what == "init_reshape" and init is not None and all(d > 0 for d in init.dims):
        # the same values under other dims: the stored size stays right, the shape is wrong
        n = int(np.prod(init.dims)) if len(init.dims) else 1
        divisors = [d for d in range(1, min(n, 64) + 1) if n % d == 0]
        first = draw(st.sampled_from(divisors))
        dims = draw(st.sampled_from([[n], [first, n // first], [1, n], [n // first, first, 1], []]))
        if int(np.prod(dims)) == n:
            del init.dims[:]
            init.dims.extend(dims)
    elif what == "init_data" and init is not None:
        if init.raw_data:
            init.raw_data = init.raw_data[:draw(st.integers(0, max(len(init.raw_data) - 1, 0)))]
        else:
            init.raw_data = draw(st.binary(max_size=12))
    elif what == "init_dims" and init is not None:
        dims = list(init.dims)
        how = draw(st.sampled_from(["add", "drop", "scale", "negative", "huge"]))
        if how == "add":
            dims.append(draw(st.integers(0, 3)))
        elif how == "drop" and dims:
            dims.pop()
        elif how == "scale" and dims:
            dims[0] *= 2
        elif how == "negative" and dims:
            dims[0] = -dims[0] - 1
        else:
            dims = [2 ** 31, 2 ** 31]
        del init.dims[:]
        init.dims.extend(dims)
    elif what == "init_type" and init is not None:
        init.data_type = draw(st.sampled_from([0, 2, 3, 6, 7, 8, 9, 10, 11, 12, 14, 16, 17, 21, 23, 99]))
    elif what == "op_type" and node is not None:
        node.op_type = draw(st.sampled_from(_OPS))
    elif what == "remove_init" and init is not None:
        g.initializer.remove(init)
    elif what == "remove_node" and node is not None:
        g.node.remove(node)
    elif what == "bomb":
        size = draw(st.sampled_from([2 ** 29, 2 ** 31, 2 ** 40, 10 ** 15]))
        shape = numpy_helper.from_array(np.array([size, 4], np.int64), "bomb_shape")
        g.initializer.append(shape)
        op = draw(st.sampled_from(["ConstantOfShape", "Expand", "Tile", "Range"]))
        if op == "ConstantOfShape":
            bomb = helper.make_node("ConstantOfShape", ["bomb_shape"], ["bomb"], name="bomb")
        elif op == "Expand":
            g.initializer.append(numpy_helper.from_array(np.ones(1, np.float32), "bomb_one"))
            bomb = helper.make_node("Expand", ["bomb_one", "bomb_shape"], ["bomb"], name="bomb")
        elif op == "Tile":
            g.initializer.append(numpy_helper.from_array(np.ones((1, 1), np.float32), "bomb_one"))
            bomb = helper.make_node("Tile", ["bomb_one", "bomb_shape"], ["bomb"], name="bomb")
        else:
            for n, v in (("bomb_start", 0), ("bomb_limit", size), ("bomb_delta", 1)):
                g.initializer.append(numpy_helper.from_array(np.array(v, np.int64), n))
            bomb = helper.make_node("Range", ["bomb_start", "bomb_limit", "bomb_delta"], ["bomb"], name="bomb")
        g.node.insert(0, bomb)
        if node is not None and node.input:  # make something read it so it is folded
            node.input[draw(st.integers(0, len(node.input) - 1))] = "bomb"
        else:
            del g.output[:]
            g.output.append(helper.make_tensor_value_info("bomb", TensorProto.FLOAT, None))
    elif what == "constant":
        t = numpy_helper.from_array(np.ones(3, np.float32), "c")
        kind = draw(st.sampled_from(["external", "strings", "sparse", "mismatch"]))
        if kind == "external":
            t.ClearField("raw_data")
            t.data_location = TensorProto.EXTERNAL
            loc = draw(st.sampled_from(["../secret", "/etc/hostname", "missing.bin", "", "a/../../b"]))
            t.external_data.add(key="location", value=loc)
        elif kind == "mismatch":
            t.raw_data = b"\x00" * 5
        c = helper.make_node("Constant", [], ["const_out"], name="const", value=t)
        if kind == "strings":
            c = helper.make_node("Constant", [], ["const_out"], name="const", value_strings=["a", "b"])
        elif kind == "sparse":
            c = helper.make_node("Constant", [], ["const_out"], name="const", sparse_value=helper.make_sparse_tensor(
                numpy_helper.from_array(np.ones(1, np.float32)), numpy_helper.from_array(np.zeros(1, np.int64)), [3]))
        g.node.insert(0, c)
        if node is not None and node.input:
            node.input[draw(st.integers(0, len(node.input) - 1))] = "const_out"
    elif what == "opset":
        del model.opset_import[:]
        model.opset_import.append(helper.make_opsetid("", draw(st.sampled_from([0, 1, 6, 9, 10, 12, 99, 2 ** 40]))))
    elif what == "metadata" and node is not None:
        value = draw(st.sampled_from(["[" * 10000, "['', 'conv1']", "{'a': 1}", "[1, 2" * 1000, "x" * 100,
                                      "[" + "'a'," * 100000 + "]"]))
        node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=value)
        node.metadata_props.add(key="pkg.torch.onnx.class_hierarchy", value=value)
    elif what == "project":
        _mutate_project(draw, model)
    elif what == "graph_io":
        how = draw(st.sampled_from(["no_output", "output_rank", "input_type", "input_dims"]))
        if how == "no_output":
            del g.output[:]
        elif how == "output_rank" and g.output:
            g.output[0].type.tensor_type.shape.dim.add().dim_value = 7
        elif how == "input_type" and g.input:
            g.input[0].type.tensor_type.elem_type = draw(st.sampled_from([0, 8, 9, 14, 99]))
        elif g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if len(dims) > 1:
                dims[1].dim_value = draw(st.sampled_from([0, 2 ** 40, 10 ** 15]))


def _mutate_project(draw, model) -> None:
    """The project NetCanvas records (``netcanvas.project`` / ``netcanvas.weights``): bad JSON,
    huge, deeply nested, a valid project that does not fit the file, bad weight locations."""
    props = {p.key: p.value for p in model.metadata_props}
    text = props.get("netcanvas.project", "{}")
    how = draw(st.sampled_from(["truncate", "huge", "nested", "not_fitting", "weights", "drop", "bytes"]))
    key = "netcanvas.project"
    if how == "truncate":
        value = text[:draw(st.integers(0, max(len(text) - 1, 0)))]
    elif how == "huge":
        value = text + " " * draw(st.sampled_from([10, 17 * 1024 * 1024]))
    elif how == "nested":
        value = "[" * 100000 + "]" * 100000
    elif how == "not_fitting":
        try:
            data = json.loads(text)
            node = draw(st.sampled_from(data["graph"]["nodes"]))
            params = node.setdefault("params", {})
            name = draw(st.sampled_from(sorted(params) or ["shape"]))
            params[name] = draw(st.sampled_from([[3], [1, 2], 1, 7, 0.5, "same", None, True]))
            value = json.dumps(data)
        except (ValueError, KeyError, TypeError, AttributeError):
            value = text
    elif how == "weights":
        key = "netcanvas.weights"
        value = draw(st.sampled_from(['{"a": [["no_such", 0, 0, 1]]}', "[]", "{", "null",
                                      '{"x": {"fill": "nan"}}', '{"fc1.weight": [["fc1.weight", 1, -5, 99]]}']))
    elif how == "drop":
        key, value = "netcanvas.weights", None
    else:
        value = draw(st.text(max_size=200))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    for k, v in kept + ([(key, value)] if value is not None else []):
        model.metadata_props.add(key=k, value=v)


@st.composite
def _project_mutated(draw) -> bytes:
    model = onnx.load_from_string(seeds()[draw(st.sampled_from(SEED_NAMES))])
    for _ in range(draw(st.integers(1, 2))):
        _mutate_project(draw, model)
    return model.SerializeToString()


def project_metadata_models():
    """A hypothesis strategy of NetCanvas exports whose recorded project is damaged (every one
    must still import from its ops, or be refused cleanly)."""
    return _project_mutated()


def onnx_models():
    """A hypothesis strategy of ONNX model bytes: valid exports, mutated."""
    return _mutated()


# -- running one case -----------------------------------------------------------------------
def fuzz_one(data: bytes | onnx.ModelProto) -> str:
    """Import one case: "ok" (imported), "clean" (refused with OnnxImportError) or
    "escape:<exception type>" (any other exception, or a warning: a bug)."""
    from app.engine.importers import OnnxImportError, import_onnx

    if isinstance(data, onnx.ModelProto):
        data = data.SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz" / "model.onnx"  # a sub-folder: "../secret" points into tmp
        path.parent.mkdir()
        (Path(tmp) / "secret").write_bytes(b"SECRET" * 2)
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                import_onnx(path)
        except OnnxImportError:
            return "clean"
        except Exception as e:  # anything else is what the fuzzer hunts
            return f"escape:{type(e).__name__}"
    return "ok"
