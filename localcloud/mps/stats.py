"""Call statistics and the sliding one-second QPS limiter of the MPS emulator."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Largest number of instants inside any half-open interval ``(t - window, t]``."""
    ordered = sorted(times)
    best = start = 0
    for end, instant in enumerate(ordered):
        while instant - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class CallStats:
    """Counts RPC calls per action, throttled answers and error codes; keeps arrival times.

    ``arrive`` records every call when it is received (before latency or faults); ``admit`` applies
    the QPS cap: at most ``qps`` accepted calls of one action in any sliding one-second window, for
    every caller together. MPS documents the limit per API and per account: "The QPS limit for a
    single user on this API is 100 per second" (QueryIProductionJob and SubmitIProductionJob pages),
    counting the Alibaba Cloud account and all its RAM users together (MPS "QPS limits" page).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._arrivals: list[float] = []
            self._accepted_times: list[float] = []
            self._windows: dict[str, deque[float]] = {}
            self._calls: Counter[str] = Counter()
            self._accepted: Counter[str] = Counter()
            self._throttled: Counter[str] = Counter()
            self._codes: Counter[str] = Counter()

    def arrive(self, action: str, at: float | None = None) -> None:
        with self._lock:
            self._arrivals.append(time.monotonic() if at is None else at)
            self._calls[action] += 1

    def admit(self, action: str, qps: int | None) -> bool:
        """True if the call fits under the cap (and counts it as accepted), False if throttled."""
        with self._lock:
            now = time.monotonic()
            window = self._windows.setdefault(action, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if qps is not None and len(window) >= qps:
                self._throttled[action] += 1
                return False
            window.append(now)
            self._accepted_times.append(now)
            self._accepted[action] += 1
            return True

    def throttled(self, action: str) -> None:
        """Count a Throttling answer that did not come from the cap (an injected fault)."""
        with self._lock:
            self._throttled[action] += 1

    def error(self, code: str) -> None:
        with self._lock:
            self._codes[code] += 1

    def public(self) -> dict[str, Any]:
        with self._lock:
            arrivals, accepted = list(self._arrivals), list(self._accepted_times)
            report = {
                "calls": dict(self._calls),
                "accepted": dict(self._accepted),
                "throttled": sum(self._throttled.values()),
                "throttled_by_action": dict(self._throttled),
                "errors": dict(self._codes),
                "total": len(arrivals),
            }
        report["max_calls_per_second"] = max_in_window(arrivals)
        report["max_accepted_per_second"] = max_in_window(accepted)
        return report
