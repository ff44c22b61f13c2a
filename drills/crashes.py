"""Drill 2 — crash points: an invocation stops at each step; the next one converges.

A job with a pending record, five small files and one multipart file is stopped

* at every OSS request of its run in turn (the k-th request refused with a non-retried error, so the
  invocation raises right there),
* by killing its instance at the FC timeout at the named steps — after some copies, mid multipart
  copy, between the last copy and the manifest, after the manifest but before the pending record is
  removed — and by exhausting its own time budget,
* by faults that outlast the function's retries at the same steps (full size),
* with a damaged destination (a wrong file of the right size), a result file that vanished, and
  bytes corrupted in transit.

After each stop the next invocation (a message redelivered, or the timer sweep) must reach the
fault-free run's final state: the same manifest, every file byte-identical, no pending record. It
must not copy a file that was already intact, and at no moment may a manifest exist while one of
its files is missing or wrong.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from localcloud.fc.instance import InvokeResult
from tests.functional.harness import EVENT_FORMATS, job_id, timer

from . import workload
from .common import (
    DEST_SETTING_OPS,
    Cloud,
    DrillReport,
    Ledger,
    audit_cloud,
    check_committed_files,
    local_cloud,
    normalised,
    objects,
    scan_secrets,
    settled,
)
from .common import intact as is_intact
from .workload import DEST, JobSpec

SIZES = {"ci": {"sweep_every": 1, "exhaust": False}, "full": {"sweep_every": 1, "exhaust": True}}
ENV = {**workload.COPY_ENV, "COPY_CONCURRENCY": "1", "SOURCE_BUCKETS": f"{workload.SOURCE},{workload.REMOTE}"}
KILL_TIMEOUT = 3.0  # the FC timeout of instances that get killed
HELD = 6.0  # how long a "slow" answer is held: past KILL_TIMEOUT
COPY_OPS = frozenset({"CopyObject", "InitiateMultipartUpload", "UploadPartCopy", "UploadPart"})


@dataclass
class Crash:
    """One way to stop an invocation."""

    name: str
    step: str
    how: str  # "refused" (non-retried error), "killed" (SIGKILL mid-request), "budget", "exhausted" (retries spent)
    faults: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    latency: float = 0.0
    timeout: float = 30.0
    prepare: Callable[[Cloud, JobSpec], None] | None = None
    expect: str = "converges"  # or "rejected"
    remote: bool = False
    first_ok: bool = False  # the stopped invocation still answers (a lost record delete changes no outcome)


def template(n: int, *, remote: bool = False) -> JobSpec:
    """Five small files (one in a subdirectory) and a 350 KiB one (three parts); every crash job
    reads the same sources, so that its manifest can be compared with the fault-free run's."""
    base = "out/crash"
    files = {f"{base}/frame-{k}.jpg": bytes([k + 1]) * (1000 + k) for k in range(4)}
    files[f"{base}/hls/seg-0.ts"] = b"ts" * 700
    files[f"{base}/movie.mp4"] = random.Random(5).randbytes(350 * 1024 + 77)
    spec = JobSpec(job_id(n), files)
    if remote:
        spec.bucket, spec.region = workload.REMOTE, workload.REMOTE_REGION
    return spec


def named_crashes(exhaust: bool) -> list[Crash]:
    slow = {"kind": "slow", "seconds": HELD}
    crashes = [
        Crash("killed-after-some-copies", "after some copies", "killed",
              [{"op": "CopyObject", "sequence": [None, None, "slow"], "seconds": HELD}], timeout=KILL_TIMEOUT),
        Crash("killed-mid-multipart", "mid multipart copy", "killed",
              [{"op": "UploadPartCopy", "sequence": [None, "slow"], "seconds": HELD}], timeout=KILL_TIMEOUT),
        Crash("killed-before-manifest", "between the last copy and the manifest", "killed",
              [{"op": "HeadObject", "sequence": [None] * 6 + ["slow"], "seconds": HELD}], timeout=KILL_TIMEOUT),
        Crash("killed-after-manifest", "after the manifest, before the pending record is removed", "killed",
              [{"op": "DeleteObject", **slow, "times": 1}], timeout=KILL_TIMEOUT),
        Crash("budget-after-some-copies", "after some copies", "budget", latency=0.25, timeout=3),
        Crash("damaged-destination", "a wrong file of the right size left at the destination", "refused",
              [{"op": "CopyObject", "kind": "403", "times": 1}], prepare=_damage_destination),
        Crash("source-vanished", "a result file deleted after a partial copy", "refused",
              [{"op": "CopyObject", "kind": "403", "after": 2, "times": 1}], prepare=None, expect="rejected"),
        Crash("corrupted-in-transit", "every GET corrupted (cross-region stream)", "exhausted",
              [{"op": "GetObject", "kind": "corrupt", "after": 1}], remote=True),
    ]
    if exhaust:
        crashes += [
            Crash("exhausted-mid-multipart", "mid multipart copy", "exhausted",
                  [{"op": "UploadPartCopy", "kind": "503", "after": 1, "times": 100}]),
            Crash("exhausted-at-manifest", "between the last copy and the manifest", "exhausted",
                  [{"op": "PutObject", "kind": "503", "times": 100}]),
            Crash("exhausted-at-record-delete", "after the manifest, before the pending record is removed",
                  "exhausted", [{"op": "DeleteObject", "kind": "reset", "times": 100}], first_ok=True),
        ]
    return crashes


def _damage_destination(cloud: Cloud, spec: JobSpec) -> None:
    key = next(iter(spec.files))
    cloud.oss_admin.put_object(DEST, f"iproduction/{spec.job_id}/{key.rsplit('/', 1)[-1]}",
                               bytes(len(spec.files[key])), content_type="image/jpeg")


def pending_record(cloud: Cloud, job: str) -> None:
    record = {"jobId": job, "firstSeen": "2026-11-25T00:00:00Z", "lastChecked": "2026-11-25T00:00:00Z",
              "attempts": 3, "lastState": "Analysing"}
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{job}", json.dumps(record),
                               content_type="application/json")


class Runner:
    """Runs crash scenarios on one local cloud and keeps the figures."""

    def __init__(self, cloud: Cloud, report: DrillReport, ledger: Ledger) -> None:
        self.cloud = cloud
        self.report = report
        self.ledger = ledger
        self.next_job = 1000
        self.reference: dict[bool, Any] = {}
        self.figures: dict[str, int] = {"crashPoints": 0, "recoveries": 0, "recoveryInvocations": 0,
                                        "intactFilesAtRecovery": 0, "intactFilesCopiedAgain": 0,
                                        "manifestsWithBadFiles": 0,
                                        "uploadsLeftByKilledInstances": 0, "uploadsLeftOtherwise": 0,
                                        "pendingRecordsLeft": 0, "notConverged": 0}
        self.by_how: dict[str, int] = {}
        self.warm: Any = None

    def new_job(self, remote: bool = False) -> JobSpec:
        self.next_job += 1
        spec = template(self.next_job, remote=remote)
        workload.seed(self.cloud, [spec])
        pending_record(self.cloud, spec.job_id)
        return spec

    def invoke(self, event: bytes, *, isolated: bool = False, timeout: float = 30.0,
               kill_when_held: bool = False) -> InvokeResult:
        """On a fresh isolated instance, or on the warm in-process one. ``kill_when_held``: the
        instance is killed (SIGKILL, as when FC recycles it or the machine fails) while the OSS
        emulator holds back the request of a ``slow`` fault."""
        if isolated:
            instance = self.cloud.function(timeout=timeout, isolated=True, **ENV)
            try:
                if not kill_when_held:
                    result = instance.invoke(event)
                else:
                    def held() -> int:
                        return int(self.cloud.oss.knobs.public()["injected"].get("slow", 0))

                    before = held()
                    running = ThreadPoolExecutor(1).submit(instance.invoke, event)
                    until = time.monotonic() + timeout
                    while held() == before and time.monotonic() < until and not running.done():
                        time.sleep(0.02)
                    if instance.pid is not None and not running.done():
                        os.kill(instance.pid, signal.SIGKILL)
                    result = running.result(timeout + 10)
            finally:
                instance.close()
        else:
            if self.warm is None:
                self.warm = self.cloud.function(timeout=timeout, **ENV)
            result = self.warm.invoke(event)
        self.ledger.record(result)
        return result

    def clean_run(self, remote: bool = False) -> tuple[str, Any, int]:
        """The fault-free run of the template: its job id, normalised manifest and OSS request count."""
        spec = self.new_job(remote)
        start = len(self.cloud.oss.log.entries())
        result = self.invoke(EVENT_FORMATS["mns-topic-json"](spec.job_id))
        # What every later run of the warm instance sends: its destination's settings are read once.
        requests = len([e for e in settled(self.cloud.oss.log)[start:] if e.get("op") not in DEST_SETTING_OPS])
        self.report.check(result.ok, f"clean run failed: {result.error_message}")
        return spec.job_id, normalised(self.cloud.manifest(spec.job_id)), requests

    def check_manifest_promise(self, job: str, when: str) -> None:
        manifest = self.cloud.manifest(job)
        if manifest is None:
            return
        problems = check_committed_files(self.cloud, manifest)
        if problems:
            self.figures["manifestsWithBadFiles"] += 1
            self.report.extend(f"{when}: {p}" for p in problems)

    def intact_keys(self, spec: JobSpec) -> set[str]:
        dest = objects(self.cloud, DEST, f"iproduction/{spec.job_id}/")
        sources = objects(self.cloud, spec.bucket, "out/crash/")
        keys = set()
        for key in spec.files:
            dest_key = f"iproduction/{spec.job_id}/" + key.split("/", 2)[2]
            if is_intact(self.cloud, sources.get(key), dest.get(dest_key), spec.bucket, dest_key):
                keys.add(dest_key)
        return keys

    def crash(self, crash: Crash, recover_by_sweep: bool) -> None:
        cloud, report = self.cloud, self.report
        spec = self.new_job(crash.remote)
        if crash.prepare is not None:
            crash.prepare(cloud, spec)
        label = f"{crash.name}"
        cloud.oss.knobs.configure({"faults": crash.faults, "latency": crash.latency,
                                   "settings": {"copy_rate": None, **crash.settings}})
        killed = crash.how == "killed"
        first = self.invoke(EVENT_FORMATS["mns-topic-json"](spec.job_id), isolated=killed or crash.how == "budget",
                            timeout=crash.timeout, kill_when_held=killed)
        cloud.oss.knobs.configure({"faults": [], "latency": 0, "settings": {"copy_rate": None}})
        self.figures["crashPoints"] += 1
        self.by_how[crash.how] = self.by_how.get(crash.how, 0) + 1
        if killed:
            report.check(first.exception_type == "InstanceExited", f"{label}: the instance was not killed "
                         f"({first.error_type}: {first.error_message})")
        elif crash.first_ok:
            report.check(first.ok and _outcomes(first).get(spec.job_id) == "committed",
                         f"{label}: expected committed (the record is the sweep's to remove), got {_outcomes(first)}")
            report.check(cloud.oss_admin.object(DEST, f"iproduction/_pending/{spec.job_id}") is not None,
                         f"{label}: the pending record was removed after all")
        elif crash.how in ("budget", "exhausted"):
            report.check(first.error_type == "UnhandledInvocationError",
                         f"{label}: the invocation did not end in error ({first.error_type})")
        if crash.name == "source-vanished":
            cloud.oss_admin.delete_object(spec.bucket, list(spec.files)[-2])
        self.check_manifest_promise(spec.job_id, f"{label}, after the crash")
        self.recover(spec, label, recover_by_sweep, expect=crash.expect, killed=killed)

    def refused_at(self, k: int, recover_by_sweep: bool) -> None:
        spec = self.new_job()
        self.cloud.oss.knobs.configure({"faults": [{"op": "*", "kind": "403", "after": k, "times": 1}]})
        first = self.invoke(EVENT_FORMATS["mns-topic-json"](spec.job_id))
        refused = [e for e in self.cloud.oss.log.entries() if e.get("fault") == "403"]
        self.cloud.oss.knobs.configure({"faults": []})
        self.figures["crashPoints"] += 1
        self.by_how["refused"] = self.by_how.get("refused", 0) + 1
        step = refused[-1]["op"] if refused else "?"
        label = f"refused at request {k + 1} ({step})"
        self.report.check(bool(first.result or first.error_message), f"{label}: no answer")
        self.check_manifest_promise(spec.job_id, f"{label}, after the crash")
        self.recover(spec, label, recover_by_sweep)

    def recover(self, spec: JobSpec, label: str, by_sweep: bool, *, expect: str = "converges",
                killed: bool = False) -> None:
        cloud, report = self.cloud, self.report
        intact = self.intact_keys(spec)
        self.figures["intactFilesAtRecovery"] += len(intact)
        start = len(cloud.oss.log.entries())
        uploads_before = {u["upload_id"] for u in cloud.oss_admin.uploads()}
        final = None
        for attempt in range(3):
            event = timer() if by_sweep else EVENT_FORMATS["mns-queue-batch"](spec.job_id)
            result = self.invoke(event)
            self.figures["recoveryInvocations"] += 1
            self.check_manifest_promise(spec.job_id, f"{label}, recovery {attempt + 1}")
            final = [o for j, o in _outcomes(result).items() if j == spec.job_id]
            if result.ok and final:
                break
        if expect == "rejected":
            report.check(final == ["rejected"], f"{label}: expected rejected after the recovery, got {final}")
            report.check(cloud.manifest(spec.job_id) is None, f"{label}: a manifest was committed for a job "
                         "with a missing file")
            return
        if not final or final[0] not in ("committed", "already-committed"):
            self.figures["notConverged"] += 1
            report.problems.append(f"{label}: did not converge, outcomes {final}")
        self.figures["recoveries"] += 1
        reference = self.reference[spec.bucket != workload.SOURCE]
        got = normalised(cloud.manifest(spec.job_id), spec.job_id, reference[0])
        report.check(got == reference[1], f"{label}: the manifest differs from the fault-free run's")
        copied_again = sorted({e["key"] for e in cloud.oss.log.entries()[start:]
                               if e["op"] in COPY_OPS or (e["op"] == "PutObject"
                                                          and not e["key"].endswith("manifest.json")
                                                          and "/_pending/" not in e["key"])} & intact)
        self.figures["intactFilesCopiedAgain"] += len(copied_again)
        report.extend(f"{label}: {key} was intact and was copied again" for key in copied_again)
        if cloud.oss_admin.object(DEST, f"iproduction/_pending/{spec.job_id}") is not None:
            self.figures["pendingRecordsLeft"] += 1
            report.problems.append(f"{label}: the pending record is still there")
        left = [u for u in cloud.oss_admin.uploads() if u["key"].startswith(f"iproduction/{spec.job_id}/")]
        if killed:
            self.figures["uploadsLeftByKilledInstances"] += len(left)
            report.check(all(u["upload_id"] in uploads_before for u in left),
                         f"{label}: the recovery left an upload open")
        elif left:
            self.figures["uploadsLeftOtherwise"] += len(left)
            report.problems.append(f"{label}: {len(left)} multipart upload(s) left open")


def _outcomes(result: InvokeResult) -> dict[str, str]:
    from .common import outcomes_of

    return outcomes_of(result)


def run(size: str = "ci") -> DrillReport:
    params = SIZES[size]
    report = DrillReport("crash-points", size)
    ledger = Ledger()
    with local_cloud() as cloud:
        runner = Runner(cloud, report, ledger)
        ref_job, ref_manifest, requests = runner.clean_run()
        runner.reference[False] = (ref_job, ref_manifest)
        remote_job, remote_manifest, _ = runner.clean_run(remote=True)
        runner.reference[True] = (remote_job, remote_manifest)
        for k in range(0, requests, params["sweep_every"]):
            runner.refused_at(k, recover_by_sweep=k % 2 == 1)
        for index, crash in enumerate(named_crashes(params["exhaust"])):
            runner.crash(crash, recover_by_sweep=index % 2 == 0)
        report.extend(audit_cloud(cloud, ENV))
        report.extend(scan_secrets(ledger.texts))
        report.check(runner.figures["uploadsLeftByKilledInstances"] <= 1,
                     "more uploads left open by killed instances than the one killed mid multipart copy")
    report.figures = {"requestsInAJobRun": requests, **runner.figures, "crashPointsByHow": runner.by_how,
                      **ledger.figures()}
    report.lost = {"intactFilesCopiedAgain": runner.figures["intactFilesCopiedAgain"],
                   "manifestsWithMissingOrWrongFiles": runner.figures["manifestsWithBadFiles"],
                   "notConverged": runner.figures["notConverged"],
                   "pendingRecordsLeft": runner.figures["pendingRecordsLeft"]}
    return report


__all__ = ["Crash", "Runner", "job_id", "run"]
