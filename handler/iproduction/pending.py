"""The pending registry: one small JSON object per unfinished job, ``<DEST_PREFIX>_pending/<JobId>``
(with a checkpoint of the files already intact, docs/architecture.md, 'Resuming a job too big for one
invocation'); the sweep looks at each job again, and moves one older than ``PENDING_MAX_AGE_SECONDS`` to
``_expired/``."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Any

from . import logs
from .budget import Deadline
from .config import Settings
from .errors import CollectorError
from .events import JOB_ID_RE
from .layout import expired_key, pending_key
from .oss import Bucket, OSSClient

ISO = "%Y-%m-%dT%H:%M:%SZ"


def iso(ts: float) -> str:
    return time.strftime(ISO, time.gmtime(ts))


def parse_iso(text: Any) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(text), ISO)))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class PendingRecord:
    job_id: str
    first_seen: str
    last_checked: str
    attempts: int
    last_state: str | None
    verified: tuple[Any, ...] = ()  # the checkpoint: manifest entries of files known intact

    def to_doc(self) -> dict[str, Any]:
        doc = {"jobId": self.job_id, "firstSeen": self.first_seen, "lastChecked": self.last_checked,
               "attempts": self.attempts, "lastState": self.last_state}
        return {**doc, "verified": list(self.verified)} if self.verified else doc

    @classmethod
    def from_doc(cls, job_id: str, doc: Any, now: float) -> PendingRecord:
        """Tolerant read: a damaged record restarts its clock rather than stopping the sweep."""
        doc = doc if isinstance(doc, dict) else {}
        first = doc.get("firstSeen") if parse_iso(doc.get("firstSeen")) is not None else iso(now)
        attempts = doc.get("attempts")
        state, verified = doc.get("lastState"), doc.get("verified")
        return cls(job_id, first, str(doc.get("lastChecked") or first),
                   attempts if isinstance(attempts, int) and attempts >= 0 else 0,
                   state if isinstance(state, str) else None, tuple(verified) if isinstance(verified, list) else ())

    def age(self, now: float) -> float:
        return now - (parse_iso(self.first_seen) or now)

    def checked(self, state: str, now: float) -> PendingRecord:
        return PendingRecord(self.job_id, self.first_seen, iso(now), self.attempts + 1, state)


def new_record(job_id: str, now: float) -> PendingRecord:
    return PendingRecord(job_id, iso(now), iso(now), 0, None)


class PendingRegistry:
    def __init__(self, oss: OSSClient, dest: Bucket, settings: Settings) -> None:
        self.oss = oss
        self.dest = dest
        self.settings = settings

    async def get(self, job_id: str, deadline: Deadline | None, now: float) -> PendingRecord | None:
        doc = await self.oss.get_json(self.dest, pending_key(self.settings.dest_prefix, job_id), deadline)
        return None if doc is None else PendingRecord.from_doc(job_id, doc, now)

    async def save(self, record: PendingRecord, deadline: Deadline | None) -> None:
        await self.oss.put_json(self.dest, pending_key(self.settings.dest_prefix, record.job_id), record.to_doc(),
                                deadline, indent=None)  # compact: a checkpoint may list thousands of files

    async def delete(self, job_id: str, deadline: Deadline | None) -> None:
        await self.oss.delete(self.dest, pending_key(self.settings.dest_prefix, job_id), deadline)

    async def expire(self, record: PendingRecord, now: float, deadline: Deadline | None) -> None:
        """Move the record to ``_expired/`` (written first, so a crash in between loses nothing)."""
        doc = {**record.to_doc(), "expiredAt": iso(now), "maxAgeSeconds": self.settings.pending_max_age}
        await self.oss.put_json(self.dest, expired_key(self.settings.dest_prefix, record.job_id), doc, deadline)
        await self.delete(record.job_id, deadline)

    async def job_ids(self, deadline: Deadline | None) -> list[str]:
        """Every job in the registry, least recently checked first (each once, in lower case)."""
        prefix = pending_key(self.settings.dest_prefix, "")
        listed = await self.oss.list_prefix(self.dest, prefix, deadline)
        ids: dict[str, None] = {}
        for item in sorted(listed.values(), key=lambda item: (item.last_modified, item.key)):
            job_id = item.key[len(prefix):]
            if not JOB_ID_RE.match(job_id):
                logs.warning("pending.ignored", key=item.key, reason="not a job id")
                continue
            if job_id != job_id.lower():
                await self.normalise(job_id, pending_key(self.settings.dest_prefix, job_id.lower()) in listed, deadline)
            ids[job_id.lower()] = None
        return list(ids)

    async def normalise(self, job_id: str, lower_exists: bool, deadline: Deadline | None) -> None:
        """Move a record stored under an upper-case job id to the lower-case key every other path uses; written
        first, deleted after (a crash in between leaves both, and the next sweep finishes the move)."""
        key = pending_key(self.settings.dest_prefix, job_id)
        try:
            if not lower_exists:
                doc = await self.oss.get_json(self.dest, key, deadline)
                if doc is not None:
                    await self.save(PendingRecord.from_doc(job_id.lower(), doc, time.time()), deadline)
            await self.oss.delete(self.dest, key, deadline)
        except CollectorError as exc:
            logs.warning("pending.not_normalised", key=key, error=str(exc))
            return
        logs.info("pending.normalised", key=key)
