"""What a scenario reports: formatted cells for the table, targets, details, and raw numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.cloud import GIB, KIB, MIB


@dataclass
class Target:
    """One performance target, checked against one run."""

    what: str
    value: float
    goal: str
    met: bool
    why: str = ""  # for a miss: the reason, with numbers


@dataclass
class Scenario:
    key: str
    title: str
    ours: str = ""
    baselines: str = ""
    floor: str = ""
    ratios: str = ""
    requests: str = ""
    targets: list[Target] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return asdict(self)


def at_most(what: str, value: float, limit: float, why: str = "") -> Target:
    return Target(what, round(value, 3), f"≤ {limit:g}×", value <= limit, "" if value <= limit else why)


def at_least(what: str, value: float, limit: float, why: str = "") -> Target:
    return Target(what, round(value, 3), f"≥ {limit:g}×", value >= limit, "" if value >= limit else why)


def secs(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def ratio(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def size(value: float) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} B"


def mb(value: float) -> str:
    return f"{value / 1e6:.0f} MB"


def rate(bytes_per_second: float) -> str:
    return f"{bytes_per_second / MIB:.0f} MiB/s"
