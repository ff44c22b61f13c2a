"""The MPS emulator's job table and how a job is answered on the wire (mps.md §1, §2)."""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import uuid
from typing import Any

RESPONSE_FIELDS = ("FunctionName", "Input", "JobId", "JobParams", "Output", "PipelineId", "RequestId",
                   "Result", "State", "UserData")
STATES = ("Queuing", "Analysing", "Success", "Fail")
TERMINAL = ("Success", "Fail")
FUNCTION_NAMES = frozenset({
    "VideoH2V", "VideoDelogo", "Cover", "VideoClip", "ImageMatting", "ImageH2V", "ImageDelogo",
    "CaptionExtraction", "VideoDetext", "VideoGreenScreenMatting", "MusicSegmentDetect", "AudioMixing",
    "VideoSplit", "AudioBeatDetection", "ImageCartoonize", "AudioQualityAssessment",
})
DEFAULT_RESULTS: dict[str, dict[str, Any]] = {
    "Success": {"Code": "Success", "Data": {"result": []}, "Message": "Successful."},
    "Fail": {"Code": "JobFailed", "Data": {}, "Message": "The intelligent production job failed."},
}


def new_job_id() -> str:
    return uuid.uuid4().hex


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _ordered(result: dict[str, Any]) -> dict[str, Any]:
    first = {k: result[k] for k in ("Code", "Data", "Message") if k in result}
    return {**first, **{k: v for k, v in result.items() if k not in first}}


def encode_result(result: Any, as_object: bool) -> Any:
    """``Result`` in the wire encoding: a JSON string whose ``Data`` is a JSON string (or objects)."""
    if as_object:
        if isinstance(result, str):
            try:
                result = json.loads(result)
            except ValueError:
                return result
        if isinstance(result, dict) and isinstance(result.get("Data"), str):
            with contextlib.suppress(ValueError):
                result = {**result, "Data": json.loads(result["Data"])}
        return result
    if isinstance(result, str) or result is None:
        return result
    if isinstance(result, dict) and "Data" in result:
        result = _ordered(result)
        if not isinstance(result["Data"], str):
            result["Data"] = _compact(result["Data"])
    return _compact(result)


def jobs_section(document: Any) -> dict[str, dict[str, Any]]:
    """The jobs map of a seed document: ``{"mps": {"jobs": ...}}``, ``{"jobs": ...}`` or the map itself."""
    if not isinstance(document, dict):
        raise ValueError("a seed document must be a JSON object")
    if isinstance(document.get("mps"), dict):
        document = document["mps"]
    if isinstance(document.get("jobs"), dict):
        document = document["jobs"]
    if not all(isinstance(job, dict) for job in document.values()):
        raise ValueError("every job in a seed document must be an object")
    return document


class JobStore:
    """Thread-safe ``JobId -> job`` table. A job keeps the fields it was given; ``Result`` may be an
    object or a string and is encoded when answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}

    @staticmethod
    def _normalize(job_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(fields, dict):
            raise ValueError("a job must be a JSON object")
        job = {k: copy.deepcopy(v) for k, v in fields.items() if k not in ("JobId", "RequestId")}
        job.setdefault("Type", "IProduction")
        job.setdefault("State", "Queuing")
        return {"JobId": job_id, **job}

    def put(self, job_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a job."""
        job = self._normalize(job_id, fields)
        with self._lock:
            self._jobs[job_id] = job
            return copy.deepcopy(job)

    def update(self, job_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Merge fields into an existing job (KeyError if unknown)."""
        with self._lock:
            job = self._jobs[job_id]
            job.update({k: copy.deepcopy(v) for k, v in fields.items() if k not in ("JobId", "RequestId")})
            return copy.deepcopy(job)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job) if job is not None else None

    def all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._jobs)

    def delete(self, job_id: str) -> bool:
        with self._lock:
            return self._jobs.pop(job_id, None) is not None

    def clear(self) -> int:
        with self._lock:
            count = len(self._jobs)
            self._jobs.clear()
            return count

    def seed(self, document: Any) -> int:
        jobs = jobs_section(document)
        for job_id, fields in jobs.items():
            self.put(job_id, fields)
        return len(jobs)


def query_answer(job: dict[str, Any], request_id: str, *, as_object: bool,
                 pending_result: str) -> dict[str, Any]:
    """The QueryIProductionJob body for a stored IProduction job: the ten documented fields."""
    state = job.get("State")
    if state not in TERMINAL and pending_result == "empty":
        result: Any = ""
    elif "Result" in job:
        result = job["Result"]
    else:
        result = DEFAULT_RESULTS.get(str(state), "")
    answer = {name: job.get(name, "") for name in RESPONSE_FIELDS}
    answer["RequestId"] = request_id
    answer["Result"] = encode_result(result, as_object)
    return answer
