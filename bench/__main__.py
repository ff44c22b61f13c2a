"""``python -m bench [--smoke] [--out DIR] [--plot PNG] [--only PARTS] [--commit REV] [--at REV] [--docs]``
(``scripts/bench.sh`` runs it).

Starts the OSS and MPS emulators in processes of their own, runs the scenarios, the function against a
plain peer (cold and warm, both latency profiles), the CPU per small copy and the tuning sweeps, prints
the table and writes ``latest.md`` + ``latest.json`` and the scaling plot. A full run of the whole suite
writes them to ``bench/results`` and ``docs/scaling.png`` and rewrites docs/performance.md and the
README's performance table from them; a smoke (``--smoke``: every scenario at a tiny size, in seconds) or
partial (``--only``) run writes to ``--out`` or a temporary folder and leaves the committed results alone.
``--docs`` runs nothing and rewrites docs/performance.md and the README's table from bench/results/latest.json.
``--commit REV`` adds ``handler/`` as committed at REV to the CPU per copy, side by side;
``--at REV`` benchmarks ``handler/`` as committed at REV instead of the working tree.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import baselines, coldstart, cpu, cross_region, report, same_region, tuning, versus
from bench.cloud import ROOT, SOURCE, Cloud, snapshot
from bench.model import Scenario, size
from bench.sizes import FULL, SMOKE, Sizes
from iproduction.config import load_settings

PARTS = ("scaling", "peer", "big", "batch", "cold", "cross", "cpu", "tune")
#: The order of the scenarios in the table.
ORDER = ("1", "1a", "1q", "R", "2", "3", "4", "5", "6", "X", "C")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI): checks that the suite runs")
    parser.add_argument("--out", type=Path, help="where latest.md/json go (default: bench/results for a full run "
                        "of the whole suite, else a temporary folder)")
    parser.add_argument("--docs", action="store_true", help="run nothing: rewrite docs/performance.md and the "
                        "README's performance table from bench/results/latest.json")
    parser.add_argument("--plot", type=Path, help="the scaling plot (PNG)")
    parser.add_argument("--commit", metavar="REV", help="measure the CPU per small copy of handler/ as committed "
                        "at REV too, side by side (on a virtualenv of REV's requirements.txt if it differs)")
    parser.add_argument("--at", metavar="REV", help="benchmark handler/ as committed at REV (default: the "
                        "working tree as it is)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    return parser.parse_args(argv)


def revision(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def describe_handler() -> str:
    changed = subprocess.run(["git", "status", "--porcelain", "--", "handler"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split("\n")
    dirty = [line[3:] for line in changed if line.strip()]
    return "handler/ of the working tree" + (f" (uncommitted: {', '.join(dirty)})" if dirty else "")


def step(started: float, text: str) -> None:
    print(f"[bench {time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)


def run(cloud: Cloud, sizes: Sizes, parts: set[str], plot: Path, started: float, commit: str | None) -> tuple[
        list[Scenario], dict, str | None, float]:
    cloud.seed_objects(SOURCE, [(f"calibration/{i}", 1000) for i in range(8)])
    calibration = [f"calibration/{i}" for i in range(8)]
    stock = baselines.cpu_per_request(cloud, calibration, lean=False)
    per_request = baselines.cpu_per_request(cloud, calibration, lean=True)
    scenarios: list[Scenario] = []
    sweeps: dict = {}
    plotted = None
    if "scaling" in parts:
        step(started, "scenarios 1 and 6: many files, ours and the baselines")
        points = same_region.scaling(cloud, sizes)
        scenarios += [same_region.many_files(cloud, sizes, points, per_request), same_region.scaling_scenario(points)]
        what = f"{size(sizes.small_file)} each, {cloud.latency * 1000:g} ms per request"
        if report.scaling_plot(points, plot, what, per_request):
            plotted = os.path.relpath(plot, ROOT)
    if "peer" in parts:
        step(started, "scenario 1 and the review's case against the plain peer, cold and warm, both profiles")
        scenarios += versus.peer_scenarios(cloud, sizes)
    if "big" in parts:
        step(started, "scenarios 2 and 5: one big file, the Copier baseline, memory")
        scenario, big = same_region.big_file(cloud, sizes)
        scenarios += [scenario, same_region.memory(cloud, sizes, big)]
    if "batch" in parts:
        step(started, "scenario 3: a batch of jobs under the MPS QPS cap")
        scenarios.append(same_region.batch(cloud, sizes, same_region.batch_runs(cloud, sizes), per_request))
    if "cold" in parts:
        step(started, "scenario 4: cold start")
        scenarios.append(coldstart.cold_start(cloud, sizes))
    if "cross" in parts:
        step(started, "cross-region: streamed transfers under a bandwidth cap")
        scenarios.append(cross_region.cross_region(cloud, sizes))
    if "cpu" in parts:
        step(started, "CPU per small copy" + (f", side by side with {commit}" if commit else ""))
        scenarios.append(cpu.cpu_per_file(cloud, sizes, commit))
    if "tune" in parts:
        step(started, "tuning sweeps")
        sweeps = tuning.sweeps(cloud, sizes)
    return sorted(scenarios, key=lambda s: ORDER.index(s.key)), sweeps, plotted, (stock, per_request)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.docs:
        for path in report.write_docs(ROOT / report.RESULTS, ROOT):
            print(f"bench: wrote {path.relative_to(ROOT)}", file=sys.stderr)
        return 0
    sizes = SMOKE if args.smoke else FULL
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if parts - set(PARTS):
        raise SystemExit(f"--only: unknown part(s) {sorted(parts - set(PARTS))}; choose from {', '.join(PARTS)}")
    committed = not args.smoke and parts == set(PARTS) and args.out is None  # the results the docs come from
    if args.out is None:
        args.out = ROOT / "bench" / "results" if committed else Path(tempfile.mkdtemp(prefix="bench-results-"))
    plot = args.plot or (ROOT / "docs" / "scaling.png" if committed else args.out / "scaling.png")
    started = time.monotonic()
    if args.smoke:
        step(started, f"smoke run: results go to {args.out} (the committed results are left as they are); "
                      "its sizes make the targets meaningless, so they are not judged")
    with tempfile.TemporaryDirectory(prefix="bench-handler-") as temp:
        code_root, handler = ROOT / "handler", describe_handler()
        if args.at:
            code_root = snapshot(args.at, Path(temp))
            handler = f"handler/ as committed at {args.at} ({revision(args.at)})"
        with Cloud(latency=sizes.latency, copy_rate=sizes.copy_rate, code_root=code_root) as cloud:
            defaults = load_settings(cloud.env())
            scenarios, sweeps, plotted, (stock, per_request) = run(cloud, sizes, parts, plot.resolve(), started,
                                                                   args.commit)
    setup = {"size": sizes.name, "latency": f"{sizes.latency * 1000:g} ms per request (OSS and MPS)",
             "copy rate": f"{size(sizes.copy_rate)}/s per copy request",
             "defaults": f"COPY_CONCURRENCY={defaults.copy_concurrency}, PART_SIZE_BYTES={size(defaults.part_size)}, "
                         f"MULTIPART_THRESHOLD_BYTES={size(defaults.multipart_threshold)}, "
                         f"JOB_CONCURRENCY={defaults.job_concurrency}",
             "CPU per OSS request (one thread, no wait)": f"{per_request * 1000:.2f} ms the function's stack (aiohttp "
                                                          f"on uvloop, its V4 signer), {stock * 1000:.2f} ms "
                                                          "oss2 as shipped (on requests)",
             "handler": handler,
             **({"compared with": f"handler/ as committed at {args.commit} ({revision(args.commit)}), CPU per "
                                  "copy"} if args.commit else {}),
             "processes": "OSS emulator, MPS emulator, function (isolated FC instance), bench + baselines: one each "
                          "(the plain peer: an isolated FC instance like the function's)",
             "runtime": f"{time.monotonic() - started:.0f} s"}
    if plotted:
        plotted = os.path.relpath(ROOT / plotted, args.out.resolve())
    path = report.write(args.out, report.machine(), setup, scenarios, sweeps, plotted)
    print(path.read_text())
    step(started, f"written {path} and {path.with_suffix('.json')}")
    if args.smoke:
        step(started, "smoke sizes: the suite runs, but at these sizes the times say nothing about the targets")
    if committed:
        for written in report.write_docs(path.with_suffix(".json"), ROOT):
            step(started, f"written {written.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
