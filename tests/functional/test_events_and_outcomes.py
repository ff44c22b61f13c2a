"""The function end to end on the emulators: every event format, every outcome, the manifest."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from localcloud.fc import FunctionInstance
from localcloud.fc.context import Credentials
from tests.functional.harness import (
    AK,
    DEST,
    EVENT_FORMATS,
    JOB,
    REGION,
    SECRET,
    SECRETS,
    SOURCE,
    TOKEN,
    Cloud,
    job_id,
    outcomes,
    queue_batch,
    timer,
    topic_json,
)

FILES = {"iproduction/test-result.jpg": b"cartoon" * 1000, "iproduction/test-origin.jpg": b"origin" * 700}


@pytest.mark.parametrize("fmt", sorted(EVENT_FORMATS))
def test_every_event_format_commits_the_job(cloud: Cloud, fmt: str) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    result = cloud.invoke(EVENT_FORMATS[fmt](JOB))
    assert result.ok, result.error
    assert len(result.result["jobs"]) == 1
    assert result.result["jobs"][0]["outcome"] == "committed"
    assert cloud.manifest(JOB) is not None


def test_manifest_is_exactly_the_contract_document(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    result = cloud.invoke(topic_json(JOB))
    assert result.result["jobs"] == [{
        "jobId": JOB, "outcome": "committed", "messageId": "2F5B3C082B923D4EAC694B76D928AAAA", "state": "Success",
        "files": 2, "bytes": sum(map(len, FILES.values())), "manifest": f"iproduction/{JOB}/manifest.json"}]
    manifest = cloud.manifest(JOB)
    mps_request = next(e for e in cloud.mps.log.entries() if e.get("op") == "QueryIProductionJob")
    dest = cloud.dest_objects(f"iproduction/{JOB}/")
    source = {o["key"]: o for o in cloud.oss_admin.objects(SOURCE)}
    assert list(manifest) == ["schema", "jobId", "state", "functionName", "pipelineId", "input", "output",
                              "jobParams", "userData", "result", "mpsRequestId", "committedAt", "destination",
                              "files", "fileCount", "totalBytes"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest.pop("committedAt"))
    assert manifest.pop("mpsRequestId") == mps_request["request_id"]
    assert manifest == {
        "schema": "iproduction-manifest/1", "jobId": JOB, "state": "Success", "functionName": "ImageCartoonize",
        "pipelineId": "39f8e0bc005e4f309379701645f40000",
        "input": f"oss://{SOURCE}.oss-cn-hangzhou.aliyuncs.com/input/example.mp4",
        "output": f"oss://{SOURCE}.oss-cn-hangzhou.aliyuncs.com/iproduction/{{source}}-{{timestamp}}-{{sequenceId}}.jpg",
        "jobParams": "{mode:\"gif\"}", "userData": "null", "result": {"code": "Success", "message": "Successful."},
        "destination": {"bucket": DEST, "prefix": f"iproduction/{JOB}/"},
        "files": [{
            "source": f"oss://{SOURCE}/{key}", "key": f"iproduction/{JOB}/{key.split('/')[-1]}", "size": len(data),
            "crc64": str(source[key]["crc64"]), "etag": dest[f"iproduction/{JOB}/{key.split('/')[-1]}"]["etag"],
            "contentType": "image/jpeg", "transfer": "server-side"} for key, data in FILES.items()],
        "fileCount": 2, "totalBytes": sum(map(len, FILES.values())),
    }
    for key, data in FILES.items():  # byte-identical, read back from the emulator
        assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/{key.split('/')[-1]}") == data
    put = [e for e in cloud.oss_log("PutObject") if e["key"].endswith("manifest.json")]
    assert len(put) == 1
    assert json.loads(cloud.oss_admin.read(DEST, f"iproduction/{JOB}/manifest.json"))["jobId"] == JOB


def test_already_committed_copies_and_writes_nothing_again(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    manifest = cloud.oss_admin.read(DEST, f"iproduction/{JOB}/manifest.json")
    writes = len(cloud.oss_log("CopyObject", "PutObject"))
    cloud.oss.knobs.configure({"latency": 0.2})  # the query (sent alongside the lookup) answers first
    second = cloud.invoke(queue_batch(JOB))
    assert second.result["jobs"][0]["outcome"] == "already-committed"
    assert "reason" not in second.result["jobs"][0]
    assert len(cloud.oss_log("CopyObject", "PutObject")) == writes
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/manifest.json") == manifest


def test_a_committed_job_costs_no_mps_call_and_the_query_waits_for_the_lookup(cloud: Cloud) -> None:
    """LOOKUP, then QUERY: a redelivered job whose manifest exists spends none of the account's MPS
    calls, however slow the lookup (contract: already-committed means MPS was not queried)."""
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"latency": 0.3})
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    listed = next(e for e in cloud.oss_log("ListObjectsV2"))
    query = next(e for e in cloud.mps.log.entries() if e.get("op") == "QueryIProductionJob")
    assert query["time"] - query["duration"] >= listed["time"]  # sent once the listing was answered
    assert cloud.mps_calls() == 1
    for event in (topic_json(JOB), timer(JOB)):
        assert outcomes(cloud.invoke(event)) == {JOB: "already-committed"}
    assert cloud.mps_calls() == 1


def test_under_the_rate_cap_an_already_committed_job_spends_no_query(cloud: Cloud) -> None:
    """A query that must wait for the cap anyway waits for the lookup too, and is not sent when the
    manifest is there: redeliveries cost no MPS call when calls are scarce."""
    cloud.seed_job_with_files(JOB, FILES)
    function = cloud.function(MPS_MAX_QPS="1")
    assert outcomes(function.invoke(topic_json(JOB))) == {JOB: "committed"}
    queries = cloud.mps_calls()
    second = function.invoke(queue_batch(JOB))  # within a second: the cap's one slot is still held
    assert second.result["jobs"][0]["outcome"] == "already-committed"
    assert cloud.mps_calls() == queries


def test_only_a_window_of_the_cap_looks_itself_up_ahead_of_its_query(cloud: Cloud) -> None:
    """Six jobs, two MPS calls a second: a job looks itself up only when its query could go within the
    window, so the first window's queries do not wait behind the lookups of jobs that must wait for the
    next window anyway."""
    jobs = [job_id(n) for n in range(1, 7)]
    for job in jobs:
        cloud.seed_job_with_files(job, FILES)
    cloud.oss.log.clear()
    cloud.mps.log.clear()
    assert outcomes(cloud.function(MPS_MAX_QPS="2").invoke(queue_batch(*jobs))) == dict.fromkeys(jobs, "committed")
    listed = sorted(e["time"] - e["duration"] for e in cloud.oss_log("ListObjectsV2"))
    queried = sorted(e["time"] - e["duration"] for e in cloud.mps.log.entries()
                     if e.get("op") == "QueryIProductionJob")
    assert len(listed) == len(queried) == 6
    assert listed[1] < queried[0] < listed[2]  # two lookups, then the third once a query has gone


def test_pending_then_committed_and_the_record_goes(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES, state="Analysing")
    first = cloud.invoke(timer(JOB)).result["jobs"][0]
    assert (first["outcome"], first["reason"], first["state"]) == ("pending", "MPS state is Analysing", "Analysing")
    record = json.loads(cloud.oss_admin.read(DEST, f"iproduction/_pending/{JOB}"))
    assert set(record) == {"jobId", "firstSeen", "lastChecked", "attempts", "lastState"}
    assert (record["jobId"], record["attempts"], record["lastState"]) == (JOB, 1, "Analysing")
    assert cloud.invoke(timer()).result["jobs"][0]["outcome"] == "pending"  # the sweep looks at it
    assert json.loads(cloud.oss_admin.read(DEST, f"iproduction/_pending/{JOB}"))["attempts"] == 2
    cloud.mps_admin.set_state(JOB, "Success")
    assert outcomes(cloud.invoke(timer())) == {JOB: "committed"}
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None
    assert cloud.invoke(timer()).result == {"jobs": []}


def test_unknown_state_is_pending_and_logged(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES, state="Processing")
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "pending"}
    assert any(line.get("event") == "job.unknown_state" and line["state"] == "Processing"
               for line in result.json_logs())


def test_job_failed_commits_a_failure_manifest(cloud: Cloud) -> None:
    cloud.job(JOB, [], state="Fail")
    entry = cloud.invoke(topic_json(JOB)).result["jobs"][0]
    assert entry["outcome"] == "job-failed"
    assert "the algorithm failed" in entry["reason"]
    manifest = cloud.manifest(JOB)
    assert (manifest["state"], manifest["files"], manifest["fileCount"], manifest["totalBytes"]) == ("Fail", [], 0, 0)
    assert manifest["result"] == {"code": "JobFailed", "message": "the algorithm failed"}
    assert cloud.invoke(topic_json(JOB)).result["jobs"][0]["outcome"] == "already-committed"


def test_rejected_inputs_never_call_mps(cloud: Cloud) -> None:
    result = cloud.invoke(b'{"TopicName": "t", "MessageId": "m-1", "Message": "hello topic"}')
    assert result.result == {"jobs": [{"outcome": "rejected", "messageId": "m-1", "reason": result.result["jobs"][0]
                                       ["reason"]}]}
    bad_id = cloud.invoke(timer("88c6ca184c0e432bbf5b665e2a15****")).result["jobs"][0]
    assert bad_id["outcome"] == "rejected"
    assert "invalid job id" in bad_id["reason"]
    assert cloud.mps_calls() == 0


def test_unknown_job_and_invalid_parameter_are_rejected(cloud: Cloud) -> None:
    assert outcomes(cloud.invoke(timer(job_id(1)))) == {job_id(1): "rejected"}
    cloud.mps_admin.settings(unknown_job="error")
    entry = cloud.invoke(timer(job_id(2))).result["jobs"][0]
    assert entry["outcome"] == "rejected"
    assert "InvalidParameter" in entry["reason"]
    assert cloud.dest_objects() == {}


def test_missing_result_file_is_rejected_without_a_manifest(cloud: Cloud) -> None:
    cloud.put_source("iproduction/test-result.jpg", b"x")
    cloud.job(JOB, ["iproduction/test-result.jpg", "iproduction/gone.jpg"])
    entry = cloud.invoke(topic_json(JOB)).result["jobs"][0]
    assert entry["outcome"] == "rejected"
    assert "missing from OSS" in entry["reason"]
    assert cloud.manifest(JOB) is None


def test_error_is_raised_after_every_other_job_and_a_retry_finishes(cloud: Cloud) -> None:
    good, bad = job_id(1), job_id(2)
    cloud.seed_job_with_files(good, {"a/one.jpg": b"1"})
    cloud.seed_job_with_files(bad, {"b/two.jpg": b"2"})
    cloud.oss.knobs.configure({"faults": [{"op": "HeadObject", "kind": "503", "after": 1}]})
    result = cloud.function(MPS_MAX_QPS="100").invoke(queue_batch(good, bad))
    assert result.error_type == "UnhandledInvocationError"
    assert result.exception_type == "InvocationFailedError"
    assert "1 of 2 job(s) ended in error" in result.error_message
    assert sorted(outcomes(result).values()) == ["committed", "error"]
    cloud.oss.knobs.configure({"faults": []})
    retry = cloud.invoke(queue_batch(good, bad))
    assert retry.ok
    assert sorted(outcomes(retry).values()) == ["already-committed", "committed"]


def manifest_puts(cloud: Cloud) -> list[dict]:
    return [e for e in cloud.oss_log("PutObject") if e["key"] == f"iproduction/{JOB}/manifest.json"]


def test_a_manifest_stored_whose_answer_is_lost_is_committed_by_that_invocation(cloud: Cloud) -> None:
    """OSS stores the manifest but the connection is cut before its answer, and every retry within the
    invocation fails: the invocation finds its own manifest and reports ``committed``, the trigger's next
    delivery ``already-committed`` (exactly one invocation reports ``committed``)."""
    cloud.seed_job_with_files(JOB, FILES)
    # Six 503s: the function's five retries, and aiohttp's own resend of a PUT cut on a reused connection.
    cloud.oss.knobs.configure({"faults": [{"op": "PutObject", "sequence": ["reset_after", *["503"] * 6]}]})
    result = cloud.invoke(topic_json(JOB))
    assert result.ok, result.error
    assert outcomes(result) == {JOB: "committed"}
    puts = manifest_puts(cloud)
    assert puts[0].get("unanswered") == 200 and puts[-1]["status"] == 409  # stored, then found to be ours
    [query] = [e for e in cloud.mps.log.entries() if e.get("op") == "QueryIProductionJob"]
    assert cloud.manifest(JOB)["mpsRequestId"] == query["request_id"]
    cloud.oss.knobs.configure({"faults": []})
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "already-committed"}


def test_a_manifest_put_still_on_its_way_past_the_retries_is_committed_by_that_invocation(cloud: Cloud) -> None:
    """The first manifest PUT is answered past the client timeout and stored only then (still on its
    way when the retries, all 503, are spent): the PUT once more stores it first and reports
    ``committed``; the late one then finds it there (409) and changes nothing."""
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"faults": [{"op": "PutObject", "sequence": ["slow", *["503"] * 5], "seconds": 5}]})
    result = cloud.invoke(topic_json(JOB), OSS_TIMEOUT_SECONDS="0.5")
    assert result.ok, result.error
    assert outcomes(result) == {JOB: "committed"}
    cloud.oss.knobs.configure({"faults": []})
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "already-committed"}


def test_throttling_and_5xx_are_retried_to_committed(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.mps.knobs.configure({"faults": [{"op": "QueryIProductionJob", "sequence": ["throttle", "503", "throttle"]}]})
    cloud.mps_admin.settings(retry_after=0)
    cloud.oss.knobs.configure({"faults": [{"op": "CopyObject", "sequence": ["503", "reset"]},
                                          {"op": "PutObject", "sequence": ["500"]}]})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert cloud.mps_calls() == 4
    done = next(line for line in result.json_logs() if line.get("event") == "invocation.done")
    # A reset on a kept-alive connection may be retried by aiohttp itself (it resends an idempotent
    # request once on a fresh connection when a reused one closes before answering), not counted here.
    network = done["retries"].pop("oss-network", 0)
    assert done["retries"] == {"mps-throttling": 2, "mps-5xx": 1, "oss-5xx": 2} and network <= 1


def test_wrong_credentials_are_an_error_not_retried_and_never_echoed(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    wrong = "wrong-" + SECRETS[1]
    result = cloud.invoke(topic_json(JOB), ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong)
    assert result.error_type == "UnhandledInvocationError"
    assert outcomes(result) == {JOB: "error"}
    assert [e["status"] for e in cloud.oss_log()] == [403]  # the listing, once: nothing goes after it
    everything = "\n".join([*result.logs, result.error_message, json.dumps(result.body)])
    for secret in (*SECRETS, wrong):
        assert secret not in everything


def test_mps_refusing_the_signature_is_an_error_not_retried(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.mps.knobs.configure({"settings": {"access_key_secret": "the-secret-mps-expects"}})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    assert cloud.mps_calls() == 1  # not retried within the invocation
    assert "SignatureDoesNotMatch" in result.error_message
    assert cloud.manifest(JOB) is None
    everything = "\n".join([*result.logs, result.error_message])
    assert not any(secret in everything for secret in (*SECRETS, "the-secret-mps-expects"))


def test_logs_are_json_lines_with_request_and_job_ids(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    result = cloud.function().invoke(topic_json(JOB), request_id="req-123")
    lines = result.json_logs()
    assert len(lines) == len([line for line in result.logs if line.strip()])
    outcome = next(line for line in lines if line["event"] == "job.outcome")
    assert (outcome["requestId"], outcome["jobId"], outcome["outcome"], outcome["files"]) == (
        "req-123", JOB, "committed", 2)
    assert {"bytes", "durationMs"} <= set(outcome)
    assert all(line["requestId"] == "req-123" for line in lines if line["event"] != "instance.initialized")
    assert not any(secret in line for line in result.logs for secret in SECRETS)


def test_v2_signature_setting(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    assert outcomes(cloud.invoke(topic_json(JOB), MPS_SIGNATURE_VERSION="v2")) == {JOB: "committed"}
    assert [e["signature"] for e in cloud.mps.log.entries() if e.get("op") == "QueryIProductionJob"] == ["v2"]


def test_result_and_data_as_objects_are_accepted(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.mps_admin.settings(result_as_object=True)
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert cloud.manifest(JOB)["fileCount"] == 2


def test_bad_configuration_fails_initialize_naming_the_variable(cloud: Cloud) -> None:
    result = cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="lots")
    assert result.error_type == "InitializationError"
    assert "COPY_CONCURRENCY" in result.error_message


def test_an_answer_cut_mid_body_is_retried(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES, state="Analysing")
    cloud.invoke(topic_json(JOB))  # leaves a pending record, read back with GetObject next time
    cloud.mps_admin.set_state(JOB, "Success")
    cloud.oss.knobs.configure({"faults": [{"op": "GetObject", "kind": "reset_body", "times": 1}]})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert cloud.oss.knobs.public()["injected"] == {"reset_body": 1}
    done = next(line for line in result.json_logs() if line.get("event") == "invocation.done")
    assert done["retries"] == {"oss-network": 1}
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None


def test_a_v2_signature_refusal_never_echoes_the_token_in_any_encoding(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.mps.knobs.configure({"settings": {"access_key_secret": "the-secret-mps-expects"}})
    result = cloud.invoke(topic_json(JOB), MPS_SIGNATURE_VERSION="v2")
    assert outcomes(result) == {JOB: "error"}
    everything = "\n".join([*result.logs, result.error_message])
    assert "SignatureDoesNotMatch" in everything
    for secret in SECRETS:
        for form in (secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")):
            assert form not in everything


def test_a_job_unfinished_past_the_max_age_expires(cloud: Cloud) -> None:
    cloud.job(JOB, [], state="Queuing")
    old = {"jobId": JOB, "firstSeen": "2026-01-01T00:00:00Z", "lastChecked": "2026-01-01T00:05:00Z",
           "attempts": 41, "lastState": "Queuing"}
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{JOB}", json.dumps(old), content_type="application/json")
    result = cloud.invoke(timer(), PENDING_MAX_AGE_SECONDS="3600")
    entry = result.result["jobs"][0]
    assert (entry["jobId"], entry["outcome"], entry["state"]) == (JOB, "expired", "Queuing")
    assert "PENDING_MAX_AGE_SECONDS=3600" in entry["reason"]
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None
    moved = json.loads(cloud.oss_admin.read(DEST, f"iproduction/_expired/{JOB}"))
    assert (moved["jobId"], moved["firstSeen"], moved["attempts"], moved["lastState"]) == (
        JOB, "2026-01-01T00:00:00Z", 42, "Queuing")
    assert any(line.get("event") == "job.outcome" and line["outcome"] == "expired" for line in result.json_logs())
    assert cloud.invoke(timer()).result == {"jobs": []}


@pytest.mark.parametrize("runtime", ["python3.10", "python3.12"])
def test_fc_runtimes_and_credential_sources(cloud: Cloud, runtime: str) -> None:
    """python3.12 has no context.credentials (env only); python3.10 has both (env first)."""
    cloud.seed_job_with_files(JOB, FILES)
    env = {k: v for k, v in cloud.env.items() if not k.startswith("ALIBABA_CLOUD_")}
    function = FunctionInstance(env=env, runtime=runtime, credentials=Credentials(AK, SECRET, TOKEN),
                                region=REGION, echo_logs=False, timeout=60)
    try:
        assert outcomes(function.invoke(topic_json(JOB))) == {JOB: "committed"}
    finally:
        function.close()


@pytest.mark.parametrize("result", ["", {"Code": "Success", "Message": "m"}, {"Code": "Success", "Data": ""},
                                    {"Code": "Success", "Data": json.dumps({"other": 1})}])
def test_a_success_without_a_result_list_waits_and_is_committed_once_the_files_are_listed(
        cloud: Cloud, result: object) -> None:
    """MPS does not promise Result is filled in when State turns Success: committing then would commit
    no files, for good (the next look would find the job already-committed)."""
    cloud.seed_job_with_files(JOB, FILES, result=result)
    first = cloud.invoke(topic_json(JOB))
    entry = first.result["jobs"][0]
    assert (entry["outcome"], entry["state"]) == ("pending", "Success")
    assert "no result list yet" in entry["reason"] or "no Data yet" in entry["reason"]
    assert any(line.get("event") == "job.result_not_ready" for line in first.json_logs())
    assert cloud.manifest(JOB) is None
    record = json.loads(cloud.oss_admin.read(DEST, f"iproduction/_pending/{JOB}"))
    assert record["lastState"] == "Success"
    cloud.job(JOB, list(FILES))  # MPS has filled the Result in
    assert outcomes(cloud.invoke(timer())) == {JOB: "committed"}  # the sweep looked again
    assert cloud.manifest(JOB)["fileCount"] == 2
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None


def test_an_empty_result_list_is_committed_with_no_files(cloud: Cloud) -> None:
    cloud.job(JOB, [])
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert cloud.manifest(JOB)["fileCount"] == 0


@pytest.mark.parametrize("state", [" Success ", "success", "Success\n"])
def test_a_state_that_needs_stripping_is_unknown_and_waits(cloud: Cloud, state: str) -> None:
    cloud.seed_job_with_files(JOB, FILES, state=state)
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "pending"} and cloud.manifest(JOB) is None
    assert any(line.get("event") == "job.unknown_state" for line in result.json_logs())


def test_a_result_file_named_manifest_json_at_any_depth_rejects_the_job(cloud: Cloud) -> None:
    files = {"out/a.jpg": b"a", "out/sub/manifest.json": b"{}"}
    cloud.seed_job_with_files(JOB, files)
    entry = cloud.invoke(topic_json(JOB)).result["jobs"][0]
    assert entry["outcome"] == "rejected" and "out/sub/manifest.json" in entry["reason"]
    assert cloud.dest_objects() == {}
    other = job_id(3)
    cloud.seed_job_with_files(other, {"out/a.jpg": b"a", "out/x-manifest.json": b"{}"})
    assert outcomes(cloud.invoke(topic_json(other))) == {other: "committed"}


def test_a_source_bucket_in_another_region_than_the_output_says_names_the_signing_region(cloud: Cloud) -> None:
    """The Output says cn-shanghai, the bucket is in cn-hangzhou: OSS refuses the V4 signature (its scope
    names the region). Still error (a refused signature), but the reason says what to check."""
    cloud.seed_job_with_files(JOB, FILES, region="cn-shanghai")
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    reason = next(line for line in result.json_logs() if line.get("event") == "job.outcome")["reason"]
    assert "SignatureDoesNotMatch" in reason
    assert f"signed for region cn-shanghai; bucket {SOURCE} may be in another region" in reason


def test_a_destination_in_another_region_than_dest_region_names_the_signing_region(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    result = cloud.invoke(topic_json(JOB), DEST_REGION="cn-beijing")
    reason = next(line for line in result.json_logs() if line.get("event") == "job.outcome")["reason"]
    assert outcomes(result) == {JOB: "error"}
    assert f"signed for region cn-beijing; bucket {DEST} may be in another region" in reason


@pytest.mark.parametrize("state", ["Analysing", "Success"])
def test_a_pending_record_under_an_upper_case_job_id_is_swept_and_cleaned(cloud: Cloud, state: str) -> None:
    cloud.seed_job_with_files(JOB, FILES, state=state)
    record = {"jobId": JOB.upper(), "firstSeen": "2026-11-25T12:00:00Z", "lastChecked": "2026-11-25T12:00:00Z",
              "attempts": 3, "lastState": "Analysing"}
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{JOB.upper()}", json.dumps(record),
                               content_type="application/json")
    swept = cloud.invoke(timer(), PENDING_MAX_AGE_SECONDS=str(10 * 365 * 86400))
    expected = "pending" if state == "Analysing" else "committed"
    assert outcomes(swept) == {JOB: expected}
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB.upper()}") is None
    kept = cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}")
    if state == "Analysing":  # moved to the key every other path uses, its history kept
        moved = json.loads(cloud.oss_admin.read(DEST, f"iproduction/_pending/{JOB}"))
        assert (moved["jobId"], moved["firstSeen"], moved["attempts"]) == (JOB, "2026-11-25T12:00:00Z", 4)
    else:
        assert kept is None
        assert cloud.invoke(timer()).result == {"jobs": []}
