"""Weights files: safetensors round trips, safe PyTorch loading, mismatches named."""

from __future__ import annotations

import pickle

import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.errors import WeightsError
from app.engine.examples import load_example
from app.engine.weights import apply_weights, load_weights, read_weights, save_weights


def lenet():
    torch.manual_seed(0)
    return compile_graph(load_example("lenet5").graph)


def test_safetensors_round_trip_keeps_names_and_values(tmp_path):
    model = lenet()
    path = save_weights(model, tmp_path / "lenet.safetensors", {"epoch": "3"})
    tensors = read_weights(path)
    assert set(tensors) == set(model.state_dict()) and "conv1.weight" in tensors
    other = lenet()
    torch.nn.init.zeros_(other.conv1.weight)
    load_weights(other, path)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(model(x), other(x))


def test_a_pytorch_state_dict_is_read_with_weights_only(tmp_path):
    model = lenet()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    assert set(read_weights(tmp_path / "w.pt")) == set(model.state_dict())
    assert set(read_weights(tmp_path / "ckpt.pth")) == set(model.state_dict())


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_with_code_is_refused_not_run(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": Payload()}, f)
    with pytest.raises(WeightsError) as info:
        read_weights(path)
    assert "evil.pt" in str(info.value)
    assert "this must never run" not in capsys.readouterr().out


def test_a_mismatch_names_the_first_tensor_and_both_shapes(tmp_path):
    model = lenet()
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors["conv2.weight"] = torch.zeros(8, 6, 5, 5)
    with pytest.raises(WeightsError) as info:
        apply_weights(model, tensors, "w.safetensors")
    message = str(info.value)
    assert "conv2.weight" in message and "[8, 6, 5, 5]" in message and "[16, 6, 5, 5]" in message
    del tensors["conv2.weight"]
    with pytest.raises(WeightsError, match="has no tensor 'conv2.weight'"):
        apply_weights(model, tensors)
    tensors["conv2.weight"] = model.state_dict()["conv2.weight"]
    tensors["extra.bias"] = torch.zeros(3)
    with pytest.raises(WeightsError, match="'extra.bias' matches no parameter"):
        apply_weights(model, tensors)


def test_unreadable_and_corrupt_files(tmp_path):
    with pytest.raises(WeightsError, match="cannot be read"):
        read_weights(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        read_weights(tmp_path / "junk.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="does not hold a state_dict"):
        read_weights(tmp_path / "list.pt")
