"""The wheel is a working install: built from the checkout, installed into a fresh virtual
environment (which borrows the already-installed dependencies), it gives a `netcanvas`
command that finds its bundled examples through importlib.resources."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True, cwd=ROOT, capture_output=True)
    (found,) = out.glob("netcanvas-*.whl")
    return found


def test_the_wheel_holds_every_module_and_resource(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "app").rglob("*.py")}
    assert sources - names == set(), "modules missing from the wheel (add their package to pyproject)"
    resources = {"app/resources/" + p.relative_to(ROOT / "resources").as_posix()
                 for p in (ROOT / "resources").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert resources - names == set()
    assert "app/resources/examples/lenet5.netcanvas.json" in names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_the_installed_wheel_runs_netcanvas(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    # the dependencies already installed here, without this checkout's editable install
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    netcanvas = bindir / ("netcanvas.exe" if os.name == "nt" else "netcanvas")

    def run(*args, program=netcanvas):
        return subprocess.run([str(program), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    where = run("-c", "import app; print(app.__file__)", program=python)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"netcanvas {app.__version__}"
    check = run("check", "lenet5")
    assert check.returncode == 0, check.stderr
    assert "44,426" in check.stdout
    examples = run("examples")
    assert examples.returncode == 0 and "xor" in examples.stdout
