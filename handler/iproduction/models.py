"""The pydantic models at the function's edges: the event envelopes and the MPS answer (imported on first
use: building them is most of a cold start that does not need them yet)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["JobNotification", "QueryJobAnswer", "QueueCloudEvent", "QueueMessage", "StreamWithAttrs",
           "TimerEvent", "TopicJsonEvent", "ValidationError"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TimerEvent(_Model):
    triggerTime: str
    triggerName: str
    payload: str | None = None


class TopicJsonEvent(_Model):
    Message: str
    MessageId: str | None = None
    TopicName: str | None = None
    TopicOwner: str | None = None


class StreamWithAttrs(_Model):
    body: str
    attrs: dict[str, Any] | None = None


class QueueMessage(_Model):
    messageBody: str
    messageId: str | None = None
    requestId: str | None = None


class QueueCloudEvent(_Model):
    type: str
    id: str | None = None
    data: QueueMessage


class JobNotification(_Model):
    """The MPS job notification; both key casings are sent (mps.md §3.2)."""

    job_id: Any = Field(default=None, validation_alias=AliasChoices("JobId", "jobId", "jobid", "JOBID"))
    type: Any = Field(default=None, validation_alias=AliasChoices("Type", "type"))
    state: Any = Field(default=None, validation_alias=AliasChoices("State", "state"))


class QueryJobAnswer(BaseModel):
    """The QueryIProductionJob response body: ten fields, all strings (``Result`` may be an object)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    RequestId: str | None = None
    JobId: str | None = None
    State: str | None = None
    FunctionName: str | None = None
    PipelineId: str | None = None
    Input: str | None = None
    Output: str | None = None
    JobParams: str | None = None
    UserData: str | None = None
    # A string or an object as documented; any other JSON type is kept as it came, so that the job
    # model can reject it with a reason (``job.decode_result``) rather than fail validation here.
    Result: Any = None

    @field_validator("JobParams", "UserData", "FunctionName", "PipelineId", "Input", "Output",
                     "State", "JobId", "RequestId", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Tolerate a number or an object where the API documents a string.
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
