"""Compute devices: discover what this machine has, and resolve what the user asked for."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from .errors import DeviceError
from .lazy import LazyModule

torch = LazyModule("torch")  # loaded when devices are listed or resolved, not at the editor's start


@dataclass(frozen=True)
class DeviceInfo:
    """``id`` as torch spells it (``cpu``, ``cuda:0``, ``mps``), a name for people, and
    the memory in bytes where known."""

    id: str
    name: str
    memory: int | None = None
    kind: str = "cpu"

    def label(self) -> str:
        mem = f", {self.memory / 2**30:.0f} GiB" if self.memory else ""
        return f"{self.id}: {self.name}{mem}"


def list_devices() -> list[DeviceInfo]:
    """Every device torch can use here, best last: the CPU, each CUDA GPU, Apple's MPS."""
    found = [DeviceInfo("cpu", _cpu_name(), _system_memory(), "cpu")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append(DeviceInfo(f"cuda:{i}", props.name, props.total_memory, "cuda"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(DeviceInfo("mps", "Apple GPU (Metal)", None, "mps"))
    return found


def resolve_device(requested: str = "auto") -> torch.device:
    """The torch device for a setting: ``auto`` picks the first CUDA GPU, else MPS, else the
    CPU; ``cuda`` means ``cuda:0``. Raises ``DeviceError`` when the device is absent."""
    available = list_devices()
    ids = [d.id for d in available]
    if requested == "auto":
        for kind in ("cuda", "mps"):
            for d in available:
                if d.kind == kind:
                    return torch.device(d.id)
        return torch.device("cpu")
    wanted = "cuda:0" if requested == "cuda" else requested
    if wanted not in ids:
        raise DeviceError(
            f"device {requested!r} was asked for, but this machine has: {', '.join(ids)}",
            "training.device")
    return torch.device(wanted)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return (platform.processor() or platform.machine() or "CPU") + f" ({os.cpu_count()} cores)"


def _system_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
