"""Test set-up: Qt without a screen, Triton on the CPU, quiet torch threads."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")
try:  # Triton kernels run in its interpreter where there is no GPU (set before they import)
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # the engine-without-Qt test runs parts of the suite in other interpreters
    pass


import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--fuzz", action="store_true", default=False,
                     help="run the full fuzz profile (tests/fuzz, about 21,000 cases)")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never reach the network: a dataset download fails at once, as offline."""
    import urllib.error

    try:
        from app.engine.datasets import download
    except ImportError:
        return

    def offline(url, timeout):
        raise urllib.error.URLError("the network is off in tests")

    monkeypatch.setattr(download, "fetch", offline)
