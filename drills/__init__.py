"""Reliability and security drills: the function under faults, crashes, duplicates and hostile input.

Each drill module has ``run(size) -> DrillReport``: the same code runs in CI at a reduced size
(``tests/drills``) and at full size from ``bash scripts/drills.sh --full``, which keeps its results in
``drills/results/`` and writes docs/reliability.md and the README's reliability table from them. Everything
is judged from the emulators' side (request logs, stored objects, counters), not from what the function says
about itself.
"""
