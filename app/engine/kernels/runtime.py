"""Whether a Triton kernel can run for a tensor, decided without importing Triton early.

Triton kernels run on CUDA tensors, or on CPU tensors in Triton's interpreter when
``TRITON_INTERPRET=1`` was set before the kernel modules were imported (the tests do that
where there is no GPU). Everything else takes the PyTorch reference path.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import torch

MODES = ("auto", "on", "off")
# lets kernels="on" fuse a model that lives on the CPU (to run the fused graph in CI
# under TRITON_INTERPRET=1); never meant for real use: the interpreter is very slow
CPU_ENV = "NETCANVAS_KERNELS_CPU"


@lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when the ``triton`` package can be imported (it is only built for Linux)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def cpu_allowed(allow_cpu: bool | None = None) -> bool:
    """An explicit ``allow_cpu``, else the ``NETCANVAS_KERNELS_CPU=1`` environment switch."""
    if allow_cpu is not None:
        return allow_cpu
    return os.environ.get(CPU_ENV, "0") == "1"


def runs_triton(t: torch.Tensor) -> bool:
    """True when a Triton kernel can process ``t`` here: a CUDA tensor with Triton
    installed, or a CPU tensor under the interpreter. False means: use the reference."""
    if not triton_available():
        return False
    if t.is_cuda:
        return True
    return t.device.type == "cpu" and interpreting()


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"kernels must be one of {', '.join(MODES)}; received {mode!r}")
    return mode
