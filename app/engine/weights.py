"""Weights files: safetensors (and PyTorch state_dicts, read only with weights_only=True).

Tensor names are ``<node id>.<torch name>``, as the compiled module's state_dict names them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from .errors import WeightsError
from .files import atomic_write


def save_weights(module: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``module.state_dict()`` as safetensors, atomically. Returns the path."""
    return save_tensors(module.state_dict(), path, metadata)


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a state dict as safetensors (on the CPU, contiguous), atomically. Returns the path."""
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, st_save(plain, metadata=metadata))
    return Path(path)


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, or from a PyTorch file (``.pt``/``.pth``) read
    with ``weights_only=True`` so nothing in it runs. Raises ``WeightsError``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot be read: {e.strerror or e}", str(p)) from None
    if p.suffix in (".pt", ".pth", ".bin"):
        return _read_torch(p)
    try:
        return st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise WeightsError(f"is not a valid safetensors file ({e})", str(p)) from None


def _read_torch(p: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad or unsafe file
        raise WeightsError(f"cannot be read as a PyTorch state_dict: {e}", str(p)) from None
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError("does not hold a state_dict (a mapping of names to tensors)", str(p))
    return data


def apply_weights(module: nn.Module, tensors: dict[str, torch.Tensor], source: str = "weights") -> None:
    """Load ``tensors`` into ``module``. Raises ``WeightsError`` naming the first tensor that
    does not fit (missing, unexpected, or of another shape, with both shapes)."""
    expected = module.state_dict()
    for name, target in expected.items():
        if name not in tensors:
            raise WeightsError(f"has no tensor {name!r}, which the graph needs "
                               f"(shape {list(target.shape)})", source)
        got = tensors[name]
        if tuple(got.shape) != tuple(target.shape):
            raise WeightsError(f"tensor {name!r} has shape {list(got.shape)}, but the graph "
                               f"needs {list(target.shape)}", source)
    extra = [n for n in tensors if n not in expected]
    if extra:
        raise WeightsError(f"tensor {extra[0]!r} matches no parameter of the graph", source)
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name].to(target.dtype))


def load_weights(module: nn.Module, path: str | Path) -> None:
    apply_weights(module, read_weights(path), str(path))
