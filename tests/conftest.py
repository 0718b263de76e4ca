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
