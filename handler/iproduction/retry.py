"""Retries with exponential backoff and full jitter, within the invocation's time budget."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .budget import Deadline

T = TypeVar("T")

#: The retry kind (``invocation.done`` ``retries``) of a whole-file copy made again after one that did not verify.
INTEGRITY_RETRY = "copy-integrity"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base: float = 0.1
    cap: float = 5.0

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)] (AWS architecture blog)."""
        return (rng or random).uniform(0, min(self.cap, self.base * 2**retry))


@dataclass(frozen=True)
class Verdict:
    """How to treat a failed attempt: retry or not, and a server-requested wait."""

    retry: bool
    retry_after: float | None = None
    kind: str = "other"


class RetryStats:
    """Counts retries by kind (``throttling``, ``5xx``, ``network``...) for logs and drills."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


async def run(attempt: Callable[[], Awaitable[T]], classify: Callable[[BaseException], Verdict], *,
              deadline: Deadline | None, policy: RetryPolicy, stats: RetryStats | None = None,
              sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """``await attempt()``, retrying what ``classify`` calls transient after a full-jitter backoff or the wait the
    server asked for, whichever is longer; raises the last error when the attempts are spent or the next wait
    would pass the deadline. Every OSS and MPS call goes through it."""
    retry = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            verdict = classify(exc)
            if not verdict.retry or retry + 1 >= policy.attempts:
                raise
            wait = policy.delay(retry)
            if verdict.retry_after is not None:
                wait = max(wait, verdict.retry_after)
            if deadline is not None and deadline.remaining() < wait + 0.05:
                raise
            if stats is not None:
                stats.add(verdict.kind)
            retry += 1
            await sleep(wait)
