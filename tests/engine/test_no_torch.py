"""Checking a file needs no torch (issue 20): ``netcanvas check`` and ``examples``, and the
engine's file loader and shape inference, run without importing it (it takes seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import example_with

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import json, runpy, sys
sys.argv = ["netcanvas", *json.loads(sys.argv[1])]
try:
    runpy.run_module("app", run_name="__main__")
    code = 0
except SystemExit as e:
    code = e.code
heavy = sorted(m for m in ("torch", "onnx", "onnxruntime", "PySide6") if m in sys.modules)
print("\\nLOADED", json.dumps({"code": code, "heavy": heavy}))
"""


def run(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN, json.dumps(args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert "LOADED" in done.stdout, done.stderr[-2000:]
    report = json.loads(done.stdout.rsplit("LOADED", 1)[1])
    report["out"] = done.stdout + done.stderr
    return report


@pytest.mark.parametrize("args", [("check", "lenet5"), ("check", "resnet_blocks", "--json"),
                                  ("check", "text_transformer", "--expand"), ("examples",)])
def test_check_and_examples_do_not_import_torch(args):
    report = run(*args)
    assert report["code"] in (0, None), report["out"]
    assert report["heavy"] == [], f"netcanvas {' '.join(args)} imported {report['heavy']}"


def test_a_check_that_finds_errors_still_needs_no_torch(tmp_path):
    bad = example_with(tmp_path, "lenet5", "fc1", out_features=0)
    report = run("check", str(bad))
    assert report["code"] not in (0, None) and "fc1" in report["out"]
    assert report["heavy"] == []


def test_the_file_loader_and_shape_inference_do_not_import_torch():
    code = ("import sys; from app.engine.examples import load_example; from app.engine.inference import analyze; "
            "a = analyze(load_example('vit').graph); assert a.ok, a.errors; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
