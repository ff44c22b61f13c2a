"""Outcomes of a job (contract §5) and the per-job report the handler returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .errors import CredentialsError, RejectedError
from .logs import scrub


class Outcome(str, enum.Enum):
    COMMITTED = "committed"
    ALREADY_COMMITTED = "already-committed"
    PENDING = "pending"
    EXPIRED = "expired"
    JOB_FAILED = "job-failed"
    REJECTED = "rejected"
    ERROR = "error"


@dataclass
class JobReport:
    """One entry of the handler's result: ``{"jobId", "outcome", "reason", ...}``."""

    job_id: str | None
    outcome: Outcome
    reason: str | None = None
    message_id: str | None = None
    state: str | None = None
    files: int | None = None
    bytes: int | None = None
    copied: int | None = None
    skipped: int | None = None
    manifest: str | None = None
    duration: float = 0.0

    def public(self) -> dict[str, Any]:
        entry = {"jobId": self.job_id, "outcome": self.outcome.value, "reason": self.reason,
                 "messageId": self.message_id, "state": self.state, "files": self.files, "bytes": self.bytes,
                 "manifest": self.manifest}
        return {name: value for name, value in entry.items() if value is not None}


def outcome_for(exc: BaseException) -> Outcome:
    """``rejected`` for bad input and policy refusals, ``error`` for everything else."""
    if isinstance(exc, RejectedError) and not isinstance(exc, CredentialsError):
        return Outcome.REJECTED
    return Outcome.ERROR


def short(text: str, limit: int = 300) -> str:
    """A reason for the result: at most ``limit`` characters, with no secret in it."""
    text = scrub(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
