"""Where things go in the destination bucket (contract §6), and which result keys are safe."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RejectedError
from .events import shown

MANIFEST_NAME = "manifest.json"
MAX_KEY_BYTES = 1023


@dataclass(frozen=True)
class FilePlan:
    """One result file: where it is read from and where it is written."""

    source_bucket: str
    source_key: str
    dest_key: str

    @property
    def source_url(self) -> str:
        return f"oss://{self.source_bucket}/{self.source_key}"


def job_prefix(dest_prefix: str, job_id: str) -> str:
    return f"{dest_prefix}{job_id}/"


def manifest_key(dest_prefix: str, job_id: str) -> str:
    return f"{job_prefix(dest_prefix, job_id)}{MANIFEST_NAME}"


def pending_key(dest_prefix: str, job_id: str) -> str:
    return f"{dest_prefix}_pending/{job_id}"


def expired_key(dest_prefix: str, job_id: str) -> str:
    return f"{dest_prefix}_expired/{job_id}"


#: C0 and C1 controls, DEL, and the bidirectional marks, embeddings, overrides and isolates (a key that
#: shows in another order than it is stored): Unicode's Cc and the bidi formatting characters of UAX #9.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _unsafe(text: str) -> str | None:
    """Why a relative key is unsafe, or None."""
    if text.startswith("/"):
        return "a leading '/'"
    if _CONTROL.search(text):
        return "a control character"
    if any(segment in ("", "..", ".") for segment in text.split("/")):
        return "an empty, '.' or '..' segment"
    return None


def plan_files(source_bucket: str, keys: list[str], dest_prefix: str, job_id: str) -> list[FilePlan]:
    """Map result keys to ``<DEST_PREFIX><JobId>/<name>``, ``<name>`` relative to the deepest directory all the
    job's keys share. Any unsafe key or name rejects the whole job (:class:`RejectedError`)."""
    for key in keys:
        if not key:
            raise RejectedError("job result lists an empty file key")
        if reason := _unsafe(key):
            raise RejectedError(f"unsafe result key {shown(key, 80)}: {reason}")
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise RejectedError(f"result key {shown(key, 80)} is longer than {MAX_KEY_BYTES} bytes")
    depth = 0  # how many directories all keys share
    for parts in zip(*(key.split("/")[:-1] for key in keys), strict=False):
        if len(set(parts)) != 1:
            break
        depth += 1
    base = job_prefix(dest_prefix, job_id)
    plans = []
    for key in keys:
        name = "/".join(key.split("/")[depth:])
        if name == MANIFEST_NAME or name.endswith("/" + MANIFEST_NAME):
            # The commit marker must be the one object under the job's prefix whose name is exactly
            # manifest.json: a downstream trigger on the suffix "/manifest.json" then fires once, on it.
            raise RejectedError(f"result file {shown(key, 80)} would be named {MANIFEST_NAME} under the job's prefix, "
                                "the name of its commit marker")
        dest_key = base + name
        if len(dest_key.encode("utf-8")) > MAX_KEY_BYTES:
            raise RejectedError(f"destination key for {shown(key, 80)} would be longer than {MAX_KEY_BYTES} bytes")
        plans.append(FilePlan(source_bucket, key, dest_key))
    return plans
