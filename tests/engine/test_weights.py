"""Weights files: safetensors round trips, safe PyTorch loading, mismatches named."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from app.engine.compiler import compile_graph
from app.engine.errors import WeightsError
from app.engine.examples import load_example
from app.engine.weights import apply_weights, bounded_json, load_weights, read_metadata, read_weights, save_weights


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


def test_a_pickle_refusal_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": Payload()}, f, protocol=2)
    with pytest.raises(WeightsError) as info:
        read_weights(path)
    assert str(info.value) == (f"{path}: not a weights-only file (it needs pickle, which NetCanvas never "
                               "runs); save it with safetensors")


def test_metadata_is_parsed_with_bounded_nesting(tmp_path):
    assert bounded_json('{"a": [1, [2, "]]]]"]]}') == {"a": [1, [2, "]]]]"]]}
    assert bounded_json(json.dumps(["[" * 40, "{" * 40])) == ["[" * 40, "{" * 40]  # in strings: not nesting
    with pytest.raises(ValueError, match="nested more than 32"):
        bounded_json("[" * 100_000 + "]" * 100_000)
    path = save_weights(lenet(), tmp_path / "w.safetensors", {"deep": "[" * 50_000, "epoch": "3"})
    assert read_metadata(path) == {"deep": "[" * 50_000, "epoch": "3"}
    header = b'{"__metadata__": {"k": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    (tmp_path / "bad.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    assert read_metadata(tmp_path / "bad.safetensors") == {}
    assert read_metadata(tmp_path / "missing.safetensors") == {}
