"""Image folders: ``<path>/<class name>/<image>``, read with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import RawData

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Pillow mode for a channel count asked for by the model's Input [C, H, W]
_MODE_FOR_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_MODE_WORDS = {"L": "grayscale", "LA": "grayscale with alpha", "RGB": "RGB", "RGBA": "RGB with alpha",
               "I;16": "16-bit grayscale", "F": "32-bit float grayscale"}


def load_image_folder(folder: Path, input_shape: tuple[int, ...] | None = None) -> RawData:
    """``image_folder``: one sub-folder per class (sorted sub-folder names are the class
    names), images .png .jpg .jpeg .bmp .gif. With ``input_shape`` ``[C, H, W]`` (C of 1 to
    4) every image is converted (1: grayscale, 3: RGB) and resized to H x W; without it, all
    images must share the first one's size and mode. Returns ``x`` float32 ``[N, C, H, W]``
    in [0, 1]. Raises ``DatasetError`` naming the folder, or the file that cannot be read or
    does not match."""
    folder = Path(folder)
    files, y, class_names = _list_images(folder)
    target = None
    if input_shape is not None and len(input_shape) == 3 and input_shape[0] in _MODE_FOR_CHANNELS:
        target = (_MODE_FOR_CHANNELS[input_shape[0]], (int(input_shape[2]), int(input_shape[1])))
    first: tuple[str, tuple[int, int], Path] | None = None
    arrays = []
    for file in files:
        mode, size, a = _read(file, target)
        if first is None:
            first = (mode, size, file)
        elif (mode, size) != first[:2]:
            rel = first[2].relative_to(folder)
            if mode != first[0]:
                problem = (f"is {_MODE_WORDS.get(mode, mode)}, but the first image {rel} is "
                           f"{_MODE_WORDS.get(first[0], first[0])}")
            else:
                problem = (f"is {size[0]}x{size[1]} pixels, but the first image {rel} is "
                           f"{first[1][0]}x{first[1][1]}")
            raise DatasetError(f"{problem}; all images of a folder must match, or give the Input a shape "
                               "[C, H, W] (C = 1 grayscale, 3 RGB) to convert and resize them all",
                               where=str(file))
        arrays.append(a)
    x = np.stack(arrays)
    c, h, w = x.shape[1:]
    counts = np.bincount(y, minlength=len(class_names))
    return RawData(x, y, class_names,
                   f"image folder {folder.name}: {len(x):,} images of {c}x{h}x{w} in {len(class_names)} classes "
                   f"({min(counts)} to {max(counts)} per class)", image=True)


def _list_images(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    if not folder.exists():
        raise DatasetError("folder not found", where=str(folder))
    if not folder.is_dir():
        raise DatasetError("is a file; image_folder needs a folder with one sub-folder of images per class",
                           where=str(folder))
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        what = f"holds {len(loose)} images but no" if loose else "holds no"
        raise DatasetError(f"{what} class sub-folders; image_folder needs one sub-folder per class, e.g. "
                           f"{folder.name}/cat/1.png and {folder.name}/dog/2.png", where=str(folder))
    files: list[Path] = []
    labels: list[int] = []
    for k, c in enumerate(classes):
        mine = sorted(p for p in c.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not mine:
            raise DatasetError(f"the class folder {c.name!r} holds no images (" + " ".join(IMAGE_SUFFIXES) + ")",
                               where=str(folder))
        files += mine
        labels += [k] * len(mine)
    return files, np.array(labels, dtype=np.int64), [c.name for c in classes]


def _read(file: Path, target: tuple[str, tuple[int, int]] | None) -> tuple[str, tuple[int, int], np.ndarray]:
    """Mode, (width, height) and float32 ``[C, H, W]`` array in [0, 1] of one image."""
    from PIL import Image  # here: only this dataset needs Pillow, whose import delays every run's start

    try:
        with Image.open(file) as img:
            img.load()
            if target is not None:
                mode, size = target
                if img.mode in ("P", "PA") and "transparency" in img.info:
                    img = img.convert("RGBA")  # Pillow warns when going from there to L or RGB directly
                img = img.convert(mode)
                if img.size != size:
                    img = img.resize(size, Image.Resampling.BILINEAR)
            else:
                img = _canonical(img)
            mode, size = img.mode, img.size
            a = np.asarray(img)
    except DatasetError:
        raise
    except Exception as e:  # Pillow raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        raise DatasetError(f"cannot read the image: {type(e).__name__}: {e}", where=str(file)) from e
    if mode.startswith("I;16") or mode == "I":
        a = a.astype(np.float32) / 65535.0
        mode = "I;16"
    elif mode == "F":
        a = a.astype(np.float32)
    else:
        a = a.astype(np.float32) / 255.0
    if a.ndim == 2:
        a = a[None]
    else:
        a = np.moveaxis(a, -1, 0)  # Pillow gives [H, W, C]; torch wants [C, H, W]
    return mode, size, np.ascontiguousarray(a)


def _canonical(img):
    """The image in one of the modes we turn into arrays: L, LA, RGB, RGBA (or 16-bit and
    float grayscale, kept as they are)."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA", "F") or mode.startswith("I"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("P", "PA"):  # palette images (GIF, some PNGs): transparency keeps its alpha
        return img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    if mode == "La":
        return img.convert("LA")
    if mode in ("RGBa", "RGBX"):
        return img.convert("RGBA" if mode == "RGBa" else "RGB")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV
