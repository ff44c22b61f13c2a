"""Drill 6 — the pending registry: every record leaves with a recorded outcome; sweeps stay within
the MPS QPS cap and the time budget, however many jobs wait.

* **Outcomes**: a registry holding jobs stuck past ``PENDING_MAX_AGE_SECONDS``, young ones, finished,
  failed and unknown ones, committed ones whose record was left behind, damaged records and keys
  that are not job ids is swept: stuck jobs move to ``_expired/`` (their history kept, the outcome
  logged), finished ones are committed, failed ones get their failure manifest, unknown ones are
  rejected, young and damaged ones stay pending with one more attempt; nothing else is touched.
* **Scale**: thousands of pending jobs are swept by an FC instance with a short timeout (killed if it
  overruns) until every job has been looked at, while some jobs finish between sweeps. The MPS
  emulator measures the most calls in any one-second window; every sweep must end within its timeout.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

from tests.functional.harness import job_id, timer

from . import workload
from .common import Cloud, DrillReport, Ledger, audit_cloud, local_cloud, objects, outcomes_of, scan_secrets
from .workload import DEST

SIZES = {"ci": {"jobs": 600, "qps": 50, "timeout": 6}, "full": {"jobs": 3000, "qps": 50, "timeout": 20}}
ENV = {"SOURCE_BUCKETS": workload.SOURCE}
PENDING = "iproduction/_pending/"
EXPIRED = "iproduction/_expired/"
OLD, RECENT = "2026-01-01T00:00:00Z", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _record(job: str, first_seen: str, attempts: int = 2, state: str = "Analysing") -> str:
    return json.dumps({"jobId": job, "firstSeen": first_seen, "lastChecked": first_seen, "attempts": attempts,
                       "lastState": state})


def outcomes_phase(report: DrillReport, ledger: Ledger) -> dict[str, Any]:
    """One registry with every kind of record, swept twice."""
    kinds = {"stuck": 6, "young": 4, "finished": 3, "failed": 2, "unknown": 2, "committed-record-left": 2,
             "damaged": 4}
    jobs: dict[str, list[str]] = {}
    n = 0x9000
    with local_cloud() as cloud:
        specs = []
        for kind, count in kinds.items():
            jobs[kind] = []
            for _ in range(count):
                n += 1
                spec = workload.make_jobs(1, first=n, analysing_every=0, multipart_every=0, seed=n)[0]
                jobs[kind].append(spec.job_id)
                specs.append((kind, spec))
        workload.seed(cloud, [spec for kind, spec in specs if kind not in ("unknown",)])
        damaged = ['{"jobId": ', '["a", 1]', json.dumps({"firstSeen": 42, "attempts": "many", "lastState": [1]}),
                   json.dumps({"firstSeen": "yesterday", "attempts": -3})]
        for kind, spec in specs:
            jid = spec.job_id
            state = {"stuck": "Analysing", "young": "Queuing", "finished": "Success", "failed": "Fail",
                     "damaged": "Analysing", "committed-record-left": "Success"}.get(kind)
            if state:
                cloud.mps_admin.set_state(jid, state)
            body = {"stuck": _record(jid, OLD, 40), "damaged": damaged[jobs["damaged"].index(jid)]
                    if kind == "damaged" else None}.get(kind) or _record(jid, RECENT)
            cloud.oss_admin.put_object(DEST, f"{PENDING}{jid}", body, content_type="application/json")
        for jid in jobs["committed-record-left"]:  # committed by a message; its record's delete was lost
            ledger.record(cloud.invoke(timer(jid), **ENV))
            cloud.oss_admin.put_object(DEST, f"{PENDING}{jid}", _record(jid, RECENT))
        strays = [f"{PENDING}README.txt", f"{PENDING}{job_id(1)}/nested", f"{PENDING}{'a' * 31}"]
        for key in strays:
            cloud.oss_admin.put_object(DEST, key, b"not a record")
        cloud.oss.log.clear()
        before = {o["key"]: o for o in cloud.oss_admin.objects(DEST, PENDING)}
        first = cloud.invoke(timer(), PENDING_MAX_AGE_SECONDS="86400", **ENV)
        ledger.record(first)
        got = outcomes_of(first)
        report.check(first.ok, f"the sweep raised: {first.error_message}")
        expected = {"stuck": "expired", "young": "pending", "finished": "committed", "failed": "job-failed",
                    "unknown": "rejected", "committed-record-left": "already-committed", "damaged": "pending"}
        for kind, ids in jobs.items():
            for jid in ids:
                report.check(got.get(jid) == expected[kind], f"{kind} {jid}: {got.get(jid)}, expected {expected[kind]}")
        after = objects(cloud, DEST, PENDING)
        for jid in jobs["stuck"]:
            moved = json.loads(cloud.oss_admin.read(DEST, f"{EXPIRED}{jid}"))
            report.check((moved["firstSeen"], moved["attempts"], moved["maxAgeSeconds"]) == (OLD, 41, 86400)
                         and "expiredAt" in moved, f"expired record of {jid} lost its history: {moved}")
        logged = [line for line in first.json_logs() if line.get("event") == "job.outcome"
                  and line.get("outcome") == "expired"]
        report.check(len(logged) == len(jobs["stuck"]), "not every expiry was logged")
        left = set(after) - {f"{PENDING}{j}" for j in jobs["young"] + jobs["damaged"]} - set(strays)
        report.check(not left, f"records left that should have gone: {sorted(left)}")
        for jid in jobs["young"] + jobs["damaged"]:
            record = json.loads(cloud.oss_admin.read(DEST, f"{PENDING}{jid}"))
            report.check(record["jobId"] == jid and isinstance(record["attempts"], int) and record["attempts"] >= 1,
                         f"pending record of {jid} not rewritten sanely: {record}")
        for key in strays:
            report.check(after.get(key, {}).get("etag") == before[key]["etag"], f"{key} was touched")
        second = cloud.invoke(timer(), PENDING_MAX_AGE_SECONDS="86400", **ENV)
        ledger.record(second)
        report.check(sorted(outcomes_of(second).values()) == ["pending"] * (len(jobs["young"]) + len(jobs["damaged"])),
                     f"the second sweep: {outcomes_of(second)}")
        ignored = sum(1 for line in first.json_logs() if line.get("event") == "pending.ignored")
        report.extend(audit_cloud(cloud, ENV))
        return {"records": sum(kinds.values()) + len(strays), "byKind": kinds, "strayKeys": len(strays),
                "strayKeysIgnored": ignored, "firstSweep": dict(Counter(got.values()))}


def scale_phase(size: str, report: DrillReport, ledger: Ledger) -> dict[str, Any]:
    """Thousands of pending jobs swept within the MPS cap and the FC timeout."""
    params = SIZES[size]
    count, qps, timeout = params["jobs"], params["qps"], params["timeout"]
    ids = [job_id(0xA0000 + i) for i in range(count)]
    with local_cloud(mps_settings={"qps": qps}, mps_process=True) as cloud:
        _seed_pending(cloud, ids)
        instance = cloud.function(timeout=timeout, isolated=True, MPS_MAX_QPS=str(qps), **ENV)
        per_sweep = max(1, int(qps * (timeout * 0.9 - 2)))
        max_sweeps = math.ceil(count / per_sweep) + 4
        sweeps: list[dict[str, Any]] = []
        finished: set[str] = set()
        for index in range(max_sweeps):
            started = time.monotonic()
            result = instance.invoke(timer())
            took = time.monotonic() - started
            ledger.record(result)
            got = outcomes_of(result)
            counts = Counter(got.values())
            deferred = next((line.get("jobs") for line in result.json_logs() if line.get("event") == "sweep.deferred"),
                            0)
            sweeps.append({"seconds": round(took, 2), "jobs": len(got), "deferred": deferred, **counts})
            report.check(result.ok, f"sweep {index + 1} did not end well: {result.error_type} {result.error_message}")
            report.check(result.error_type != "FunctionTimeout", f"sweep {index + 1} overran its {timeout}s timeout")
            if index == 0:  # some jobs finish while the registry is being worked through
                finished = set(ids[::10])
                for jid in finished:
                    cloud.mps_admin.set_state(jid, "Success")
            records = _attempts(cloud)
            if all(records.get(j, 99) >= 2 for j in ids if j not in finished) and \
                    not any(j in records for j in finished):
                break
        stats = cloud.mps_admin.call("GET", "stats")
        records = _attempts(cloud)
        unvisited = [j for j in ids if j not in finished and records.get(j, 0) < 2]
        report.check(not unvisited, f"{len(unvisited)} pending job(s) never looked at by {len(sweeps)} sweeps")
        report.check(not any(j in records for j in finished), "finished jobs still in the registry")
        report.check(stats["max_calls_per_second"] <= qps,
                     f"MPS saw {stats['max_calls_per_second']} calls in one second (cap {qps})")
        committed = sum(s.get("committed", 0) for s in sweeps)
        report.check(committed == len(finished), f"{committed} of {len(finished)} finished jobs committed")
        report.extend(audit_cloud(cloud, ENV))
        instance.close()
        return {"pendingJobs": count, "mpsMaxQps": qps, "fcTimeoutSeconds": timeout, "sweeps": len(sweeps),
                "jobsFinishedMeanwhile": len(finished), "mpsCalls": stats["total"],
                "mpsMaxCallsInOneSecond": stats["max_calls_per_second"], "mpsThrottled": stats["throttled"],
                "longestSweepSeconds": max(s["seconds"] for s in sweeps), "perSweep": sweeps}


def _seed_pending(cloud: Cloud, ids: list[str]) -> None:
    cloud.mps_admin.call("POST", "seed", {"jobs": {j: {**workload.mps_job(workload.JobSpec(j, {})),
                                                       "State": "Analysing"} for j in ids}})
    objects_ = [{"bucket": DEST, "key": f"{PENDING}{j}", "text": _record(j, RECENT, 1),
                 "content_type": "application/json"} for j in ids]
    for start in range(0, len(objects_), 1000):
        cloud.oss_admin.seed({"objects": objects_[start:start + 1000]})


def _attempts(cloud: Cloud) -> dict[str, int]:
    """``{jobId: attempts}`` of every record in the registry (read through the admin API)."""
    found = {}
    for item in cloud.oss_admin.objects(DEST, PENDING):
        jid = item["key"][len(PENDING):]
        try:
            found[jid] = json.loads(cloud.oss_admin.read(DEST, item["key"]))["attempts"]
        except (ValueError, KeyError, TypeError):
            found[jid] = -1
    return found


def run(size: str = "ci") -> DrillReport:
    report = DrillReport("pending-registry", size)
    ledger = Ledger()
    registry = outcomes_phase(report, ledger)
    scale = scale_phase(size, report, ledger)
    report.extend(scan_secrets(ledger.texts))
    report.figures = {"registry": registry, "scale": scale, **ledger.figures()}
    report.lost = {"recordsWithoutOutcome": sum("expected" in p or "left" in p for p in report.problems),
                   "qpsCapExceeded": int(scale["mpsMaxCallsInOneSecond"] > scale["mpsMaxQps"]),
                   "sweepsOverTimeout": ledger.timeouts}
    return report
