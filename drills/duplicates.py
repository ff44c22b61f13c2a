"""Drill 3 — duplicates: the same job delivered several times at once gives one manifest, no error.

Three ways to deliver a job ``n`` times at once, each time through different trigger formats:

* separate processes: ``n`` isolated FC instances (one process each) invoked at the same instant;
* threads: ``n`` concurrent invocations of one instance (FC instance concurrency: shared pools,
  connection pools and MPS rate limiter);
* overlapping events: queue batches, timer ``jobIds`` lists and single messages naming the same jobs
  in different orders, fired together, plus one event naming a job several times.

Judged from the OSS request log: per job exactly one manifest PUT succeeded, every other invocation
reports ``already-committed`` (never ``error``), and every file of the manifest is byte-identical to
its source.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from localcloud.fc import FunctionInstance
from localcloud.fc.context import Credentials, FunctionMeta
from localcloud.fc.instance import InvokeResult
from tests.functional.harness import AK, EVENT_FORMATS, SECRET, TOKEN, queue_batch, timer, topic_json

from . import workload
from .common import (
    Cloud,
    DrillReport,
    Ledger,
    audit_cloud,
    check_committed_files,
    local_cloud,
    outcomes_of,
    scan_secrets,
    settled,
)

SIZES = {"ci": {"jobs": 4, "copies": 3}, "full": {"jobs": 30, "copies": 4}}
ENV = {**workload.COPY_ENV, "SOURCE_BUCKETS": workload.SOURCE}
FORMATS = ("mns-topic-stream", "mns-topic-json", "mns-queue-batch", "timer-job-ids", "mns-queue-single-base64",
           "mns-topic-stream-attrs", "bare-job-id")
HANDLER_ROOT = Path(__file__).resolve().parents[1] / "handler"


def fire(instances: list[FunctionInstance], events: list[bytes]) -> list[InvokeResult]:
    """Invoke ``instances[i]`` with ``events[i]``, all released at the same instant."""
    results: list[Any] = [None] * len(instances)
    barrier = threading.Barrier(len(instances))

    def one(index: int) -> None:
        barrier.wait()
        results[index] = instances[index].invoke(events[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(instances))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class _Lines(io.TextIOBase):
    """A stdout that keeps the lines written by any thread."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.lines.extend(line for line in text.splitlines() if line)
        return len(text)


class SharedInstance:
    """One FC instance serving several requests at once (instance concurrency): the function's own
    ``index.handler`` called from concurrent threads, sharing one runtime built by ``initialize``."""

    def __init__(self, cloud: Cloud, env: dict[str, str], timeout: int = 60) -> None:
        if str(HANDLER_ROOT) not in sys.path:
            sys.path.insert(0, str(HANDLER_ROOT))
        from iproduction import app, runtime

        self.app = app
        self.timeout = timeout
        self.runtime = runtime.build_runtime({**cloud.env, **env})

    def invoke_all(self, events: list[bytes]) -> list[InvokeResult]:
        app = self.app
        stdout = _Lines()
        results: list[Any] = [None] * len(events)
        barrier = threading.Barrier(len(events))

        def one(index: int) -> None:
            request_id = f"thread-{index}-{id(events)}"
            context = type("Context", (), {
                "request_id": request_id, "credentials": Credentials(AK, SECRET, TOKEN),
                "function": FunctionMeta("iproduction-collector", "index.handler", 1024, self.timeout)})()
            result = InvokeResult(request_id)
            barrier.wait()
            try:
                result.result = app.handler(events[index], context)
            except Exception as exc:
                result.error_type, result.error_message = "UnhandledInvocationError", str(exc)
                result.exception_type = type(exc).__name__
            results[index] = result

        saved = app._runtime
        app._runtime = self.runtime
        try:
            with contextlib.redirect_stdout(stdout):
                threads = [threading.Thread(target=one, args=(i,)) for i in range(len(events))]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        finally:
            app._runtime = saved
        for result in results:
            result.logs = [line for line in stdout.lines if result.request_id in line]
        return results

    def close(self) -> None:
        self.runtime.close()


def _record(ledger: Ledger, results: list[InvokeResult], mode: str, seen: dict[str, Counter[str]]) -> None:
    for result in results:
        for job, outcome in ledger.record(result).items():
            seen.setdefault(job, Counter())[outcome] += 1
        if not result.ok:
            seen.setdefault(f"!{mode}", Counter())[result.error_message or "?"] += 1


def run(size: str = "ci") -> DrillReport:
    params = SIZES[size]
    n, copies = params["jobs"], params["copies"]
    report = DrillReport("duplicates", size)
    ledger = Ledger()
    jobs = workload.make_jobs(3 * n + 3, multipart_every=2, analysing_every=0, seed=3)
    processes, threads, overlapping = jobs[:n], jobs[n:2 * n], jobs[2 * n:]
    seen: dict[str, Counter[str]] = {}
    sent = Counter[str]()
    with local_cloud() as cloud:
        workload.seed(cloud, jobs)
        cloud.oss.knobs.configure({"latency": 0.005})
        # Separate processes.
        instances = [cloud.function(isolated=True, **ENV) for _ in range(copies)]
        for k, spec in enumerate(processes):
            events = [EVENT_FORMATS[FORMATS[(k + i) % len(FORMATS)]](spec.job_id) for i in range(copies)]
            _record(ledger, fire(instances, events), "processes", seen)
            sent["processes"] += copies
        for instance in instances:
            instance.close()
        # Threads of one instance.
        shared = SharedInstance(cloud, ENV)
        try:
            for k, spec in enumerate(threads):
                events = [EVENT_FORMATS[FORMATS[(k + i) % len(FORMATS)]](spec.job_id) for i in range(copies)]
                _record(ledger, shared.invoke_all(events), "threads", seen)
                sent["threads"] += copies
        finally:
            shared.close()
        # Overlapping events on separate processes: batches in different orders, one job named thrice.
        ids = [spec.job_id for spec in overlapping]
        events = [queue_batch(*ids), timer(*reversed(ids)), topic_json(ids[len(ids) // 2]),
                  queue_batch(ids[0], ids[0], ids[-1], ids[0])]
        instances = [cloud.function(isolated=True, **ENV) for _ in events]
        overlapped = fire(instances, events)
        _record(ledger, overlapped, "overlapping", seen)
        report.check(sorted(outcomes_of(overlapped[-1])) == sorted({ids[0], ids[-1]}),
                     "an event naming a job three times did not give one entry per job")
        sent["overlapping"] += len(ids) + len(ids) + 1 + 4
        for instance in instances:
            instance.close()

        manifest_puts = Counter[tuple[str, int]]()
        for entry in settled(cloud.oss.log):
            if entry.get("op") != "PutObject":
                continue
            if entry["key"].endswith("/manifest.json"):
                manifest_puts[(entry["key"].split("/")[-2], entry["status"])] += 1
        problems = []
        for spec in jobs:
            got = seen.get(spec.job_id, Counter())
            wins = manifest_puts[(spec.job_id, 200)]
            if wins != 1:
                problems.append(f"{spec.job_id}: {wins} manifest PUTs succeeded")
            if got["committed"] != 1 or set(got) - {"committed", "already-committed"}:
                problems.append(f"{spec.job_id}: outcomes {dict(got)}")
            manifest = cloud.manifest(spec.job_id)
            if manifest is None or manifest["fileCount"] != len(spec.files):
                problems.append(f"{spec.job_id}: manifest missing or incomplete")
            else:
                problems += check_committed_files(cloud, manifest)
        report.extend(problems)
        report.extend(f"{mode[1:]}: an invocation raised: {dict(c)}" for mode, c in seen.items() if mode[0] == "!")
        report.extend(audit_cloud(cloud, ENV))
        report.extend(scan_secrets(ledger.texts))
        report.check(cloud.oss_admin.uploads() == [], "multipart uploads left open")
        puts = sum(c for (_, status), c in manifest_puts.items())
        refused = sum(c for (_, status), c in manifest_puts.items() if status == 409)
        stray = [k for k in cloud.dest_objects() if not k.startswith("iproduction/")]
        report.extend(f"written outside the prefix: {k}" for k in stray)
        deliveries = sum(sent.values())
        report.figures = {"jobs": len(jobs), "deliveries": deliveries, "duplicatesSent": deliveries - len(jobs),
                          "deliveriesByMode": dict(sent), "copiesAtOnce": copies, "manifestPutsTried": puts,
                          "manifestPutsRefused409": refused, **ledger.figures()}
        report.lost = {"jobsWithoutExactlyOneManifest": sum(manifest_puts[(s.job_id, 200)] != 1 for s in jobs),
                       "errorOutcomes": ledger.outcomes.get("error", 0),
                       "filesDiffering": sum("differs" in p for p in problems)}
    return report


__all__ = ["SharedInstance", "fire", "run"]
