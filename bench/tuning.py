"""Sweeps behind the defaults: COPY_CONCURRENCY, PART_SIZE_BYTES, MULTIPART_THRESHOLD_BYTES,
JOB_CONCURRENCY. Each point is a fresh warm instance with one variable changed."""

from __future__ import annotations

from typing import Any

from bench.cloud import GIB, Cloud
from bench.model import mb, ratio, secs, size
from bench.same_region import batch_point, big_point, many_point
from bench.sizes import Sizes

#: The files of a multi-file job in the threshold sweep.
THRESHOLD_FILES = 8


def concurrency(cloud: Cloud, sizes: Sizes) -> list[dict[str, Any]]:
    rows = []
    for c in sizes.tune_concurrency:
        many = many_point(cloud, sizes, sizes.many_files, sizes.tune_repeats, COPY_CONCURRENCY=str(c))
        many_large = many_point(cloud, sizes, max(sizes.scaling), sizes.tune_repeats, COPY_CONCURRENCY=str(c))
        big = big_point(cloud, 1, sizes.big_file, COPY_CONCURRENCY=str(c))
        rows.append({"COPY_CONCURRENCY": c,
                     f"{many['files']} files": secs(many["ours"]), f"floor ({many['files']})": secs(many["floor"]),
                     f"{many_large['files']} files ": secs(many_large["ours"]),
                     f"floor ({many_large['files']}) ": secs(many_large["floor"]),
                     size(sizes.big_file): secs(big["ours"]), f"floor ({size(sizes.big_file)})": secs(big["floor"]),
                     "parts": big["parts"], "peak RSS": mb(big["rss"]),
                     "_values": [many["ours"], many_large["ours"], big["ours"]],
                     "_runs": [many["ours_runs"], many_large["ours_runs"]]})
    return rows


def part_size(cloud: Cloud, sizes: Sizes) -> list[dict[str, Any]]:
    rows = []
    for part in sizes.tune_part_size:
        big = big_point(cloud, 1, sizes.big_file, PART_SIZE_BYTES=str(part))
        rows.append({"PART_SIZE_BYTES": size(part), f"{size(sizes.big_file)}": secs(big["ours"]),
                     "floor": secs(big["floor"]), "ours/floor": ratio(big["ours"] / big["floor"]),
                     "UploadPartCopy": big["parts"], "requests": big["requests"], "_values": [big["ours"]]})
    return rows


def threshold(cloud: Cloud, sizes: Sizes) -> list[dict[str, Any]]:
    """Each size copied whole (CopyObject) and in parts, alone and as a job of several files."""
    rows = []
    for each in sizes.tune_threshold_sizes:
        for files in (1, THRESHOLD_FILES):
            row: dict[str, Any] = {"job": f"{files} × {size(each)}"}
            single = big_point(cloud, files, each, MULTIPART_THRESHOLD_BYTES=str(GIB)) if each < GIB else None
            parts = big_point(cloud, files, each, MULTIPART_THRESHOLD_BYTES=str(min(each, GIB)))
            row["CopyObject"] = f"{secs(single['ours'])} ({single['requests']} req)" if single else "– (> 1 GiB)"
            row["multipart"] = f"{secs(parts['ours'])} ({parts['requests']} req, {parts['parts']} parts)"
            row["CopyObject/multipart"] = ratio(single["ours"] / parts["ours"]) if single else "–"
            rows.append(row)
    return rows


def job_concurrency(cloud: Cloud, sizes: Sizes) -> list[dict[str, Any]]:
    rows = []
    for jobs in sizes.tune_job_concurrency:
        p = batch_point(cloud, sizes, JOB_CONCURRENCY=str(jobs))
        rows.append({"JOB_CONCURRENCY": jobs, f"{p['jobs']} jobs": secs(p["ours"]), "floor": secs(p["floor"]),
                     "ours/floor": ratio(p["ours"] / p["floor"]), "MPS max/s": p["max_calls_per_second"],
                     "throttled": p["throttled"], "function CPU": secs(p["cpu"]), "_values": [p["ours"]]})
    return rows


def sweeps(cloud: Cloud, sizes: Sizes) -> dict[str, list[dict[str, Any]]]:
    return {"COPY_CONCURRENCY": concurrency(cloud, sizes), "PART_SIZE_BYTES": part_size(cloud, sizes),
            "MULTIPART_THRESHOLD_BYTES": threshold(cloud, sizes), "JOB_CONCURRENCY": job_concurrency(cloud, sizes)}
