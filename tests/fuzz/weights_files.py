"""Fuzz family "weights": safetensors files (and a few PyTorch ``.pt`` files) for a
bundled example, valid or with random headers, tensors and metadata, read as ``predict``
reads them: ``read_weights``, ``read_metadata`` and the input normalization, then the
prediction itself."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .harness import Sandbox
from .projects import mutate_bytes, mutate_document
from .values import RawTexts, dumps_with_raw

EXAMPLES = ("xor", "mlp")
DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
_SANDBOX: Sandbox | None = None


@dataclass
class WeightsCase:
    example: str
    suffix: str
    data: bytes
    batch: int

    def describe(self) -> str:
        head = self.data[:300]
        return (f"weights for example {self.example!r} ({self.suffix}, {len(self.data):,} bytes, "
                f"batch of {self.batch}): {head!r}")


def describe(case: WeightsCase) -> str:
    return case.describe()


@lru_cache(maxsize=None)
def reference(example: str) -> tuple[Any, dict[str, tuple[int, ...]], tuple[int, ...]]:
    """The example's project, its tensors' shapes and its input shape."""
    from app.engine.compiler import compile_graph
    from app.engine.examples import load_example
    from app.engine.inference import analyze

    project = load_example(example)
    a = analyze(project.graph)
    shapes = {k: tuple(v.shape) for k, v in compile_graph(project.graph, a).state_dict().items()}
    return project, shapes, tuple(a.shapes[a.inputs[0]])


def _json_list(values: list) -> str:
    return json.dumps(values, allow_nan=True)


@st.composite
def metadata(draw, size: int, raws: RawTexts) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        n = draw(st.sampled_from([size, size, size - 1, size + 1, 0]))
        kind = draw(st.sampled_from(["fine", "fine", "zeros", "nan", "huge", "strings", "nested", "deep", "not_json"]))
        mean = [0.5] * max(n, 0)
        std = [1.0] * max(n, 0)
        if kind == "zeros":
            std = [0.0] * n
        elif kind == "nan":
            std = [float("nan")] * n
        elif kind == "huge":
            mean = [1e308 * 10 if i == 0 else 1e39 for i in range(n)]
        elif kind == "strings":
            mean = ["x"] * n
        elif kind == "nested":
            mean = [[[v]] for v in mean]
        meta["input_mean"] = _json_list(mean)
        meta["input_std"] = _json_list(std)
        if kind == "deep":
            depth = draw(st.sampled_from([40, 1000, 100_000]))
            meta["input_mean"] = "[" * depth + "1" + "]" * depth
        elif kind == "not_json":
            meta["input_std"] = draw(st.sampled_from(["", "[1,", "nan", "{}", "1" * 5000, "\udcff"]))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from(["accuracy", "val_loss", "epochs", "class_names", "class", "x", "\udcff"]))
        meta[key] = draw(st.one_of(st.text(max_size=20), st.sampled_from(["nan", "1e400", "-1", "[[[", "99" * 400])))
    return meta


@st.composite
def tensors(draw, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Name -> (dtype, shape, raw bytes): the example's own tensors, some changed."""
    out = {}
    for name, shape in shapes.items():
        op = draw(st.sampled_from(["same"] * 6 + ["dtype", "shape", "drop", "rename", "scalar", "empty"]))
        dtype = "F32"
        if op == "drop":
            continue
        if op == "dtype":
            dtype = draw(st.sampled_from(sorted(DTYPES)))
        if op == "shape":
            shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
        if op == "scalar":
            shape = ()
        if op == "empty":
            shape = (0,) + shape
        if op == "rename":
            name = draw(st.sampled_from([name + "x", "other.weight", "", "\udcff", name.upper()]))
        count = int(np.prod(shape)) if shape else 1
        values = draw(st.sampled_from(["ones", "random", "nan", "huge"]))
        a = np.ones(count, dtype=np.float64)
        if values == "random":
            a = np.random.default_rng(count).normal(size=count)
        elif values == "nan":
            a[:] = np.nan
        elif values == "huge":
            a[:] = 1e300
        with np.errstate(all="ignore"):
            raw = a.astype(DTYPES[dtype]).tobytes()
        out[name] = (dtype, shape, raw)
    if draw(st.integers(0, 4)) == 0:
        out["extra.weight"] = ("F32", (2,), np.zeros(2, np.float32).tobytes())
    return out


@st.composite
def safetensors_bytes(draw, example: str) -> bytes:
    """A safetensors file written by hand (so that anything can be in its header)."""
    raws = RawTexts()
    _, shapes, input_shape = reference(example)
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name, (dtype, shape, raw) in draw(tensors(shapes)).items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    meta = draw(metadata(int(np.prod(input_shape)), raws))
    if meta or draw(st.booleans()):
        header["__metadata__"] = meta
    if draw(st.integers(0, 2)) == 0:
        header = draw(mutate_document(header, raws))
    text = dumps_with_raw(header, raws, ensure_ascii=draw(st.booleans()))
    head = text.encode("utf-8", "surrogatepass")
    head += b" " * (-len(head) % 8)
    length = len(head)
    op = draw(st.sampled_from(["right"] * 8 + ["short", "long", "huge", "zero"]))
    if op == "short":
        length -= draw(st.integers(1, max(1, length)))
    elif op == "long":
        length += draw(st.integers(1, 4096))
    elif op == "huge":
        length = draw(st.sampled_from([2**32, 2**63 - 1, 2**64 - 1, 100_000_001]))
    elif op == "zero":
        length = 0
    data = struct.pack("<Q", length) + head + b"".join(blobs)
    return draw(mutate_bytes(data))


@st.composite
def torch_bytes(draw, example: str) -> bytes:
    """A PyTorch file: a state_dict, something else, a pickle that would run code, bytes."""
    import io

    import torch

    _, shapes, _ = reference(example)
    kind = draw(st.sampled_from(["state_dict", "nested", "list", "pickle", "random", "truncated"]))
    buf = io.BytesIO()
    if kind in ("state_dict", "truncated"):
        torch.save({k: torch.zeros(s) for k, s in shapes.items()}, buf)
    elif kind == "nested":
        torch.save({"state_dict": {k: torch.zeros(s) for k, s in shapes.items()}, "epoch": 3}, buf)
    elif kind == "list":
        torch.save([1, 2, 3], buf)
    elif kind == "pickle":
        import pickle

        return pickle.dumps(_Evil())
    else:
        return draw(st.binary(max_size=300))
    data = buf.getvalue()
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data


class _Evil:
    """A pickle that would run a command if it were ever unpickled."""

    def __reduce__(self):
        return (print, ("unpickled: this must never run",))


@st.composite
def weights_cases(draw) -> WeightsCase:
    example = draw(st.sampled_from(EXAMPLES))
    suffix = draw(st.sampled_from([".safetensors"] * 8 + [".pt", ".pth"]))
    data = draw(safetensors_bytes(example) if suffix == ".safetensors" else torch_bytes(example))
    return WeightsCase(example, suffix, data, draw(st.sampled_from([0, 1, 3])))


def load_weights_case(case: WeightsCase) -> str:
    from app.engine.predict import normalization, predict, read_metadata
    from app.engine.weights import read_weights

    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox()
    project, _, input_shape = reference(case.example)
    path = _SANDBOX.root / f"w{case.suffix}"
    path.write_bytes(case.data)
    read_weights(path)
    normalization(read_metadata(path), input_shape, str(path))
    y = predict(project, path, np.zeros((case.batch, *input_shape), dtype=np.float32))
    if y.shape[0] != case.batch:
        raise AssertionError(f"predict gave {y.shape[0]} outputs for {case.batch} samples")
    return "ok"


def warmup() -> None:
    from safetensors.torch import save

    from app.engine.compiler import compile_graph

    for example in EXAMPLES:
        project, _, _ = reference(example)
        data = save(dict(compile_graph(project.graph).state_dict()))
        load_weights_case(WeightsCase(example, ".safetensors", data, 1))
