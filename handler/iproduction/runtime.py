"""What an FC instance keeps between invocations: its event loop, on a thread of its own (uvloop's
where available), and the OSS session and MPS client made on it, so warm invocations reuse their
connections. Concurrent invocations of one instance share the loop.
"""

from __future__ import annotations

import asyncio
import gc
import ssl
import threading
import urllib.request
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .budget import Deadline
from .config import Settings, load_settings
from .copier import Copier
from .credentials import CredentialsSource, resolve_credentials
from .errors import DestinationRefusedError
from .mps import MPSClient
from .oss import Bucket, OSSClient, new_session
from .pending import PendingRegistry
from .ratelimit import RateLimiter

T = TypeVar("T")

#: The cyclic GC's thresholds (Python's are 700, 10, 10): docs/architecture.md, 'Garbage collection'.
GC_THRESHOLDS = (50_000, 20, 100)

#: Versioning states in which OSS ignores ``x-oss-forbid-overwrite`` (the commit point cannot hold).
VERSIONED = ("Enabled", "Suspended")


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (a third less CPU per request than asyncio's), else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is pinned; a platform without it still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Loop:
    """An event loop running on a daemon thread for the life of the instance."""

    def __init__(self) -> None:
        self.loop = new_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="io-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result from this (another) thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


@dataclass
class Runtime:
    """Everything an instance keeps between invocations."""

    settings: Settings
    credentials: CredentialsSource
    io: Loop
    oss: OSSClient
    mps: MPSClient
    dest: Bucket
    registry: PendingRegistry
    copier: Copier
    versioning: asyncio.Future[str | None] | None = field(default=None, init=False)
    #: Jobs between their lookup and their MPS query: a window of the cap. A job looks itself up when its
    #: query could go within a window, so the first window's queries do not wait behind later jobs' lookups.
    queries: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.queries = asyncio.Semaphore(self.mps.limiter.rate.max_calls)

    async def check_destination(self, deadline: Deadline) -> None:
        """Refuse a destination bucket with versioning, where OSS ignores ``x-oss-forbid-overwrite``; read once
        per instance, on first use (a failure to read it is retried by the next job)."""
        if self.versioning is None or (self.versioning.done() and self.versioning.exception() is not None):
            self.versioning = asyncio.ensure_future(self.oss.versioning(self.dest, deadline))
        state = await asyncio.shield(self.versioning)
        if state in VERSIONED:
            raise DestinationRefusedError(
                f"destination bucket {self.dest.name} has versioning {state}: x-oss-forbid-overwrite has no effect "
                "there, so the commit point cannot hold; use a bucket without versioning")

    def retries(self) -> dict[str, int]:
        """Retries by kind made by the instance so far."""
        return {**self.mps.stats.snapshot(), **self.oss.stats.snapshot()}

    def close(self) -> None:
        """Close the instance's connections and stop its loop (the local invoker and drills call this)."""
        async def close_clients() -> None:
            await self.mps.close()
            await self.oss.session.close()

        try:
            self.io.run(close_clients(), timeout=5)
        finally:
            self.io.stop()


def tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """One TLS context for OSS and MPS (loaded once: tens of milliseconds): ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    when set, else certifi's bundle (what oss2 and httpx would use)."""
    import certifi

    cafile, capath = env.get("SSL_CERT_FILE"), env.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return ssl.create_default_context(cafile=certifi.where())


def build_runtime(env: Mapping[str, str], context: Any = None) -> Runtime:
    settings = load_settings(env)
    credentials = CredentialsSource(resolve_credentials(env, context))
    # TLS is set up only if an endpoint needs it (an emulator on http:// does not); proxies are looked for
    # once, here: without any, neither client looks in the environment again on every request.
    https = (settings.oss_endpoint or "https:").startswith("https:") or settings.mps_endpoint.startswith("https:")
    tls: ssl.SSLContext | bool = tls_context(env) if https else False
    proxies = bool(urllib.request.getproxies())
    io = Loop()

    async def clients() -> tuple[OSSClient, MPSClient]:
        # Made on the loop: an aiohttp session and an httpx.AsyncClient belong to the loop that made them.
        oss = OSSClient(new_session(2 * settings.copy_concurrency, tls, proxies), credentials,
                        endpoint_for=settings.oss_endpoint_for, slots=settings.copy_concurrency,
                        timeout=settings.oss_timeout)
        limiter = RateLimiter(settings.mps_max_qps, adaptive=settings.mps_adaptive)
        mps = MPSClient(settings.mps_endpoint, credentials, limiter=limiter, signature=settings.mps_signature,
                        timeout=settings.mps_timeout, tls=tls, trust_env=proxies)
        return oss, mps

    oss, mps = io.run(clients())
    gc.freeze()  # what initialisation made lives as long as the instance: out of the collector's scans
    gc.set_threshold(*GC_THRESHOLDS)
    dest = oss.bucket(settings.dest_bucket, settings.dest_region)
    return Runtime(settings, credentials, io, oss, mps, dest, PendingRegistry(oss, dest, settings),
                   Copier(oss, settings))
