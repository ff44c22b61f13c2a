"""The function against a plain peer (``bench/peer``), cold and warm, on both emulator profiles.

Both run as isolated FC instances through the same invoker, with the same emulators and environment.
"Cold" is the time inside ``handler()`` on a fresh instance's first call (``initialize`` done, not
counted); "warm" is a later call on the same instance. Each round starts a fresh instance of each
(the order alternating between rounds), runs one job cold and then ``peer_warm_calls`` jobs warm;
the figures are medians over the rounds.

* ``1a`` / ``1q``: scenario 1 (``many_files`` × ``small_file`` at ``COPY_CONCURRENCY=peer_concurrency``)
  on the ``arrival`` and the ``queueing`` profile, with the floor and the sequential and 3-way loops.
* ``R``: ``review_files`` × ``small_file`` at ``COPY_CONCURRENCY=review_concurrency``,
  ``review_latency`` per request on OSS and MPS, ``queueing`` profile.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import baselines
from bench.cloud import ROOT, Cloud
from bench.model import Scenario, at_least, at_most, ratio, secs, size
from bench.run import BenchError, invoke
from bench.same_region import many_floor
from bench.sizes import Sizes

PEER_ROOT = ROOT / "bench" / "peer"
#: "No slower than the peer", within this machine's noise between alternating rounds.
NO_SLOWER = 1.05
OF_FLOOR = 1.5
OVER_SEQUENTIAL = 10
OVER_THREE_WAY = 3


@dataclass(frozen=True)
class Setup:
    key: str
    title: str
    files: int
    each: int
    concurrency: int
    latency: float
    profile: str
    loops: bool  # the floor and the sequential and 3-way loops too (scenario 1)


def setups(sizes: Sizes) -> list[Setup]:
    many = (sizes.many_files, sizes.small_file, sizes.peer_concurrency, sizes.latency)
    return [Setup("1a", "Scenario 1 against the plain peer, arrival profile", *many, "arrival", True),
            Setup("1q", "Scenario 1 against the plain peer, queueing profile", *many, "queueing", True),
            Setup("R", "The review's case against the plain peer, queueing profile", sizes.review_files,
                  sizes.small_file, sizes.review_concurrency, sizes.review_latency, "queueing", False)]


def cold_and_warm(cloud: Cloud, code_root: Path, plan: list[tuple[str, int]], warm_calls: int,
                  **env: str) -> dict[str, Any]:
    """A fresh instance: its first call (cold), then ``warm_calls`` more (warm), a new job each."""
    function = cloud.function(code_root=code_root, **env)
    try:
        cold = invoke(cloud, function, cloud.new_job(plan).encode())
        warm = [invoke(cloud, function, cloud.new_job(plan).encode()) for _ in range(warm_calls)]
    finally:
        function.close()
    return {"cold": cold.seconds, "warm": [run.seconds for run in warm],
            "warm_cpu": [run.cpu for run in warm], "requests": warm[-1].total_requests}


def contest(cloud: Cloud, sizes: Sizes, setup: Setup) -> dict[str, Any]:
    """Alternating rounds of ours and the peer, then (scenario 1) the loops, on ``setup``'s profile."""
    plan = [(f"f{i:04d}.jpg", setup.each) for i in range(setup.files)]
    env = {"COPY_CONCURRENCY": str(setup.concurrency)}
    contestants = [("ours", cloud.code_root), ("peer", PEER_ROOT)]
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
    cloud.configure(latency=setup.latency, profile=setup.profile)
    try:
        for round_ in range(sizes.peer_rounds):
            for name, root in contestants if round_ % 2 == 0 else contestants[::-1]:
                runs[name].append(cold_and_warm(cloud, root, plan, sizes.peer_warm_calls, **env))
        point: dict[str, Any] = {"setup": asdict(setup), "runs": runs}
        for name in runs:
            point[name] = {
                "cold": statistics.median(r["cold"] for r in runs[name]),
                "warm": statistics.median(t for r in runs[name] for t in r["warm"]),
                "cpu_per_file": statistics.median(c for r in runs[name] for c in r["warm_cpu"]) / setup.files,
                "requests": runs[name][-1]["requests"]}
        if setup.loops:
            point["floor"] = many_floor(setup.files, setup.concurrency, setup.latency)
            job = cloud.new_job(plan)
            keys = [f"out/{job}/f{i:04d}.jpg" for i in range(setup.files)]
            point["sequential"] = baselines.sequential(cloud, keys, f"baseline/seq/{job}/")
            point["parallel"] = baselines.parallel(cloud, keys, f"baseline/par/{job}/")
    finally:
        cloud.configure(latency=sizes.latency, profile="arrival")
    return point


def scenario(setup: Setup, p: dict[str, Any]) -> Scenario:
    ours, peer = p["ours"], p["peer"]
    cold, warm = ours["cold"] / peer["cold"], ours["warm"] / peer["warm"]
    rounds = len(p["runs"]["ours"])
    targets = [at_most("ours/peer, cold", cold, NO_SLOWER), at_most("ours/peer, warm", warm, NO_SLOWER)]
    baseline_text = f"plain peer: cold {secs(peer['cold'])} · warm {secs(peer['warm'])}"
    ratios = f"ours/peer cold {ratio(cold)} · warm {ratio(warm)}"
    floor = "–"
    if setup.loops:
        seq, par, of_floor = p["sequential"] / ours["warm"], p["parallel"] / ours["warm"], ours["warm"] / p["floor"]
        targets += [at_most("of the floor, warm", of_floor, OF_FLOOR),
                    at_least("faster than sequential, warm", seq, OVER_SEQUENTIAL),
                    at_least("faster than 3-way, warm", par, OVER_THREE_WAY)]
        baseline_text += f" · sequential {secs(p['sequential'])} · 3-way {secs(p['parallel'])}"
        ratios += f" · ours/floor {ratio(of_floor)} (warm) · sequential/ours {ratio(seq)} · 3-way/ours {ratio(par)}"
        floor = f"{secs(p['floor'])} (C={setup.concurrency})"
    details = [{"": name, "cold (median)": secs(p[name]["cold"]), "warm (median)": secs(p[name]["warm"]),
                "cold runs": " ".join(secs(r["cold"]) for r in p["runs"][name]),
                "warm runs": " ".join(secs(t) for r in p["runs"][name] for t in r["warm"]),
                "CPU per file, warm": f"{p[name]['cpu_per_file'] * 1e6:.0f} µs",
                "requests": p[name]["requests"]} for name in ("ours", "peer")]
    return Scenario(
        setup.key, f"{setup.title}: {setup.files} × {size(setup.each)}, C={setup.concurrency}, "
                   f"{setup.latency * 1000:g} ms per request",
        ours=f"cold {secs(ours['cold'])} · warm {secs(ours['warm'])}", baselines=baseline_text, floor=floor,
        ratios=ratios, requests=f"ours {ours['requests']} · peer {peer['requests']}", targets=targets,
        details=details,
        notes=[f"medians of {rounds} alternating round(s); each round a fresh instance of each, one cold call "
               f"then {len(p['runs']['ours'][0]['warm'])} warm; the emulators' latency profile: {setup.profile}; "
               f"'no slower' allows this machine's noise ({NO_SLOWER:g}×)",
               "the plain peer (bench/peer/index.py): stock oss2 (V4 signing) HEAD + CopyObject per file on a "
               "ThreadPoolExecutor(COPY_CONCURRENCY), its requests pool as large, stock httpx for MPS"],
        data=p)


def peer_scenarios(cloud: Cloud, sizes: Sizes) -> list[Scenario]:
    scenarios = []
    for setup in setups(sizes):
        point = contest(cloud, sizes, setup)
        if not point["runs"]["ours"] or not point["runs"]["peer"]:
            raise BenchError(f"{setup.key}: no rounds ran")
        scenarios.append(scenario(setup, point))
    return scenarios
