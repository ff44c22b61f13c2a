"""Drill 1 — faults: every kind of request fails now and then; the trigger's retries finish the work.

A few hundred jobs (some multipart, some cross-region and streamed, some first ``Analysing`` so they go
through the pending registry and the timer sweep) are announced through every trigger format while
the emulators inject 503/500/throttling answers, connection resets (also mid-body), corrupted bodies,
answers slower than the function's client timeouts, outages longer than the function's own retries,
and MPS ``Throttling`` above its QPS limit. Failed invocations are delivered again, as the triggers
do. Then, from the emulators' side: every job committed exactly once, each manifest equal to a
fault-free run's (but ``committedAt`` and ``mpsRequestId``), every destination object byte-identical
to its source, nothing else written, no multipart upload left open, no pending record left.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from localcloud.fc import FunctionInstance

from . import workload
from .common import (
    Cloud,
    Delivery,
    DrillReport,
    Ledger,
    audit_cloud,
    check_committed_files,
    deliver,
    local_cloud,
    normalised,
    objects,
    scan_secrets,
    settled,
)
from .workload import JobSpec

SIZES = {"ci": {"jobs": 24, "workers": 2}, "full": {"jobs": 300, "workers": 2}}
#: The function's client timeouts; a "slow" answer comes after ``SLOW`` seconds, past them.
CLIENT_TIMEOUT = 1.0
SLOW = 1.6
MPS_SERVER_QPS = 8
MPS_CLIENT_QPS = 6  # per instance; two instances together go past the server's limit
OSS_OPS_SEQUENCES = {
    # The first requests of each operation: one of each fault kind, so every kind of request sees them.
    "ListObjectsV2": ["503", None, "reset", None, "slow", None, "500"],
    "GetObject": ["reset_body", None, "503", None, "slow", None, "corrupt", None, "reset"],
    "HeadObject": ["503", None, "reset", None, "slow", None, "throttle"],
    "CopyObject": ["reset", None, "503", None, "slow", None, "500"],
    "InitiateMultipartUpload": ["503", None, "reset", None, "slow"],
    "UploadPartCopy": ["503", None, "reset", None, "slow"],
    "UploadPart": ["503", None, "reset", None, "slow"],
    "CompleteMultipartUpload": ["503", None, "reset", None, "slow"],
    "PutObject": ["503", None, "reset", None, "slow", None, "500"],
    "DeleteObject": ["503", None, "reset", None, "slow"],
    "ListMultipartUploads": ["503", None, "reset"],
    "GetBucketVersioning": ["503", None, "reset"],
    "AbortMultipartUpload": ["503", None, "reset"],
}


def oss_faults(jobs: int) -> list[dict[str, Any]]:
    outages = [  # longer than the function's 6 attempts: only the trigger's retries get past them
        {"op": "CopyObject", "kind": "503", "after": max(3, jobs // 3), "times": 40},
        {"op": "HeadObject", "kind": "reset", "after": max(5, jobs), "times": 40},
        {"op": "PutObject", "kind": "500", "after": max(2, jobs // 2), "times": 20},
    ]
    rates = [
        {"op": "*", "kind": "503", "rate": 0.04},
        {"op": "*", "kind": "500", "rate": 0.015},
        {"op": "*", "kind": "throttle", "rate": 0.015},
        {"op": "*", "kind": "reset", "rate": 0.04},
        {"op": "*", "kind": "slow", "rate": 0.01, "seconds": SLOW},
        {"op": "GetObject", "kind": "reset_body", "rate": 0.05},
        {"op": "GetObject", "kind": "corrupt", "rate": 0.05},
    ]
    sequences = [{"op": op, "sequence": seq, "seconds": SLOW} for op, seq in OSS_OPS_SEQUENCES.items()]
    return [*sequences, *outages, *rates]


def mps_faults(jobs: int) -> list[dict[str, Any]]:
    return [
        {"op": "QueryIProductionJob", "sequence": ["throttle", None, "503", None, "reset", None, "slow", None,
                                                   "throttle_user", None, "500"], "seconds": SLOW},
        {"op": "QueryIProductionJob", "kind": "503", "after": max(4, jobs // 2), "times": 20},
        {"op": "*", "kind": "throttle", "rate": 0.06},
        {"op": "*", "kind": "throttle_user", "rate": 0.02},
        {"op": "*", "kind": "503", "rate": 0.03},
        {"op": "*", "kind": "500", "rate": 0.01},
        {"op": "*", "kind": "reset", "rate": 0.03},
        {"op": "*", "kind": "slow", "rate": 0.01, "seconds": SLOW},
    ]


def function_env(cloud: Cloud) -> dict[str, str]:
    return {**workload.COPY_ENV, "SOURCE_BUCKETS": f"{workload.SOURCE},{workload.REMOTE}",
            "OSS_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT), "MPS_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
            "MPS_MAX_QPS": str(MPS_CLIENT_QPS)}


def drive(cloud: Cloud, jobs: list[JobSpec], ledger: Ledger, *, workers: int, isolated: bool,
          max_attempts: int = 12, max_sweeps: int = 20, **overrides: str) -> dict[str, Any]:
    """Announce every job, deliver failed invocations again, then sweep until the registry is empty."""
    env = {**function_env(cloud), **overrides}
    sent = workload.deliveries(jobs)

    def instance() -> FunctionInstance:
        return cloud.function(timeout=60, isolated=isolated, **env)

    deliver(sent, instance, ledger, workers=workers, max_attempts=max_attempts)
    workload.set_success(cloud, jobs)
    sweeper = instance()
    sweeps: list[Delivery] = []
    for _ in range(max_sweeps):
        item = Delivery("timer-sweep", workload.sweep_event(), [])
        item.attempts = 1
        result = sweeper.invoke(item.event)
        item.outcomes.append(ledger.record(result))
        sweeps.append(item)
        left = cloud.oss_admin.objects(workload.DEST, "iproduction/_pending/")
        if result.ok and not left and all(o in ("committed", "already-committed") for o in item.outcomes[-1].values()):
            break
    sweeper.close()
    return {"deliveries": sent, "sweeps": sweeps}


def final_manifests(cloud: Cloud, jobs: list[JobSpec]) -> dict[str, dict[str, Any] | None]:
    return {spec.job_id: cloud.manifest(spec.job_id) for spec in jobs}


def reference(jobs: list[JobSpec]) -> dict[str, Any]:
    """The manifests of a fault-free run of the same jobs (fresh emulators, one instance)."""
    with local_cloud() as cloud:
        workload.seed(cloud, jobs)
        ledger = Ledger()
        drive(cloud, jobs, ledger, workers=1, isolated=False, max_attempts=1, MPS_MAX_QPS="100")
        return {job: normalised(m) for job, m in final_manifests(cloud, jobs).items()}


def run(size: str = "ci") -> DrillReport:
    params = SIZES[size]
    jobs = workload.make_jobs(params["jobs"], remote_every=7)
    report = DrillReport("faults", size)
    expected = reference(jobs)
    report.check(all(m is not None for m in expected.values()), "the fault-free reference run did not commit "
                 "every job")
    ledger = Ledger()
    with local_cloud(mps_settings={"qps": MPS_SERVER_QPS, "retry_after": 1000}) as cloud:
        workload.seed(cloud, jobs)
        cloud.oss.knobs.configure({"faults": oss_faults(len(jobs)), "seed": 11})
        cloud.mps.knobs.configure({"faults": mps_faults(len(jobs)), "seed": 12})
        driven = drive(cloud, jobs, ledger, workers=params["workers"], isolated=True)
        oss_knobs, mps_knobs = cloud.oss_admin.knobs(), cloud.mps_admin.knobs()
        cloud.oss.knobs.configure({"faults": []})
        cloud.mps.knobs.configure({"faults": []})
        mps_stats = cloud.mps_admin.call("GET", "stats")
        entries = settled(cloud.oss.log)
        faulted_ops = Counter(e["op"] for e in entries if e.get("fault"))
        used_ops = Counter(e["op"] for e in entries)

        manifests = final_manifests(cloud, jobs)
        dest = objects(cloud, workload.DEST)
        sources = {(o_bucket, key): obj for o_bucket in (workload.SOURCE, workload.REMOTE)
                   for key, obj in objects(cloud, o_bucket).items()}
        missing = [job for job, m in manifests.items() if m is None]
        differing = [job for job, m in manifests.items() if m is not None and normalised(m) != expected[job]]
        file_problems: list[str] = []
        for manifest in manifests.values():
            if manifest is not None:
                file_problems += check_committed_files(cloud, manifest, dest_index=dest, source_index=sources)
        wanted = {f["key"] for m in expected.values() if m for f in m["files"]}
        wanted |= {f"iproduction/{job}/manifest.json" for job in expected}
        stray = sorted(set(dest) - wanted)
        absent = sorted(wanted - set(dest))
        uploads = cloud.oss_admin.uploads()
        with_parts = [u for u in uploads if u.get("parts")]
        # An InitiateMultipartUpload answered too late is retried; the upload the first attempt made is
        # never used: empty (no part, nothing stored), it waits for the sweep's clean-up of old uploads.
        late_initiates = sum(1 for e in entries if e["op"] == "InitiateMultipartUpload" and e.get("fault") == "slow")
        committed_once = sum(ledger.by_job.get(spec.job_id, []).count("committed") == 1 for spec in jobs)
        dead = [d for d in driven["deliveries"] if d.dead]
        report.extend(f"{job}: no manifest" for job in missing)
        report.extend(f"{job}: manifest differs from the fault-free run's" for job in differing)
        report.extend(file_problems)
        report.extend(f"unexpected object at the destination: {key}" for key in stray)
        report.extend(f"missing at the destination: {key}" for key in absent)
        report.extend(f"multipart upload left open with {len(u['parts'])} part(s): {u['key']}" for u in with_parts)
        report.check(len(uploads) - len(with_parts) <= late_initiates,
                     f"{len(uploads) - len(with_parts)} empty upload(s) left open, more than the "
                     f"{late_initiates} InitiateMultipartUpload answer(s) that came too late")
        report.extend(f"dead-lettered after {d.attempts} deliveries: {d.label} {d.jobs}" for d in dead)
        report.check(committed_once == len(jobs), f"{len(jobs) - committed_once} job(s) not committed exactly once")
        report.extend(audit_cloud(cloud, function_env(cloud) | {"DEST_BUCKET": workload.DEST}))
        report.extend(scan_secrets(ledger.texts))
        unfaulted = sorted(op for op in used_ops if op not in faulted_ops and op not in ("AbortMultipartUpload",))
        report.check(not unfaulted, f"operations the function used that no fault reached: {unfaulted}")
        report.check(mps_stats["throttled"] > 0, "MPS never throttled: the drill did not exceed its QPS limit")

    redelivered = sum(d.attempts - 1 for d in driven["deliveries"])
    files = sum(len(spec.files) for spec in jobs)
    report.figures = {
        "jobs": len(jobs), "files": files, "bytes": sum(len(b) for spec in jobs for b in spec.files.values()),
        "multipartFiles": sum(len(b) >= 300 * 1024 for spec in jobs for b in spec.files.values()),
        "crossRegionJobs": sum(spec.region != workload.REGION for spec in jobs),
        "pendingFirst": sum(spec.starts != "Success" for spec in jobs),
        "deliveries": len(driven["deliveries"]), "redeliveries": redelivered, "sweeps": len(driven["sweeps"]),
        "injected": {"oss": dict(sorted(oss_knobs["injected"].items())),
                     "mps": dict(sorted(mps_knobs["injected"].items()))},
        "mpsThrottledByQpsCap": mps_stats["throttled"] - mps_knobs["injected"].get("throttle", 0)
        - mps_knobs["injected"].get("throttle_user", 0),
        "faultedRequestsByOperation": dict(sorted(faulted_ops.items())),
        "ossRequests": sum(used_ops.values()), "mpsCalls": mps_stats["total"],
        **ledger.figures(),
        "committedExactlyOnce": committed_once,
        "emptyUploadsFromLateInitiateAnswers": len(uploads) - len(with_parts),
    }
    report.lost = {"jobsWithoutManifest": len(missing), "manifestsDiffering": len(differing),
                   "filesDiffering": len(file_problems), "uploadsLeftOpenWithParts": len(with_parts),
                   "deadLetters": len(dead), "strayObjects": len(stray)}
    return report
