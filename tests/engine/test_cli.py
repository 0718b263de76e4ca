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


def test_train_starts_from_the_weights_in_place_unless_fresh(tmp_path):
    args = ("train", "xor", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path))
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert "training starts from fresh initial weights" in out  # nothing there yet
    weights = tmp_path / "xor.safetensors"
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert f"training starts from {weights.resolve()}" in out
    assert "note: weights: every node with weights (2) starts from xor.safetensors" in err
    code, out, err = run_cli(*args, "--fresh")
    assert code == 0, err
    assert "training starts from fresh initial weights" in out and "starts from xor" not in err
    weights.write_bytes(b"garbage")  # unreadable: said, and the run starts afresh
    code, out, err = run_cli(*args)
    assert "note: not starting from the weights in place:" in err and str(weights) in err
    assert "training starts from fresh initial weights" in out


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


# -- one place for a project's weights (issue 14, item 4) -----------------------------------
def test_train_export_and_predict_of_an_example_agree_on_the_weights_in_the_current_folder(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("predict", "xor", "--input", "x.npy", "--output", "y.npy")
    assert code == 1 and str(tmp_path / "xor.safetensors") in err and "train" in err
    code, out, err = run_cli("export", "xor", "--python", "before")
    assert code == 0 and "freshly initialized" in out and f"no trained weights at {tmp_path / 'xor.safetensors'}" in err
    code, out, err = run_cli("train", "xor", "--epochs", "2", "--device", "cpu")
    weights = tmp_path / "xor.safetensors"
    assert code == 0 and weights.exists(), err
    assert f"the result goes to {weights}" in out and f"weights: {weights}" in out
    code, out, err = run_cli("export", "xor", "--python", "after")
    assert code == 0 and f"weights: {weights}" in out and "no trained weights" not in err
    np.save(tmp_path / "x.npy", np.array([[0, 0], [1, 0]], dtype=np.float32))
    code, out, err = run_cli("predict", "xor", "--input", "x.npy", "--output", "y.npy")
    assert code == 0 and f"weights {weights}" in out, err


def test_train_export_and_predict_of_a_file_agree_on_the_weights_beside_it(tmp_path, monkeypatch):
    import numpy as np

    project = tmp_path / "proj" / "gate.netcanvas.json"
    project.parent.mkdir()
    project.write_text(example_path("xor").read_text())
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("train", str(project), "--epochs", "2", "--device", "cpu")
    weights = tmp_path / "proj" / "gate.safetensors"
    assert code == 0 and weights.exists() and f"weights: {weights}" in out, err
    np.save(tmp_path / "x.npy", np.array([[0, 1]], dtype=np.float32))
    code, out, err = run_cli("predict", str(project), "--input", "x.npy", "--output", "y.npy")
    assert code == 0 and f"weights {weights}" in out, err
    code, out, err = run_cli("export", str(project), "--python", "py")
    assert code == 0 and f"weights: {weights}" in out, err


# -- overrides in range (item 15) -------------------------------------------------------------
@pytest.mark.parametrize("option, value, expected", [
    ("--batch-size", "0", "from 1 to"), ("--batch-size", "-5", "from 1 to"),
    ("--epochs", "0", "from 1 to"), ("--epochs", "-3", "from 1 to"), ("--epochs", "2.5", "integer"),
    ("--lr", "0", "from 1e-12 to 3.4e+38"), ("--lr", "-1", "from 1e-12"), ("--lr", "nan", "from 1e-12"),
    ("--lr", "inf", "from 1e-12"), ("--lr", "1e39", "to 3.4e+38"), ("--lr", "fast", "number"),
    ("--nproc", "0", "from 1 to"), ("--nproc", "100000", "from 1 to"),
])
def test_train_overrides_out_of_range_exit_2_naming_the_range(capsys, option, value, expected):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "xor", option, value])
    assert info.value.code == 2
    message = capsys.readouterr().err
    assert f"argument {option}" in message and expected in message, message


def test_export_opset_out_of_range_exits_2(capsys, tmp_path):
    for opset in ("0", "6", "1000"):
        with pytest.raises(SystemExit) as info:
            cli.main(["export", "xor", "--onnx", str(tmp_path / "x.onnx"), "--opset", opset])
        assert info.value.code == 2 and "--opset: expected an integer from 7 to" in capsys.readouterr().err


# -- smaller (item 16) ---------------------------------------------------------------------------
def test_a_lone_surrogate_in_the_name_does_not_break_check_on_a_utf8_terminal(tmp_path):
    doc = json.loads(example_path("xor").read_text())
    doc["name"] = "gate\udc80x"
    path = tmp_path / "s.netcanvas.json"
    path.write_text(json.dumps(doc))
    env = {**__import__("os").environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "app", "check", str(path)], capture_output=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert proc.stdout.decode("utf-8").startswith("gate\\udc80x\n")


def test_check_writes_lone_surrogates_escaped_to_any_utf8_stream(tmp_path):
    """Whatever stream the caller gives (a strict UTF-8 pipe), names and keys from the file that
    UTF-8 cannot hold come out escaped."""
    doc = json.loads(example_path("xor").read_text())
    doc["name"] = "gate\udc80x"
    doc["graph"]["nodes"][1]["params"]["\udcff"] = 1  # an unknown key, quoted in the error
    path = tmp_path / "s.netcanvas.json"
    path.write_text(json.dumps(doc))
    for argv in (["check", str(path)], ["check", str(path), "--json"]):
        raw_out, raw_err = io.BytesIO(), io.BytesIO()
        out = io.TextIOWrapper(raw_out, encoding="utf-8", errors="strict", write_through=True)
        err = io.TextIOWrapper(raw_err, encoding="utf-8", errors="strict", write_through=True)
        assert cli.main(argv, out, err) in (1, 2)
        assert "udc" in (raw_out.getvalue() + raw_err.getvalue()).decode("utf-8")


def test_import_to_a_folder_path_is_refused_with_exit_2(tmp_path):
    err = io.StringIO()
    assert cli.main(["import", str(tmp_path / "m.onnx"), str(tmp_path)], io.StringIO(), err) == 2


@pytest.mark.parametrize("argv", [
    ["export", "xor", "--onnx", "m.onnx", "--python", ""], ["export", "xor", "--onnx", ""], ["check", ""],
    ["train", "xor", "--out", ""], ["predict", "xor", "--input", "", "--output", "y.npy"], ["import", "", "m.json"],
    ["import", "m.onnx", ""],
])
def test_an_empty_path_is_refused_with_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # an empty folder means the current one: nothing may land here
    with pytest.raises(SystemExit) as stop:
        cli.main(argv, io.StringIO(), io.StringIO())
    assert stop.value.code == 2 and "expected a path; received ''" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_normalization_beyond_float32_is_a_clean_error():
    from app.engine.errors import WeightsError
    from app.engine.predict import normalization

    with pytest.raises(WeightsError, match="not finite float32"):
        normalization({"input_mean": "[1e39, 0]", "input_std": "[1, 1]"}, (2,))
    with pytest.raises(WeightsError, match="not finite float32"):
        normalization({"input_mean": "[0, 0]", "input_std": "[1, NaN]"}, (2,))


def test_deeply_nested_weights_metadata_is_a_clean_error_in_predict(tmp_path):
    import numpy as np

    from app.engine.compiler import compile_graph
    from app.engine.examples import load_example
    from app.engine.weights import save_weights

    weights = tmp_path / "w.safetensors"
    deep = "[" * 100_000 + "]" * 100_000
    save_weights(compile_graph(load_example("xor").graph), weights, {"input_mean": deep, "input_std": deep})
    np.save(tmp_path / "x.npy", np.zeros((2, 2), dtype=np.float32))
    code, _, err = run_cli("predict", "xor", "--weights", str(weights), "--input", str(tmp_path / "x.npy"),
                           "--output", str(tmp_path / "y.npy"))
    assert code == 1 and "w.safetensors" in err and "not a list of numbers" in err and "Recursion" not in err


def test_a_pickle_weights_file_is_refused_in_one_line(tmp_path):
    import pickle

    import numpy as np

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"fc1.weight": print}))
    np.save(tmp_path / "x.npy", np.zeros((2, 2), dtype=np.float32))
    code, _, err = run_cli("predict", "xor", "--weights", str(evil), "--input", str(tmp_path / "x.npy"),
                           "--output", str(tmp_path / "y.npy"))
    assert code == 1 and err == (f"error: {evil}: not a weights-only file (it needs pickle, which NetCanvas "
                                 "never runs); save it with safetensors\n")


def test_ctrl_c_before_a_command_takes_it_over_exits_130_without_a_traceback(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    try:
        code = app_main(["train", "xor"])
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped")
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_while_train_starts_up_exits_130(tmp_path):
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "app", "train", "xor", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    maps = f"/proc/{proc.pid}/maps"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # torch is being loaded: long before training starts
        try:
            with open(maps) as f:
                if "torch" in f.read():
                    break
        except OSError:
            if not os.path.exists("/proc/self/maps"):  # no /proc here: the start-up takes > 0.5 s
                time.sleep(0.5)
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "interrupted" in err


def test_an_opset_the_exporter_cannot_write_is_an_error_not_a_mislabelled_file(tmp_path, capsys):
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["export", "xor", "--onnx", str(tmp_path / "m7.onnx"), "--opset", "7"], out, err) == 1
    assert "could not write this model in opset 7 (it wrote opset 18)" in err.getvalue()
    assert not (tmp_path / "m7.onnx").exists()
    assert "Traceback" not in capsys.readouterr().err  # the converter's own log stays quiet


def test_the_learning_rate_range_in_the_message_is_the_one_applied():
    for value in ("3.41e38", "1e39"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["train", "xor", "--lr", value])
    assert cli.build_parser().parse_args(["train", "xor", "--lr", "3.4e38"]).lr == 3.4e38
