"""Drill 4 — hostile input: events and MPS answers built to break the function.

Property-based (Hypothesis), on the function's own code:

* **events** — random bytes, random JSON, deep and huge JSON, every trigger envelope with fields of the
  wrong type, over-long or look-alike job ids, bodies base64'd or in unexpected encodings: the parser
  never raises; every job id it lets through is 32 hex characters; everything else becomes a rejection
  with a short printable reason (or, for a timer, a sweep);
* **batches** — valid notifications mixed with hostile items in one MNS queue batch: every valid job
  still comes through, every hostile item is one rejection (one bad message never blocks the others);
* **MPS answers** — served over HTTP to the real MPS client: a job, a rejection or (for a body that
  is not a JSON object) a retried error; a job's destination keys always stay under its prefix, safe
  and at most 1023 bytes;
* **end to end** — a sample of the hostile events invoked on the function: it answers, never raises.

Then hostile MPS answers through the emulators, all in one MNS batch with a good job: ``Output`` in
another bucket, keys with ``..``, a leading ``/``, control characters, over 1023 bytes, ``Data`` or
``Result`` not JSON or of the wrong type, thousands of files — each ``rejected`` with a reason (or
committed, for thousands of good files), the good job committed, nothing read or written where it
must not be.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.harness import (
    AK,
    JOB,
    SECRET,
    SOURCE,
    TOKEN,
    cloud_event,
    job_id,
    notification,
)

from .common import DrillReport, Ledger, audit_cloud, check_committed_files, local_cloud, scan_secrets

HANDLER_ROOT = Path(__file__).resolve().parents[1] / "handler"
if str(HANDLER_ROOT) not in sys.path:
    sys.path.insert(0, str(HANDLER_ROOT))

import httpx  # noqa: E402

from iproduction.config import load_settings  # noqa: E402
from iproduction.credentials import Credentials, CredentialsSource  # noqa: E402
from iproduction.errors import RejectedError, TransientError  # noqa: E402
from iproduction.events import JOB_ID_RE, parse_event  # noqa: E402
from iproduction.job import Action, job_from_answer, parse_output, result_files, result_missing  # noqa: E402
from iproduction.layout import MAX_KEY_BYTES, manifest_key, plan_files  # noqa: E402
from iproduction.manifest import build  # noqa: E402
from iproduction.mps import MPSClient, MPSWrongJobError  # noqa: E402
from iproduction.ratelimit import RateLimiter  # noqa: E402
from iproduction.retry import RetryPolicy  # noqa: E402

SIZES = {"ci": {"events": 400, "batches": 120, "answers": 400, "end_to_end": 40, "many_files": 1000},
         "full": {"events": 20000, "batches": 3000, "answers": 10000, "end_to_end": 600, "many_files": 5000}}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "gb18030",
             "shift_jis", "ascii")
PREFIX = "iproduction/"

# -- strategies -----------------------------------------------------------------------------------
leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
          | st.sampled_from(["", " ", "null", "{}", "[]", "\x00", "\ud7ff", "JobId", "IProduction"]))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)
hex_text = st.text(alphabet="0123456789abcdefABCDEF", max_size=80)
valid_ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
look_alike_ids = st.one_of(
    hex_text,
    st.integers(33, 20000).map(lambda n: "a" * n),  # over-long
    st.tuples(valid_ids, st.sampled_from(["\n", "\x00", "\u200b", "x", "-", "\t\n", "٣", "ａ"])).map("".join),
    st.tuples(st.sampled_from(["\n", "\x00", "\u200b", "0x", "-", "٣"]), valid_ids).map("".join),
    valid_ids.map(lambda s: s[:31] + "g"),
    valid_ids.map(lambda s: s.replace("a", "\uff41")),  # full-width letters
    st.text(max_size=64),
)
any_ids = st.one_of(valid_ids, valid_ids.map(str.upper), look_alike_ids, json_values)
deep = st.integers(1, 40000).flatmap(lambda d: st.sampled_from(["[" * d + "]" * d, '{"a":' * d + "1" + "}" * d,
                                                                "[" * d, '{"JobId":' * d]))
huge = st.integers(5000, 2_000_000).flatmap(lambda n: st.sampled_from(["A" * n, "a" * n, "{" * n, '"' + "x" * n + '"',
                                                                       json.dumps({"JobId": "a" * n})]))


def _notification(job: Any, kind: Any, key: str) -> str:
    try:
        return json.dumps({key: job, "Type": kind, "State": "Success"}, allow_nan=True)
    except (TypeError, ValueError):
        return "{}"


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return "null"


bodies = st.one_of(
    st.builds(_notification, any_ids, st.one_of(st.just("IProduction"), json_values),
              st.sampled_from(["JobId", "jobId", "jobid", "JOBID", "job_id"])),
    any_ids.map(lambda v: v if isinstance(v, str) else _dumps(v)),
    st.text(max_size=200), deep, huge,
)
encoded_bodies = st.one_of(bodies, bodies.map(lambda b: base64.b64encode(b.encode("utf-8", "surrogatepass")).decode()),
                           bodies.map(lambda b: base64.b64encode(base64.b64encode(b.encode("utf-8", "surrogatepass"))
                                                                 ).decode()))
strings_or_anything = st.one_of(encoded_bodies, json_values)


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    """A trigger envelope (or something that looks like one) with hostile fields."""
    body = draw(strings_or_anything)
    kind = draw(st.sampled_from(["stream", "attrs", "topic", "queue", "queue-raw", "batch", "timer", "timer-ids",
                                 "json", "list"]))
    if kind == "stream":
        return body
    if kind == "attrs":
        return {"body": body, "attrs": draw(json_values)}
    if kind == "topic":
        return {"TopicOwner": draw(json_values), "Message": body, "MessageId": draw(json_values), "TopicName": "mps"}
    if kind in ("queue", "batch"):
        event = {"type": draw(st.sampled_from(["mns:Queue:SendMessage", "mns:Topic:x"]) | json_values),
                 "data": draw(st.fixed_dictionaries({"messageBody": st.just(body)}, optional={"messageId": json_values})
                              | json_values)}
        return [event, *draw(st.lists(json_values | st.just(event), max_size=3))] if kind == "batch" else event
    if kind == "queue-raw":
        return {"messageBody": body, "messageId": draw(json_values)}
    if kind in ("timer", "timer-ids"):
        payload = (_dumps({"jobIds": draw(json_values | st.lists(any_ids, max_size=5))}) if kind == "timer-ids"
                   else draw(st.one_of(encoded_bodies, json_values)))
        return {"triggerTime": draw(json_values | st.just("2026-11-25T12:00:00Z")),
                "triggerName": draw(json_values | st.just("sweep")), "payload": payload}
    if kind == "list":
        return draw(st.lists(json_values, max_size=4))
    return draw(json_values)


def _to_bytes(value: Any, encoding: str) -> bytes:
    text = value if isinstance(value, str) else _dumps(value)
    return text.encode(encoding, "replace") if encoding != "utf-8" else text.encode("utf-8", "surrogatepass")


raw_events = st.one_of(
    st.binary(max_size=300),
    st.tuples(envelopes(), st.sampled_from(ENCODINGS)).map(lambda pair: _to_bytes(*pair)),
    deep.map(str.encode), huge.map(str.encode),
)


# -- the properties -------------------------------------------------------------------------------
def check_parsed(raw: bytes) -> Counter[str]:
    """The parser's promise for one event; returns what it made of it."""
    parsed = parse_event(raw)
    seen: Counter[str] = Counter()
    for ref in parsed.refs:
        assert JOB_ID_RE.fullmatch(ref.job_id) and ref.job_id == ref.job_id.lower(), ref
        seen["job"] += 1
    for bad in parsed.rejected:
        assert bad.reason and len(bad.reason) <= 300 and bad.reason.isprintable(), bad
        assert bad.message_id is None or isinstance(bad.message_id, str)
        seen["rejected"] += 1
    if parsed.sweep:
        seen["sweep"] += 1
    if not seen:
        # Only a timer naming no job at all (``"jobIds": []``) may ask for nothing.
        assert parsed.source == "timer", (parsed, raw[:200])
        seen["nothing"] += 1
    return seen


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck))


def events_property(examples: int, tally: Counter[str]) -> None:
    @_settings(examples)
    @given(raw=raw_events)
    def prop(raw: bytes) -> None:
        tally["inputs"] += 1
        tally.update(check_parsed(raw))

    prop()


def batches_property(examples: int, tally: Counter[str]) -> None:
    """Hostile items mixed into a queue batch never hide the valid ones."""

    @_settings(examples)
    @given(good=st.lists(valid_ids, min_size=1, max_size=5, unique=True),
           bad=st.lists(st.one_of(json_values, encoded_bodies), min_size=1, max_size=5), data=st.data())
    def prop(good: list[str], bad: list[Any], data: st.DataObject) -> None:
        items: list[Any] = [cloud_event(notification(j), f"m-{i}") for i, j in enumerate(good)]
        hostile = [b for b in bad if not parse_event(json.dumps([b], allow_nan=True)).refs]
        for item in hostile:
            items.insert(data.draw(st.integers(0, len(items))), item)
        parsed = parse_event(json.dumps(items, allow_nan=True).encode())
        assert [ref.job_id for ref in parsed.refs] == good
        assert len(parsed.rejected) == len(hostile)
        tally["inputs"] += 1
        tally["items"] += len(items)

    prop()


class _Answers:
    """One MPS client whose transport answers with whatever body is set (a client and a loop per answer
    would cost more than the answers' own checks)."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        transport = httpx.MockTransport(lambda request: httpx.Response(
            self.status, content=self.body, headers={"content-type": "application/json"}))
        self.client = MPSClient("http://mts.cn-hangzhou.test", CredentialsSource(Credentials(AK, SECRET, TOKEN)),
                                limiter=RateLimiter(100_000), transport=transport, policy=RetryPolicy(attempts=1))
        self.loop = asyncio.new_event_loop()

    def query(self, body: bytes, status: int = 200) -> Any:
        self.body, self.status = body, status
        return self.loop.run_until_complete(self.client.query_iproduction_job(JOB))


_answers: _Answers | None = None


def _query(body: bytes, status: int = 200) -> Any:
    """What the function's MPS client makes of one answer (``body``)."""
    global _answers
    if _answers is None:
        _answers = _Answers()
    return _answers.query(body, status)


unsafe_keys = st.one_of(
    st.sampled_from(["../x.jpg", "a/../../b.jpg", "/abs.jpg", "a//b.jpg", "a/./b.jpg", "a/b\n.jpg", "a\x00b",
                     "a\x7fb", "manifest.json", "out/manifest.json", "", ".", "..", "a/", "\u202e.jpg"]),
    st.integers(900, 3000).map(lambda n: "k/" + "x" * n),
    st.integers(300, 400).map(lambda n: "é" * n),
    st.text(max_size=30),
)
good_keys = st.text(alphabet="abcdefghij0123456789-_.", min_size=1, max_size=12).map(lambda s: f"out/job/{s}.jpg")
file_entries = st.one_of(st.fixed_dictionaries({"file": good_keys | unsafe_keys}), json_values,
                         st.fixed_dictionaries({"File": good_keys}), st.fixed_dictionaries({"file": json_values}))
data_values = st.one_of(
    st.lists(file_entries, max_size=6).map(lambda e: {"result": e}),
    st.integers(1000, 4000).map(lambda n: {"result": [{"file": f"out/many/{i}.jpg"} for i in range(n)]}),
    json_values, st.just("not json {"), deep,
)


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """A QueryIProductionJob body: mostly a well-formed answer whose result keys, fields or encoding are
    hostile; sometimes a JSON object with fields of any type; rarely not a JSON object at all."""
    shape = draw(st.sampled_from(["keys"] * 6 + ["fields"] * 3 + ["not-an-object"]))
    if shape == "not-an-object":
        return draw(st.sampled_from([b"[1, 2]", b'{"RequestId": "x", "State": ', b"42", b"", b"null", b"<xml/>"]))
    fields: dict[str, Any] = {"RequestId": "R-1", "JobId": JOB, "State": "Success"}
    data: Any = {"result": draw(st.lists(file_entries, min_size=1, max_size=6))}
    result: Any = {"Code": "Success", "Message": "Successful.", "Data": _dumps(data)}
    output = f"oss://{SOURCE}.oss-cn-hangzhou.aliyuncs.com/out/{{source}}.jpg"
    if shape == "fields":
        fields["JobId"] = draw(st.just(JOB) | any_ids)
        fields["State"] = draw(st.sampled_from(["Success", "Fail", "Analysing", "Queuing", "success"]) | json_values)
        for name in ("FunctionName", "PipelineId", "Input", "JobParams", "UserData"):
            if draw(st.booleans()):
                fields[name] = draw(st.text(max_size=30) | json_values | huge)
        bucket = draw(st.sampled_from([SOURCE, "other-bucket", "Bad_Bucket", "a", "dest-bucket"]))
        host = draw(st.sampled_from([f"{bucket}.oss-cn-hangzhou.aliyuncs.com", bucket,
                                     f"{bucket}.oss-cn-shanghai-internal.aliyuncs.com",
                                     f"{bucket}.oss-cn-hangzhou.aliyuncs.com.evil.com", "",
                                     f"{bucket}.oss-x.aliyuncs.com"]))
        output = draw(st.just(f"oss://{host}/out/{{source}}.jpg") | st.text(max_size=40) | json_values)
        data = draw(data_values)
        result = {"Code": draw(st.text(max_size=10) | json_values), "Message": draw(st.text(max_size=10)),
                  "Data": _dumps(data) if draw(st.booleans()) else data}
        result = draw(st.sampled_from([_dumps(result), result]) | json_values | deep)
    elif draw(st.booleans()):
        result = _dumps(result)
    fields["Output"] = output
    fields["Result"] = result
    return _dumps(fields).encode()


def check_answer(body: bytes, tally: Counter[str]) -> str:
    """What the function makes of one answer: a job it would act on, or a classified refusal."""
    try:
        job = job_from_answer(JOB, _query(body))
        if job.action is Action.COPY and result_missing(job.result) is not None:
            return "job-wait (Success without a result list yet)"
        if job.action is Action.COPY:
            location = parse_output(job.output, "cn-hangzhou")
            plans = plan_files(location.bucket, result_files(job.result), PREFIX, JOB)
            for plan in plans:
                assert plan.source_bucket == location.bucket
                key = plan.dest_key
                assert key.startswith(f"{PREFIX}{JOB}/") and key != manifest_key(PREFIX, JOB), key
                assert len(key.encode("utf-8")) <= MAX_KEY_BYTES
                assert not any(ord(c) < 32 or ord(c) == 127 for c in key)
                assert all(part not in ("", ".", "..") for part in key[len(PREFIX) + 33:].split("/")), key
            tally["files"] += len(plans)
        env = {"DEST_BUCKET": "dest-bucket", "FC_REGION": "cn-hangzhou"}
        json.dumps(build(job, load_settings(env), []))
        return f"job-{job.action.value}"
    except RejectedError as exc:
        reason = str(exc)
    except MPSWrongJobError:
        answered = json.loads(body).get("JobId")
        assert answered not in (None, "") and not (isinstance(answered, str) and answered.lower() == JOB), answered
        return "error (an answer about another job: retried)"
    except TransientError:
        text = body.decode("utf-8", "replace").strip()
        assert not _is_object(text), "a JSON object answer was taken for a transient error"
        return "error (not a JSON object: retried)"
    assert reason and reason.isprintable() and len(reason) <= 600, reason
    return "rejected"


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def answers_property(examples: int, tally: Counter[str]) -> None:
    @_settings(examples)
    @given(body=answers())
    def prop(body: bytes) -> None:
        tally["inputs"] += 1
        tally[check_answer(body, tally)] += 1

    prop()


def end_to_end_property(examples: int, tally: Counter[str], ledger: Ledger) -> list[str]:
    """Hostile events through the function on the emulators: it always answers, never raises."""
    problems: list[str] = []
    with local_cloud() as cloud:
        instance = cloud.function()

        @_settings(examples)
        @given(raw=raw_events)
        def prop(raw: bytes) -> None:
            result = instance.invoke(raw)
            ledger.record(result)
            tally["inputs"] += 1
            assert result.ok, (raw[:200], result.error_type, result.error_message)
            outcomes = {entry["outcome"] for entry in result.result["jobs"]}
            assert outcomes <= {"rejected"}, outcomes
            tally.update(entry["outcome"] for entry in result.result["jobs"])

        try:
            prop()
        except Exception as exc:
            problems.append(f"end to end: {type(exc).__name__}: {str(exc)[:400]}")
        problems += [p for p in audit_cloud(cloud, cloud.env)]
        problems += [f"end to end: the function wrote {len(cloud.dest_objects())} object(s)"] if cloud.dest_objects() \
            else []
    return problems


# -- hostile MPS answers through the emulators -----------------------------------------------------
def _job_fields(output: str, result: Any) -> dict[str, Any]:
    return {"Type": "IProduction", "State": "Success", "FunctionName": "ImageCartoonize", "PipelineId": "p",
            "Input": f"oss://{SOURCE}/in.mp4", "Output": output, "JobParams": "{}", "UserData": "null",
            "Result": result}


def _data(*keys: Any) -> dict[str, Any]:
    return {"Code": "Success", "Message": "Successful.", "Data": json.dumps({"result": [{"file": k} for k in keys]})}


HOSTILE_ANSWERS: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    # name: (MPS job fields given the job's number as text, expected outcome)
    "output-in-another-bucket": (lambda n: _job_fields("oss://decoy-bucket.oss-cn-hangzhou.aliyuncs.com/o/x.jpg",
                                                       _data(f"out/{n}/a.jpg")), "rejected"),
    "key-with-dotdot": (lambda n: _job_fields(f"oss://{SOURCE}/o", _data(f"out/{n}/a.jpg", f"out/{n}/../../x")),
                        "rejected"),
    "key-with-leading-slash": (lambda n: _job_fields(f"oss://{SOURCE}/o", _data(f"/out/{n}/a.jpg")), "rejected"),
    "key-with-control-character": (lambda n: _job_fields(f"oss://{SOURCE}/o", _data(f"out/{n}/a\n.jpg")),
                                   "rejected"),
    "key-over-1023-bytes": (lambda n: _job_fields(f"oss://{SOURCE}/o", _data(f"out/{n}/" + "k" * 1100)),
                            "rejected"),
    "destination-key-over-1023-bytes": (lambda n: _job_fields(f"oss://{SOURCE}/o", _data("k" * 1000)), "rejected"),
    "name-would-overwrite-manifest": (lambda n: _job_fields(f"oss://{SOURCE}/o",
                                                            _data(f"out/{n}/manifest.json", f"out/{n}/a.jpg")),
                                      "rejected"),
    "data-not-json": (lambda n: _job_fields(f"oss://{SOURCE}/o", {"Code": "Success", "Message": "m",
                                                                  "Data": "{result: [oops"}), "rejected"),
    "result-not-json": (lambda n: _job_fields(f"oss://{SOURCE}/o", "Code=Success;Data=oops"), "rejected"),
    "result-a-list": (lambda n: _job_fields(f"oss://{SOURCE}/o", [{"file": "x"}]), "rejected"),
    "data-result-not-a-list": (lambda n: _job_fields(f"oss://{SOURCE}/o", {"Code": "Success", "Message": "m",
                                                                           "Data": '{"result": {"file": "x"}}'}),
                               "rejected"),
    "output-not-oss": (lambda n: _job_fields("https://evil.example.com/x", _data(f"out/{n}/a.jpg")), "rejected"),
    "output-host-lookalike": (lambda n: _job_fields(f"oss://{SOURCE}.oss-cn-hangzhou.aliyuncs.com.evil.com/x",
                                                    _data(f"out/{n}/a.jpg")), "rejected"),
    "listed-file-missing": (lambda n: _job_fields(f"oss://{SOURCE}/o", _data(f"out/{n}/a.jpg", f"out/{n}/gone.jpg")),
                            "rejected"),
    "non-file-entries-ignored": (lambda n: _job_fields(f"oss://{SOURCE}/o", {
        "Code": "Success", "Message": "m", "Data": json.dumps({"result": [{"file": f"out/{n}/a.jpg"}, {"time": 3},
                                                                          {"file": 7}, "x", None]})}), "committed"),
}


def hostile_answers(many_files: int, ledger: Ledger) -> tuple[dict[str, Any], list[str]]:
    """Every hostile answer and two jobs with thousands of files, in one MNS batch with a good job."""
    problems: list[str] = []
    env = {"SOURCE_BUCKETS": SOURCE, "COPY_CONCURRENCY": "32"}
    with local_cloud() as cloud:
        cloud.oss_admin.create_bucket("decoy-bucket", "cn-hangzhou")
        cloud.put_source("o/x.jpg", b"decoy", bucket="decoy-bucket")
        names = [*HOSTILE_ANSWERS, "thousands-of-files", "thousands-of-files-one-missing", "good"]
        ids = {name: job_id(0x5000 + i) for i, name in enumerate(names)}
        for i, name in enumerate(names):
            cloud.put_source(f"out/{i}/a.jpg", f"a-{i}".encode())
            if name in HOSTILE_ANSWERS:
                cloud.mps_admin.put_job(ids[name], HOSTILE_ANSWERS[name][0](str(i)))
        cloud.oss_admin.seed({"objects": [{"bucket": SOURCE, "key": f"out/many/{k:05}.jpg", "text": f"m{k}"}
                                          for k in range(many_files)]})
        many = [f"out/many/{k:05}.jpg" for k in range(many_files)]
        cloud.mps_admin.put_job(ids["thousands-of-files"], _job_fields(f"oss://{SOURCE}/o", _data(*many)))
        cloud.mps_admin.put_job(ids["thousands-of-files-one-missing"],
                                _job_fields(f"oss://{SOURCE}/o", _data("out/many/missing.jpg", *many[1:])))
        cloud.mps_admin.put_job(ids["good"], _job_fields(f"oss://{SOURCE}/o", _data(f"out/{len(names) - 1}/a.jpg")))
        event = json.dumps([cloud_event(notification(ids[name]), f"msg-{name}") for name in names]).encode()
        result = cloud.function(timeout=120, **env).invoke(event)
        ledger.record(result)
        problems += [] if result.ok else [f"hostile answers: the invocation raised: {result.error_message}"]
        entries = {e.get("jobId"): e for e in (result.result or {}).get("jobs", [])}
        got: dict[str, Any] = {}
        for name in names:
            entry = entries.get(ids[name], {})
            expected = HOSTILE_ANSWERS[name][1] if name in HOSTILE_ANSWERS else (
                "rejected" if name.endswith("missing") else "committed")
            got[name] = {"outcome": entry.get("outcome"), "reason": entry.get("reason")}
            if entry.get("outcome") != expected:
                problems.append(f"hostile answer {name}: {entry.get('outcome')} ({entry.get('reason')}), "
                                f"expected {expected}")
            elif expected == "rejected" and not entry.get("reason"):
                problems.append(f"hostile answer {name}: rejected without a reason")
            manifest = cloud.manifest(ids[name])
            if expected != "committed" and manifest is not None:
                problems.append(f"hostile answer {name}: a manifest was committed")
            if expected == "committed":
                if manifest is None:
                    problems.append(f"hostile answer {name}: no manifest")
                else:
                    problems += check_committed_files(cloud, manifest, compare_bytes=name != "thousands-of-files")
        for name in names:
            written = cloud.dest_objects(f"iproduction/{ids[name]}/")
            if HOSTILE_ANSWERS.get(name, (None, "committed"))[1] == "rejected" and written and \
                    name != "listed-file-missing":
                problems.append(f"hostile answer {name}: {len(written)} object(s) written for a rejected job")
        problems += audit_cloud(cloud, {**cloud.env, **env})
        many_manifest = cloud.manifest(ids["thousands-of-files"]) or {}
        got["thousands-of-files"]["files"] = many_manifest.get("fileCount")
    return got, problems


def run(size: str = "ci") -> DrillReport:
    params = SIZES[size]
    report = DrillReport("hostile-input", size)
    ledger = Ledger()
    tallies: dict[str, Counter[str]] = {name: Counter() for name in ("events", "batches", "answers", "endToEnd")}
    for name, prop in (("events", events_property), ("batches", batches_property), ("answers", answers_property)):
        try:
            prop(params[name], tallies[name])
        except Exception as exc:
            report.problems.append(f"{name} property: {type(exc).__name__}: {str(exc)[:600]}")
    report.extend(end_to_end_property(params["end_to_end"], tallies["endToEnd"], ledger))
    answers_seen, problems = hostile_answers(params["many_files"], ledger)
    report.extend(problems)
    report.extend(scan_secrets(ledger.texts))
    report.figures = {
        "inputsTried": sum(t["inputs"] for t in tallies.values()) + len(answers_seen),
        "eventProperty": dict(tallies["events"]), "batchProperty": dict(tallies["batches"]),
        "answerProperty": dict(tallies["answers"]), "endToEnd": dict(tallies["endToEnd"]),
        "hostileMpsAnswers": answers_seen, "manyFiles": params["many_files"], **ledger.figures(),
    }
    report.lost = {"unhandledExceptions": sum("property" in p or "raised" in p for p in report.problems),
                   "misclassified": sum(p.startswith("hostile answer") for p in report.problems)}
    return report
