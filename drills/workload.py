"""Deterministic workloads for the drills: jobs with result files, and the events that announce them."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from localcloud.mps import MpsAdmin
from localcloud.oss import OssAdmin
from tests.functional.harness import (
    DEST,
    EVENT_FORMATS,
    REGION,
    SOURCE,
    Cloud,
    job_id,
    queue_batch,
    timer,
)

from .common import Delivery

KIB = 1024
REMOTE = "results-shanghai"
REMOTE_REGION = "cn-shanghai"
#: Small thresholds so that multipart copies (3 parts) happen with files of a few hundred KiB.
COPY_ENV = {"MULTIPART_THRESHOLD_BYTES": str(300 * KIB), "PART_SIZE_BYTES": str(100 * KIB), "COPY_CONCURRENCY": "8"}
TYPES = ("image/jpeg", "video/mp4", "application/x-subrip", "image/png")


@dataclass
class JobSpec:
    job_id: str
    files: dict[str, bytes]  # source key -> bytes, in result order
    bucket: str = SOURCE
    region: str = REGION
    starts: str = "Success"  # "Analysing": the first delivery leaves it pending
    meta: dict[str, dict[str, str]] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)

    def dest_keys(self, prefix: str = "iproduction/") -> set[str]:
        keys = list(self.files)
        dirs = [k.split("/")[:-1] for k in keys]
        common = 0
        for parts in zip(*dirs, strict=False):
            if len(set(parts)) != 1:
                break
            common += 1
        return {f"{prefix}{self.job_id}/" + "/".join(k.split("/")[common:]) for k in keys}


def make_jobs(count: int, *, seed: int = 7, first: int = 1, multipart_every: int = 8, analysing_every: int = 4,
              remote_every: int = 0) -> list[JobSpec]:
    """``count`` jobs with 1–4 files of a few KiB; every ``multipart_every``-th also has a 350 KiB file
    (a multipart copy), every ``analysing_every``-th starts ``Analysing``, every ``remote_every``-th
    lies in another region (streamed)."""
    rng = random.Random(seed)
    jobs = []
    for n in range(first, first + count):
        jid = job_id(n)
        base = f"out/{n}"
        files: dict[str, bytes] = {}
        for k in range(1 + n % 4):
            key = f"{base}/hls/seg-{k}.ts" if k == 3 else f"{base}/frame-{k}.jpg"
            files[key] = rng.randbytes(rng.randint(1, 6000))
        if multipart_every and n % multipart_every == 0:
            files[f"{base}/movie.mp4"] = rng.randbytes(350 * KIB + rng.randint(0, 999))
        remote = bool(remote_every) and n % remote_every == 0
        spec = JobSpec(jid, files, bucket=REMOTE if remote else SOURCE, region=REMOTE_REGION if remote else REGION,
                       starts="Analysing" if analysing_every and n % analysing_every == 0 else "Success")
        for i, key in enumerate(files):
            spec.content_types[key] = TYPES[(n + i) % len(TYPES)]
            if (n + i) % 3 == 0:
                spec.meta[key] = {"job": str(n), "take": str(i)}
        jobs.append(spec)
    return jobs


def mps_job(spec: JobSpec, state: str | None = None) -> dict[str, Any]:
    """The MPS emulator's record of a job (as the harness seeds it)."""
    host = f"{spec.bucket}.oss-{spec.region}.aliyuncs.com"
    return {"Type": "IProduction", "State": state or spec.starts, "FunctionName": "ImageCartoonize",
            "PipelineId": "39f8e0bc005e4f309379701645f40000", "Input": f"oss://{host}/input/example.mp4",
            "Output": f"oss://{host}/out/{{source}}-{{timestamp}}-{{sequenceId}}.jpg", "JobParams": "{mode:\"gif\"}",
            "UserData": "null",
            "Result": {"Code": "Success", "Message": "Successful.",
                       "Data": json.dumps({"result": [{"file": key} for key in spec.files]})}}


def seed(cloud: Cloud, jobs: list[JobSpec]) -> None:
    """Put every job's files in OSS and the jobs in MPS, in bulk."""
    seed_admins(cloud.oss_admin, cloud.mps_admin, jobs)


def seed_admins(oss: OssAdmin, mps: MpsAdmin, jobs: list[JobSpec]) -> None:
    import base64

    buckets = {spec.bucket: spec.region for spec in jobs}
    for bucket, region in buckets.items():
        oss.create_bucket(bucket, region)
    oss.create_bucket(DEST, REGION)
    objects = [{"bucket": spec.bucket, "key": key, "base64": base64.b64encode(data).decode(),
                "content_type": spec.content_types.get(key, "image/jpeg"), "meta": spec.meta.get(key, {})}
               for spec in jobs for key, data in spec.files.items()]
    for start in range(0, len(objects), 500):
        oss.seed({"objects": objects[start:start + 500]})
    mps.call("POST", "seed", {"jobs": {spec.job_id: mps_job(spec) for spec in jobs}})


def set_success(cloud: Cloud, jobs: list[JobSpec]) -> None:
    for spec in jobs:
        if spec.starts != "Success":
            cloud.mps_admin.set_state(spec.job_id, "Success")


ROTATION = ("mns-queue-batch", "mns-topic-json", "timer-job-ids", "mns-topic-stream", "mns-queue-single-base64",
            "mns-topic-stream-attrs", "bare-job-id")


def deliveries(jobs: list[JobSpec], *, batch: int = 5) -> list[Delivery]:
    """Events announcing every job once, rotating through the trigger formats (batches of up to
    ``batch`` jobs for the MNS queue and the timer's ``jobIds``)."""
    out: list[Delivery] = []
    index = 0
    turn = 0
    while index < len(jobs):
        fmt = ROTATION[turn % len(ROTATION)]
        turn += 1
        if fmt in ("mns-queue-batch", "timer-job-ids"):
            group = [spec.job_id for spec in jobs[index:index + batch]]
            event = queue_batch(*group) if fmt == "mns-queue-batch" else timer(*group)
        else:
            group = [jobs[index].job_id]
            event = EVENT_FORMATS[fmt](group[0])
        index += len(group)
        out.append(Delivery(fmt, event, group))
    return out


def sweep_event() -> bytes:
    return timer()
