"""Event parsing: every documented trigger format, verbatim doc examples, and odd bodies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from iproduction.events import BadMessage, JobRef, parse_body, parse_event

ROOT = Path(__file__).resolve().parents[2]
JOB = "88c6ca184c0e432bbf5b665e2a150000"
NOTIFICATION = json.dumps({"Code": "Success", "Details": [], "FunctionName": "VideoGreenScreenMatting",
                           "JobId": JOB, "Message": "success", "State": "Success", "Type": "IProduction"})

# fc.md §1(c), verbatim: the MNS queue trigger delivers a JSON array of CloudEvents.
FC_DOC_QUEUE_EVENT = """[ { "id":"c2g71017-6f65-fhcf-a814-a396fc8d****", "source":"MNS-Function-mnstrigger", "specversion":"1.0", "type":"mns:Queue:SendMessage", "datacontenttype":"application/json; charset=utf-8", "subject":"acs:mns:cn-hangzhou:164901546557****:queues/zeus", "time":"2021-04-08T06:28:17.093Z", "aliyunaccountid":"164901546557****", "aliyunpublishtime":"2021-10-15T07:06:34.028Z", "aliyunoriginalaccountid":"164901546557****", "aliyuneventbusname":"MNS-Function-mnstrigger", "aliyunregionid":"cn-chengdu", "aliyunpublishaddr":"42.120.XX.XX", "data":{ "requestId":"606EA3074344430D4C81****", "messageId":"C6DB60D1574661357FA227277445****", "messageBody":"TEST" } }, { "id":"d2g71017-6f65-fhcf-a814-a396fc8d****", "source":"MNS-Function-mnstrigger", "specversion":"1.0", "type":"mns:Queue:SendMessage", "datacontenttype":"application/json; charset=utf-8", "subject":"acs:mns:cn-hangzhou:164901546557****:queues/zeus", "time":"2021-04-08T06:28:17.093Z", "aliyunaccountid":"164901546557****", "aliyunpublishtime":"2021-10-15T07:06:34.028Z", "aliyunoriginalaccountid":"164901546557****", "aliyuneventbusname":"MNS-Function-mnstrigger", "aliyunregionid":"cn-chengdu", "aliyunpublishaddr":"42.120.XX.XX", "data":{ "requestId":"606EA3074344430D4C81****", "messageId":"C6DB60D1574661357FA227277445****", "messageBody":"TEST" } } ]"""  # noqa: E501
# fc.md §1(a), verbatim.
FC_DOC_TIMER_EVENT = '{ "triggerTime":"2023-12-26T07:49:00Z", "triggerName":"timer-trigger", "payload":"awesome-fc" }'
# mps.md §3.2, verbatim: the generic job message with both key casings.
MPS_DOC_MESSAGE = """{
    "jobId":"0ceb045cd8df4db49f1c5bd4ace5****",
    "requestId":"713C4BA2-E65A-5984-88D6-C4554DD3****",
    "Type":"Transcode",
    "state":"Success",
    "type":"Transcode",
    "State":"Success",
    "JobId":"0ceb045cd8df4db49f1c5bd4ace5****",
    "RequestId":"713C4BA2-E65A-5984-88D6-C4554DD3****"
}"""
# mps.md §3.2, verbatim: the IProduction callback example (job id masked as in the doc).
MPS_DOC_IPRODUCTION = """{
  "Code":"Success",
  "Details":[],"FunctionName":"VideoGreenScreenMatting",
  "JobId":"39f8e0bc005e4f309379701645f4****",
  "Message":"success",
  "State":"Success",
  "Type":"IProduction"
}"""


def refs(raw: bytes | str) -> list[str]:
    return [ref.job_id for ref in parse_event(raw).refs]


def test_project_event_files() -> None:
    for name in ("mns-topic-stream.json", "mns-topic-stream-attrs.json", "mns-topic-json.json",
                 "mns-queue-cloudevents.json", "timer-jobids.json"):
        parsed = parse_event((ROOT / "events" / name).read_bytes())
        assert parsed.refs == [JobRef(JOB, parsed.refs[0].message_id)], name
        assert not parsed.rejected
    assert parse_event((ROOT / "events" / "timer-sweep.json").read_bytes()).sweep


def test_fc3_vendor_templates_verbatim_are_rejected_with_a_reason() -> None:
    """The component's sample events carry 'hello topic': recognised envelopes, unusable body."""
    folder = ROOT / "tests" / "data" / "fc3-event-templates"
    stream = parse_event((folder / "mns-stream.json").read_bytes())
    assert stream.source == "mns-topic-stream" and not stream.refs
    assert "neither an MPS job notification nor a job id" in stream.rejected[0].reason
    for name, message_id in (("mns-with-MessageAttributes.json", "2F5B3C281B283D4EAC694B742528****"),
                             ("mns-without-MessageAttributes.json", "2F5B3C082B923D4EAC694B76D928****")):
        parsed = parse_event((folder / name).read_bytes())
        assert parsed.source == "mns-topic-json"
        assert parsed.rejected == [BadMessage(parsed.rejected[0].reason, message_id)]


def test_fc_doc_examples_verbatim() -> None:
    queue = parse_event(FC_DOC_QUEUE_EVENT.encode())
    assert queue.source == "mns-queue" and not queue.refs
    assert [m.message_id for m in queue.rejected] == ["C6DB60D1574661357FA227277445****"] * 2
    timer = parse_event(FC_DOC_TIMER_EVENT.encode())
    assert timer.sweep and not timer.refs and not timer.rejected


def test_mps_doc_messages_verbatim() -> None:
    transcode = parse_body(MPS_DOC_MESSAGE)
    assert isinstance(transcode, BadMessage) and "Type='Transcode'" in transcode.reason
    masked = parse_body(MPS_DOC_IPRODUCTION)
    assert isinstance(masked, BadMessage) and "invalid job id" in masked.reason


@pytest.mark.parametrize("body", [
    NOTIFICATION,
    json.dumps({"jobId": JOB, "type": "IProduction", "state": "Success"}),
    json.dumps({"JobId": JOB}),
    JOB,
    f"  {JOB.upper()}\n",
    json.dumps(JOB),
    base64.b64encode(NOTIFICATION.encode()).decode(),
    base64.b64encode(JOB.encode()).decode(),
])
def test_bodies(body: str) -> None:
    assert parse_body(body) == JobRef(JOB)


def test_base64_is_tried_once_only() -> None:
    twice = base64.b64encode(base64.b64encode(JOB.encode())).decode()
    assert isinstance(parse_body(twice), BadMessage)


def test_every_envelope_with_a_real_notification() -> None:
    stream = NOTIFICATION
    attrs = json.dumps({"body": NOTIFICATION, "attrs": {"Extend": "{\"key\":\"value\"}"}})
    topic = json.dumps({"TopicOwner": "1", "Message": NOTIFICATION, "Subscriber": "1", "PublishTime": "1449556920975",
                        "SubscriptionName": "s", "MessageMD5": "x", "TopicName": "t", "MessageId": "m-1",
                        "MessageTag": "important", "key": "value"})
    cloud_event = {"id": "1", "source": "MNS-f-t", "specversion": "1.0", "type": "mns:Queue:SendMessage",
                   "data": {"requestId": "r", "messageId": "q-1", "messageBody": NOTIFICATION}}
    raw_data = [{"requestId": "r", "messageId": "q-2", "messageBody": JOB}]
    for raw in (stream, attrs, topic, json.dumps(cloud_event), json.dumps([cloud_event]), json.dumps(raw_data)):
        assert refs(raw) == [JOB], raw
    assert parse_event(topic).refs[0].message_id == "m-1"
    assert parse_event(json.dumps(cloud_event)).refs[0].message_id == "q-1"


def test_timer_payload_with_job_ids_and_duplicates() -> None:
    other = "0" * 31 + "1"
    payload = json.dumps({"jobIds": [JOB, other, JOB.upper(), "nope"]})
    parsed = parse_event(json.dumps({"triggerTime": "t", "triggerName": "n", "payload": payload}))
    assert [r.job_id for r in parsed.refs] == [JOB, other]
    assert len(parsed.rejected) == 1 and "invalid job id 'nope'" in parsed.rejected[0].reason
    assert parse_event(json.dumps({"triggerTime": "t", "triggerName": "n", "payload": "{}"})).sweep
    bad = parse_event(json.dumps({"triggerTime": "t", "triggerName": "n", "payload": '{"jobIds": "x"}'}))
    assert not bad.sweep and bad.rejected


def test_duplicates_across_a_batch_are_processed_once() -> None:
    events = [{"type": "mns:Queue:SendMessage", "data": {"messageId": str(i), "messageBody": JOB}} for i in range(5)]
    parsed = parse_event(json.dumps(events))
    assert [r.job_id for r in parsed.refs] == [JOB] and parsed.refs[0].message_id == "0"


@pytest.mark.parametrize("raw", [
    b"", b"\xff\xfe\xfd", b"null", b"42", b"[]", b"[1, 2]", b"{}", b'{"JobId": 5}',
    b'{"JobId": "' + b"a" * 5000 + b'"}',
    b"[" * 50000, b'{"type": "mns:Queue:SendMessage", "data": {"messageBody": 5}}',
    b'{"triggerTime": 1, "triggerName": "x"}', b'{"Message": 5, "TopicName": "t"}', b'{"body": 5}',
    "\ufeff".encode() + JOB.encode()[:-1],
])
def test_hostile_input_always_ends_in_a_reason(raw: bytes) -> None:
    parsed = parse_event(raw)
    assert not parsed.refs and parsed.rejected
    assert all(len(m.reason) < 300 for m in parsed.rejected)


def test_utf16_and_bom_bodies() -> None:
    assert refs(NOTIFICATION.encode("utf-16")) == [JOB]
    assert refs("\ufeff".encode() + NOTIFICATION.encode()) == [JOB]


def test_de_duplication_is_linear() -> None:
    """Each reference is checked against the ids seen, not against every earlier reference: 60,000
    distinct ids (a timer payload the size of a big backlog) parse in well under a second."""
    import time

    def timed(count: int) -> float:
        ids = [f"{n:032x}" for n in range(count)]
        event = json.dumps({"triggerTime": "t", "triggerName": "n", "payload": json.dumps({"jobIds": ids})})
        started = time.perf_counter()
        assert len(parse_event(event).refs) == count
        return time.perf_counter() - started

    assert timed(60_000) < 2.0  # quadratic: about two minutes


@pytest.mark.parametrize("raw", [
    b"\xff\xfe" + NOTIFICATION.encode(),  # even length: reads as UTF-16, as mojibake
    b"\xfe\xff" + NOTIFICATION.encode()[:-1],
    b"\xff\xfe" + JOB.encode(),
    b"\xff\xfe\x00",  # odd length: not UTF-16 at all
])
def test_bytes_after_a_utf16_bom_that_are_not_utf16_text_are_not_text(raw: bytes) -> None:
    parsed = parse_event(raw)
    assert not parsed.refs
    assert [m.reason for m in parsed.rejected] == ["event is not UTF-8 text"]
