"""Cross-region delivery: ranged GETs streamed into uploads, per-connection bandwidth cap.

The floor is the link: ``bandwidth × connections`` (connections = transfers in flight, at most
``COPY_CONCURRENCY``), plus the round trips. Every streamed byte also has its CRC-64 computed in
the function (end to end) and in the emulator (as OSS does on upload), so on a small machine the
CPU is a second ceiling: it is measured too (same transfer, no bandwidth cap).
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench.cloud import MIB, REMOTE, REMOTE_REGION, Cloud
from bench.model import Scenario, Target, at_most, mb, rate, ratio, secs, size
from bench.run import invoke, rss_of, warm
from bench.sizes import Sizes
from iproduction.config import Settings, load_settings
from iproduction.crc64 import crc64

#: Round trips around the parts of a one-file streamed multipart job: lookup, query, HEAD, initiate,
#: complete, the destination HEAD, manifest PUT (each wave of parts adds a GET and an UploadPart).
STREAM_ROUND_TRIPS = 7
RSS_SLACK = 100e6


def crc_rate(megabytes: int = 64) -> float:
    """Bytes per second of CRC-64 (crcmod's C code) on one core of this machine."""
    data = b"\x5a" * (megabytes * MIB)
    started = time.perf_counter()
    crc64(data)
    return len(data) / (time.perf_counter() - started)


def streams_parts(conf: Settings, files: list[tuple[str, int]]) -> bool:
    """Whether the streamed transfer sends these files in parts (else as single PUTs, whose MD5 it
    checks against the source's ETag: synthetic sources would fail that, real bytes are seeded)."""
    return min(n for _, n in files) >= min(conf.part_size, conf.multipart_threshold)


def transfer(cloud: Cloud, files: list[tuple[str, int]], bandwidth: float | None, rss: bool = False,
             **env: str) -> dict[str, Any]:
    """One cross-region job on a fresh instance; throughput, floors, requests, and peak RSS."""
    conf = load_settings(cloud.env(**env))
    cloud.configure(bandwidth=bandwidth)
    try:
        function = warm(cloud, cloud.function(**env))
        job = cloud.new_job(files, bucket=REMOTE, region=REMOTE_REGION, real=not streams_parts(conf, files))
        run = invoke(cloud, function, job.encode())
        peak = rss_of(function) if rss else None
        function.close()
    finally:
        cloud.configure(bandwidth=None)
        cloud.drop_outputs(job)
    total = sum(n for _, n in files)
    streams = run.requests.get("UploadPart", 0)
    if streams:
        connections = min(conf.copy_concurrency, streams)
        waves = math.ceil(streams / conf.copy_concurrency)
        floor = total / ((bandwidth or math.inf) * connections) + (STREAM_ROUND_TRIPS + 2 * waves) * cloud.latency
    else:  # single streamed PUTs: HEAD, GET and PUT per file, a wave of files at a time
        connections = min(conf.copy_concurrency, len(files))
        waves = math.ceil(len(files) / conf.copy_concurrency)
        floor = waves * (files[0][1] / (bandwidth or math.inf) + 3 * cloud.latency) + 3 * cloud.latency
    return {"files": len(files), "bytes": total, "concurrency": conf.copy_concurrency, "part_size": conf.part_size,
            "bandwidth": bandwidth, "connections": connections, "ours": run.seconds,
            "throughput": total / run.seconds, "cap": (bandwidth or math.inf) * connections, "floor": floor,
            "requests": dict(run.requests), "cpu": run.cpu, "emulator_cpu": run.emulator_cpu, "rss": peak}


def row(label: str, p: dict[str, Any]) -> dict[str, Any]:
    capped = p["bandwidth"] is not None
    return {"run": label, "data": f"{p['files']} × {size(p['bytes'] / p['files'])}",
            "COPY_CONCURRENCY": p["concurrency"], "ours": secs(p["ours"]), "throughput": rate(p["throughput"]),
            "cap × connections": f"{rate(p['cap'])} ({p['connections']} × {rate(p['bandwidth'])})" if capped
            else "no cap", "cap/ours": ratio(p["cap"] / p["throughput"]) if capped else "–",
            "time floor": secs(p["floor"]), "ours/floor": ratio(p["ours"] / p["floor"]),
            "function CPU": secs(p["cpu"]), "emulator CPU": secs(p["emulator_cpu"]),
            "peak RSS": mb(p["rss"]) if p["rss"] else "–",
            "requests": " ".join(f"{op} {n}" for op, n in sorted(p["requests"].items()))}


def cross_region(cloud: Cloud, sizes: Sizes) -> Scenario:
    bw, link = sizes.bandwidth, {"COPY_CONCURRENCY": str(sizes.cross_link_bound)}
    small = [(f"img{i:04d}.jpg", sizes.cross_file_size) for i in range(sizes.cross_files)]
    lower, upper = sizes.cross_big
    runs = {
        "small files": transfer(cloud, small, bw),
        f"{size(lower)} file": transfer(cloud, [("clip.mp4", lower)], bw, rss=True),
        f"{size(upper)} file": transfer(cloud, [("clip.mp4", upper)], bw, rss=True),
        "small files, link-bound": transfer(cloud, small[:max(2, len(small) // 8)], bw, **link),
        f"{size(lower)} file, link-bound": transfer(cloud, [("clip.mp4", lower)], bw, **link),
        f"{size(lower)} file, no cap (machine ceiling)": transfer(cloud, [("clip.mp4", lower)], None),
    }
    one, two = runs[f"{size(lower)} file"], runs[f"{size(upper)} file"]
    bound = one["concurrency"] * one["part_size"] + RSS_SLACK
    linked = runs[f"{size(lower)} file, link-bound"]
    ceiling = runs[f"{size(lower)} file, no cap (machine ceiling)"]["throughput"]
    crc = crc_rate()
    why = (f"this machine streams at most ~{rate(ceiling)} with no cap at all (every byte is CRC-64'd in the "
           f"function and again in the emulator; crcmod does {rate(crc)} on one core): far below "
           f"{rate(two['cap'])}")
    return Scenario(
        "X", f"Cross-region: {bw // MIB} MiB/s per connection, {cloud.latency * 1000:g} ms latency",
        ours=f"{rate(two['throughput'])} ({size(upper)}) · {rate(runs['small files']['throughput'])} (small files)",
        baselines="–", floor=f"{rate(two['cap'])} = {two['connections']} connections × {rate(bw)}",
        ratios=f"cap/ours {ratio(two['cap'] / two['throughput'])} at C={two['concurrency']}; link-bound "
               f"(C={sizes.cross_link_bound}): cap/ours {ratio(linked['cap'] / linked['throughput'])}",
        requests=" ".join(f"{op} {n}" for op, n in sorted(two["requests"].items())),
        targets=[at_most(f"cap/ours at C={two['concurrency']}", two["cap"] / two["throughput"], 1.3, why),
                 at_most(f"cap/ours at C={sizes.cross_link_bound}", linked["cap"] / linked["throughput"], 1.3),
                 Target(f"peak RSS at {size(lower)} / {size(upper)} (MB)", round(max(one["rss"], two["rss"]) / 1e6, 1),
                        f"< C × part size + 100 MB = {mb(bound)}, flat",
                        max(one["rss"], two["rss"]) < bound and abs(two["rss"] - one["rss"]) <= 10e6)],
        details=[row(label, p) for label, p in runs.items()],
        notes=[f"peak RSS {mb(one['rss'])} at {size(lower)}, {mb(two['rss'])} at {size(upper)}",
               f"CRC-64 on one core of this machine: {rate(crc)}"],
        data={"runs": runs, "crc_rate": crc})
