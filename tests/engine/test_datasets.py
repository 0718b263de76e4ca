"""Dataset loaders, splits, normalization, fitting to the Input, and minibatches."""

from __future__ import annotations

import gzip
import hashlib
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from app.engine.config import DATASET_FIELDS, defaults
from app.engine.datasets import (DATASET_NAMES, Dataset, batch_count, batches, describe, fit_to_input,
                                 load_dataset)
from app.engine.datasets.idx import MNIST_FILES, read_idx
from app.engine.datasets.sources import bilinear_matrix, load_digits, load_digits28
from app.engine.errors import DatasetError

MNIST_T10K = Path("/work/shared/data/mnist-t10k")


def settings(**kw) -> dict:
    return {**defaults(DATASET_FIELDS), **kw}


def load(**kw) -> Dataset:
    base_dir = kw.pop("base_dir", None)
    input_shape = kw.pop("input_shape", None)
    return load_dataset(settings(**kw), base_dir=base_dir, input_shape=input_shape)


def all_y(d: Dataset) -> torch.Tensor:
    return torch.cat([d.train.y, d.val.y, d.test.y])


def write_idx(path: Path, array: np.ndarray, gz: bool = False, type_byte: int = 0x08) -> Path:
    """An IDX file written by hand: magic 00 00 TT NN, big-endian dims, the bytes."""
    a = np.asarray(array, dtype=np.uint8)
    data = struct.pack(">BBBB", 0, 0, type_byte, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def images_and_labels(n: int, h: int = 4, w: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w)), np.arange(n) % 10


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = True) -> Path:
    folder.mkdir(exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        img, lab = images_and_labels(n, seed=n)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", img, gz=gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", lab, gz=not gz)  # a mix of both
    return folder


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_images(folder: Path, classes: dict[str, int], size=(6, 5), mode="L") -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (folder / name).mkdir(parents=True)
        for i in range(count):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / name / f"{i}.png")
    return folder


# ---------------------------------------------------------------- bundled and synthetic

def test_digits_shape_range_and_classes():
    raw = load_digits()
    assert raw.x.shape == (1797, 1, 8, 8) and raw.x.dtype == np.float32 and raw.image
    assert raw.x.min() == 0.0 and raw.x.max() == 1.0
    assert raw.y.dtype == np.int64 and sorted(set(raw.y.tolist())) == list(range(10))
    d = load(name="digits")
    assert d.sample_shape == (1, 8, 8) and len(all_y(d)) == 1797 and d.class_names == [str(i) for i in range(10)]


def test_digits28_is_bilinear_20x20_centred_in_28x28():
    small, raw = load_digits(), load_digits28()
    assert raw.x.shape == (1797, 1, 28, 28) and raw.x.dtype == np.float32
    expected = torch.nn.functional.interpolate(torch.from_numpy(small.x), size=(20, 20), mode="bilinear",
                                               align_corners=False)
    np.testing.assert_allclose(raw.x[:, :, 4:24, 4:24], expected.numpy(), atol=1e-6)
    border = raw.x.copy()
    border[:, :, 4:24, 4:24] = 0
    assert not border.any() and 0.0 <= raw.x.min() and raw.x.max() <= 1.0
    assert np.allclose(bilinear_matrix(8, 20).sum(axis=1), 1.0)


def test_iris():
    d = load(name="iris", normalize=False)
    assert d.sample_shape == (4,) and len(all_y(d)) == 150
    assert d.class_names == ["setosa", "versicolor", "virginica"]
    assert describe(d)["split_sizes"] == {"train": 108, "val": 12, "test": 30}


@pytest.mark.parametrize("name", ["xor", "moons", "spirals"])
def test_synthetic_sets_are_seeded(name):
    a = load(name=name, samples=100, noise=0.05, seed=3, normalize=False)
    b = load(name=name, samples=100, noise=0.05, seed=3, normalize=False)
    c = load(name=name, samples=100, noise=0.05, seed=4, normalize=False)
    assert a.sample_shape == (2,) and len(all_y(a)) == 100 and a.num_classes == 2
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)
    assert len(all_y(load(name=name))) == 200  # the default number of samples
    counts = torch.bincount(all_y(a))
    assert counts.tolist() == [50, 50]


def test_xor_labels_are_xor_of_the_corner():
    d = load(name="xor", samples=40, noise=0.0, normalize=False, test_fraction=0.0, validation_fraction=0.0)
    x, y = d.train.x, d.train.y
    corners = x.round().long()
    assert torch.equal(x, corners.float())
    assert torch.equal(y, corners[:, 0] ^ corners[:, 1])


def test_unknown_dataset_and_missing_setting():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'"):
        load(name="cifar")
    with pytest.raises(DatasetError, match="needs path"):
        load(name="csv")


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair(tmp_path, gz):
    img, lab = images_and_labels(25, 5, 3)
    lab = lab % 4
    d = load(name="idx", images=str(write_idx(tmp_path / "img.idx3", img, gz)),
             labels=str(write_idx(tmp_path / "lab.idx1", lab, gz)), normalize=False)
    assert d.sample_shape == (1, 5, 3) and d.image and d.class_names == ["0", "1", "2", "3"]
    assert len(all_y(d)) == 25 and d.train.x.min() >= 0 and d.train.x.max() <= 1
    raw = read_idx(tmp_path / ("img.idx3.gz" if gz else "img.idx3"))
    assert raw.shape == (25, 5, 3) and np.array_equal(raw, img)


def test_idx_relative_paths_resolve_against_base_dir(tmp_path):
    img, lab = images_and_labels(12)
    write_idx(tmp_path / "a", img)
    write_idx(tmp_path / "b", lab)
    assert len(all_y(load(name="idx", images="a", labels="b", base_dir=tmp_path))) == 12


def test_idx_errors(tmp_path):
    img, lab = images_and_labels(10)
    good_img, good_lab = write_idx(tmp_path / "img", img), write_idx(tmp_path / "lab", lab)

    def idx(images, labels):
        return load(name="idx", images=str(images), labels=str(labels))

    with pytest.raises(DatasetError, match="missing.*file not found"):
        idx(tmp_path / "missing", good_lab)
    bad = tmp_path / "bad_magic"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(DatasetError, match="bad_magic: not an IDX file.*89 50 4e 47"):
        idx(bad, good_lab)
    floats = write_idx(tmp_path / "floats", img, type_byte=0x0D)
    with pytest.raises(DatasetError, match=r"floats: IDX element type byte is 0x0D \(float32\)"):
        idx(floats, good_lab)
    short_header = tmp_path / "short_header"
    short_header.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DatasetError, match="short_header: corrupt IDX header"):
        idx(short_header, good_lab)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good_img.read_bytes()[:16 + 100])
    with pytest.raises(DatasetError, match=r"truncated: IDX file is truncated: expected 160 bytes of pixel data "
                                           r"after the 16-byte header \(shape \[10, 4, 4\]\), found 100"):
        idx(truncated, good_lab)
    long = tmp_path / "long"
    long.write_bytes(good_lab.read_bytes() + b"\x00")
    with pytest.raises(DatasetError, match="long: IDX file is longer than its header says: expected 10 bytes of label"):
        idx(good_img, long)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(good_img.read_bytes())[:40])
    with pytest.raises(DatasetError, match="broken.gz: the gzip data is truncated or corrupt"):
        idx(broken_gz, good_lab)
    few = write_idx(tmp_path / "few", lab[:7])
    with pytest.raises(DatasetError, match="10 images in img but 7 labels in few"):
        idx(good_img, few)
    with pytest.raises(DatasetError, match="labels file has 1 dimension.*swapped"):
        idx(good_img, good_img)
    with pytest.raises(DatasetError, match="images file has 3 dimensions.*swapped"):
        idx(good_lab, good_lab)


def test_real_mnist_test_set():
    if not MNIST_T10K.is_dir():
        pytest.skip(f"the MNIST t10k files are not here: {MNIST_T10K}")
    d = load(name="idx", images="t10k-images-idx3-ubyte.gz", labels="t10k-labels-idx1-ubyte.gz",
             base_dir=MNIST_T10K, normalize=False)
    y = all_y(d)
    assert len(y) == 10_000 and d.sample_shape == (1, 28, 28) and d.image
    assert d.class_names == [str(i) for i in range(10)] and int(y.min()) == 0 and int(y.max()) == 9
    counts = torch.bincount(y).tolist()
    assert sum(counts) == 10_000 and all(850 <= c <= 1200 for c in counts), counts
    assert float(d.train.x.min()) == 0.0 and float(d.train.x.max()) == 1.0
    assert 0.1 < float(d.train.x.mean()) < 0.15  # MNIST's mean pixel is about 0.13


# ---------------------------------------------------------------- MNIST folders

def test_mnist_folder_uses_t10k_as_test_split(tmp_path):
    folder = write_mnist(tmp_path / "mnist")
    d = load(name="mnist", path=str(folder))
    assert describe(d)["split_sizes"] == {"train": 27, "val": 3, "test": 10}
    assert d.sample_shape == (1, 4, 4) and d.class_names == [str(i) for i in range(10)]
    f = load(name="fashion_mnist", path="mnist", base_dir=tmp_path)
    assert f.class_names[0] == "T-shirt/top" and f.class_names[9] == "Ankle boot"


def test_mnist_folder_in_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "MNIST", gz=False)
    (tmp_path / "MNIST").rename(tmp_path / "raw")
    (tmp_path / "data" / "MNIST").mkdir(parents=True)
    (tmp_path / "raw").rename(tmp_path / "data" / "MNIST" / "raw")
    assert len(load(name="mnist", path=str(tmp_path / "data")).test) == 10


def test_mnist_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: folder not found"):
        load(name="mnist", path=str(tmp_path / "nowhere"))
    folder = write_mnist(tmp_path / "m")
    (folder / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as e:
        load(name="mnist", path=str(folder))
    message = str(e.value)
    assert str(folder) in message and "lacks train-images-idx3-ubyte" in message
    assert "it holds: t10k-images-idx3-ubyte.gz" in message and "dataset 'idx'" not in message
    (folder / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="Only the t10k \\(test\\) pair is here.*use the dataset 'idx'"):
        load(name="mnist", path=str(folder))


# ---------------------------------------------------------------- CSV

def test_csv_with_header_and_default_label_column(tmp_path):
    rows = "\n".join(f"{i % 3},{i},{2 * i}" for i in range(20))
    path = write_csv(tmp_path / "train.csv", "label,a,b\n" + rows + "\n\n")
    d = load(name="csv", path=str(path), normalize=False, test_fraction=0, validation_fraction=0)
    assert d.sample_shape == (2,) and d.class_names == ["0", "1", "2"]
    order = torch.argsort(d.train.x[:, 0])
    assert torch.equal(d.train.x[order, 1], 2 * d.train.x[order, 0])
    assert torch.equal(d.train.y[order], torch.arange(20) % 3)


def test_csv_without_header_label_by_index_and_name(tmp_path):
    path = write_csv(tmp_path / "t.csv", "".join(f"{i}.5,{i % 2}\n" for i in range(10)))
    d = load(name="csv", path=str(path), label_column=1, normalize=False)
    assert d.sample_shape == (1,) and d.num_classes == 2
    with pytest.raises(DatasetError, match="label_column 'y' is a column name, but the file has no header"):
        load(name="csv", path=str(path), label_column="y")
    with pytest.raises(DatasetError, match="label_column 2 is out of range: the file has 2 columns"):
        load(name="csv", path=str(path), label_column=2)
    named = write_csv(tmp_path / "n.csv", "x;y\n" + "".join(f"{i};{i % 2}\n" for i in range(10)))
    assert load(name="csv", path=str(named), label_column="y").num_classes == 2  # ; separated
    with pytest.raises(DatasetError, match="label_column 'z' is not a column of the header; it has x, y"):
        load(name="csv", path=str(named), label_column="z")


def test_csv_quoted_crlf_and_plain_files_read_the_same(tmp_path):
    # quotes and \r line ends take the csv module's path, the plain file numpy's: same table
    plain = write_csv(tmp_path / "plain.csv", "y,a,b\n" + "".join(f"{i % 2},{i}.25,{-i}\n" for i in range(8)))
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(("\ufeff\"y\",\"a\",\"b\"\r\n" + "".join(f"\"{i % 2}\",{i}.25,\"{-i}\"\r\n"
                                                                for i in range(8))).encode())
    old_mac = tmp_path / "cr.csv"
    old_mac.write_bytes(plain.read_bytes().replace(b"\n", b"\r"))
    a, b, c = (load(name="csv", path=str(p), normalize=False) for p in (plain, quoted, old_mac))
    for other in (b, c):
        assert torch.equal(a.train.x, other.train.x) and torch.equal(a.test.y, other.test.y)
    assert "label column 'y'" in b.description


def test_csv_labels_are_mapped_only_when_not_0_to_max(tmp_path):
    path = write_csv(tmp_path / "t.csv", "".join(f"{[3, 7, 12][i % 3]},{i}\n" for i in range(9)))
    d = load(name="csv", path=str(path), normalize=False, test_fraction=0, validation_fraction=0)
    assert d.class_names == ["3", "7", "12"] and sorted(d.train.y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert "mapped to classes 0 to 2" in d.description
    order = torch.argsort(d.train.x[:, 0])
    assert d.train.y[order].tolist() == [0, 1, 2] * 3


def test_csv_errors_name_line_and_column(tmp_path):
    text = "label,a,b\n0,1,2\n\n1,3,x\n"
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DatasetError, match=r"bad.csv: line 4, column index 2 \('b'\): 'x' is not a number"):
        load(name="csv", path=str(path))
    path = write_csv(tmp_path / "empty_cell.csv", "0,1\n1,\n")
    with pytest.raises(DatasetError, match=r"line 2, column index 1: an empty cell is not a number"):
        load(name="csv", path=str(path))
    path = write_csv(tmp_path / "nan.csv", "0,1\n1,nan\n")
    with pytest.raises(DatasetError, match=r"line 2, column index 1: 'nan' is not a finite number"):
        load(name="csv", path=str(path))
    path = write_csv(tmp_path / "neg.csv", "label,a\n0,1\n-1,2\n")
    with pytest.raises(DatasetError, match=r"neg.csv: line 3, column index 0 \('label'\): the label '-1' is negative"):
        load(name="csv", path=str(path))
    path = write_csv(tmp_path / "float.csv", "a,label\n1,0\n2,1\n3,2.5\n")
    with pytest.raises(DatasetError, match=r"line 4, .*the label '2.5' is not a whole number"):
        load(name="csv", path=str(path), label_column="label")
    path = write_csv(tmp_path / "ragged.csv", "a,b\n1,2\n3\n")
    with pytest.raises(DatasetError, match="line 3 has 1 columns, but the header row has 2"):
        load(name="csv", path=str(path))
    with pytest.raises(DatasetError, match="the CSV file is empty"):
        load(name="csv", path=str(write_csv(tmp_path / "e.csv", "\n\n")))
    with pytest.raises(DatasetError, match="header row but no data rows"):
        load(name="csv", path=str(write_csv(tmp_path / "h.csv", "a,b\n")))
    with pytest.raises(DatasetError, match="nope.csv: file not found"):
        load(name="csv", path=str(tmp_path / "nope.csv"))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DatasetError, match="bin.csv: not a UTF-8 text file"):
        load(name="csv", path=str(tmp_path / "bin.csv"))


# ---------------------------------------------------------------- image folders

def test_image_folder(tmp_path):
    folder = write_images(tmp_path / "pics", {"dog": 4, "cat": 3})
    d = load(name="image_folder", path=str(folder), normalize=False, test_fraction=0, validation_fraction=0)
    assert d.class_names == ["cat", "dog"] and d.sample_shape == (1, 5, 6) and d.image
    assert d.class_counts() == [3, 4] and 0 <= float(d.train.x.min()) and float(d.train.x.max()) <= 1


def test_image_folder_converts_and_resizes_to_the_input(tmp_path):
    folder = write_images(tmp_path / "pics", {"a": 3, "b": 3}, size=(6, 5), mode="RGB")
    assert load(name="image_folder", path=str(folder)).sample_shape == (3, 5, 6)
    d = load(name="image_folder", path=str(folder), input_shape=(1, 8, 8))
    assert d.sample_shape == (1, 8, 8)
    assert load(name="image_folder", path=str(folder), input_shape=(3, 4, 4)).sample_shape == (3, 4, 4)


def test_image_folder_palette_images_with_transparency(tmp_path):
    from PIL import Image

    for k, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(2):
            img = Image.fromarray(np.full((4, 4), 10 * (i + k), dtype=np.uint8), "L").convert("P")
            img.save(tmp_path / name / f"{i}.png", transparency=bytes([0] * 3 + [255] * 253))
    assert load(name="image_folder", path=str(tmp_path)).sample_shape == (4, 4, 4)  # RGBA
    assert load(name="image_folder", path=str(tmp_path), input_shape=(1, 4, 4)).sample_shape == (1, 4, 4)


def test_image_folder_errors(tmp_path):
    from PIL import Image

    folder = write_images(tmp_path / "pics", {"a": 2, "b": 2})
    Image.new("L", (9, 9)).save(folder / "b" / "z.png")
    with pytest.raises(DatasetError, match=r"z.png: is 9x9 pixels, but the first image a/0.png is 6x5"):
        load(name="image_folder", path=str(folder))
    assert load(name="image_folder", path=str(folder), input_shape=(1, 5, 6)).sample_shape == (1, 5, 6)
    Image.new("RGB", (6, 5)).save(folder / "b" / "z.png")
    with pytest.raises(DatasetError, match=r"z.png: is RGB, but the first image a/0.png is grayscale"):
        load(name="image_folder", path=str(folder))
    (folder / "b" / "z.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=r"z.png: cannot read the image"):
        load(name="image_folder", path=str(folder))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: holds no class sub-folders"):
        load(name="image_folder", path=str(tmp_path / "empty"))
    (tmp_path / "empty" / "c").mkdir()
    with pytest.raises(DatasetError, match="the class folder 'c' holds no images"):
        load(name="image_folder", path=str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="missing: folder not found"):
        load(name="image_folder", path=str(tmp_path / "missing"))


def test_third_party_failures_become_dataset_errors(monkeypatch):
    import sklearn.datasets

    def broken():
        raise RuntimeError("bundled file damaged")

    monkeypatch.setattr(sklearn.datasets, "load_iris", broken)
    with pytest.raises(DatasetError, match="dataset 'iris'.*RuntimeError: bundled file damaged"):
        load(name="iris")


# ---------------------------------------------------------------- splits and normalization

def test_splits_are_deterministic_disjoint_and_complete(tmp_path):
    # the single feature is the row's own number, so each sample can be traced
    path = write_csv(tmp_path / "ids.csv", "".join(f"{i % 4},{i}\n" for i in range(100)))

    def ids(seed):
        d = load(name="csv", path=str(path), normalize=False, seed=seed, test_fraction=0.2,
                 validation_fraction=0.25)
        return [sorted(s.x[:, 0].long().tolist()) for s in (d.train, d.val, d.test)]

    train, val, test = ids(0)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert sorted(train + val + test) == list(range(100))
    assert ids(0) == [train, val, test] and ids(1) != [train, val, test]


def test_normalization_uses_training_statistics():
    d = load(name="digits28")
    x = d.train.x
    # one mean and std per channel, stored at full sample shape so they reshape with samples
    assert d.mean.shape == (1, 28, 28) and torch.unique(d.mean).numel() == 1
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    iris = load(name="iris")
    assert torch.allclose(iris.train.x.mean(0), torch.zeros(4), atol=1e-5)
    assert torch.allclose(iris.train.x.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    assert not torch.allclose(iris.test.x.mean(0), torch.zeros(4), atol=1e-5)  # test set: train's statistics
    raw = load(name="iris", normalize=False)
    assert raw.mean is None and float(raw.train.x.min()) > 0


# ---------------------------------------------------------------- fitting to the Input

def test_fit_to_input_reshapes_flat_and_shaped(tmp_path):
    d = load(name="digits28", input_shape=(784,))
    assert d.sample_shape == (784,) and "reshaped" in d.notes[0] and d.mean.shape == (784,)
    back = fit_to_input(d, (1, 28, 28))
    assert back.sample_shape == (1, 28, 28) and torch.equal(back.train.x.reshape(len(d.train), -1), d.train.x)
    path = write_csv(tmp_path / "flat.csv", "".join(f"{i % 2}," + ",".join(["1"] * 16) + "\n" for i in range(10)))
    assert load(name="csv", path=str(path), input_shape=(1, 4, 4)).sample_shape == (1, 4, 4)


def test_fit_to_input_error_hints_at_digits28():
    with pytest.raises(DatasetError) as e:
        load(name="digits", input_shape=(1, 28, 28))
    message = str(e.value)
    assert "[1, 8, 8]" in message and "[1, 28, 28]" in message and "digits28" in message
    with pytest.raises(DatasetError, match="Input 'img' expects \\[3, 28, 28\\]"):
        load_dataset(settings(name="digits28"), input_shape=(3, 28, 28), input_id="img")


# ---------------------------------------------------------------- batches and describe

def test_batches_cover_every_sample_once_per_epoch():
    d = load(name="xor", samples=103, normalize=False, test_fraction=0, validation_fraction=0)
    g = torch.Generator().manual_seed(0)
    seen = [x for xb, _ in batches(d.train, 10, shuffle=True, generator=g) for x in xb.tolist()]
    assert len(seen) == 103 and sorted(map(tuple, seen)) == sorted(map(tuple, d.train.x.tolist()))
    assert seen != d.train.x.tolist()  # shuffled
    sizes = [len(xb) for xb, _ in batches(d.train, 10, shuffle=True, drop_last=True, generator=g)]
    assert sizes == [10] * 10 and batch_count(103, 10, True) == 10 and batch_count(103, 10, False) == 11
    plain = list(batches(d.train, 10))
    assert len(plain) == 11 and torch.equal(torch.cat([xb for xb, _ in plain]), d.train.x)
    for xb, yb in batches(d.train, 16, shuffle=True, generator=g):
        assert len(xb) == len(yb)


def test_describe():
    info = describe(load(name="iris"))
    assert info["name"] == "iris" and info["sample_shape"] == [4] and info["num_classes"] == 3
    assert info["class_names"] == ["setosa", "versicolor", "virginica"] and info["normalized"]
    assert sum(info["split_sizes"].values()) == 150
    assert [sum(c) for c in info["class_counts"].values()] == list(info["split_sizes"].values())
    assert set(DATASET_NAMES) >= {"digits", "csv", "idx"}


def test_missing_mnist_files_are_downloaded_where_the_network_allows(tmp_path, monkeypatch):
    from app.engine.datasets import download

    served = {name: (MNIST_T10K / f"t10k-{name.split('-', 1)[1]}.gz").read_bytes()
              for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    asked = []

    def fetch(url, timeout):
        asked.append(url)
        if "ossci" in url:  # the first mirror is down: the next one serves
            raise OSError("connection refused")
        return served[url.rsplit("/", 1)[1][:-3]]

    monkeypatch.setattr(download, "fetch", fetch)
    # the t10k files stand in for all four: checked against their own digests here
    monkeypatch.setitem(download.SHA256, "MNIST", {n: hashlib.sha256(d).hexdigest() for n, d in served.items()})
    folder = tmp_path / "mnist"  # not there yet: made for the download
    data = load_dataset({"name": "mnist", "path": str(folder)}, None, (1, 28, 28), "input")
    assert sorted(p.name for p in folder.iterdir()) == sorted(n + ".gz" for n in served)
    assert len(data.train) + len(data.val) == 10_000 and len(data.test) == 10_000
    assert len(asked) == 8 and all(u.endswith(".gz") for u in asked)


def test_without_a_network_the_mnist_message_names_the_files_and_the_failure(tmp_path):
    folder = tmp_path / "mnist"
    with pytest.raises(DatasetError) as e:
        load_dataset({"name": "mnist", "path": str(folder)}, None, (1, 28, 28), "input")
    assert "train-images-idx3-ubyte" in str(e.value) and "could not download" in str(e.value)
    assert "network is off" in str(e.value) and not folder.exists()  # nothing left behind


def test_a_truncated_download_is_not_kept(tmp_path, monkeypatch):
    from app.engine.datasets import download

    good = (MNIST_T10K / "t10k-labels-idx1-ubyte.gz").read_bytes()
    monkeypatch.setattr(download, "fetch", lambda url, timeout: good[: len(good) // 2])
    folder = tmp_path / "mnist"
    folder.mkdir()
    with pytest.raises(DatasetError, match="could not download"):
        load_dataset({"name": "mnist", "path": str(folder)}, None, (1, 28, 28), "input")
    assert list(folder.iterdir()) == []


def test_a_download_whose_checksum_differs_from_the_published_one_is_refused(tmp_path, monkeypatch):
    from app.engine.datasets import download

    # a complete, valid gzipped IDX file, but not byte for byte the published one
    real = (MNIST_T10K / "t10k-labels-idx1-ubyte.gz").read_bytes()
    tampered = gzip.compress(gzip.decompress(real)[:-1] + b"\x07")
    for served in (real, tampered):
        monkeypatch.setattr(download, "fetch", lambda url, timeout, data=served: data)
        folder = tmp_path / "mnist"
        folder.mkdir(exist_ok=True)
        with pytest.raises(DatasetError, match="SHA-256 is [0-9a-f]{64}, not the published "
                                               + download.SHA256["MNIST"]["train-images-idx3-ubyte"]):
            load_dataset({"name": "mnist", "path": str(folder)}, None, (1, 28, 28), "input")
        assert list(folder.iterdir()) == []  # nothing kept, no temporary file left


def test_downloads_use_https_mirrors_and_the_published_checksums_of_each_dataset(tmp_path, monkeypatch):
    from app.engine.datasets import download

    assert set(download.MIRRORS) == set(download.SHA256) == {"MNIST", "Fashion-MNIST"}
    for title, digests in download.SHA256.items():
        assert all(base.startswith("https://") for base in download.MIRRORS[title]), title
        assert sorted(digests) == sorted(MNIST_FILES)
        assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests.values())
    assert not set(download.SHA256["MNIST"].values()) & set(download.SHA256["Fashion-MNIST"].values())

    asked = []
    names = {n: f"{n} of Fashion-MNIST".encode() for n in MNIST_FILES}

    def fetch(url, timeout):
        asked.append(url)
        return names[url.rsplit("/", 1)[1][:-3]]

    monkeypatch.setattr(download, "fetch", fetch)
    monkeypatch.setitem(download.SHA256, "Fashion-MNIST",
                        {n: hashlib.sha256(d).hexdigest() for n, d in names.items()})
    download.download_files(tmp_path, list(MNIST_FILES), "Fashion-MNIST")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n + ".gz" for n in MNIST_FILES)
    assert len(asked) == 4 and all(u.startswith("https://") and "fashion-mnist" in u for u in asked)
    # a plain-http mirror is never asked, whatever the table says
    monkeypatch.setitem(download.MIRRORS, "Fashion-MNIST", ("http://example.invalid/",))
    asked.clear()
    with pytest.raises(DatasetError, match="http://example.invalid/t10k-images-idx3-ubyte.gz: not fetched, "
                                           "only https"):
        download.download_files(tmp_path / "f2", ["t10k-images-idx3-ubyte"], "Fashion-MNIST")
    assert asked == []


# ---------------------------------------------------------------- IDX files read as streams

def gz_bomb(header: bytes, zeros: int) -> bytes:
    """``header`` followed by ``zeros`` zero bytes, gzipped (a thousandfold smaller)."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    chunk = bytes(1 << 20)
    parts = [c.compress(header)]
    for _ in range(zeros // len(chunk)):
        parts.append(c.compress(chunk))
    parts.append(c.flush())
    return b"".join(parts)


def test_a_gzip_that_inflates_far_beyond_its_header_is_refused_without_inflating_it(tmp_path):
    # 10 labels promised, 64 MB of zeros behind them: a few hundred KB on disk
    bomb = tmp_path / "labels.gz"
    bomb.write_bytes(gz_bomb(struct.pack(">BBBBI", 0, 0, 8, 1, 10), 64 << 20))
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"labels.gz: IDX file is longer than its header says: expected "
                                               r"10 bytes of label data .* found more than 10"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak:,} bytes allocated to refuse it"  # inflating it whole takes 64 MB


def test_an_idx_header_claiming_an_unreasonable_size_is_refused_before_reading_data(tmp_path):
    from app.engine.datasets import idx

    huge = tmp_path / "huge.gz"  # [4e9, 28, 28]: 3 TB promised, a few bytes present
    huge.write_bytes(gzip.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, 4_000_000_000, 28, 28) + bytes(100)))
    with pytest.raises(DatasetError, match=r"huge.gz: corrupt or unsupported IDX header: shape "
                                           r"\[4000000000, 28, 28\] claims 3,136,000,000,000 bytes of pixel data, "
                                           r"more than the 1,073,741,824 bytes"):
        read_idx(huge)
    assert idx.MAX_IDX_BYTES == 2**30
    small = write_idx(tmp_path / "small", np.zeros((3, 4, 4)), gz=True)
    with pytest.raises(DatasetError, match="claims 48 bytes of pixel data, more than the 47 bytes"):
        read_idx(small, limit=47)
    assert read_idx(small, limit=48).shape == (3, 4, 4)


def test_gzipped_idx_files_shorter_or_longer_than_their_header_say_so(tmp_path):
    img, _ = images_and_labels(5)
    whole = write_idx(tmp_path / "img", img).read_bytes()
    short = tmp_path / "short.gz"
    short.write_bytes(gzip.compress(whole[:-7]))
    with pytest.raises(DatasetError, match=r"short.gz: IDX file is truncated: expected 80 bytes of pixel data "
                                           r"after the 16-byte header \(shape \[5, 4, 4\]\), found 73"):
        read_idx(short)
    long = tmp_path / "long.gz"
    long.write_bytes(gzip.compress(whole + b"\x01\x02"))
    with pytest.raises(DatasetError, match="long.gz: IDX file is longer than its header says.*found more than 80"):
        read_idx(long)
    exact = tmp_path / "exact.gz"
    exact.write_bytes(gzip.compress(whole))
    assert np.array_equal(read_idx(exact), img.astype(np.uint8))
    assert read_idx(exact).flags.writeable  # not a view of an immutable buffer


def test_digits_are_read_without_importing_scikit_learn_and_equal_its_own():
    import subprocess
    import sys

    code = ("import sys; from app.engine.datasets.sources import load_digits; r = load_digits(); "
            "print(r.x.shape, 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "(1797, 1, 8, 8) False"
    from sklearn.datasets import load_digits as sk_digits

    from app.engine.datasets.sources import load_digits

    ours, theirs = load_digits(), sk_digits()
    assert np.array_equal(ours.x.reshape(-1, 64) * 16, theirs.data.astype(np.float32))
    assert np.array_equal(ours.y, theirs.target)
