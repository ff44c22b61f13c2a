#!/usr/bin/env bash
# Sourced by the other scripts: creates (once) and activates the project's virtualenv in .venv,
# with the operator's command line `iproduction` installed in it.
# Python: 3.10 (the FC runtime) when pyenv has it, else python3. Reinstalls only when the
# requirement files or the interpreter change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  local p
  for p in "$HOME"/.pyenv/versions/3.10.*/bin/python3; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  command -v python3
}

PY="$(pick_python)"
VENV="${VENV:-$ROOT/.venv}"
STAMP="$VENV/.stamp"
want="$("$PY" -c 'import sys; print(sys.version)') $(cat requirements.txt requirements-dev.txt | sha256sum)"

pip_install() {
  # This machine's pip config names some find-links folders that may not exist: hide that noise only.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
  return "${PIPESTATUS[0]}"
}

if [ ! -x "$VENV/bin/python" ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "setting up $VENV with $("$PY" --version)" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  pip_install --upgrade pip wheel
  # Runtime pins are a complete set: install them exactly, without resolving oss2's `crcmod` pin
  # (crcmod-plus provides the same module).
  pip_install --no-deps -r requirements.txt
  pip_install -r requirements-dev.txt
  echo "$want" > "$STAMP"
fi
if [ ! -x "$VENV/bin/iproduction" ]; then
  # The operator's command line (pyproject.toml), on the venv's PATH; handler/ stays the code root.
  pip_install --no-deps -e .
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export PYTHONDONTWRITEBYTECODE=1
