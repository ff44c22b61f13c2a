#!/usr/bin/env bash
# Invokes the function once with an event file, against fresh local OSS and MPS emulators seeded from
# localcloud/seed.json (a job in Analysing and its two result files). Creates the virtualenv on first use.
# Usage: bash scripts/invoke.sh events/<file> [--mps-state Success] [--pretty] [other invoker options]
#   --mps-state Success   MPS reports the seeded job finished: the function copies it and writes its manifest
#   --pretty              log lines as FC's console shows them, instead of JSON
# The logs and what the destination bucket holds go to stderr, the function's answer (JSON) to stdout.
# Every option: python -m localcloud.fc invoke --help
set -euo pipefail
HERE="$PWD"
source "$(dirname "$0")/env.sh"
ROOT="$PWD"
if [ "$#" -eq 0 ]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
# Paths on the command line are the caller's: run from where the script was called.
cd "$HERE"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec python -m localcloud.fc invoke "$@" --local
