"""Scenario 4: cold start, as a ratio to importing the dependencies alone.

Each run is a fresh interpreter. Ours: put ``handler/`` first on ``sys.path`` (as FC does), import
``index``, run ``initialize``; then two one-file jobs through ``handler``: the first call's extra
time over the second is what waits for first use (pydantic models, the MPS connection pool).
Dependencies: ``import oss2, httpx, httpx_aiohttp, pydantic, aiohttp, uvloop``. Both are timed inside the
interpreter (its own start is common to both), with bytecode caches in a private ``PYTHONPYCACHEPREFIX``
warmed by one run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from bench.cloud import Cloud
from bench.model import Scenario, at_most, ratio, secs
from bench.sizes import Sizes

DEPENDENCIES = """
import json, time
started = time.perf_counter()
import oss2, httpx, httpx_aiohttp, pydantic, aiohttp, uvloop
print(json.dumps({"init": time.perf_counter() - started}))
"""

FUNCTION = """
import json, sys, time, types
started = time.perf_counter()
sys.path.insert(0, {root!r})
import index
context = types.SimpleNamespace(request_id="cold-start", credentials=None,
                                function=types.SimpleNamespace(name="bench", timeout=300))
index.initialize(context)
ready = time.perf_counter()
loaded = sorted(name for name in ("oss2", "httpx", "httpx_aiohttp", "pydantic", "aiohttp", "uvloop")
                if name in sys.modules)
calls = []
for job in {jobs!r}:
    began = time.perf_counter()
    answer = index.handler(job.encode(), context)
    assert answer["jobs"][0]["outcome"] == "committed", answer
    calls.append(time.perf_counter() - began)
print(json.dumps({{"init": ready - started, "calls": calls, "loaded": loaded}}))
"""


def fresh(script: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script], cwd=env["BENCH_CODE_ROOT"], env=env, capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"cold-start run failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_start(cloud: Cloud, sizes: Sizes) -> Scenario:
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        env = {**os.environ, **cloud.env(), "PYTHONPYCACHEPREFIX": cache, "BENCH_CODE_ROOT": str(cloud.code_root)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPATH", None)

        def ours() -> dict[str, Any]:
            jobs = [cloud.new_job([("cold.jpg", 1000)]) for _ in range(2)]
            return fresh(FUNCTION.format(root=str(cloud.code_root), jobs=jobs), env)

        fresh(DEPENDENCIES, env), ours()  # fill the bytecode cache
        deps, runs = [], []
        for _ in range(sizes.cold_runs):
            deps.append(fresh(DEPENDENCIES, env)["init"])
            runs.append(ours())
    init = [run["init"] for run in runs]
    first_extra = [run["calls"][0] - run["calls"][1] for run in runs]
    second = [run["calls"][1] for run in runs]
    dep, mine = statistics.median(deps), statistics.median(init)
    extra = statistics.median(first_extra)
    return Scenario(
        "4", f"Cold start: import index + initialize, median of {sizes.cold_runs} fresh interpreters",
        ours=secs(mine), baselines=f"import of the dependencies: {secs(dep)}",
        floor="–", ratios=f"ours/dependencies {ratio(mine / dep)}",
        requests=f"first invocation +{secs(extra)} over a warm one ({secs(statistics.median(second))})",
        targets=[at_most("of the dependencies-only import", mine / dep, 1.15)],
        notes=[f"initialize imports {', '.join(runs[0]['loaded'])}; pydantic is imported and the models "
               f"built on first use: the first invocation takes {secs(extra)} more than the next "
               f"(median; one-file jobs, {cloud.latency * 1000:g} ms latency)",
               f"with that first-use time counted, ours is {ratio((mine + extra) / dep)} the dependencies-only "
               "import"],
        data={"dependencies": deps, "init": init, "first_call_extra": first_extra, "warm_call": second,
              "loaded": runs[0]["loaded"]})
