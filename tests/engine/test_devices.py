"""Device discovery and resolution."""

import pytest
import torch

from app.engine.devices import list_devices, resolve_device
from app.engine.errors import DeviceError


def test_the_cpu_is_always_listed_with_a_name_and_memory():
    devices = list_devices()
    assert devices[0].id == "cpu" and devices[0].name and devices[0].kind == "cpu"
    assert devices[0].memory is None or devices[0].memory > 2**28
    assert "cpu:" in devices[0].label()


def test_auto_picks_the_best_device_present():
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert str(resolve_device("auto")) == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("asked", ["cuda:9", "mps", "cuda"])
def test_an_absent_device_is_a_clear_error(asked):
    if asked in [d.id for d in list_devices()] or (asked == "cuda" and torch.cuda.is_available()):
        return  # present on this machine: nothing to refuse
    with pytest.raises(DeviceError) as info:
        resolve_device(asked)
    assert repr(asked) in str(info.value) and "this machine has: cpu" in str(info.value)


def test_cuda_devices_report_name_and_memory():
    for d in list_devices():
        if d.kind == "cuda":
            assert d.name and d.memory and d.memory > 2**30
