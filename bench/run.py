"""Invoking the function on the bench's cloud and measuring one invocation."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.cloud import Cloud, cpu_seconds, peak_rss
from localcloud.fc import FunctionInstance

T = TypeVar("T")


class BenchError(RuntimeError):
    """The function did not do what the scenario needs (a bench bug or a function failure)."""


@dataclass
class Run:
    """One measured invocation."""

    seconds: float  # the handler's duration, measured inside the instance
    requests: Counter[str]
    cpu: float  # CPU seconds of the function's process during the invocation
    emulator_cpu: float  # CPU seconds of the OSS emulator's process
    mps: dict[str, Any] = field(default_factory=dict)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def notification(job: str) -> str:
    return json.dumps({"Type": "IProduction", "JobId": job, "State": "Success", "Code": "Success"})


def queue_event(jobs: list[str]) -> bytes:
    """One MNS queue trigger invocation (EventBridge, CloudEvents) carrying a message per job."""
    return json.dumps([{"id": f"bench-{i}", "source": "MNS-bench", "specversion": "1.0",
                        "type": "mns:Queue:SendMessage", "datacontenttype": "application/json; charset=utf-8",
                        "subject": "acs:mns:cn-hangzhou:1:queues/mps", "time": "2026-11-25T12:00:00.000Z",
                        "data": {"requestId": f"r-{i}", "messageId": f"m-{i}", "messageBody": notification(job)}}
                       for i, job in enumerate(jobs)]).encode()


#: Files of the warm-up job: enough to open a full pool of connections, as earlier jobs would have.
WARM_FILES = 64


def warm(cloud: Cloud, function: FunctionInstance) -> FunctionInstance:
    """Start the instance and run one job of small files, as a warm FC instance would have."""
    invoke(cloud, function, cloud.new_job([(f"warm{i:02d}.jpg", 1000) for i in range(WARM_FILES)]).encode())
    return function


def invoke(cloud: Cloud, function: FunctionInstance, event: bytes, jobs: int = 1) -> Run:
    """Invoke once; every job must end ``committed``. Counts requests from the emulators' logs."""
    cloud.clear_logs()
    pid = function.pid
    cpu0 = cpu_seconds(pid) if pid else 0.0
    emu0 = cpu_seconds(cloud.oss.pid)
    result = function.invoke(event)
    emu = cpu_seconds(cloud.oss.pid) - emu0
    if not result.ok:
        raise BenchError(f"the function failed: {result.error_type}: {result.error_message}\n"
                         + "\n".join(result.logs[-20:]))
    outcomes = Counter(job["outcome"] for job in result.result["jobs"])
    if outcomes != Counter({"committed": jobs}):
        raise BenchError(f"expected {jobs} committed job(s), got {dict(outcomes)}: {result.result['jobs'][:3]}")
    assert function.pid is not None
    cpu = cpu_seconds(function.pid) - cpu0 if pid else float("nan")
    return Run(result.duration, cloud.requests(), cpu, emu, cloud.mps_admin.stats())


def median_of(items: list[T], seconds: Callable[[T], float]) -> T:
    """The item with the median time (an odd count gives a real run)."""
    ordered = sorted(items, key=seconds)
    return ordered[(len(ordered) - 1) // 2]


def median_run(runs: list[Run]) -> Run:
    return median_of(runs, lambda run: run.seconds)


def repeat(times: int, once: Callable[[], Run]) -> tuple[Run, list[float]]:
    runs = [once() for _ in range(times)]
    return median_run(runs), [run.seconds for run in runs]


def rss_of(function: FunctionInstance) -> int:
    assert function.pid is not None
    return peak_rss(function.pid)


def spread(values: list[float]) -> str:
    """``min–max`` of repeated runs, for the tables."""
    if len(values) < 2:
        return ""
    return f"{min(values):.3f}–{max(values):.3f} s over {len(values)} runs (median {statistics.median(values):.3f})"
