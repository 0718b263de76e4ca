"""Fuzz family "dataset": the file-based dataset loaders (IDX pairs and MNIST folders,
CSV tables, image folders), each fed valid files, mutations of them and random bytes,
loaded through ``load_dataset`` with a random Input shape (or none)."""

from __future__ import annotations

import gzip
import io
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from app.engine.datasets import load_dataset
from app.engine.errors import DatasetError

from .harness import Sandbox

_SANDBOX: Sandbox | None = None


@dataclass
class DataCase:
    """Files to write (relative path -> bytes) and the ``dataset`` settings to load."""

    files: dict[str, bytes]
    settings: dict[str, Any]
    input_shape: tuple | None = None
    folders: list[str] = field(default_factory=list)

    def describe(self) -> str:
        files = ", ".join(f"{k} ({len(v):,} bytes: {v[:40]!r})" for k, v in list(self.files.items())[:6])
        return f"settings {self.settings}, input shape {self.input_shape}, files: {files}"


# ----------------------------------------------------------------------------------- IDX
def idx_bytes(array: np.ndarray, type_byte: int = 8) -> bytes:
    a = np.asarray(array, dtype=np.uint8)
    return struct.pack(">BBBB", 0, 0, type_byte, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


@st.composite
def mutated_binary(draw, data: bytes) -> bytes:
    """``data`` with up to three edits: bytes changed, cut, added, or a header field set to
    an edge value; sometimes gzipped (and the gzip then damaged)."""
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set_byte", "truncate", "append", "dim", "zeros_bomb", "random"]))
        if op == "set_byte" and data:
            i = draw(st.integers(0, min(len(data), 24) - 1))
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
        elif op == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "dim" and len(data) >= 8:
            i = 4 + 4 * draw(st.integers(0, max(0, min(3, (len(data) - 8) // 4))))
            value = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 60000, 10**9, 28]))
            data = data[:i] + struct.pack(">I", value) + data[i + 4:]
        elif op == "zeros_bomb":
            data += bytes(draw(st.sampled_from([1000, 1 << 20, 16 << 20])))
        elif op == "random":
            data = draw(st.binary(max_size=64))
    if draw(st.booleans()):
        data = gzip.compress(data, compresslevel=1)
        if draw(st.integers(0, 3)) == 0 and len(data) > 10:
            i = draw(st.integers(2, len(data) - 1))
            data = data[:i] if draw(st.booleans()) else data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
    return data


@st.composite
def idx_case(draw) -> DataCase:
    n = draw(st.integers(0, 12))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    images = idx_bytes(rng.integers(0, 256, (n, h, w)))
    labels = idx_bytes(rng.integers(0, draw(st.integers(1, 12)), n))
    images, labels = draw(mutated_binary(images)), draw(mutated_binary(labels))
    if draw(st.integers(0, 3)) == 0:  # an MNIST folder with the four standard names
        files = {"m/train-images-idx3-ubyte": images, "m/train-labels-idx1-ubyte": labels,
                 "m/t10k-images-idx3-ubyte.gz": gzip.compress(images, 1), "m/t10k-labels-idx1-ubyte": labels}
        for name in list(files)[: draw(st.integers(0, 1))]:
            del files[name]  # a missing file: the download is tried (offline here) and reported
        return DataCase(files, {"name": draw(st.sampled_from(["mnist", "fashion_mnist"])), "path": "m"},
                        draw(input_shapes()))
    return DataCase({"images.idx": images, "labels.idx": labels},
                    {"name": "idx", "images": "images.idx", "labels": "labels.idx"}, draw(input_shapes()))


def input_shapes() -> st.SearchStrategy:
    return st.one_of(st.none(), st.lists(st.integers(1, 30), min_size=1, max_size=3).map(tuple),
                     st.sampled_from([(1, 28, 28), (784,), (3, 4, 4), (0,), (1, 0, 5), (5, 1, 1, 1)]))


# ----------------------------------------------------------------------------------- CSV
CELLS = ["0", "1", "2", "-1", "3.5", "1e400", "nan", "inf", "-inf", "", " ", "x", '"1"', '"a,b"', "1,5",
         "2147483648", "9" * 30, "0x10", "1_000", "\u0661", "\udcff", "NULL", "TRUE", "-0", "1e-400"]


@st.composite
def csv_case(draw) -> DataCase:
    rows = draw(st.integers(0, 12))
    cols = draw(st.integers(1, 6))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lines = []
    if draw(st.booleans()):
        lines.append(delimiter.join(f"c{i}" if i else "label" for i in range(cols)))
    for _ in range(rows):
        lines.append(delimiter.join([str(int(rng.integers(0, 4)))] + [f"{v:.3g}" for v in rng.normal(size=cols - 1)]))
    for _ in range(draw(st.integers(0, 3))):  # odd cells, lines or line endings
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["cell", "cell", "drop_cell", "add_cell", "blank", "crlf", "quote", "long"]))
        cells = lines[i].split(delimiter)
        if op == "cell":
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(CELLS))
        elif op == "drop_cell" and len(cells) > 1:
            cells.pop()
        elif op == "add_cell":
            cells.append(draw(st.sampled_from(CELLS)))
        elif op == "blank":
            cells = [""]
        elif op == "crlf":
            cells[-1] += "\r"
        elif op == "quote":
            cells[0] = '"' + cells[0]
        elif op == "long":
            cells += ["1"] * draw(st.sampled_from([100, 10_000]))
        lines[i] = delimiter.join(cells)
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))
    data = text.encode("utf-8", "surrogatepass")
    op = draw(st.sampled_from(["none", "none", "none", "bom", "latin1", "nul", "random"]))
    if op == "bom":
        data = b"\xef\xbb\xbf" + data
    elif op == "latin1":
        data += "\xe9".encode("latin-1")
    elif op == "nul":
        data = data.replace(b"1", b"\x00", 1)
    elif op == "random":
        data = draw(st.binary(max_size=200))
    label = draw(st.one_of(st.none(), st.integers(-3, 8), st.sampled_from(["label", "c1", "missing", " 0 ", "\udcff",
                                                                          "99999999999999999999"])))
    settings = {"name": "csv", "path": "table.csv"}
    if label is not None:
        settings["label_column"] = label
    return DataCase({"table.csv": data}, settings, draw(input_shapes()))


# ----------------------------------------------------------------------------------- image folders
def _image(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "F":
        img = Image.fromarray(rng.normal(size=(h, w)).astype(np.float32))
    elif mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
    elif mode in ("LA", "RGB", "RGBA"):
        img = Image.fromarray(rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8))
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    try:
        img.save(buf, fmt)
    except (OSError, ValueError, KeyError):  # a mode the format cannot hold: as PNG after all
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "PNG")
    return buf.getvalue()


IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "gif": "GIF"}


@st.composite
def image_folder_case(draw) -> DataCase:
    files: dict[str, bytes] = {}
    folders = []
    n_classes = draw(st.integers(0, 3))
    for c in range(n_classes):
        name = draw(st.sampled_from(["cat", "dog", "0", ".hidden", "é", "x y"])) + str(c)
        folders.append(f"imgs/{name}")
        for i in range(draw(st.integers(0, 3))):
            ext = draw(st.sampled_from(sorted(IMAGE_FORMATS)))
            mode = draw(st.sampled_from(["1", "L", "LA", "RGB", "RGBA", "P", "I;16", "F", "CMYK"]))
            size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
            data = _image(mode, size, IMAGE_FORMATS[ext], draw(st.integers(0, 1000)))
            op = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "random", "empty", "dims"]))
            if op == "truncate":
                data = data[: draw(st.integers(0, len(data) - 1))]
            elif op == "flip":
                i = draw(st.integers(0, len(data) - 1))
                data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
            elif op == "random":
                data = draw(st.binary(max_size=100))
            elif op == "empty":
                data = b""
            elif op == "dims" and ext == "png" and len(data) > 24:  # a PNG header claiming a huge size
                data = data[:16] + struct.pack(">II", *draw(st.sampled_from([(65535, 65535), (1, 10**9), (0, 5)])))\
                    + data[24:]
            files[f"imgs/{name}/{i}.{ext}"] = data
    if draw(st.integers(0, 9)) == 0:
        files["imgs/loose.png"] = _image("L", (3, 3), "PNG", 0)
    return DataCase(files, {"name": "image_folder", "path": "imgs"}, draw(input_shapes()), folders)


def data_cases() -> st.SearchStrategy:
    return st.one_of(idx_case(), csv_case(), image_folder_case())


def load_data_case(case: DataCase) -> str:
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox()
    base = _SANDBOX.fresh("data")
    for folder in case.folders:
        (base / folder).mkdir(parents=True, exist_ok=True)
    for rel, data in case.files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    try:
        data = load_dataset(case.settings, base_dir=base, input_shape=case.input_shape)
    except DatasetError as e:
        cause = e.__cause__
        if cause is not None and f"failed: {type(cause).__name__}" in str(e):
            raise cause  # load_dataset's safety net caught a reader's own bug: count it as the escape it is
        raise
    if len(data.train) == 0:
        raise AssertionError("a dataset without training samples was accepted")
    return "ok"


def warmup() -> None:
    rng = np.random.default_rng(0)
    load_data_case(DataCase({"table.csv": b"label,a\n" + b"".join(b"%d,%d\n" % (i % 2, i) for i in range(20))},
                            {"name": "csv", "path": "table.csv"}))
    load_data_case(DataCase({f"imgs/{c}/{i}.png": _image("L", (4, 4), "PNG", i) for c in "ab" for i in range(5)},
                            {"name": "image_folder", "path": "imgs"}, (1, 4, 4)))
    load_data_case(DataCase({"i": idx_bytes(rng.integers(0, 255, (20, 3, 3))), "l": idx_bytes(np.arange(20) % 2)},
                            {"name": "idx", "images": "i", "labels": "l"}))
