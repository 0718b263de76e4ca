"""Fuzz family "cli": ``netcanvas`` command lines with odd options and values, run through
``cli.main`` in a scratch folder, with every stream a strict UTF-8 one (as a terminal).

A command must end with exit code 0, or 1 / 2 with a message on stderr; argparse's own
refusals (``SystemExit(2)``) count as clean. Training runs are kept short: ``--epochs``
is always given, valid only up to 2, and only the small datasets are offered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from app.engine import cli

from .harness import Clean, Sandbox, strict_stream

_SANDBOX: Sandbox | None = None

NUMBERS = ["0", "-1", "-5", "1", "2", "x", "", " 1", "1.5", "nan", "inf", "-inf", "1e38", "1e300", "1e-400",
           "2147483648", "9223372036854775808", "99999999999999999999", "0x10", "1_0", "\udcff", "٣"]
FILES = ["xor", "mlp", "@valid", "@missing", "@folder", "@garbage", "@copy_of_xor", "", "-", "\udcff",
         "no_such_example", "@valid_no_suffix"]


def _opt(name: str, values: list[str]) -> st.SearchStrategy:
    return st.sampled_from(values).map(lambda v: [name, v])


def _options(specs: list[st.SearchStrategy]) -> st.SearchStrategy:
    """Some of the options, each at most once, in any order."""
    return st.lists(st.sampled_from(range(len(specs))), unique=True, max_size=len(specs)).flatmap(
        lambda picks: st.tuples(*[specs[i] for i in picks]) if picks else st.just(())).map(
        lambda groups: [a for g in groups for a in g])


@st.composite
def argv_cases(draw) -> list[str]:
    command = draw(st.sampled_from(["check", "train", "train", "export", "predict", "import", "examples",
                                    "nonsense", "--help", "--version", ""]))
    if command in ("--help", "--version", "") or command == "nonsense":
        return [command] if command else []
    file = draw(st.sampled_from(FILES))
    if command == "check":
        return ["check", file] + draw(_options([st.just(["--json"]), st.just(["--bogus"])]))
    if command == "train":
        epochs = draw(st.sampled_from(["-3", "0", "1", "2", "x", "", "1.5", "99999999999999999999", "1e3"]))
        specs = [
            _opt("--lr", NUMBERS), _opt("--batch-size", NUMBERS), _opt("--nproc", ["-1", "0", "1", "x", "2.5"]),
            _opt("--device", ["cpu", "auto", "cuda", "cuda:99", "mps", "tpu", "", "cpu:0", "\udcff"]),
            _opt("--dataset", ["xor", "moons", "spirals", "iris", "mnist", "idx", "csv", "nope", "", "\udcff"]),
            _opt("--kernels", ["auto", "on", "off", "maybe"]), st.just(["--json"]),
            _opt("--out", ["@out", "@garbage", "/proc/x", "@folder/deeper", ""]),
        ]
        return ["train", file, "--epochs", epochs] + draw(_options(specs))
    if command == "export":
        specs = [_opt("--onnx", ["@out/m.onnx", "@folder", "/proc/x/m.onnx", "", "@out/m"]),
                 _opt("--python", ["@out/py", "@garbage", "/proc/x", ""]),
                 _opt("--weights", ["@missing", "@garbage", "@out/xor.safetensors", ""]),
                 _opt("--opset", ["1", "7", "13", "18", "99", "-1", "x", "9223372036854775808"])]
        return ["export", file] + draw(_options(specs))
    if command == "predict":
        specs = [_opt("--input", ["@x_good", "@x_wrong_shape", "@x_object", "@x_garbage", "@missing", "@x_nan",
                                  "@x_empty", "@x_npz"]),
                 _opt("--output", ["@out/y.npy", "@folder", "/proc/x/y.npy", ""]),
                 _opt("--weights", ["@missing", "@garbage", "@out/xor.safetensors", ""]),
                 st.just(["--no-normalize"]), _opt("--device", ["cpu", "cuda", "auto", "x"])]
        return ["predict", file] + draw(_options(specs))
    if command == "import":
        model = draw(st.sampled_from(["@missing", "@garbage", "@folder", "@valid", ""]))
        specs = [_opt("--input-shape", ["x=1,2", "=", "a=-1", "input=1e9", "input=2", "input=0", "in=1,,2", "\udcff"]),
                 _opt("--output-name", ["y", "", "\udcff"])]
        return ["import", model, draw(st.sampled_from(["@out/imp", "@out/imp.netcanvas.json", "/proc/x/p", ""]))] \
            + draw(_options(specs))
    return ["examples"] + draw(st.sampled_from([[], ["xor"], ["nope"], [""], ["\udcff"]]))


def describe(argv: list[str]) -> str:
    return "netcanvas " + " ".join(repr(a) if not a or " " in a else a for a in argv)


def _files(root: Path) -> dict[str, str]:
    """The scratch files the ``@name`` arguments stand for (made once)."""
    from app.engine.examples import example_path

    made = root / "files"
    if not made.exists():
        made.mkdir()
        valid = made / "valid.netcanvas.json"
        shutil.copy(example_path("xor"), valid)
        shutil.copy(example_path("xor"), made / "valid_no_suffix")
        shutil.copy(example_path("xor"), made / "copy_of_xor.netcanvas.json")
        (made / "folder").mkdir()
        (made / "garbage").write_bytes(b"\x00\xff garbage \xfe" * 10)
        np.save(made / "x_good.npy", np.zeros((3, 2), dtype=np.float32))
        np.save(made / "x_wrong_shape.npy", np.zeros((3, 5, 1), dtype=np.float32))
        np.save(made / "x_object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        np.save(made / "x_nan.npy", np.full((2, 2), np.nan, dtype=np.float64))
        np.save(made / "x_empty.npy", np.zeros((0, 2), dtype=np.float32))
        np.savez(made / "x_npz.npz", a=np.zeros((2, 2)), b=np.ones((2, 2)))
    names = {"valid": "valid.netcanvas.json", "valid_no_suffix": "valid_no_suffix",
             "copy_of_xor": "copy_of_xor.netcanvas.json", "folder": "folder", "garbage": "garbage",
             "missing": "missing.netcanvas.json", "x_good": "x_good.npy", "x_wrong_shape": "x_wrong_shape.npy",
             "x_object": "x_object.npy", "x_nan": "x_nan.npy", "x_empty": "x_empty.npy", "x_npz": "x_npz.npz"}
    return {f"@{k}": str(made / v) for k, v in names.items()}


def _resolve(arg: str, files: dict[str, str], out: Path) -> str:
    if arg.startswith("@out"):
        return str(out) + arg[len("@out"):]
    for key in sorted(files, key=len, reverse=True):
        if arg.startswith(key):
            return files[key] + arg[len(key):]
    return arg


def run_cli(argv: list[str]) -> str:
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox()
    files = _files(_SANDBOX.root)
    out_dir = _SANDBOX.root / "out"
    out_dir.mkdir(exist_ok=True)
    work = _SANDBOX.fresh("cwd")  # an example's weights go to the current folder
    args = [_resolve(a, files, out_dir) for a in argv]
    out, err = strict_stream(), strict_stream()
    here = os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stdout(strict_stream()), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(args, out, err)
            except SystemExit as e:  # argparse: usage errors exit 2, --help exits 0
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(here)
    err.flush()
    out.flush()
    # the message is on stderr; with --json, in the JSON object on stdout
    message = err.buffer.getvalue() + (out.buffer.getvalue() if "--json" in args else b"")
    if rc == 0:
        return "ok"
    if rc in (1, 2):
        if not message.strip():
            raise AssertionError(f"exit code {rc} without a message")
        raise Clean(f"exit {rc}")
    raise AssertionError(f"exit code {rc!r}; expected 0, 1 or 2")


def warmup() -> None:
    """What the commands import on first use (ONNX, onnxruntime, training), before any case's clock."""
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401

    import app.engine.export.onnx_export  # noqa: F401
    import app.engine.export.python_export  # noqa: F401
    import app.engine.training  # noqa: F401

    run_cli(["train", "xor", "--epochs", "1"])
