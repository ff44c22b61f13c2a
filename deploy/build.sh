#!/usr/bin/env bash
# Builds the FC code package in build/code: the handler plus the pinned runtime dependencies as
# CPython 3.10 manylinux x86_64 wheels (the FC python3.10 runtime), whatever machine runs this.
# oss2 publishes no wheel: it is pure Python, so it is built into one here first.
# The FC code directory is read-only, so Python could never cache bytecode there and would compile
# every module on each cold start: the package ships CPython 3.10 bytecode ("unchecked-hash" .pyc,
# valid whatever timestamps the upload gives the files) when a 3.10 interpreter is at hand
# (PYTHON310, python3.10, or pyenv's 3.10); otherwise it warns and ships sources only.
# What the function never runs is left out: the packages' own test suites and test helpers, and the
# Cython/C sources and headers their extensions were built from (the *.dist-info/RECORD files stay as
# the wheels wrote them). The wheels are built in a temporary folder, removed on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build}"
PY="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
cd "$ROOT"
WHEELS="$(mktemp -d "${TMPDIR:-/tmp}/iproduction-wheels.XXXXXX")"
trap 'rm -rf "$WHEELS"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT/code"

quiet() { "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; return "${PIPESTATUS[0]}"; }

oss2_pin="$(grep -E '^oss2==' requirements.txt)"
quiet "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --wheel-dir "$WHEELS" "$oss2_pin"
quiet "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-compile \
  --target "$OUT/code" --platform manylinux2014_x86_64 --implementation cp --python-version 3.10 \
  --only-binary=:all: --find-links "$WHEELS" -r requirements.txt
rm -rf "$OUT/code/bin"
# Test suites and test helpers of the dependencies (never imported by the function), then the sources
# and headers of compiled extensions (the .so files are what runs).
find "$OUT/code" -mindepth 2 -type d \( -name tests -o -name test -o -name testing -o -name SelfTest \) \
  -not -path '*.dist-info/*' -prune -exec rm -rf {} +
find "$OUT/code" -type f \( -name '_testbase.py' -o -name 'test_*.py' -o -name '*_test.py' -o -name 'conftest.py' \
  -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' -o -name '*.c' -o -name '*.h' \) -delete
cp -R handler/. "$OUT/code/"
# The operator's command line is not part of the function (it needs dev-only packages), nor is the
# metadata of its editable install.
rm -rf "$OUT/code/iproduction/cli" "$OUT/code/"*.egg-info
find "$OUT/code" -name '__pycache__' -type d -prune -exec rm -rf {} +

py310="${PYTHON310:-}"
if [ -z "$py310" ]; then
  for candidate in python3.10 "$HOME"/.pyenv/versions/3.10.*/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      py310="$candidate"; break
    fi
  done
fi
if [ -n "$py310" ]; then
  "$py310" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$OUT/code" >/dev/null
else
  echo "warning: no CPython 3.10 here: the package holds no bytecode (FC compiles it at each cold start)" >&2
fi
echo "built $OUT/code ($(du -sh "$OUT/code" | cut -f1))"
