"""CPU per same-region small copy (HEAD + CopyObject): ours, ours at another revision, the plain peer.

Each contestant is a warm isolated FC instance (``handler/`` of the working tree or of ``--at``; the
``handler/`` of ``--commit REV``, extracted from git and run on a virtualenv of REV's own
``requirements.txt`` when it differs; ``bench/peer``). In alternating rounds each runs ``cpu_jobs``
jobs of ``cpu_files`` × ``small_file`` at ``COPY_CONCURRENCY=peer_concurrency`` on the arrival
profile; the figure is the user + system CPU of the instance's process (``/proc/<pid>/stat``) over
those jobs divided by their files: a job's three fixed requests (lookup, query, manifest) are in it.
"""

from __future__ import annotations

import hashlib
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cloud import ROOT, Cloud, cpu_seconds, snapshot
from bench.model import Scenario, ratio
from bench.run import invoke, warm
from bench.sizes import Sizes
from bench.versus import PEER_ROOT


@dataclass(frozen=True)
class Contestant:
    name: str
    code_root: Path
    python: str | None = None  # None: the bench's own interpreter
    note: str = ""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def interpreter(rev: str) -> tuple[str | None, str]:
    """The interpreter for ``handler/`` at ``rev``: ours when REV's requirements.txt is the same,
    else a virtualenv of REV's pins (``.venv-rev-<hash>`` in the repository, made once)."""
    pins = git("show", f"{rev}:requirements.txt")
    if pins == (ROOT / "requirements.txt").read_text():
        return None, "the bench's own virtualenv (requirements.txt is the same at that revision)"
    venv = ROOT / f".venv-rev-{hashlib.sha256(pins.encode()).hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
            file.write(pins)
            file.flush()
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                            "-r", file.name], check=True)
        (venv / ".complete").write_text(pins)
    return str(python), f"a virtualenv of that revision's requirements.txt ({venv.name})"


def contestants(cloud: Cloud, commit: str | None, temp: Path) -> list[Contestant]:
    found = [Contestant("ours", cloud.code_root, note="handler/ being benchmarked")]
    if commit:
        python, note = interpreter(commit)
        short = git("rev-parse", "--short", commit).strip()
        found.append(Contestant(f"ours at {short}", snapshot(commit, temp), python, f"handler/ at {commit}; {note}"))
    found.append(Contestant("plain peer", PEER_ROOT, note="bench/peer"))
    return found


def cpu_per_file(cloud: Cloud, sizes: Sizes, commit: str | None = None) -> Scenario:
    env = {"COPY_CONCURRENCY": str(sizes.peer_concurrency)}
    plan = [(f"f{i:04d}.jpg", sizes.small_file) for i in range(sizes.cpu_files)]
    per_file: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rev-") as temp:
        entrants = contestants(cloud, commit, Path(temp))
        instances = {c.name: warm(cloud, cloud.function(code_root=c.code_root, python=c.python, **env))
                     for c in entrants}
        try:
            for round_ in range(sizes.cpu_rounds):
                for c in entrants if round_ % 2 == 0 else entrants[::-1]:
                    function = instances[c.name]
                    assert function.pid is not None
                    before = cpu_seconds(function.pid)
                    for _ in range(sizes.cpu_jobs):
                        invoke(cloud, function, cloud.new_job(plan).encode())
                    used = cpu_seconds(function.pid) - before
                    per_file.setdefault(c.name, []).append(used / (sizes.cpu_jobs * sizes.cpu_files))
        finally:
            for function in instances.values():
                function.close()
    medians = {name: statistics.median(values) for name, values in per_file.items()}
    ours = medians["ours"]

    def against(value: float) -> str:  # (a tiny smoke run may see no 10 ms tick at all)
        return ratio(ours / value) if value > 0 else "–"

    rows: list[dict[str, Any]] = [
        {"": c.name, "µs CPU per file (median)": f"{medians[c.name] * 1e6:.0f}",
         "rounds": " ".join(f"{v * 1e6:.0f}" for v in per_file[c.name]),
         "ours/this": against(medians[c.name]), "what": c.note} for c in entrants]
    files = sizes.cpu_jobs * sizes.cpu_files
    return Scenario(
        "C", f"CPU per same-region small copy (HEAD + CopyObject), {size_text(sizes)}",
        ours=f"{ours * 1e6:.0f} µs per file",
        baselines=" · ".join(f"{name} {value * 1e6:.0f} µs" for name, value in medians.items() if name != "ours"),
        floor="–", ratios=" · ".join(f"ours/{name} {against(value)}" for name, value in medians.items()
                                     if name != "ours"),
        requests=f"{files} files per round, {sizes.cpu_rounds} round(s)", details=rows,
        notes=["user + system CPU of the instance's process (/proc/<pid>/stat, 10 ms ticks) over "
               f"{sizes.cpu_jobs} job(s) of {sizes.cpu_files} files per round, warm instances, alternating "
               "order; a job's lookup, query and manifest are included"],
        data={"per_file": per_file, "median": medians, "contestants": [c.__dict__ | {"code_root": str(c.code_root)}
                                                                      for c in entrants]})


def size_text(sizes: Sizes) -> str:
    return (f"{sizes.cpu_files} × {sizes.small_file // 1024} KiB per job, C={sizes.peer_concurrency}, "
            f"{sizes.latency * 1000:g} ms per request")
