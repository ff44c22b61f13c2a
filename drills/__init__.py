"""Reliability and security drills: the function under faults, crashes, duplicates and hostile input.

Each drill module has ``run(size) -> DrillReport``: the same code runs in CI at a reduced size
(``tests/drills``) and at full size from ``bash scripts/drills.sh --full``, which also writes
the README's Reliability section. Everything is judged from the emulators' side (request logs, stored
objects, counters), not from what the function says about itself.
"""
