"""What every drill shares: the local cloud, a ledger of invocations, and the checks made from the
emulators' side (request-log audit, secret scan, destination vs source, manifests)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from localcloud.fc import FunctionInstance
from localcloud.fc.instance import InvokeResult
from localcloud.mps import MpsEmulator
from localcloud.oss import OssEmulator
from tests.functional.harness import AK, DEST, SECRET, SECRETS, SOURCE, TOKEN, Cloud

#: Operations that change something in a bucket.
WRITE_OPS = frozenset({"PutObject", "CopyObject", "DeleteObject", "InitiateMultipartUpload", "UploadPart",
                       "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload", "PutBucket"})
LIST_OPS = frozenset({"ListObjects", "ListObjectsV2", "ListMultipartUploads"})
#: Fields of a manifest that legitimately differ between two runs of the same job.
RUN_FIELDS = ("committedAt", "mpsRequestId")
MAX_COMPARED_BYTES = 4 << 20
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class DrillReport:
    """What a drill did and what it found; ``problems`` empty means it passed."""

    name: str
    size: str
    figures: dict[str, Any] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def extend(self, problems: Iterable[str], limit: int = 50) -> None:
        for problem in problems:
            if len(self.problems) >= limit:
                self.problems.append("… more problems not shown")
                return
            self.problems.append(problem)

    @property
    def passed(self) -> bool:
        return not self.problems

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "seconds": round(self.seconds, 1), "passed": self.passed,
                "figures": self.figures, "lost": self.lost, "problems": self.problems}


class MpsProcess:
    """The MPS emulator in a process of its own (``python -m localcloud.mps``): its arrival times,
    and so its QPS figures, are then not delayed by whatever else this process is doing."""

    def __init__(self, qps: int | None = None, retry_after: int | None = None, latency: float = 0.0) -> None:
        args = [sys.executable, "-m", "localcloud.mps", "--port", "0", "--access-key-id", AK,
                "--access-key-secret", SECRET, "--security-token", TOKEN, "--latency", str(latency)]
        if qps is not None:
            args += ["--qps", str(qps)]
        if retry_after is not None:
            args += ["--retry-after", str(retry_after)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        with contextlib.suppress(OSError):  # stamp arrivals on time even when the cores are busy
            os.setpriority(os.PRIO_PROCESS, self.process.pid, -10)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not found:
            self.stop()
            raise RuntimeError(f"the MPS emulator did not start: {line!r}")
        self.url = found.group(0)
        self.log = RequestLogProxy(self.url)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class RequestLogProxy:
    """``entries()`` of an emulator's request log, read through its admin API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def entries(self) -> list[dict[str, Any]]:
        from localcloud.common import AdminClient

        client = AdminClient(self.url)
        try:
            return client.log()
        finally:
            client.close()


@contextlib.contextmanager
def local_cloud(*, oss_settings: dict[str, Any] | None = None, mps_settings: dict[str, Any] | None = None,
                env: dict[str, str] | None = None, mps_process: bool = False) -> Iterator[Cloud]:
    """Fresh OSS and MPS emulators (verifying the function's credentials) and the function's config.
    ``mps_process``: the MPS emulator runs in its own process (only ``qps``, ``retry_after`` and ``latency``
    may be set then)."""
    oss = OssEmulator(access_key_id=AK, access_key_secret=SECRET, security_token=TOKEN, **(oss_settings or {}))
    mps: Any
    if mps_process:
        mps = MpsProcess(**(mps_settings or {}))
    else:
        mps = MpsEmulator(access_key_id=AK, access_key_secret=SECRET, security_token=TOKEN, **(mps_settings or {}))
        mps.start()
    oss.start()
    cloud = Cloud(oss, mps, env=dict(env or {}))
    try:
        yield cloud
    finally:
        cloud.close()
        oss.stop()
        mps.stop()


# -- invocations ---------------------------------------------------------------------------------
def outcomes_of(result: InvokeResult) -> dict[str, str]:
    """``{jobId or messageId: outcome}`` of one invocation (from the logs when the handler raised)."""
    if result.ok and isinstance(result.result, dict):
        return {j.get("jobId") or j.get("messageId") or f"#{i}": j["outcome"]
                for i, j in enumerate(result.result.get("jobs", []))}
    found: dict[str, str] = {}
    for line in result.json_logs():
        if line.get("event") == "job.outcome":
            found[line.get("jobId") or line.get("messageId") or f"#{len(found)}"] = line["outcome"]
    return found


def captured_text(result: InvokeResult) -> str:
    """Everything an invocation let out: log lines, the answer or error body, the stack trace."""
    return "\n".join([*result.logs, result.error_message or "", json.dumps(result.body, default=str)])


class Ledger:
    """Every invocation a drill made: outcomes per job, retries the function logged, captured text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.invocations = 0
        self.raised = 0
        self.timeouts = 0
        self.outcomes: Counter[str] = Counter()
        self.by_job: dict[str, list[str]] = {}
        self.retries: Counter[str] = Counter()
        self.texts: list[str] = []

    def record(self, result: InvokeResult) -> dict[str, str]:
        found = outcomes_of(result)
        done = [line for line in result.json_logs() if line.get("event") == "invocation.done"]
        with self._lock:
            self.invocations += 1
            self.raised += not result.ok
            self.timeouts += result.error_type == "FunctionTimeout"
            for job, outcome in found.items():
                self.outcomes[outcome] += 1
                self.by_job.setdefault(job, []).append(outcome)
            for line in done:
                self.retries.update(line.get("retries") or {})
            self.texts.append(captured_text(result))
        return found

    def figures(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "invocationsRaised": self.raised,
                "invocationsTimedOut": self.timeouts, "outcomes": dict(sorted(self.outcomes.items())),
                "retries": dict(sorted(self.retries.items()))}


# -- security checks -----------------------------------------------------------------------------
#: The shortest piece of a secret that counts as a leak (what survives a message cut short).
PIECE = 16


def secret_forms(*secrets: str) -> set[str]:
    """A secret as it could leak: raw, URL-encoded (once, twice) and base64."""
    forms: set[str] = set()
    for secret in secrets:
        once = quote(secret, safe="")
        forms.update({secret, once, quote(once, safe=""), base64.b64encode(secret.encode()).decode()})
    return forms


def scan_secrets(texts: Iterable[str], secrets: Iterable[str] = SECRETS) -> list[str]:
    """Problems for every captured text that holds a secret in any of its forms, or a piece of
    :data:`PIECE` characters of one."""
    forms = secret_forms(*secrets)
    pieces = {form[i:i + PIECE] for form in forms for i in range(len(form) - PIECE + 1)} | forms
    problems = []
    for index, text in enumerate(texts):
        for piece in pieces:
            if piece in text:
                at = text.index(piece)
                context = text[max(0, at - 60): at].replace("\n", " ")
                problems.append(f"credential leaked in captured output #{index}: …{context}<secret>")
                break
    return problems


def settled(log: Any, quiet: float = 0.05, timeout: float = 5.0) -> list[dict[str, Any]]:
    """A request log's entries once none has been added for ``quiet`` seconds (an emulator logs a
    request just after answering it, so the last answers may not be in the log yet)."""
    entries = log.entries()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = log.entries()
        if len(again) == len(entries):
            return again
        entries = again
    return entries


def _list_prefix(entry: dict[str, Any]) -> str:
    query = parse_qs(urlsplit(entry.get("path") or "").query, keep_blank_values=True)
    return (query.get("prefix") or [""])[0]


#: Reads of the destination bucket's own settings, not of objects.
DEST_SETTING_OPS = frozenset({"GetBucketVersioning"})


def audit_oss(entries: list[dict[str, Any]], *, dest_bucket: str, dest_prefix: str,
              source_buckets: Iterable[str]) -> tuple[list[str], Counter[str]]:
    """Check, request by request, that nothing was read from a bucket outside the allowed sources
    and that nothing was written, or read in the destination, outside ``DEST_PREFIX``.

    Every attempt counts, refused or not. Returns (problems, requests by operation).
    """
    allowed = set(source_buckets)
    problems: list[str] = []
    ops: Counter[str] = Counter()
    for entry in entries:
        op = entry.get("op") or "?"
        ops[op] += 1
        bucket, key = entry.get("bucket"), entry.get("key") or ""
        where = f"{op} {bucket}/{key}"
        if op in LIST_OPS:
            key = _list_prefix(entry)
            where = f"{op} {bucket} prefix={key!r}"
        if op in WRITE_OPS:
            if bucket != dest_bucket or not key.startswith(dest_prefix):
                problems.append(f"write outside {dest_bucket}/{dest_prefix}: {where}")
        elif bucket == dest_bucket:
            # The destination's versioning state is read too (a bucket setting, no object).
            if not key.startswith(dest_prefix) and op not in DEST_SETTING_OPS:
                problems.append(f"destination read outside {dest_prefix}: {where}")
        elif bucket not in allowed:
            problems.append(f"read from a bucket outside SOURCE_BUCKETS: {where}")
        source = entry.get("source_bucket")
        if source is not None and source not in allowed:
            problems.append(f"copy from a bucket outside SOURCE_BUCKETS: {where} from {source}")
    return problems, ops


def audit_cloud(cloud: Cloud, env: dict[str, str], *, dest_prefix: str | None = None) -> list[str]:
    """:func:`audit_oss` over the whole OSS request log of ``cloud`` with the function's settings."""
    prefix = dest_prefix if dest_prefix is not None else env.get("DEST_PREFIX", "iproduction/")
    sources = [b.strip() for b in env.get("SOURCE_BUCKETS", "").split(",") if b.strip()]
    problems, _ = audit_oss(settled(cloud.oss.log), dest_bucket=env.get("DEST_BUCKET", DEST), dest_prefix=prefix,
                            source_buckets=sources)
    return problems


# -- state checks --------------------------------------------------------------------------------
def normalised(manifest: dict[str, Any] | None, job: str | None = None, as_job: str | None = None) -> Any:
    """A manifest without the fields that differ between runs (optionally re-labelled to another job)."""
    if manifest is None:
        return None
    document = {k: v for k, v in manifest.items() if k not in RUN_FIELDS}
    if job and as_job:
        document = json.loads(json.dumps(document).replace(job, as_job))
    return document


def objects(cloud: Cloud, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    return {o["key"]: o for o in cloud.oss_admin.objects(bucket, prefix)}


def intact(cloud: Cloud, source: dict[str, Any] | None, dest: dict[str, Any] | None, source_bucket: str,
           dest_key: str, *, compare_bytes: bool = True) -> bool:
    """Whether a destination object holds exactly the source's bytes."""
    if source is None or dest is None or source["size"] != dest["size"]:
        return False
    if source.get("crc64") is not None and dest.get("crc64") is not None and source["crc64"] != dest["crc64"]:
        return False
    if compare_bytes and source["size"] <= MAX_COMPARED_BYTES:
        return cloud.oss_admin.read(source_bucket, source["key"]) == cloud.oss_admin.read(DEST, dest_key)
    return source.get("crc64") is not None and source.get("crc64") == dest.get("crc64")


def check_committed_files(cloud: Cloud, manifest: dict[str, Any], *, compare_bytes: bool = True,
                          dest_index: dict[str, dict[str, Any]] | None = None,
                          source_index: dict[tuple[str, str], dict[str, Any]] | None = None) -> list[str]:
    """A committed manifest's promise, checked: every listed file is at its key, byte-identical to its
    source, with the ETag and CRC-64 the manifest states."""
    problems = []
    for entry in manifest.get("files", []):
        bucket, _, key = entry["source"][len("oss://"):].partition("/")
        source = (source_index or {}).get((bucket, key)) or cloud.oss_admin.object(bucket, key)
        dest = (dest_index or {}).get(entry["key"]) or cloud.oss_admin.object(DEST, entry["key"])
        if dest is None:
            problems.append(f"{manifest['jobId']}: manifest lists {entry['key']}, which is missing")
            continue
        if not intact(cloud, source, dest, bucket, entry["key"], compare_bytes=compare_bytes):
            problems.append(f"{manifest['jobId']}: {entry['key']} differs from {entry['source']}")
        if dest["etag"] != entry["etag"]:
            problems.append(f"{manifest['jobId']}: {entry['key']} ETag {dest['etag']} ≠ manifest {entry['etag']}")
        if source is not None and entry["crc64"] != (None if source.get("crc64") is None else str(source["crc64"])):
            problems.append(f"{manifest['jobId']}: {entry['key']} manifest CRC-64 is not the source's")
    return problems


# -- delivering events as a trigger does ---------------------------------------------------------
@dataclass
class Delivery:
    """One message of a trigger: an event, delivered again while the invocation fails."""

    label: str
    event: bytes
    jobs: list[str]
    attempts: int = 0
    outcomes: list[dict[str, str]] = field(default_factory=list)
    dead: bool = False


def deliver(deliveries: list[Delivery], make_instance: Callable[[], FunctionInstance], ledger: Ledger, *,
            workers: int = 2, max_attempts: int = 10, on_result: Callable[[Delivery, InvokeResult], None] | None
            = None) -> None:
    """Invoke every delivery on ``workers`` instances at once; a failed invocation is delivered again
    (as the trigger retries it) until it succeeds or ``max_attempts`` is reached (dead letter)."""
    work: queue.Queue[Delivery | None] = queue.Queue()
    for item in deliveries:
        work.put(item)
    remaining = [len(deliveries)]
    lock = threading.Lock()

    def finish(item: Delivery, dead: bool) -> None:
        item.dead = dead
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                for _ in range(workers):
                    work.put(None)

    def worker() -> None:
        instance = make_instance()
        try:
            while True:
                item = work.get()
                if item is None:
                    return
                item.attempts += 1
                try:
                    result = instance.invoke(item.event)
                    item.outcomes.append(ledger.record(result))
                    if on_result is not None:
                        on_result(item, result)
                except Exception:  # the drill's own failure: counted as a dead letter, the others go on
                    finish(item, True)
                    continue
                if not result.ok and item.attempts < max_attempts:
                    work.put(item)
                    continue
                finish(item, not result.ok)
        finally:
            instance.close()

    if not deliveries:
        return
    threads = [threading.Thread(target=worker, name=f"drill-worker-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def timed(fn: Callable[[], DrillReport]) -> DrillReport:
    started = time.monotonic()
    report = fn()
    report.seconds = time.monotonic() - started
    return report


__all__ = ["AK", "DEST", "DEST_SETTING_OPS", "SECRET", "SECRETS", "SOURCE", "TOKEN", "Cloud", "Delivery",
           "DrillReport", "Ledger", "audit_cloud", "audit_oss", "captured_text", "check_committed_files", "deliver",
           "intact", "local_cloud", "normalised", "objects", "outcomes_of", "scan_secrets", "secret_forms", "timed"]
