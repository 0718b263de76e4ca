"""IDX files (the format of MNIST and Fashion-MNIST), read by our own small parser.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type, ``NN`` the
number of dimensions), then ``NN`` big-endian uint32 dimension sizes, then the elements in
row-major order. MNIST only uses unsigned bytes (``TT = 0x08``), and so do we. Any file may
be gzipped; that is detected from its first bytes, not its name.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DatasetError
from .base import RawData
from .download import download_files

_GZIP_MAGIC = b"\x1f\x8b"
# the most data an IDX file may claim: 1 GiB of bytes (EMNIST's largest file is 550 MB; the
# float32 copy the loaders make is four times as large)
MAX_IDX_BYTES = 2**30
_CHUNK = 1 << 20
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
               0x0D: "float32", 0x0E: "float64"}

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def read_idx(path: Path, limit: int | None = None) -> np.ndarray:
    """The uint8 array stored in the IDX file ``path`` (gzipped or not), shaped as its
    header says. The file is streamed: the header is read first, and no more data than it
    promises (plus one byte, to tell a longer file) is read or decompressed, so a small
    gzip that inflates to gigabytes costs no more than its header claims. Raises
    ``DatasetError`` naming the file when it is missing, not an IDX file, of an element
    type other than unsigned byte, claims more than ``limit`` bytes (``MAX_IDX_BYTES`` by
    default), or is shorter / longer than its header promises."""
    path = Path(path)
    limit = MAX_IDX_BYTES if limit is None else limit
    if not path.exists():
        raise DatasetError("file not found", where=str(path))
    if path.is_dir():
        raise DatasetError("is a folder, not an IDX file", where=str(path))
    try:
        raw = open(path, "rb")
    except OSError as e:
        raise DatasetError(f"cannot read the file: {e.strerror or e}", where=str(path)) from e
    with raw:
        try:
            gz = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
        except OSError as e:
            raise DatasetError(f"cannot read the file: {e.strerror or e}", where=str(path)) from e
        if not gz:
            try:
                return _read_stream(raw, path, limit, os.fstat(raw.fileno()).st_size)
            except OSError as e:
                raise DatasetError(f"cannot read the file: {e.strerror or e}", where=str(path)) from e
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_stream(stream, path, limit, None)
        except (OSError, EOFError, zlib.error) as e:
            # EOFError: the compressed stream ends early, i.e. a partial download
            raise DatasetError(f"the gzip data is truncated or corrupt ({e})", where=str(path)) from e


def _read_stream(f: BinaryIO, path: Path, limit: int, file_size: int | None) -> np.ndarray:
    """The array from the open (possibly decompressing) stream ``f``; ``file_size`` is the
    size of an uncompressed file, known before reading its data."""
    magic = _read_exactly(f, 4)
    if len(magic) < 4:
        raise DatasetError(f"not an IDX file: it holds only {len(magic)} bytes, fewer than the 4-byte magic "
                           "number", where=str(path))
    if magic[0] != 0 or magic[1] != 0:
        raise DatasetError(f"not an IDX file: it should start with the bytes 00 00, but starts with "
                           f"{magic.hex(' ')}", where=str(path))
    kind, ndim = magic[2], magic[3]
    if kind != 0x08:
        what = _TYPE_NAMES.get(kind, "an unknown type")
        raise DatasetError(f"IDX element type byte is 0x{kind:02X} ({what}); only 0x08 (unsigned byte, "
                           "as in MNIST) is supported", where=str(path))
    if ndim == 0:
        raise DatasetError("corrupt IDX header: it declares 0 dimensions", where=str(path))
    header = 4 + 4 * ndim
    dim_bytes = _read_exactly(f, 4 * ndim)
    if len(dim_bytes) < 4 * ndim:
        raise DatasetError(f"corrupt IDX header: it declares {ndim} dimensions, which need a {header}-byte "
                           f"header, but the file holds only {4 + len(dim_bytes)} bytes", where=str(path))
    dims = struct.unpack(f">{ndim}I", dim_bytes)
    expected = math.prod(dims)  # Python ints: a corrupt header cannot overflow the product
    what = "pixel data" if ndim >= 3 else "label data" if ndim == 1 else "data"
    if expected > limit:
        raise DatasetError(f"corrupt or unsupported IDX header: shape {list(dims)} claims {expected:,} bytes "
                           f"of {what}, more than the {limit:,} bytes this loader accepts", where=str(path))

    def wrong_size(found: int | str) -> DatasetError:
        problem = "longer than its header says" if isinstance(found, str) or found > expected else "truncated"
        return DatasetError(f"IDX file is {problem}: expected {expected} bytes of {what} after the "
                            f"{header}-byte header (shape {list(dims)}), found {found}", where=str(path))

    if file_size is not None and file_size - header != expected:  # a plain file says so before reading
        raise wrong_size(file_size - header)
    data = np.empty(expected, dtype=np.uint8)
    found = _read_into(f, data)
    if found < expected:
        raise wrong_size(found)
    if f.read(1):  # one byte more than promised is enough to refuse; the rest is never inflated
        raise wrong_size(f"more than {expected}")
    return data.reshape(dims)


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n:
        part = f.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_into(f: BinaryIO, out: np.ndarray) -> int:
    """Fill ``out`` from ``f`` in chunks; the number of bytes read (short at the end of the stream)."""
    view = memoryview(out)
    got = 0
    while got < len(out):
        n = f.readinto(view[got : got + _CHUNK])
        if not n:
            break
        got += n
    return got


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, H, W]`` and labels ``[N]`` from two IDX files, as ``x`` float32
    ``[N, 1, H, W]`` in [0, 1] and ``y`` int64 ``[N]``. Raises ``DatasetError`` when a file
    has the wrong number of dimensions (e.g. the two are swapped) or the counts differ."""
    img = read_idx(images)
    lab = read_idx(labels)
    if img.ndim != 3:
        hint = " (is it a labels file? images and labels may be swapped)" if img.ndim == 1 else ""
        raise DatasetError(f"an IDX images file has 3 dimensions [N, H, W], this one has {img.ndim} "
                           f"{list(img.shape)}{hint}", where=str(images))
    if lab.ndim != 1:
        hint = " (is it an images file? images and labels may be swapped)" if lab.ndim == 3 else ""
        raise DatasetError(f"an IDX labels file has 1 dimension [N], this one has {lab.ndim} "
                           f"{list(lab.shape)}{hint}", where=str(labels))
    if len(img) != len(lab):
        raise DatasetError(f"{len(img)} images in {images.name} but {len(lab)} labels in {labels.name}; "
                           "the counts must be equal", where=str(labels))
    if len(img) == 0:
        raise DatasetError("the IDX images file holds no images", where=str(images))
    x = (img.astype(np.float32) / 255.0)[:, None, :, :]
    return x, lab.astype(np.int64)


def load_idx(images: Path, labels: Path) -> RawData:
    """``idx``: one IDX images file and one IDX labels file; classes ``0 .. max label``.
    ``x`` float32 ``[N, 1, H, W]``."""
    x, y = read_idx_pair(images, labels)
    n_classes = int(y.max()) + 1
    h, w = x.shape[2:]
    return RawData(x, y, [str(i) for i in range(n_classes)],
                   f"IDX files {images.name} and {labels.name}: {len(x):,} images of {h}x{w} pixels, "
                   f"{n_classes} classes", image=True)


def load_mnist(folder: Path, fashion: bool = False) -> RawData:
    """``mnist`` / ``fashion_mnist``: a folder with the four standard IDX files, each
    possibly gzipped; the t10k pair is the test split. ``x`` float32 ``[N, 1, 28, 28]``.
    Files missing from the folder (made if its parent exists) are downloaded from the
    standard mirrors where the network allows. Raises ``DatasetError`` naming the folder,
    the missing files and what it holds, or the download that failed."""
    title = "Fashion-MNIST" if fashion else "MNIST"
    folder = Path(folder)
    missing = _missing_mnist_files(folder)
    failed = ""
    if missing and folder.parent.is_dir():  # fetch what is missing where the network allows
        existed = folder.is_dir()
        try:
            download_files(folder, missing, title)
        except DatasetError as e:
            failed = e.message
            if not existed and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # made for the download: leave nothing behind
    files = _find_mnist_files(folder, title, failed)
    x, y = read_idx_pair(files[0], files[1])
    tx, ty = read_idx_pair(files[2], files[3])
    for labels, lab in ((files[1], y), (files[3], ty)):
        if lab.max() > 9:
            raise DatasetError(f"{title} labels are 0 to 9, this file holds the label {int(lab.max())}",
                               where=str(labels))
    if x.shape[1:] != tx.shape[1:]:
        raise DatasetError(f"training images are {list(x.shape[2:])} but test images {list(tx.shape[2:])}",
                           where=str(folder))
    classes = FASHION_CLASSES if fashion else [str(i) for i in range(10)]
    what = "clothing items" if fashion else "handwritten digits"
    h, w = x.shape[2:]
    return RawData(x, y, list(classes),
                   f"{title}: {len(x):,} training and {len(tx):,} test images of {what}, {h}x{w} grayscale",
                   test=(tx, ty), image=True)


def _find_mnist_files(folder: Path, title: str, failed: str = "") -> list[Path]:
    """The four files; else a ``DatasetError`` that says what is missing, and why the
    download (``failed``) did not fetch it."""
    after = f"; downloading them failed: {failed}" if failed else ""
    if not folder.exists():
        raise DatasetError(f"folder not found (dataset {title} needs a folder with the four IDX files "
                           + ", ".join(MNIST_FILES) + ")" + after, where=str(folder))
    if not folder.is_dir():
        raise DatasetError(f"is a file, not a folder; {title} needs a folder with the four IDX files "
                           + ", ".join(MNIST_FILES), where=str(folder))
    # torchvision downloads into <root>/MNIST/raw; accept that layout too
    sub = "FashionMNIST" if title == "Fashion-MNIST" else "MNIST"
    for place in (folder, folder / "raw", folder / sub / "raw"):
        found = [_find_one(place, name) for name in MNIST_FILES]
        if all(found):
            return found  # type: ignore[return-value]
    found = [_find_one(folder, name) for name in MNIST_FILES]
    missing = [name for name, f in zip(MNIST_FILES, found) if f is None]
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    listing = ", ".join(entries[:12]) + (f" and {len(entries) - 12} more" if len(entries) > 12 else "")
    message = (f"the {title} folder lacks " + ", ".join(missing) + " (each may also end in .gz); "
               + (f"it holds: {listing}" if entries else "it is empty"))
    if found[2] and found[3] and not found[0] and not found[1]:
        message += (f". Only the t10k (test) pair is here: to train on it, use the dataset 'idx' with "
                    f"images {found[2].name} and labels {found[3].name}")
    raise DatasetError(message + after, where=str(folder))


def _missing_mnist_files(folder: Path) -> list[str]:
    """The standard names not found in ``folder`` (nor in torchvision's layouts)."""
    if folder.exists() and not folder.is_dir():
        return []  # _find_mnist_files says what is wrong
    places = (folder, folder / "raw", folder / "MNIST" / "raw", folder / "FashionMNIST" / "raw")
    if any(all(_find_one(p, n) for n in MNIST_FILES) for p in places):
        return []
    return [n for n in MNIST_FILES if not _find_one(folder, n)]


def _find_one(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder``, plain or gzipped, also in the spelling with a dot before
    ``idx`` (``train-images.idx3-ubyte``) that some mirrors use."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        p = folder / candidate
        if p.is_file():
            return p
    return None
