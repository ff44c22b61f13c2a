"""Events in, job ids out: the timer event, the MNS topic (STREAM and JSON) and queue (CloudEvents) events of the
README's "Events", whose bodies are an MPS notification, a bare job id, or base64 of either. :func:`parse_event`
never raises: what it cannot use becomes a :class:`BadMessage` with a reason."""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import models


JOB_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
QUEUE_EVENT_TYPE = "mns:Queue:SendMessage"
MAX_SHOWN = 40


@dataclass(frozen=True)
class JobRef:
    job_id: str
    message_id: str | None = None


@dataclass(frozen=True)
class BadMessage:
    reason: str
    message_id: str | None = None


@dataclass
class ParsedEvent:
    source: str
    sweep: bool = False
    refs: list[JobRef] = field(default_factory=list)
    rejected: list[BadMessage] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, item: JobRef | BadMessage) -> None:
        if isinstance(item, BadMessage):
            self.rejected.append(item)
        elif item.job_id not in self._seen:  # a job once per event
            self._seen.add(item.job_id)
            self.refs.append(item)


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """A short, printable rendering of untrusted input for a reason text."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def job_ref(value: Any, message_id: str | None) -> JobRef | BadMessage:
    if isinstance(value, str) and JOB_ID_RE.match(value.strip()):
        return JobRef(value.strip().lower(), message_id)
    return BadMessage(f"invalid job id {shown(value)} (want 32 hexadecimal characters)", message_id)


def _decode(raw: bytes | str) -> str | None:
    """Event bytes as text: UTF-8 (BOM optional), or UTF-16/32 when a BOM says so and the text begins with an
    ASCII character, as everything an event may hold does (JSON, a job id, base64)."""
    if isinstance(raw, str):
        return raw
    encoding = ("utf-32" if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) else  # before UTF-16's
                "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    return text if encoding == "utf-8-sig" or text.lstrip()[:1].isascii() else None


def _json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def parse_body(text: str, message_id: str | None = None, *, base64_allowed: bool = True) -> JobRef | BadMessage:
    """One message body: a notification, a bare job id, or base64 of either (tried once)."""
    stripped = text.strip()
    if JOB_ID_RE.match(stripped):
        return JobRef(stripped.lower(), message_id)
    ok, doc = _json(stripped)
    if ok and isinstance(doc, dict):
        return _notification(doc, message_id)
    if ok and isinstance(doc, str) and doc != text:
        return parse_body(doc, message_id, base64_allowed=base64_allowed)
    if base64_allowed and stripped and len(stripped) % 4 == 0:
        try:
            decoded = base64.b64decode(stripped, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            pass
        else:
            return parse_body(decoded, message_id, base64_allowed=False)
    return BadMessage(f"message body is neither an MPS job notification nor a job id: {shown(stripped)}",
                      message_id)


def _notification(doc: dict[str, Any], message_id: str | None) -> JobRef | BadMessage:
    from .models import JobNotification

    note = JobNotification.model_validate(doc)
    kind = note.type
    if kind is not None and (not isinstance(kind, str) or kind.strip().lower() != "iproduction"):
        return BadMessage(f"not an intelligent-production notification (Type={shown(kind)})", message_id)
    if note.job_id is None:
        return BadMessage("notification has no JobId", message_id)
    return job_ref(note.job_id, message_id)


def _timer(event: models.TimerEvent, parsed: ParsedEvent) -> None:
    ok, doc = _json((event.payload or "").strip())
    if not (ok and isinstance(doc, dict) and "jobIds" in doc):
        parsed.sweep = True
        return
    ids = doc["jobIds"]
    if not isinstance(ids, list):
        parsed.add(BadMessage("timer payload jobIds must be a list of job ids"))
        return
    for value in ids:
        parsed.add(job_ref(value, None))


def _queue_item(item: Any, parsed: ParsedEvent) -> None:
    from .models import QueueCloudEvent, QueueMessage, ValidationError

    if isinstance(item, str):
        parsed.add(parse_body(item))
        return
    if not isinstance(item, dict):
        parsed.add(BadMessage(f"queue event item is not an object: {shown(item)}"))
        return
    try:
        if "messageBody" in item:  # EventBridge RawData delivery
            message = QueueMessage.model_validate(item)
        else:
            event = QueueCloudEvent.model_validate(item)
            if event.type != QUEUE_EVENT_TYPE:
                parsed.add(BadMessage(f"unsupported CloudEvent type {shown(event.type)}", event.data.messageId))
                return
            message = event.data
    except ValidationError:
        message_id = item.get("data", {}).get("messageId") if isinstance(item.get("data"), dict) else None
        parsed.add(BadMessage("malformed MNS queue event (want data.messageBody as a string)",
                              message_id if isinstance(message_id, str) else None))
        return
    parsed.add(parse_body(message.messageBody, message.messageId))


def _object(doc: dict[str, Any], parsed: ParsedEvent, text: str) -> None:
    from .models import StreamWithAttrs, TimerEvent, TopicJsonEvent, ValidationError

    if "triggerTime" in doc and "triggerName" in doc:
        parsed.source = "timer"
        try:
            _timer(TimerEvent.model_validate(doc), parsed)
        except ValidationError:
            parsed.add(BadMessage("malformed timer event (want string triggerTime, triggerName, payload)"))
        return
    if ("type" in doc and "data" in doc) or "messageBody" in doc:
        parsed.source = "mns-queue"
        _queue_item(doc, parsed)
        return
    if "Message" in doc and ({"TopicName", "TopicOwner", "MessageId"} & doc.keys()):
        parsed.source = "mns-topic-json"
        try:
            event = TopicJsonEvent.model_validate(doc)
        except ValidationError:
            message_id = doc.get("MessageId")
            parsed.add(BadMessage("malformed MNS topic event (want Message as a string)",
                                  message_id if isinstance(message_id, str) else None))
            return
        parsed.add(parse_body(event.Message, event.MessageId))
        return
    parsed.source = "mns-topic-stream"
    if not ("body" in doc and set(doc) <= {"body", "attrs"}):
        parsed.add(parse_body(text))
        return
    try:
        parsed.add(parse_body(StreamWithAttrs.model_validate(doc).body))
    except ValidationError:
        parsed.add(BadMessage("malformed MNS topic STREAM event (want body as a string)"))


def parse_event(raw: bytes | str) -> ParsedEvent:
    """Every job reference an event carries (deduplicated), or whether it asks for a sweep."""
    text = _decode(raw)
    parsed = ParsedEvent(source="unknown")
    if text is None:
        parsed.add(BadMessage("event is not UTF-8 text"))
        return parsed
    ok, doc = _json(text)
    if ok and isinstance(doc, list):
        parsed.source = "mns-queue"
        if not doc:
            parsed.add(BadMessage("empty event batch"))
        for item in doc:
            _queue_item(item, parsed)
    elif ok and isinstance(doc, dict):
        _object(doc, parsed, text)
    else:
        parsed.source = "mns-topic-stream"
        parsed.add(parse_body(doc if ok and isinstance(doc, str) else text))
    return parsed
