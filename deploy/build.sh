#!/usr/bin/env bash
# Builds the FC code package in build/code: the handler plus the pinned runtime dependencies as
# CPython 3.10 manylinux x86_64 wheels (the FC python3.10 runtime), whatever machine runs this.
# oss2 publishes no wheel: it is pure Python, so it is built into one here first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build}"
PY="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
cd "$ROOT"
rm -rf "$OUT"
mkdir -p "$OUT/wheels" "$OUT/code"

quiet() { "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; return "${PIPESTATUS[0]}"; }

oss2_pin="$(grep -E '^oss2==' requirements.txt)"
quiet "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --wheel-dir "$OUT/wheels" "$oss2_pin"
quiet "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-compile \
  --target "$OUT/code" --platform manylinux2014_x86_64 --implementation cp --python-version 3.10 \
  --only-binary=:all: --find-links "$OUT/wheels" -r requirements.txt
rm -rf "$OUT/code/bin"
cp -R handler/. "$OUT/code/"
find "$OUT/code" -name '__pycache__' -type d -prune -exec rm -rf {} +
echo "built $OUT/code ($(du -sh "$OUT/code" | cut -f1))"
