"""Drill 5 — security, judged from the emulators' request logs and from everything the function let out.

* A mixed workload (good jobs, multipart and cross-region ones, pending, expired and failed ones, a
  sweep, and hostile jobs pointing at a decoy bucket, at the destination bucket itself, at keys that
  climb out of the prefix) runs with ``SOURCE_BUCKETS`` set and a non-default ``DEST_PREFIX`` beside
  decoy objects of another tenant. Every OSS request the emulator received is checked: no read of a
  bucket outside ``SOURCE_BUCKETS``, no read or write in the destination outside ``DEST_PREFIX``.
* The credentials (raw, URL-encoded, base64) are looked for in every log line, answer, error message
  and stack trace the function produced, and in every object it wrote.
* Wrong MPS credentials (secret, AccessKeyId, STS token; V3 and V2 signatures): the job ends ``error``
  at the first refusal (MPS called once: not retried), the handler raises so that the trigger retries,
  and the reason names the refusal without echoing any secret.
"""

from __future__ import annotations

import json
from typing import Any

from tests.functional.harness import SECRETS, SOURCE, cloud_event, job_id, notification, timer

from . import workload
from .common import (
    Cloud,
    DrillReport,
    Ledger,
    audit_oss,
    captured_text,
    local_cloud,
    scan_secrets,
    settled,
)
from .workload import DEST, REMOTE, JobSpec

PREFIX = "tenant-a/iproduction/"
ENV = {**workload.COPY_ENV, "DEST_PREFIX": PREFIX, "SOURCE_BUCKETS": f"{SOURCE},{REMOTE}",
       "PENDING_MAX_AGE_SECONDS": "3600"}
DECOY = "decoy-bucket"
SIZES = {"ci": {"jobs": 8}, "full": {"jobs": 60}}
MPS_SECRET = "mps-expects-this-other-secret-0123456789"
REFUSALS = {
    # name: (MPS emulator settings, function env, the code the reason must name)
    "wrong-secret-v3": ({"access_key_secret": MPS_SECRET}, {}, "SignatureDoesNotMatch"),
    "wrong-secret-v2": ({"access_key_secret": MPS_SECRET}, {"MPS_SIGNATURE_VERSION": "v2"}, "SignatureDoesNotMatch"),
    "unknown-access-key": ({"access_key_id": "LTAI5tSomebodyElse0000"}, {}, "InvalidAccessKeyId"),
    "wrong-sts-token": ({"security_token": "CAIS-another-token-xyz"}, {}, "InvalidSecurityToken"),
}


def _hostile_jobs(cloud: Cloud, first: int) -> dict[str, str]:
    """Jobs that try to make the function read or write where it must not; name -> job id."""
    fields = workload.mps_job(JobSpec(job_id(first), {"out/x.jpg": b""}))
    cases = {
        "decoy-bucket": (f"oss://{DECOY}.oss-cn-hangzhou.aliyuncs.com/o/x.jpg", ["secret/a.jpg"]),
        "destination-bucket-as-source": (f"oss://{DEST}.oss-cn-hangzhou.aliyuncs.com/o/x.jpg",
                                         ["tenant-b/iproduction/x.jpg"]),
        "climb-out-of-prefix": (f"oss://{SOURCE}/o/x.jpg", ["out/a.jpg", "out/../../tenant-b/x.jpg"]),
        "absolute-key": (f"oss://{SOURCE}/o/x.jpg", ["/tenant-b/iproduction/x.jpg"]),
        "region-lookalike": (f"oss://{DECOY}.oss-cn-hangzhou.aliyuncs.com.evil.com/x", ["secret/a.jpg"]),
        "bucket-without-region": (f"oss://{DECOY}/o/x.jpg", ["secret/a.jpg"]),
    }
    ids = {}
    for i, (name, (output, keys)) in enumerate(cases.items()):
        jid = job_id(first + i)
        cloud.mps_admin.put_job(jid, {**fields, "Output": output, "Result": {
            "Code": "Success", "Message": "m", "Data": json.dumps({"result": [{"file": k} for k in keys]})}})
        ids[name] = jid
    return ids


def workload_run(size: str, report: DrillReport, ledger: Ledger) -> dict[str, Any]:
    jobs = workload.make_jobs(SIZES[size]["jobs"], multipart_every=3, analysing_every=4, remote_every=5, seed=5)
    with local_cloud() as cloud:
        workload.seed(cloud, jobs)
        cloud.oss_admin.create_bucket(DECOY, "cn-hangzhou")
        cloud.put_source("secret/a.jpg", b"decoy", bucket=DECOY)
        for key in ("tenant-b/iproduction/x.jpg", f"iproduction/{jobs[0].job_id}/manifest.json",
                    "tenant-a/other/x.jpg", "tenant-a/iproduction", "tenant-a/iproduction-old/x"):
            cloud.oss_admin.put_object(DEST, key, b"another tenant's")
        hostile = _hostile_jobs(cloud, 0x7000)
        failed = job_id(0x7100)
        cloud.mps_admin.put_job(failed, {**workload.mps_job(jobs[0]), "State": "Fail"})
        stuck = job_id(0x7200)
        cloud.mps_admin.put_job(stuck, {**workload.mps_job(jobs[0]), "State": "Analysing"})
        cloud.oss_admin.put_object(DEST, f"{PREFIX}_pending/{stuck}", json.dumps(
            {"jobId": stuck, "firstSeen": "2026-01-01T00:00:00Z", "lastChecked": "2026-01-01T00:00:00Z",
             "attempts": 1, "lastState": "Analysing"}))
        instance = cloud.function(**ENV)
        announced = [spec.job_id for spec in jobs] + list(hostile.values()) + [failed]
        for start in range(0, len(announced), 6):
            batch = announced[start:start + 6]
            event = json.dumps([cloud_event(notification(j), f"m-{j}") for j in batch]).encode()
            ledger.record(instance.invoke(event))
        workload.set_success(cloud, jobs)
        for _ in range(3):
            ledger.record(instance.invoke(timer()))
        outcomes = {job: ledger.by_job.get(job, []) for job in [*announced, stuck]}
        for name, jid in hostile.items():
            report.check(outcomes[jid] == ["rejected"], f"hostile job {name}: {outcomes[jid]}")
        for spec in jobs:
            report.check("committed" in outcomes[spec.job_id], f"{spec.job_id}: never committed")
        report.check(outcomes[stuck] == ["expired"], f"the stuck job: {outcomes[stuck]}")
        report.check(outcomes[failed] == ["job-failed"], f"the failed job: {outcomes[failed]}")
        entries = settled(cloud.oss.log)
        problems, ops = audit_oss(entries, dest_bucket=DEST, dest_prefix=PREFIX, source_buckets=[SOURCE, REMOTE])
        report.extend(problems)
        written = cloud.oss_admin.objects(DEST, PREFIX)
        bodies = [cloud.oss_admin.read(DEST, o["key"]).decode("utf-8", "replace") for o in written
                  if o["size"] < 1 << 20 and (o["key"].endswith(".json") or "/_" in o["key"])]
        report.extend(scan_secrets(bodies))
        decoys = [e for e in entries if e.get("bucket") == DECOY or e.get("source_bucket") == DECOY]
        report.check(not decoys, f"{len(decoys)} request(s) reached the decoy bucket")
        untouched = cloud.oss_admin.read(DEST, "tenant-b/iproduction/x.jpg") == b"another tenant's"
        report.check(untouched, "another tenant's object changed")
        return {"jobs": len(jobs), "hostileJobs": len(hostile), "ossRequestsAudited": len(entries),
                "requestsByOperation": dict(sorted(ops.items())), "objectsWrittenScanned": len(bodies),
                "requestsToDecoyBucket": len(decoys)}


def refusals_run(report: DrillReport, ledger: Ledger) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, (mps_settings, env, code) in REFUSALS.items():
        spec = workload.make_jobs(1, first=0x7300, seed=9, analysing_every=0, multipart_every=0)[0]
        with local_cloud() as cloud:
            workload.seed(cloud, [spec])
            cloud.mps.knobs.configure({"settings": mps_settings})
            instance = cloud.function(**{**ENV, **env})
            results = [instance.invoke(timer(spec.job_id)) for _ in range(2)]  # the trigger's retry: same answer
            calls = cloud.mps_admin.call("GET", "stats")["calls"].get("QueryIProductionJob", 0)
            for result in results:
                ledger.record(result)
            reasons = [line.get("reason") or "" for r in results for line in r.json_logs()
                       if line.get("event") == "job.outcome"]
            text = "\n".join(captured_text(r) for r in results)
            report.check(all(r.error_type == "UnhandledInvocationError" for r in results),
                         f"{name}: the handler did not raise (the trigger would not retry)")
            report.check(calls == 2, f"{name}: MPS called {calls} times in 2 invocations (retried?)")
            report.check(all(code in reason for reason in reasons) and len(reasons) == 2,
                         f"{name}: the reason does not name {code}: {reasons}")
            report.check(all(code in (r.error_message or "") for r in results),
                         f"{name}: the error the trigger sees does not name {code}")
            leaks = scan_secrets([text], [*SECRETS, MPS_SECRET, *mps_settings.values()])
            report.extend(f"{name}: {leak}" for leak in leaks)
            report.check(cloud.manifest(spec.job_id, PREFIX) is None, f"{name}: a manifest was committed")
            seen[name] = {"reason": reasons[0] if reasons else None, "mpsCalls": calls,
                          "raised": all(not r.ok for r in results)}
    return seen


def run(size: str = "ci") -> DrillReport:
    report = DrillReport("security", size)
    ledger = Ledger()
    figures = workload_run(size, report, ledger)
    refusals = refusals_run(report, ledger)
    report.extend(scan_secrets(ledger.texts, [*SECRETS, MPS_SECRET]))
    lines = sum(text.count("\n") + 1 for text in ledger.texts)
    report.figures = {**figures, "refusals": refusals, "capturedLinesScanned": lines,
                      "secretForms": ["raw", "URL-encoded", "URL-encoded twice", "base64"],
                      **ledger.figures()}
    report.lost = {"requestsOutsideAllowed": sum(p.startswith(("write", "read", "copy", "destination"))
                                                  for p in report.problems),
                   "secretsLeaked": sum("leaked" in p for p in report.problems)}
    return report


__all__ = ["run"]
