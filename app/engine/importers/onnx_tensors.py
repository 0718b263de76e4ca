"""Every tensor an ONNX file holds, checked before any is read or converted.

An initializer or a tensor attribute (a ``Constant``'s value, a ``ConstantOfShape`` fill,
in a subgraph or a local function alike) must hold a numeric type NetCanvas reads, have
non-negative dims, stay under the import's memory limit, and store exactly as many values
as its dims say. Its data may live in an external file (``location``), which is resolved
only inside the model's own folder: no absolute path, no ``..``, no link leading out
(checked on the real path), never against the process's working directory. Every external
reference is checked before the first byte of any of them is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from onnx import AttributeProto, TensorProto

from ..errors import NetCanvasError

# bytes per value of the numeric types ``numpy_helper.to_array`` reads, and where a tensor
# that does not use raw_data keeps its values
ITEM_SIZE = {TensorProto.FLOAT: 4, TensorProto.UINT8: 1, TensorProto.INT8: 1, TensorProto.UINT16: 2,
             TensorProto.INT16: 2, TensorProto.INT32: 4, TensorProto.INT64: 8, TensorProto.BOOL: 1,
             TensorProto.FLOAT16: 2, TensorProto.DOUBLE: 8, TensorProto.UINT32: 4, TensorProto.UINT64: 8,
             TensorProto.BFLOAT16: 2}
_FIELD = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data", TensorProto.INT64: "int64_data",
          TensorProto.UINT32: "uint64_data", TensorProto.UINT64: "uint64_data"}


def type_name(elem: int) -> str:
    """``FLOAT`` for 1; ``type 99`` for a number ONNX does not define."""
    try:
        return TensorProto.DataType.Name(elem)
    except ValueError:
        return f"type {elem}"


def gigabytes(n: int) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def all_tensors(model) -> Iterator[tuple[TensorProto, str]]:
    """Every tensor of ``model`` with a description of where it is, for messages."""
    yield from _graph_tensors(model.graph, "")
    for f in model.functions:
        for node in f.node:
            yield from _node_tensors(node, f" in function {f.name!r}")


def _graph_tensors(graph, scope: str) -> Iterator[tuple[TensorProto, str]]:
    for t in graph.initializer:
        yield t, f"initializer {t.name!r}{scope}"
    for s in graph.sparse_initializer:
        yield s.values, f"sparse initializer {s.values.name!r}{scope} (values)"
        yield s.indices, f"sparse initializer {s.values.name!r}{scope} (indices)"
    for node in graph.node:
        yield from _node_tensors(node, scope)


def _node_tensors(node, scope: str) -> Iterator[tuple[TensorProto, str]]:
    label = f"node {node.name or '<unnamed>'!r} ({node.op_type}){scope}"
    for a in node.attribute:
        where = f"attribute {a.name!r} of {label}"
        if a.HasField("t"):
            yield a.t, where
        for t in a.tensors:
            yield t, where
        sparse = ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors)
        for s in sparse:
            yield s.values, where + " (values)"
            yield s.indices, where + " (indices)"
        subgraphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
        for g in subgraphs:
            yield from _graph_tensors(g, f" in a subgraph of {label}")


def prepare_tensors(model, folder: Path, limit: int, error: type[NetCanvasError], source: str) -> None:
    """Check every tensor of ``model`` and read the external data of those that have it
    into the model (from ``folder``, the model file's own). Raises ``error`` naming the
    tensor and what is wrong; nothing external is read unless every reference is sound."""
    external = []
    for t, where in all_tensors(model):
        size = _check_tensor(t, where, limit, error, source)
        if t.data_location == TensorProto.EXTERNAL:
            external.append((t, where, size))
        else:
            _check_stored(t, where, size, error, source)
    if not external:
        return
    base = Path(os.path.realpath(folder))
    planned = [(t, where, size, *_locate(t, where, base, error, source)) for t, where, size in external]
    total = sum(size for _, _, size, _, _ in planned)
    if total > limit:
        raise error(f"its external data holds {gigabytes(total)}, more than the import limit of "
                    f"{gigabytes(limit)}", source)
    for t, where, size, path, offset in planned:
        t.raw_data = _read(path, offset, size, where, error, source)
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT


def _check_tensor(t: TensorProto, where: str, limit: int, error, source: str) -> int:
    """The tensor's size in bytes, after checking its type and dims."""
    if t.data_type not in ITEM_SIZE:
        raise error(f"{where} holds {type_name(t.data_type)} values; NetCanvas reads numeric tensors "
                    "(float, int, bool)", source)
    count = 1
    for d in t.dims:
        if d < 0:
            raise error(f"{where} has a negative dimension ({list(t.dims)})", source)
        count *= d
    size = count * ITEM_SIZE[t.data_type]
    if size > limit:
        raise error(f"{where} has dims {list(t.dims)} ({gigabytes(size)}), more than the import limit "
                    f"of {gigabytes(limit)}", source)
    return size


def _check_stored(t: TensorProto, where: str, size: int, error, source: str) -> None:
    """The values stored in the file must be as many as the dims say."""
    count = size // ITEM_SIZE[t.data_type]
    if t.HasField("raw_data"):
        if len(t.raw_data) != size:
            raise error(f"{where} has dims {list(t.dims)} ({size} bytes of {type_name(t.data_type)}) but "
                        f"stores {len(t.raw_data)} bytes", source)
        return
    field = _FIELD.get(t.data_type, "int32_data")
    stored = len(getattr(t, field))
    if stored != count:
        raise error(f"{where} has dims {list(t.dims)} ({count} values) but stores {stored}", source)


def _locate(t: TensorProto, where: str, base: Path, error, source: str) -> tuple[Path, int]:
    """The real path of the tensor's external file, inside ``base``, and the offset."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    named = f"{where} has its data in {location!r}"
    for key in info:
        if key not in ("location", "offset", "length", "checksum", "basepath"):
            raise error(f"{where} has an unknown external data key {key[:40]!r}", source)
    if not location or "\x00" in location:
        raise error(f"{where} is stored externally but names no file", source)
    posix = PurePosixPath(location.replace("\\", "/"))
    windows = PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise error(f"{named}, an absolute path; external data must lie in the model's own folder", source)
    if ".." in posix.parts:
        raise error(f"{named}, which leads out of the model's folder (..); external data must lie "
                    "in the model's own folder", source)
    path = Path(os.path.realpath(base / posix))
    if not path.is_relative_to(base):
        raise error(f"{named}, a link that leads out of the model's folder; external data must lie "
                    "in the model's own folder", source)
    if not path.is_file():
        raise error(f"{named}, which {'is not a file' if path.exists() else 'does not exist'} "
                    "beside the model", source)
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise error(f"{where} has an external data offset or length that is not a number", source) from None
    size = _check_tensor(t, where, 1 << 62, error, source)
    if offset < 0 or (length is not None and length != size):
        raise error(f"{named} at offset {offset}, length {length}; its dims {list(t.dims)} need "
                    f"{size} bytes", source)
    file_size = path.stat().st_size
    if offset + size > file_size:
        raise error(f"{named} at offset {offset}, {size} bytes, but the file holds {file_size}", source)
    return path, offset


def _read(path: Path, offset: int, size: int, where: str, error, source: str) -> bytes:
    try:
        # no link followed: the path was resolved and checked to lie in the folder
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    except OSError as e:
        raise error(f"{where}: its external data cannot be read: {e.strerror or e}", source) from None
    if len(data) != size:
        raise error(f"{where}: its external data file ended early", source)
    return data


def attribute_type_name(kind: int) -> str:
    try:
        return AttributeProto.AttributeType.Name(kind)
    except ValueError:
        return f"type {kind}"
