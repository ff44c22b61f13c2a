"""Scenarios 1, 2, 3, 5 and 6: server-side copies within one region."""

from __future__ import annotations

import math
import time
from typing import Any

from bench import baselines
from bench.cloud import Cloud
from bench.model import Scenario, Target, at_least, at_most, mb, ratio, secs, size
from bench.run import invoke, median_of, queue_event, repeat, rss_of, spread, warm
from bench.sizes import Sizes
from iproduction.config import Settings, load_settings

#: Sequential round trips of a one-file multipart job: lookup, MPS query, HEAD, initiate, the parts,
#: complete, manifest PUT.
BIG_FILE_ROUND_TRIPS = 7
#: Peak RSS limit (the target) and how much it may differ between sizes and still be "flat".
RSS_LIMIT = 150e6
RSS_FLAT = 10e6
#: MPS counts calls in any one-second window; a little more, for the clocks of two processes.
CAP_WINDOW = 1.1


def settings(cloud: Cloud, **env: str) -> Settings:
    return load_settings(cloud.env(**env))


def many_floor(files: int, concurrency: int, latency: float) -> float:
    """The floor: one MPS query, one manifest check, one manifest put, a HEAD and a copy per file."""
    return (3 + 2 * math.ceil(files / concurrency)) * latency


def cloud_latency(point: dict[str, Any]) -> float:
    """The per-request latency a point was measured at (its floor is ``(3 + 2 × waves) × latency``)."""
    return point["floor"] / (3 + 2 * math.ceil(point["files"] / point["concurrency"]))


def many_point(cloud: Cloud, sizes: Sizes, files: int, repeats: int | None = None, **env: str) -> dict[str, Any]:
    """Our function at ``files`` files: the first call of a fresh instance (cold), then the median of
    ``repeats`` runs on it once warm."""
    function = cloud.function(**env)
    plan = [(f"f{i:04d}.jpg", sizes.small_file) for i in range(files)]
    cold = invoke(cloud, function, cloud.new_job(plan).encode()).seconds
    warm(cloud, function)
    run, times = repeat(repeats or sizes.repeats, lambda: invoke(cloud, function, cloud.new_job(plan).encode()))
    function.close()
    concurrency = settings(cloud, **env).copy_concurrency
    return {"files": files, "concurrency": concurrency, "ours": run.seconds, "ours_runs": times, "ours_cold": cold,
            "ours_requests": run.total_requests, "ours_cpu": run.cpu, "emulator_cpu": run.emulator_cpu,
            "floor": many_floor(files, concurrency, cloud.latency)}


def with_baselines(cloud: Cloud, sizes: Sizes, point: dict[str, Any]) -> dict[str, Any]:
    job = cloud.new_job([(f"f{i:04d}.jpg", sizes.small_file) for i in range(point["files"])])
    keys = [f"out/{job}/f{i:04d}.jpg" for i in range(point["files"])]
    point["sequential"] = baselines.sequential(cloud, keys, f"baseline/seq/{job}/")
    point["sequential_requests"] = sum(cloud.requests().values())
    point["parallel"] = baselines.parallel(cloud, keys, f"baseline/par/{job}/")
    point["parallel_requests"] = sum(cloud.requests().values())
    point["bare"] = min(baselines.bare(cloud, keys, f"baseline/bare/{job}/{i}/", point["concurrency"])
                        for i in range(3))
    return point


def scaling(cloud: Cloud, sizes: Sizes) -> list[dict[str, Any]]:
    """Scenario 6 (its point at ``many_files`` is scenario 1)."""
    points = sorted(set(sizes.scaling) | {sizes.many_files})
    return [with_baselines(cloud, sizes, many_point(cloud, sizes, files)) for files in points]


def many_files(cloud: Cloud, sizes: Sizes, points: list[dict[str, Any]], cpu_per_request: float) -> Scenario:
    p = next(point for point in points if point["files"] == sizes.many_files)
    seq, par = p["sequential"] / p["ours"], p["parallel"] / p["ours"]
    of_floor = p["ours"] / p["floor"]
    cpu_floor = cpu_per_request * p["ours_requests"]
    # The bare client makes only the HEAD + copy waves: its floor leaves out the job's three fixed round trips.
    bare_floor = 2 * math.ceil(p["files"] / p["concurrency"]) * cloud_latency(p)
    why = (f"CPU-bound on this machine: the function's process used {p['ours_cpu']:.2f} s of CPU for "
           f"{p['ours_requests']} requests ({1000 * p['ours_cpu'] / p['ours_requests']:.2f} ms each, its "
           f"threads sharing one GIL; the OSS emulator's used {p['emulator_cpu']:.2f} s, on the other core); its OSS "
           f"stack alone needs {1000 * cpu_per_request:.2f} ms per request on one idle thread, ≥ {cpu_floor:.2f} s "
           f"for these requests, against a latency floor of {p['floor']:.2f} s")
    return Scenario(
        "1", f"Many files: one job, {p['files']} × {size(sizes.small_file)}",
        ours=f"{secs(p['ours'])} (cold {secs(p['ours_cold'])})",
        baselines=f"sequential {secs(p['sequential'])} · 3-way {secs(p['parallel'])} · "
                                        f"bare requests (C={p['concurrency']}, best of 3) {secs(p['bare'])}",
        floor=f"{secs(p['floor'])} (C={p['concurrency']})",
        ratios=f"sequential/ours {ratio(seq)} · 3-way/ours {ratio(par)} · ours/floor {ratio(of_floor)} · "
               f"bare/its floor {ratio(p['bare'] / bare_floor)}",
        requests=f"ours {p['ours_requests']} · sequential {p['sequential_requests']} · 3-way "
                 f"{p['parallel_requests']}",
        targets=[at_least("faster than sequential", seq, 10), at_least("faster than 3-way", par, 3),
                 at_most("of the floor", of_floor, 1.5, why)],
        notes=[f"ours: {spread(p['ours_runs']) or 'one run'} once warm; function CPU {p['ours_cpu']:.2f} s, OSS "
               f"emulator CPU {p['emulator_cpu']:.2f} s",
               f"bare: the function's own OSS client making the same HEAD + CopyObject requests, nothing else, "
               f"{secs(p['bare'])} against their floor of {secs(bare_floor)} "
               f"(2 × {math.ceil(p['files'] / p['concurrency'])} waves): what the client side of this machine can do",
               f"cold: the first call of a fresh instance (initialize not counted), {secs(p['ours_cold'])}"],
        data=p)


def scaling_scenario(points: list[dict[str, Any]]) -> Scenario:
    rows = [{"files": p["files"], "ours": secs(p["ours"]), "ours cold": secs(p["ours_cold"]),
             "sequential": secs(p["sequential"]),
             "3-way": secs(p["parallel"]), "bare": secs(p["bare"]), "floor": secs(p["floor"]),
             "waves": math.ceil(p["files"] / p["concurrency"]), "ours/floor": ratio(p["ours"] / p["floor"]),
             "sequential/ours": ratio(p["sequential"] / p["ours"]), "3-way/ours": ratio(p["parallel"] / p["ours"]),
             "ours ms/file": f"{1000 * p['ours'] / p['files']:.2f}", "function CPU": secs(p["ours_cpu"])}
            for p in points]
    first, last = points[0], points[-1]
    growth = (last["ours"] / first["ours"]) / (last["files"] / first["files"])
    return Scenario("6", f"Scaling: {', '.join(str(p['files']) for p in points)} files",
                    ours=" · ".join(secs(p["ours"]) for p in points),
                    baselines="sequential " + " · ".join(secs(p["sequential"]) for p in points),
                    floor=" · ".join(secs(p["floor"]) for p in points),
                    ratios=f"time per file falls {1 / growth:.1f}× from {first['files']} to {last['files']} files",
                    details=rows, data={"points": points})


def big_floor(size: int, concurrency: int, copy_rate: float, latency: float) -> float:
    """The floor: ``size / (parallel parts × copy rate)`` plus the fixed round trips."""
    return size / (concurrency * copy_rate) + BIG_FILE_ROUND_TRIPS * latency


def big_point(cloud: Cloud, files: int, each: int, **env: str) -> dict[str, Any]:
    """A job of ``files`` synthetic files of ``each`` bytes on a fresh warm instance; peak RSS after."""
    conf = settings(cloud, **env)
    function = warm(cloud, cloud.function(**env))
    job = cloud.new_job([(f"clip{i:02d}.mp4", each) for i in range(files)])
    run = invoke(cloud, function, job.encode())
    rss = rss_of(function)
    function.close()
    return {"job": job, "files": files, "size": each, "ours": run.seconds, "requests": run.total_requests,
            "parts": run.requests.get("UploadPartCopy", 0), "copies": run.requests.get("CopyObject", 0),
            "cpu": run.cpu, "rss": rss, "concurrency": conf.copy_concurrency, "part_size": conf.part_size,
            "threshold": conf.multipart_threshold,
            "floor": big_floor(files * each, conf.copy_concurrency, cloud.copy_rate, cloud.latency)}


def big_file(cloud: Cloud, sizes: Sizes) -> tuple[Scenario, dict[str, Any]]:
    """Scenario 2, and the peak RSS of the function's process during it (scenario 5)."""
    conf = settings(cloud)
    p = big_point(cloud, 1, sizes.big_file)
    job, rss, floor, parts = p["job"], p["rss"], p["floor"], p["parts"]
    copier = baselines.copier(cloud, f"out/{job}/clip00.mp4", f"baseline/copier/{job}/clip00.mp4")
    copier_requests = sum(cloud.requests().values())
    of_floor, faster = p["ours"] / floor, copier / p["ours"]
    scenario = Scenario(
        "2", f"One big file: {size(sizes.big_file)} (synthetic)",
        ours=secs(p["ours"]), baselines=f"Copier defaults (64 MiB × 3 threads, on oss2) {secs(copier)}",
        floor=f"{secs(floor)} (C={conf.copy_concurrency} × {size(cloud.copy_rate)}/s)",
        ratios=f"Copier/ours {ratio(faster)} · ours/floor {ratio(of_floor)}",
        requests=f"ours {p['requests']} ({parts} parts) · Copier {copier_requests}",
        targets=[at_most("of the floor", of_floor, 1.3), at_least("faster than the Copier defaults", faster, 4)],
        notes=[f"function CPU {p['cpu']:.2f} s; peak RSS {mb(rss)}; parts of ≤ {size(conf.part_size)} evened "
               f"to whole waves of {conf.copy_concurrency}"],
        data={**p, "copier": copier, "copier_requests": copier_requests})
    return scenario, scenario.data


def memory(cloud: Cloud, sizes: Sizes, big: dict[str, Any]) -> Scenario:
    """Scenario 5: peak RSS (VmHWM) of a fresh instance copying ``memory_small``, against scenario 2's."""
    small_rss = big_point(cloud, 1, sizes.memory_small)["rss"]
    peak, growth = max(small_rss, big["rss"]), big["rss"] - small_rss
    return Scenario(
        "5", f"Memory: peak RSS of the function's process, {size(sizes.memory_small)} and {size(big['size'])}",
        ours=f"{mb(small_rss)} · {mb(big['rss'])}", floor="–",
        ratios=f"growth {growth / 1e6:+.1f} MB for {big['size'] / sizes.memory_small:g}× the size",
        targets=[Target("peak RSS", round(peak / 1e6, 1), f"< {RSS_LIMIT / 1e6:.0f} MB", peak < RSS_LIMIT),
                 Target("flat (growth, MB)", round(growth / 1e6, 1), f"≤ {RSS_FLAT / 1e6:.0f} MB",
                        abs(growth) <= RSS_FLAT)],
        notes=["VmHWM of a fresh isolated instance after a warm-up job and the copy (imports, pools and the "
               "copy included)"],
        data={"small": sizes.memory_small, "small_rss": small_rss, "big": big["size"], "big_rss": big["rss"]})


def batch_floor(jobs: int, files: int, qps: int, concurrency: int, latency: float) -> float:
    """Scenario 3's floor: the QPS cap, then the copy waves of the jobs it lets through last.

    The cap lets the last window's queries (``jobs - (windows - 1) * qps`` of them) leave no sooner
    than ``windows - 1`` seconds after the first. Those jobs' files are known only from the answers,
    so after that come the queries' round trip, a HEAD and a copy per file spread over
    ``concurrency`` connections (as in scenario 1), and the manifest PUT. Never sooner than every
    file's copy waves either. (:func:`single_wave_floor` was the floor until 2026-12-02.)
    """
    windows = math.ceil(jobs / qps)
    last = jobs - (windows - 1) * qps
    by_qps = (windows - 1) + (2 + 2 * math.ceil(last * files / concurrency)) * latency
    by_copies = (3 + 2 * math.ceil(jobs * files / concurrency)) * latency
    return max(by_qps, by_copies)


def single_wave_floor(jobs: int, files: int, qps: int, concurrency: int, latency: float) -> float:
    """The floor as first written: the later of the cap (plus five round trips) and every file's
    copy waves, as if the last window's files took a single wave, which ``concurrency`` connections
    cannot do once they are more than ``concurrency``."""
    by_qps = (math.ceil(jobs / qps) - 1) + 5 * latency
    by_copies = (3 + 2 * math.ceil(jobs * files / concurrency)) * latency
    return max(by_qps, by_copies)


def batch_point(cloud: Cloud, sizes: Sizes, **env: str) -> dict[str, Any]:
    env = {"MPS_MAX_QPS": str(sizes.batch_qps), **env}
    conf = settings(cloud, **env)
    cloud.configure(qps=sizes.batch_qps)
    try:
        function = warm(cloud, cloud.function(**env))
        warmed = time.monotonic()
        jobs = cloud.new_jobs(sizes.batch_jobs, [(f"f{i}.jpg", sizes.small_file) for i in range(sizes.batch_files)])
        # The floor counts the whole cap from the start: the warm-up's own MPS call must be out of its window.
        time.sleep(max(0.0, warmed + CAP_WINDOW - time.monotonic()))
        run = invoke(cloud, function, queue_event(jobs), jobs=len(jobs))
        function.close()
    finally:
        cloud.configure(qps=None)
    return {"jobs": len(jobs), "files": sizes.batch_files, "job_concurrency": conf.job_concurrency,
            "ours": run.seconds, "requests": run.total_requests, "cpu": run.cpu,
            "max_calls_per_second": run.mps["max_calls_per_second"], "throttled": run.mps["throttled"],
            "floor": batch_floor(len(jobs), sizes.batch_files, sizes.batch_qps, conf.copy_concurrency,
                                 cloud.latency),
            "single_wave_floor": single_wave_floor(len(jobs), sizes.batch_files, sizes.batch_qps,
                                                   conf.copy_concurrency, cloud.latency)}


def batch_runs(cloud: Cloud, sizes: Sizes) -> dict[str, Any]:
    """Scenario 3 run ``sizes.repeats`` times, each on a fresh warm instance: the median run, with every
    run's time (a single run of a CPU-bound second and a half moves by a fifth on this shared machine)."""
    points = [batch_point(cloud, sizes) for _ in range(sizes.repeats)]
    return {**median_of(points, lambda p: p["ours"]), "runs": [p["ours"] for p in points],
            "max_calls_per_second": max(p["max_calls_per_second"] for p in points),
            "throttled": max(p["throttled"] for p in points)}


def batch(cloud: Cloud, sizes: Sizes, p: dict[str, Any], cpu_per_request: float) -> Scenario:
    of_floor = p["ours"] / p["floor"]
    why = (f"CPU-bound on this machine: {p['requests']} requests took {p['cpu']:.2f} s of the function's CPU "
           f"({1000 * p['cpu'] / p['requests']:.2f} ms each; its OSS stack alone ≥ {1000 * cpu_per_request:.2f} ms "
           f"on one idle thread, ≥ {cpu_per_request * p['requests']:.2f} s) against a floor of {p['floor']:.2f} s")
    return Scenario(
        "3", f"Batch: one MNS queue event, {p['jobs']} jobs × {p['files']} files, MPS capped at {sizes.batch_qps} QPS",
        ours=secs(p["ours"]), baselines="–",
        floor=f"{secs(p['floor'])} (QPS cap and copy waves)", ratios=f"ours/floor {ratio(of_floor)}",
        requests=f"ours {p['requests']}; MPS max {p['max_calls_per_second']} calls in any 1 s, "
                 f"{p['throttled']} throttled",
        targets=[at_most("of the floor", of_floor, 1.3, why),
                 Target("max MPS calls in any 1 s", p["max_calls_per_second"], f"≤ {sizes.batch_qps}",
                        p["max_calls_per_second"] <= sizes.batch_qps and p["throttled"] == 0)],
        notes=[f"ours: {spread(p.get('runs', [p['ours']])) or 'one run'}, each on a fresh warm instance; the "
               f"MPS figures are the most of any run",
               f"JOB_CONCURRENCY={p['job_concurrency']}, MPS_MAX_QPS={sizes.batch_qps}; function CPU "
               f"{p['cpu']:.2f} s (the median run)",
               f"the floor: the cap's last window starts after {math.ceil(p['jobs'] / sizes.batch_qps) - 1} s, "
               f"then its jobs' queries, HEAD + copy waves over COPY_CONCURRENCY connections and manifests; "
               f"against the single-wave floor used before 2026-12-02 ({secs(p['single_wave_floor'])}): "
               f"{ratio(p['ours'] / p['single_wave_floor'])}"],
        data=p)
