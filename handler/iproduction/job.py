"""The MPS job: the QueryIProductionJob answer, its decoded ``Result`` (``Result`` and ``Result.Data`` are
JSON strings in the real API, objects on the doc page: both are accepted), and what to do next."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import RejectedError

if TYPE_CHECKING:
    from .models import QueryJobAnswer

OUTPUT_RE = re.compile(
    r"^oss://(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])"
    r"(?:\.oss-(?P<region>[a-z]{2,}(?:-[a-z0-9]+)+?)(?P<internal>-internal)?\.aliyuncs\.com)?"
    r"/(?P<key>.*)$",
    re.DOTALL,
)


class Action(enum.Enum):
    """What a job's MPS ``State`` asks of us."""

    COPY = "copy"  # Success: copy the result files, commit the manifest
    FAIL = "fail"  # Fail: commit a failure manifest
    WAIT = "wait"  # Queuing / Analysing / anything unknown: keep it in the pending registry


# The documented MPS states, spelt exactly (mps.md §1.2); any other spelling is an unknown state.
_ACTIONS = {"Success": Action.COPY, "Fail": Action.FAIL, "Queuing": Action.WAIT, "Analysing": Action.WAIT}
KNOWN_STATES = frozenset(_ACTIONS)


def next_action(state: str) -> Action:
    """``Success`` → copy, ``Fail`` → failure manifest, the rest (``SUCCESS``, ``Failed`` or `` Success `` too:
    not documented states) → wait, logged as unknown rather than committing a guess."""
    return _ACTIONS.get(state, Action.WAIT)


@dataclass(frozen=True)
class JobResult:
    code: str | None
    message: str | None
    data: Any  # the decoded ``Data`` (usually {"result": [{"file": ...}]}), or None
    data_error: str | None = None  # why ``Data`` could not be decoded, if it could not


@dataclass(frozen=True)
class Job:
    job_id: str
    state: str
    function_name: str | None
    pipeline_id: str | None
    input: str | None
    output: str | None
    job_params: str | None
    user_data: str | None
    result: JobResult
    request_id: str | None

    @property
    def action(self) -> Action:
        return next_action(self.state)


@dataclass(frozen=True)
class OutputLocation:
    bucket: str
    region: str


def _loads_maybe(value: Any) -> Any:
    """Decode a JSON string; leave anything else as it is."""
    if not isinstance(value, (str, bytes)):
        return value
    text = value.strip() if isinstance(value, str) else value.strip().decode("utf-8", "replace")
    return json.loads(text) if text else None


def decode_result(raw: Any) -> JobResult:
    """``Result`` → (Code, Message, Data) whether the two levels are JSON strings or objects."""
    try:
        result = _loads_maybe(raw)
    except (ValueError, RecursionError):
        return JobResult(None, None, None, "Result is not JSON")
    if result is None:
        return JobResult(None, None, None)
    if not isinstance(result, dict):
        return JobResult(None, None, None, "Result is not a JSON object")

    def text(name: str) -> str | None:
        value = result.get(name, result.get(name.lower()))
        return None if value is None else str(value)

    try:
        return JobResult(text("Code"), text("Message"), _loads_maybe(result.get("Data", result.get("data"))))
    except (ValueError, RecursionError):
        return JobResult(text("Code"), text("Message"), None, "Result.Data is not JSON")


def job_from_answer(job_id: str, answer: QueryJobAnswer) -> Job:
    """A :class:`Job`, or :class:`RejectedError` for an unknown or non-IProduction job (an answer about another
    job never gets here: the MPS client retries it, ``mps.MPSWrongJobError``)."""
    if not answer.State:
        # mps.md §1.2: only RequestId (and JobId) come back for a job that is not an IProduction job.
        raise RejectedError("unknown job or not an intelligent-production job (MPS returned no State)")
    return Job(job_id=job_id, state=answer.State, function_name=answer.FunctionName, pipeline_id=answer.PipelineId,
               input=answer.Input, output=answer.Output, job_params=answer.JobParams, user_data=answer.UserData,
               result=decode_result(answer.Result), request_id=answer.RequestId)


def result_missing(result: JobResult) -> str | None:
    """Why a ``Success`` answer does not list the job's files yet (MPS may fill ``Result`` later), or None when
    it does, even as an empty list, or when it is unreadable (:func:`result_files` rejects that)."""
    if result.data_error:
        return None
    if result.data is None:
        return "its Result has no Data yet"
    if _entries(result.data) is None:
        return "its Result.Data has no result list yet"
    return None


def _entries(data: Any) -> Any:
    """``Data.result`` (or ``Data.Result``), None when there is none."""
    return data.get("result", data.get("Result")) if isinstance(data, dict) else None


def result_files(result: JobResult) -> list[str]:
    """The object keys in ``Data.result[*].file``, in order, without duplicates (entries without a ``file``
    string, such as the timestamps of analysis functions, are skipped)."""
    if result.data_error:
        raise RejectedError(f"job result unreadable: {result.data_error}")
    entries = _entries(result.data)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise RejectedError("job result unreadable: Data.result is not a list")
    keys = (entry.get("file", entry.get("File")) for entry in entries if isinstance(entry, dict))
    return list(dict.fromkeys(key for key in keys if isinstance(key, str)))


def parse_output(output: str | None, mps_region: str) -> OutputLocation:
    """``oss://<bucket>.oss-<region>[-internal].aliyuncs.com/<key>`` or ``oss://<bucket>/<key>``."""
    match = OUTPUT_RE.match((output or "").strip())
    if not match:
        raise RejectedError(f"job Output is not an OSS URL this function understands: {(output or '')[:120]!r}")
    return OutputLocation(match["bucket"], match["region"] or mps_region)
