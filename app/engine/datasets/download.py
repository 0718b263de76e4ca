"""Fetching MNIST / Fashion-MNIST where the network allows it: the standard gzipped IDX
files from the usual https mirrors into the dataset's folder, each checked against its
published SHA-256 before it is kept. Without a network the loader's message says which
files to put there instead."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DatasetError
from ..files import atomic_write

MIRRORS = {
    "MNIST": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "Fashion-MNIST": ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                      "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"),
}
# SHA-256 of the standard .gz files, as published beside them (every mirror serves the same bytes)
SHA256 = {
    "MNIST": {
        "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "Fashion-MNIST": {
        "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
TIMEOUT = 15.0
MAX_BYTES = 40_000_000  # the largest standard file (Fashion-MNIST's training images) is 26.4 MB


def fetch(url: str, timeout: float) -> bytes:
    """The bytes at ``url``, at most ``MAX_BYTES`` + 1 of them (tests replace this function)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https mirrors
        return response.read(MAX_BYTES + 1)


def download_files(folder: Path, names: list[str], title: str) -> None:
    """Download ``NAME.gz`` for each of ``names`` into ``folder`` (made if its parent
    exists). Each file must have its published SHA-256 and is written atomically; anything
    else is refused. Raises ``DatasetError`` naming the file and the mirrors tried."""
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise DatasetError(f"cannot make the folder for the download: {e.strerror or e}", where=str(folder)) from e
    for name in names:
        errors = []
        expected = SHA256[title][name]
        for base in MIRRORS[title]:
            url = base + name + ".gz"
            if not url.startswith("https://"):
                errors.append(f"{url}: not fetched, only https mirrors are used")
                continue
            try:
                data = fetch(url, TIMEOUT)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
                continue
            if len(data) > MAX_BYTES:
                errors.append(f"{url}: larger than {MAX_BYTES:,} bytes, not the standard file")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                errors.append(f"{url}: the file's SHA-256 is {digest}, not the published {expected} "
                              "(a damaged or altered download; not kept)")
                continue
            try:
                atomic_write(folder / (name + ".gz"), data)
            except OSError as e:
                raise DatasetError(f"cannot write the downloaded file: {e.strerror or e}",
                                   where=str(folder / (name + ".gz"))) from e
            break
        else:
            raise DatasetError(f"could not download {name}.gz ({'; '.join(errors)}); without a network, "
                               f"put the {title} files there yourself")

