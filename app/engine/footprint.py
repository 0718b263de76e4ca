"""How much memory training a model takes, and how much the machine has (no torch here:
``check`` uses this without importing it).

The estimate, in bytes, for float32 training: the parameters, their gradients, the
optimizer's state (SGD with momentum and RMSprop one tensor per parameter, Adam and
AdamW two), and every node's output for a minibatch, kept for the backward pass, plus
its gradient. It is a lower bound (no allocator slack, no framework workspace); a model
above the memory available cannot train. Every size is a Python int, so that shapes
of any size give a number, never an overflow.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .optimizers import optimizer_states

if TYPE_CHECKING:  # for annotations only: the estimate needs no layers (nor torch) of its own
    from .inference import Analysis

BYTES_PER_VALUE = 4  # float32
RUNTIME_BYTES = 512 * 1000**2  # torch and the interpreter themselves, before any tensor


@dataclass(frozen=True)
class Footprint:
    parameters: int
    gradients: int
    optimizer: int
    activations: int
    batch: int
    heaviest: str = ""  # the node that takes the most of it, with its share, for the message

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations

    @property
    def needed(self) -> int:
        """What training needs beyond the estimate's lower bound: a fifth more for the
        allocator's slack and framework workspaces, and the runtime itself."""
        return self.total * 6 // 5 + RUNTIME_BYTES

    def describe(self) -> str:
        return (f"{describe_bytes(self.total)} (parameters {describe_bytes(self.parameters)}, gradients "
                f"{describe_bytes(self.gradients)}, optimizer state {describe_bytes(self.optimizer)}, "
                f"activations {describe_bytes(self.activations)} for a batch of {self.batch})"
                + (f"; most of it {self.heaviest}" if self.heaviest else ""))


def estimate(analysis: Analysis, settings: dict, batch: int | None = None) -> Footprint:
    """The training footprint of ``analysis``'s graph with ``settings`` (optimizer,
    momentum, batch_size); ``batch``: the minibatch size when known better than the
    setting (a dataset smaller than the batch)."""
    params = sum(int(n) for n in analysis.param_counts.values())
    states = optimizer_states(settings)
    batch = max(1, int(batch if batch is not None else settings.get("batch_size") or 1))
    values = 0
    per_node: dict[str, int] = {}
    for node, shape in analysis.shapes.items():
        if shape:
            values += _product(shape)
            per_node[node] = 2 * _product(shape) * batch
    for node, count in analysis.param_counts.items():
        per_node[node] = per_node.get(node, 0) + int(count) * (2 + states)
    size = BYTES_PER_VALUE
    total = (params * (2 + states) + 2 * values * batch) * size
    heaviest = ""
    if per_node and total:
        node = max(per_node, key=per_node.get)
        heaviest = f"for node {node!r} ({per_node[node] * size * 100 // total} %)"
    return Footprint(params * size, params * size, params * size * states, 2 * values * batch * size, batch,
                     heaviest)


def _product(shape) -> int:
    total = 1
    for d in shape:
        total *= int(d) if isinstance(d, int) else 1
    return total


# -- what the machine has ------------------------------------------------------------------
def available_memory(device: str) -> tuple[int | None, str]:
    """(bytes free for ``device`` or None when unknown, what was measured). ``device`` as
    in the training settings: auto, cpu, cuda, cuda:N, mps. CUDA memory comes from NVML
    (the driver's library, through ctypes) where it is installed; ``auto`` means the
    first GPU when NVML finds one, else the CPU."""
    if device.startswith("cuda") or device == "auto":
        index = int(device.split(":", 1)[1]) if device.startswith("cuda:") else 0
        free = gpu_free_memory(index)
        if free is not None:
            return free, f"free memory of GPU {index} (NVML)"
        if device != "auto":
            return None, f"memory of GPU {index} (unknown: NVML is not available)"
    return system_available_memory(), "available memory (RAM)"


def system_available_memory() -> int | None:
    """Bytes of RAM available to a new allocation: MemAvailable from /proc/meminfo, else
    the free pages the system reports, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class _NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def gpu_free_memory(index: int) -> int | None:
    """Free bytes of CUDA device ``index`` (as CUDA numbers them, after
    CUDA_VISIBLE_DEVICES) from NVML; None when NVML or the device is not there."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    chosen: int | bytes = index
    if visible is not None:
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if index >= len(entries):
            return None
        chosen = int(entries[index]) if entries[index].isdigit() else entries[index].encode()
    lib = _nvml()
    if lib is None:
        return None
    try:
        if lib.nvmlInit_v2() != 0:
            return None
    except (AttributeError, OSError):
        return None
    try:
        handle = ctypes.c_void_p()
        if isinstance(chosen, int):
            status = lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(chosen), ctypes.byref(handle))
        else:
            status = lib.nvmlDeviceGetHandleByUUID(ctypes.c_char_p(chosen), ctypes.byref(handle))
        if status != 0:
            return None
        memory = _NvmlMemory()
        if lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) != 0:
            return None
        return int(memory.free)
    except (AttributeError, OSError):
        return None
    finally:
        try:
            lib.nvmlShutdown()
        except (AttributeError, OSError):
            pass


def _nvml():
    for name in ("libnvidia-ml.so.1", "nvml.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


# -- the verdict ----------------------------------------------------------------------------
def too_big(footprint: Footprint, available: int | None, where: str) -> str | None:
    """A sentence saying the model will not fit, or None (it fits, or nothing is known)."""
    if available is None or footprint.needed <= available:
        return None
    return (f"training this model needs at least {footprint.describe()}; about "
            f"{describe_bytes(footprint.needed)} with a fifth more for workspaces and "
            f"{describe_bytes(RUNTIME_BYTES)} for the runtime, more than the {describe_bytes(available)} of "
            f"{where}; make the model or the batch smaller")


def check_warning(analysis: Analysis, settings: dict) -> str | None:
    """``check``'s warning when training will not fit the memory of the device the
    settings name (estimated with the settings' batch size), else None."""
    if not analysis.param_counts and not analysis.shapes:
        return None
    available, where = available_memory(str(settings.get("device") or "auto"))
    return too_big(estimate(analysis, settings), available, where)


_UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def describe_bytes(n: int) -> str:
    """``n`` bytes for people (decimal units: 3.1 TB), for any size of int."""
    n = int(n)
    if n < 1000:
        return f"{n} bytes"
    unit = 0
    scaled = n
    while scaled >= 1000 and unit < len(_UNITS) - 1:
        scaled //= 1000
        unit += 1
    if scaled >= 1000:  # beyond yottabytes: the order of magnitude is what matters
        return f"about 10^{_decimal_digits(n) - 1} bytes"
    return f"{n / 1000 ** unit:.1f} {_UNITS[unit]}"


def _decimal_digits(n: int) -> int:
    digits = max(1, int(n.bit_length() * 0.30102999566398120))  # log10(2); may be 1 short
    return digits + 1 if n >= 10 ** digits else digits
