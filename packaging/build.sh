#!/usr/bin/env bash
# Build the wheel (dist/netcanvas-VERSION-py3-none-any.whl) and the one-folder Linux
# application (dist/netcanvas/). Usage: packaging/build.sh [--wheel-only]
# PYTHON: the interpreter that builds the wheel (default .venv/bin/python, then python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

rm -rf build/lib dist/netcanvas-*.whl
"$PY" -m pip wheel --no-deps --no-build-isolation -w dist . >/dev/null
wheel=$(ls dist/netcanvas-*.whl)
echo "wheel: $wheel"
[ "${1:-}" = "--wheel-only" ] && exit 0

# a clean environment with the wheel and its pinned dependencies, where PyInstaller runs
python3 -m venv build/bundle-venv
build/bundle-venv/bin/pip install -q -c constraints.txt "$wheel" pyinstaller
# the same version number may already be there from an earlier build: take this wheel's code
build/bundle-venv/bin/pip install -q --force-reinstall --no-deps "$wheel"
QT_QPA_PLATFORM=offscreen build/bundle-venv/bin/pyinstaller --noconfirm --log-level WARN --distpath dist \
    --workpath build/pyinstaller packaging/netcanvas.spec
cp packaging/netcanvas.desktop dist/netcanvas/
cp resources/icons/netcanvas-256.png dist/netcanvas/netcanvas.png
echo "application: dist/netcanvas/netcanvas ($(du -sh dist/netcanvas | cut -f1))"
