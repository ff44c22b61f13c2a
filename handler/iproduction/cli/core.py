"""The command line's one contact with the function's core.

Every lookup, copy and commit the commands make goes through here, to the function's own code:
``load_settings`` for the configuration, ``build_runtime`` for the clients, the runtime's ``Storage``
and ``PendingRegistry`` for reads, ``app.run`` for processing jobs. Nothing here talks to OSS or MPS
by itself, and the command modules import nothing of the core but this module, so a change of the
core's I/O is ported here and only here.

The core logs JSON lines on ``sys.stdout``; while a :class:`Core` is open they go to stderr, so that
the commands' own output (tables, JSON, CSV) stays clean on stdout.

What a port to another core keeps: the typed results here (:class:`Target`, :class:`Stored`,
:class:`Pending`, :class:`Scan`, :class:`Outcome`), :class:`CoreError` for failures, and the bounded
concurrency of :meth:`Core._map` (a semaphore-bounded gather on the runtime's event loop), with
``progress`` called once per item.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar

from .. import logs
from ..app import invoke
from ..budget import Deadline
from ..config import Settings, load_settings
from ..copier import settle
from ..credentials import Credentials
from ..errors import CollectorError, ConfigError, CredentialsError
from ..events import JOB_ID_RE
from ..layout import MANIFEST_NAME, expired_key, job_prefix, manifest_key, pending_key
from ..pending import PendingRecord
from ..runtime import Runtime, build_runtime

T = TypeVar("T")
K = TypeVar("K")

#: The variables the function reads; the command line reads the same ones.
CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                        "ALIBABA_CLOUD_SECURITY_TOKEN")

Progress = Callable[[int], None]


class CoreError(Exception):
    """A lookup or a call of the core failed; ``configuration`` when it is the settings' fault
    (a variable, the credentials, a bucket that does not exist)."""

    def __init__(self, message: str, *, configuration: bool = False) -> None:
        super().__init__(message)
        self.configuration = configuration


@dataclass(frozen=True)
class Target:
    """Where the function writes, as configured."""

    bucket: str
    prefix: str
    region: str
    oss_endpoint: str
    mps_endpoint: str
    pending_max_age: int


@dataclass(frozen=True)
class Stored:
    """An object as a listing or a HEAD shows it (``crc64`` only from a HEAD)."""

    key: str
    size: int
    etag: str
    last_modified: int = 0
    crc64: int | None = None


@dataclass(frozen=True)
class Pending:
    """A pending record, as the function reads it."""

    job_id: str
    first_seen: str
    last_checked: str
    attempts: int
    last_state: str | None


@dataclass(frozen=True)
class Scan:
    """One listing of the whole destination prefix: the committed manifests and the objects under
    each job's prefix (``_pending/`` and ``_expired/`` are not jobs)."""

    manifests: dict[str, Stored]
    objects: dict[str, dict[str, Stored]]


@dataclass(frozen=True)
class Outcome:
    """What processing a job ended in (the function's report for it)."""

    job_id: str | None
    outcome: str
    reason: str | None
    state: str | None
    files: int | None
    bytes: int | None
    copied: int | None
    skipped: int | None
    manifest: str | None
    seconds: float

    def public(self) -> dict[str, Any]:
        """As in the function's result (``{"jobId", "outcome", ...}``), with the copy counts and time."""
        named = {"jobId": self.job_id, "outcome": self.outcome, "reason": self.reason, "state": self.state,
                 "files": self.files, "bytes": self.bytes, "copied": self.copied, "skipped": self.skipped,
                 "manifest": self.manifest}
        return {k: v for k, v in named.items() if v is not None} | {"seconds": round(self.seconds, 3)}


def is_job_id(text: str) -> bool:
    """A job id as the function accepts it: 32 hexadecimal characters."""
    return bool(JOB_ID_RE.fullmatch(text))


def load_target(env: Mapping[str, str]) -> Target:
    """The function's configuration from ``env``; :class:`CoreError` naming the variable."""
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        raise CoreError(str(exc), configuration=True) from None
    return _target(settings)


def _target(settings: Settings) -> Target:
    return Target(settings.dest_bucket, settings.dest_prefix, settings.dest_region,
                  settings.oss_endpoint_for(settings.dest_region), settings.mps_endpoint, settings.pending_max_age)


def _failure(exc: CollectorError) -> CoreError:
    text = logs.scrub(str(exc))
    configuration = isinstance(exc, CredentialsError) or "NoSuchBucket" in text or "does not exist" in text
    return CoreError(text, configuration=configuration)


CredentialsGetter = Callable[[], tuple[str, str, str | None]]


class Core:
    """The function's runtime, built from the same variables, for one command."""

    def __init__(self, env: Mapping[str, str], credentials: CredentialsGetter, *, log_level: str = "ERROR",
                 concurrency: int = 32) -> None:
        self._credentials = credentials
        ak, sk, token = credentials()
        full = {k: v for k, v in env.items() if k not in CREDENTIAL_VARIABLES}
        full.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": ak, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": sk})
        if token:
            full["ALIBABA_CLOUD_SECURITY_TOKEN"] = token
        logs.configure(log_level)
        self._stdout: TextIO | None = sys.stdout
        sys.stdout = sys.stderr  # the core's log lines; the commands write to the stdout they were given
        try:
            self.runtime: Runtime = build_runtime(full)
        except ConfigError as exc:
            self.close()
            raise CoreError(str(exc), configuration=True) from None
        self.target = _target(self.runtime.settings)
        self._concurrency = max(1, concurrency)
        self._request = f"cli-{uuid.uuid4()}"

    def close(self) -> None:
        if getattr(self, "runtime", None) is not None:
            self.runtime.close()
        if self._stdout is not None:
            sys.stdout = self._stdout
            self._stdout = None

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """The credentials chain's current credentials (a role's STS token rotates)."""
        ak, sk, token = self._credentials()
        self.runtime.credentials.update(Credentials(ak, sk, token))

    def _map(self, fn: Callable[[K], Awaitable[T]], items: Iterable[K], progress: Progress | None) -> dict[K, T]:
        """``fn`` over ``items`` on the runtime's event loop, at most the command's concurrency at once;
        results by item."""
        self._refresh()
        keys = list(items)

        async def all_of() -> list[T]:
            gate = asyncio.Semaphore(self._concurrency)

            async def one(item: K) -> T:
                async with gate:
                    try:
                        return await fn(item)
                    finally:
                        if progress is not None:
                            progress(1)

            return await settle([one(item) for item in keys], stop_on=(CollectorError,))

        try:
            return dict(zip(keys, self.runtime.io.run(all_of()), strict=True))
        except CollectorError as exc:
            raise _failure(exc) from None

    def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        self._refresh()
        try:
            return self.runtime.io.run(fn())
        except CollectorError as exc:
            raise _failure(exc) from None

    def _list(self, prefix: str) -> dict[str, Stored]:
        rt = self.runtime
        listed = self._call(lambda: rt.oss.list_prefix(rt.dest, prefix, None))
        return {key: Stored(key, item.size, item.etag, item.last_modified) for key, item in listed.items()}

    async def _get(self, key: str) -> Any | None:
        return await self.runtime.oss.get_json(self.runtime.dest, key, None)

    # -- keys -----------------------------------------------------------------------------------
    def manifest_key(self, job_id: str) -> str:
        return manifest_key(self.target.prefix, job_id)

    def job_prefix(self, job_id: str) -> str:
        return job_prefix(self.target.prefix, job_id)

    # -- reads ----------------------------------------------------------------------------------
    def read_manifests(self, job_ids: Iterable[str], progress: Progress | None = None) -> dict[str, Any | None]:
        """Each job's manifest document (None where there is none)."""
        return self._map(lambda job: self._get(self.manifest_key(job)), job_ids, progress)

    def read_manifest(self, job_id: str) -> Any | None:
        return self.read_manifests([job_id])[job_id]

    def scan(self) -> Scan:
        """List everything under the destination prefix once (1000 keys a request)."""
        prefix = self.target.prefix
        manifests: dict[str, Stored] = {}
        objects: dict[str, dict[str, Stored]] = {}
        for key, stored in self._list(prefix).items():
            job, sep, rest = key[len(prefix):].partition("/")
            if not sep or not is_job_id(job):
                continue
            objects.setdefault(job, {})[key] = stored
            if rest == MANIFEST_NAME:
                manifests[job] = stored
        return Scan(manifests, objects)

    def list_jobs(self, job_ids: Iterable[str], progress: Progress | None = None) -> dict[str, dict[str, Stored]]:
        """The objects under each job's prefix (the listings concurrently)."""
        rt = self.runtime

        async def listing(job: str) -> dict[str, Stored]:
            found = await rt.oss.list_prefix(rt.dest, self.job_prefix(job), None)
            return {key: Stored(key, item.size, item.etag, item.last_modified) for key, item in found.items()}

        return self._map(listing, job_ids, progress)

    def head_many(self, keys: Iterable[str], progress: Progress | None = None) -> dict[str, Stored | None]:
        """HEAD each key (concurrently, bounded by the command's concurrency); None where missing."""
        rt = self.runtime

        async def head(key: str) -> Stored | None:
            info = await rt.oss.head(rt.dest, key, None)
            return None if info is None else Stored(key, info.size, info.etag, 0, info.crc64)

        return self._map(head, keys, progress)

    def pending_ids(self) -> list[str]:
        """The jobs in the pending registry, as the sweep sees them (least recently checked first)."""
        return self._call(lambda: self.runtime.registry.job_ids(None))

    def pending_records(self, job_ids: Iterable[str], progress: Progress | None = None) -> dict[str, Pending | None]:
        """Each job's pending record, read as the function reads it (None where there is none)."""
        now = time.time()

        async def get(job: str) -> Pending | None:
            record: PendingRecord | None = await self.runtime.registry.get(job, None, now)
            if record is None:
                return None
            return Pending(record.job_id, record.first_seen, record.last_checked, record.attempts, record.last_state)

        return self._map(get, job_ids, progress)

    def expired_ids(self) -> list[str]:
        """The jobs whose records were moved to ``_expired/``."""
        prefix = expired_key(self.target.prefix, "")
        return sorted(key[len(prefix):] for key in self._list(prefix) if is_job_id(key[len(prefix):]))

    def expired_records(self, job_ids: Iterable[str], progress: Progress | None = None) -> dict[str, Any | None]:
        """Each job's ``_expired/`` document (None where there is none)."""
        return self._map(lambda job: self._get(expired_key(self.target.prefix, job)), job_ids, progress)

    def pending_count(self) -> int:
        return len(self._list(pending_key(self.target.prefix, "")))

    def expired_count(self) -> int:
        return len(self._list(expired_key(self.target.prefix, "")))

    # -- processing -----------------------------------------------------------------------------
    def collect(self, job_ids: list[str], seconds: float) -> list[Outcome]:
        """Process the jobs now, as the function processes a timer event naming them (``jobIds``),
        within ``seconds``; one outcome per job."""
        self._refresh()
        event = json.dumps({"triggerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "triggerName": "iproduction-cli", "payload": json.dumps({"jobIds": job_ids})})
        reports = self.runtime.io.run(invoke(self.runtime, event, Deadline(seconds), self._request))
        return [Outcome(r.job_id, r.outcome.value, r.reason, r.state, r.files, r.bytes, r.copied, r.skipped,
                        r.manifest, r.duration) for r in reports]
