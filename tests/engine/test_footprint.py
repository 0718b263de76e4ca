"""Memory footprint of training (issue 14, item 13): estimated from the shapes without
torch; ``check`` warns and ``train`` refuses, before allocating, a model that cannot fit."""

from __future__ import annotations

import ctypes
import io
import json
import subprocess
import sys

import pytest

from app.engine import cli, footprint
from app.engine.datasets.base import prepare
from app.engine.errors import TrainingError
from app.engine.examples import example_path
from app.engine.inference import Analysis, analyze
from app.engine.training import Trainer, prepare_run
from app.engine.training import trainer as trainer_module
from tests.engine.test_trainer import blobs, mlp_project
from tests.helpers import chain


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def huge_mlp(tmp_path, out_features=10**9):
    """The MLP example with a first Linear of ``out_features`` outputs (785 billion parameters)."""
    doc = json.loads(example_path("mlp").read_text())
    for node in doc["graph"]["nodes"]:
        if node["id"] == "fc1":
            node["params"]["out_features"] = out_features
    path = tmp_path / "huge.netcanvas.json"
    path.write_text(json.dumps(doc))
    return path


def test_the_estimate_counts_parameters_gradients_optimizer_state_and_activations():
    g = chain(("input", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 3}))
    a = analyze(g)  # 15 parameters; outputs per sample: 4 + 3 values
    sgd = footprint.estimate(a, {"optimizer": "SGD", "momentum": 0.9, "batch_size": 10})
    assert (sgd.parameters, sgd.gradients, sgd.optimizer) == (60, 60, 60)
    assert sgd.activations == 2 * 7 * 10 * 4 and sgd.total == 180 + 560
    assert footprint.estimate(a, {"optimizer": "SGD", "momentum": 0, "batch_size": 10}).optimizer == 0
    assert footprint.estimate(a, {"optimizer": "Adam", "batch_size": 10}).optimizer == 120
    assert footprint.estimate(a, {"optimizer": "Adam", "batch_size": 10}, batch=2).activations == 2 * 7 * 2 * 4


def test_sizes_of_any_magnitude_are_described_without_overflow():
    assert footprint.describe_bytes(999) == "999 bytes"
    assert footprint.describe_bytes(3_140_000_000_000) == "3.1 TB"
    assert footprint.describe_bytes(10**2200) == "about 10^2200 bytes"
    assert footprint.describe_bytes(10**9999 - 1) == "about 10^9998 bytes"  # beyond int-to-str's limit
    a = Analysis(shapes={"fc": (10**400,)}, param_counts={"fc": 10**800})
    fp = footprint.estimate(a, {"optimizer": "Adam", "batch_size": 64})
    assert footprint.too_big(fp, 16 * 10**9, "RAM").startswith("training this model needs at least about 10^")


def test_check_warns_that_a_billion_output_linear_will_not_fit(tmp_path):
    path = huge_mlp(tmp_path)
    code, out, _ = run_cli("check", str(path))
    assert code == 0 and "785,000,000,000" in out
    [warning] = [line for line in out.splitlines() if "needs at least" in line]
    assert warning.startswith("Warning: training this model needs at least") and "TB" in warning
    code, out, _ = run_cli("check", str(path), "--json")
    assert any("needs at least" in w["message"] for w in json.loads(out)["warnings"])
    code, out, _ = run_cli("check", str(example_path("mlp")))
    assert "needs at least" not in out


def test_the_estimate_and_the_memory_probe_import_no_torch():
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch': raise ImportError('torch is blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from app.engine import footprint\n"
            "from types import SimpleNamespace as Analysis\n"
            "fp = footprint.estimate(Analysis(shapes={'fc': (10**9,)}, param_counts={'fc': 785 * 10**9}), {})\n"
            "print(footprint.too_big(fp, footprint.available_memory('auto')[0] or 1, 'RAM'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "needs at least" in proc.stdout


def test_train_refuses_a_billion_output_linear_before_allocating(tmp_path, monkeypatch):
    def no_allocation(*args, **kwargs):
        raise AssertionError("the model was compiled (its parameters allocated)")

    monkeypatch.setattr(trainer_module, "compile_graph", no_allocation)
    code, out, err = run_cli("train", str(huge_mlp(tmp_path)), "--epochs", "1", "--device", "cpu",
                             "--out", str(tmp_path))
    assert code == 1 and "Traceback" not in err
    assert "needs at least" in err and "available memory (RAM)" in err and "TB" in err


def test_the_trainer_compares_with_the_real_device_memory(monkeypatch):
    run = prepare_run(mlp_project(), dataset=prepare(blobs(), "blobs", {}))
    monkeypatch.setattr(footprint, "system_available_memory", lambda: 1000)
    with pytest.raises(TrainingError, match=r"more than the 1\.0 KB of available memory"):
        Trainer(run)
    monkeypatch.setattr(footprint, "system_available_memory", lambda: 10**9)
    Trainer(run)  # fits


class FakeNvml:
    """NVML's C functions as ctypes calls them: results come back through the pointers."""

    def __init__(self, free_by_index, free_by_uuid=None):
        self.free_by_index, self.free_by_uuid = free_by_index, free_by_uuid or {}
        self.shut = 0

    def nvmlInit_v2(self):
        return 0

    def nvmlShutdown(self):
        self.shut += 1
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index, handle):
        if index.value not in self.free_by_index:
            return 2  # NVML_ERROR_INVALID_ARGUMENT
        handle._obj.value = 1000 + index.value
        return 0

    def nvmlDeviceGetHandleByUUID(self, uuid, handle):
        handle._obj.value = 5000
        return 0 if uuid.value in self.free_by_uuid else 2

    def nvmlDeviceGetMemoryInfo(self, handle, memory):
        value = handle.value
        free = self.free_by_uuid.get(b"GPU-x") if value == 5000 else self.free_by_index[value - 1000]
        memory._obj.free, memory._obj.total = free, free * 2
        return 0


def test_gpu_memory_comes_from_nvml_with_cuda_visible_devices_applied(monkeypatch):
    nvml = FakeNvml({0: 7 * 10**9, 1: 3 * 10**9}, {b"GPU-x": 5 * 10**9})
    monkeypatch.setattr(footprint, "_nvml", lambda: nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert footprint.available_memory("cuda:1") == (3 * 10**9, "free memory of GPU 1 (NVML)")
    assert footprint.available_memory("auto")[0] == 7 * 10**9
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert footprint.gpu_free_memory(0) == 3 * 10**9 and footprint.gpu_free_memory(1) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-x")
    assert footprint.gpu_free_memory(0) == 5 * 10**9
    assert nvml.shut >= 3  # every init is paired with a shutdown


def test_without_nvml_cuda_memory_is_unknown_and_auto_means_the_ram(monkeypatch):
    monkeypatch.setattr(footprint, "_nvml", lambda: None)
    assert footprint.available_memory("cuda")[0] is None
    monkeypatch.setattr(footprint, "system_available_memory", lambda: 12345)
    assert footprint.available_memory("auto") == (12345, "available memory (RAM)")
    # NVML's nvmlMemory_t: total, free, used as unsigned long long, in that order
    assert [f[0] for f in footprint._NvmlMemory._fields_] == ["total", "free", "used"]
    assert all(f[1] is ctypes.c_ulonglong for f in footprint._NvmlMemory._fields_)


def test_the_verdict_leaves_room_beyond_the_lower_bound_and_names_the_heaviest_node():
    g = chain(("input", "Input", {"shape": [784]}), ("fc1", "Linear", {"out_features": 1000}),
              ("fc2", "Linear", {"out_features": 10}))
    need = footprint.estimate(analyze(g), {"optimizer": "Adam", "batch_size": 64})
    assert need.heaviest.startswith("for node 'fc1' (")
    assert need.needed == need.total * 6 // 5 + footprint.RUNTIME_BYTES
    assert footprint.too_big(need, need.total, "RAM") is not None  # the lower bound alone does not fit
    message = footprint.too_big(need, need.total + 1000, "RAM")
    assert message and "most of it for node 'fc1'" in message
    assert footprint.too_big(need, need.needed, "RAM") is None


def test_the_ram_available_is_read_from_proc_meminfo(monkeypatch, tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(fake if path == "/proc/meminfo" else path,
                                                                         *a, **k))
    assert footprint.system_available_memory() == 8000000 * 1024
