"""The headless commands, run as a user would: through `python -m app` and cli.main."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from app.__main__ import main as app_main
from app.engine import cli
from app.engine.examples import example_path, list_examples


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def test_check_lenet5_prints_shapes_and_44426_parameters():
    proc = subprocess.run([sys.executable, "-m", "app", "check", str(example_path("lenet5"))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Total params: 44,426" in proc.stdout
    assert "conv1 (Conv2d)" in proc.stdout and "[6, 24, 24]" in proc.stdout
    assert "pool2 (MaxPool2d)" in proc.stdout and "[16, 4, 4]" in proc.stdout
    assert "Errors: none" in proc.stdout


def test_check_json_has_the_documented_shape():
    code, out, _ = run_cli("check", str(example_path("lenet5")), "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["total_params"] == 44426 and data["errors"] == []
    assert data["nodes"]["conv1"] == {"type": "Conv2d", "output_shape": [6, 24, 24], "params": 156}
    assert data["nodes"]["input"]["output_shape"] == [1, 28, 28]


def test_check_exit_1_on_graph_errors(tmp_path):
    doc = json.loads(example_path("lenet5").read_text())
    doc["graph"]["nodes"][1]["params"]["kernel_size"] = 30  # larger than the 28x28 input
    f = tmp_path / "bad.netcanvas.json"
    f.write_text(json.dumps(doc))
    code, out, _ = run_cli("check", str(f), "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert data["errors"][0]["node"] == "conv1" and "larger than" in data["errors"][0]["message"]
    code, out, _ = run_cli("check", str(f))
    assert code == 1 and "conv1.kernel_size" in out


@pytest.mark.parametrize("content", [b"{ not json", b"\xff\xfe", b'{"format": "other", "version": 1}'])
def test_check_exit_2_when_the_file_cannot_be_read(tmp_path, content):
    f = tmp_path / "broken.netcanvas.json"
    f.write_bytes(content)
    code, out, err = run_cli("check", str(f))
    assert code == 2 and "broken.netcanvas.json" in err and "Traceback" not in err
    code, out, _ = run_cli("check", str(f), "--json")
    assert code == 2 and json.loads(out)["ok"] is False


def test_check_missing_file():
    code, _, err = run_cli("check", "/nonexistent/x.netcanvas.json")
    assert code == 2 and "no such file" in err


def test_examples_lists_and_prints():
    code, out, _ = run_cli("examples")
    names = [line.split()[0] for line in out.splitlines()]
    assert code == 0 and names == [e.name for e in list_examples()]
    assert {"lenet5", "mlp", "xor", "linear", "three_conv", "deep_mlp", "autoencoder", "resnet", "lstm"} <= set(names)
    code, out, _ = run_cli("examples", "xor")
    assert code == 0 and json.loads(out)["name"] == "XOR 2-8-1"
    code, _, err = run_cli("examples", "nope")
    assert code == 2 and "lenet5" in err


def test_train_json_lines_and_weights(tmp_path):
    code, out, err = run_cli("train", "xor", "--epochs", "3", "--device", "cpu", "--out", str(tmp_path), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2, 3]
    assert set(lines[0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    last = lines[-1]
    assert 0 <= last["test_accuracy"] <= 1
    assert last["weights"] == str(tmp_path / "xor.safetensors") and (tmp_path / "xor.safetensors").exists()


def test_train_text_output_and_dataset_override(tmp_path):
    code, out, err = run_cli("train", "xor", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path),
                             "--dataset", "moons")
    assert code == 0, err
    assert "on moons" in out and "epoch   1/1" in out and "test accuracy" in out


def test_train_diverging_run_exits_1_with_the_message(tmp_path):
    code, out, err = run_cli("train", "mlp", "--epochs", "1", "--lr", "1e9", "--device", "cpu",
                             "--out", str(tmp_path))
    assert code == 1 and "learning rate" in err


def test_train_dataset_mismatch_exits_1(tmp_path):
    code, _, err = run_cli("train", "lenet5", "--dataset", "digits", "--out", str(tmp_path))
    assert code == 1 and "digits28" in err


def test_version_and_help(capsys):
    assert app_main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("netcanvas ")
    with pytest.raises(SystemExit) as exit_info:
        app_main(["--help"])
    assert exit_info.value.code == 0
