"""``netcanvas profile``: the --json object's shape, the text table, and the errors (exit
codes as ``check``: 1 for a graph with errors or an absent device, 2 for a file that
cannot be read). Run through ``cli_profile``'s own parser, as ``cli.main`` dispatches."""

from __future__ import annotations

import argparse
import io
import json
import shutil

from app.engine import cli_profile
from app.engine.examples import example_path
from tests.helpers import example_with

NODE_KEYS = {"id", "type", "forward_ms", "backward_ms", "output_bytes", "params", "flops", "group"}


def run_cli(*args: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="netcanvas")
    cli_profile.add_parsers(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = cli_profile.run(parser.parse_args(["profile", *args]), out, err)
    return code, out.getvalue(), err.getvalue()


def test_json_has_every_node_and_the_whole_model():
    code, out, err = run_cli("lenet5", "--batch-size", "4", "--repeats", "2", "--device", "cpu", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert {"nodes", "total_flops", "forward_ms", "backward_ms", "loss_ms", "optimizer_ms", "batch_size",
            "device"} <= set(data)
    assert data["batch_size"] == 4 and data["device"] == "cpu"
    assert [n["id"] for n in data["nodes"]][:3] == ["conv1", "relu1", "pool1"]
    assert all(set(n) == NODE_KEYS for n in data["nodes"])
    assert sum(n["flops"] for n in data["nodes"]) == data["total_flops"] > 0
    assert sum(n["params"] for n in data["nodes"]) == 44426
    assert data["forward_ms"] > 0 and data["backward_ms"] > 0 and data["optimizer_ms"] > 0


def test_text_table_in_graph_order_with_totals_and_the_top_five():
    code, out, err = run_cli("xor", "--batch-size", "8", "--repeats", "2", "--device", "cpu")
    assert code == 0, err
    assert "share" in out and "total" in out and "top 5 by time:" in out
    assert "loss (" in out and "optimizer step" in out
    table = out.split("\n-")[1].split("\n-")[0]  # between the rules under the header and above the totals
    ids = [n["id"] for n in json.loads(run_cli("xor", "--batch-size", "8", "--repeats", "1", "--json")[1])["nodes"]]
    assert [line.split()[0] for line in table.strip("-\n").splitlines()] == ids
    top = out.split("top 5 by time:")[1].strip().splitlines()
    assert 1 <= len([t for t in top if not t.startswith("note:")]) <= 5


def test_a_graph_with_errors_exits_1_naming_them(tmp_path):
    path = example_with(tmp_path, "lenet5", "conv1", kernel_size=99)
    code, out, err = run_cli(str(path), "--device", "cpu")
    assert code == 1 and out == ""
    assert "has errors" in err and "conv1" in err and "Traceback" not in err


def test_unreadable_project_exits_2_and_absent_device_exits_1(tmp_path):
    code, _, err = run_cli(str(tmp_path / "missing.netcanvas.json"))
    assert code == 2 and err.startswith("error:") and "missing.netcanvas.json" in err
    broken = tmp_path / "broken.netcanvas.json"
    broken.write_text("{not json")
    assert run_cli(str(broken))[0] == 2
    shutil.copy(example_path("xor"), tmp_path / "x.netcanvas.json")
    code, _, err = run_cli(str(tmp_path / "x.netcanvas.json"), "--device", "cuda:7")
    assert code == 1 and "--device" in err and "cuda:7" in err
    code, _, err = run_cli("xor", "--batch-size", "0")
    assert code == 1 and "--batch-size" in err
