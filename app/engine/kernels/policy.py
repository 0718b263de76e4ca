"""Where ``kernels="auto"`` uses a fused kernel: only where a benchmark measured it faster.

``MEASURED`` is filled from ``bench/kernels.py`` runs on real GPUs (the ``auto_rule`` column
of bench/results/kernels.csv). **It is empty: no kernel has been measured on a GPU yet**,
so "auto" fuses nothing and says so in a note; "on" fuses wherever a pattern matches.

A rule names the op (and activation), the GPU (a substring of its name, or "*"), the
dtype, and the range of values per sample (``features``: out_features for a Linear, C*H*W
for a conv epilogue, classes for the loss) in which the fused path won by ``speedup`` at
the benchmark's batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

# the smallest measured gain worth a second code path (noise on a GPU is a few percent)
MIN_SPEEDUP = 1.05


@dataclass(frozen=True)
class Rule:
    op: str  # "linear_act", "conv_affine_act", "add_act", "cross_entropy"
    act: str  # "relu", ..., or "*"
    device: str  # substring of torch.cuda.get_device_name(), or "*"
    dtype: str  # "float32", "float16", "bfloat16", or "*"
    min_features: int
    max_features: int
    speedup: float  # ours / best of eager and torch.compile, full step, median


MEASURED: tuple[Rule, ...] = ()

NOT_MEASURED = ("kernels 'auto' fused nothing: the fused kernels have not been measured "
                "faster on a GPU yet (bench/kernels.py fills app/engine/kernels/policy.py); "
                "set kernels to 'on' to use them anyway")


@lru_cache(maxsize=16)
def _device_name(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    try:
        return torch.cuda.get_device_name(device)
    except (RuntimeError, AssertionError):
        return "cuda"


def decide(op: str, device: torch.device | str, sample_shape, dtype: torch.dtype = torch.float32,
           act: str = "*") -> tuple[bool, str]:
    """(use the fused kernel?, why) for ``op`` at ``sample_shape`` (no batch dimension) on
    ``device``. Only CUDA devices with a measured, winning rule say yes."""
    device = torch.device(device)
    if device.type != "cuda":
        return False, f"{op}: fused kernels are for CUDA GPUs; the model is on {device.type}"
    features = math.prod(sample_shape) if len(sample_shape) else 1
    name = _device_name(device)
    dtype_name = str(dtype).removeprefix("torch.")
    for rule in MEASURED:
        if (rule.op == op and rule.act in ("*", act) and rule.dtype in ("*", dtype_name)
                and (rule.device == "*" or rule.device in name)
                and rule.min_features <= features <= rule.max_features):
            if rule.speedup >= MIN_SPEEDUP:
                return True, f"{op}: measured {rule.speedup:.2f}x faster on {rule.device}"
            return False, f"{op}: measured only {rule.speedup:.2f}x on {rule.device}"
    return False, f"{op}: not measured on {name} at {features} values per sample"
