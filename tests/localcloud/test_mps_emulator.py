"""The MPS emulator over the wire: httpx + the reference signer, and the official SDK."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_mts20140618 import models as mts_models
from alibabacloud_mts20140618.client import Client as MtsClient
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_tea_openapi.models import Config

from localcloud.mps import MpsAdmin, MpsClient, MpsEmulator
from localcloud.mps.client import canonical_query, sign_v2, sign_v3, utc_timestamp
from localcloud.mps.stats import max_in_window

REPO = Path(__file__).resolve().parents[2]
JOB = "88c6ca184c0e432bbf5b665e2a150000"
TEN_FIELDS = {"FunctionName", "Input", "JobId", "JobParams", "Output", "PipelineId", "RequestId", "Result", "State",
              "UserData"}
ERROR_FIELDS = {"RequestId", "HostId", "Code", "Message", "Recommend"}
DOC_RESULT = ('{"Code":"Success","Data":"{\\"result\\":[{\\"file\\":\\"iproduction/test-result.jpg\\"},'
              '{\\"file\\":\\"iproduction/test-origin.jpg\\"}]}","Message":"Successful."}')
SEED = json.loads((REPO / "localcloud" / "seed.json").read_text())


def client(emulator: MpsEmulator, **options: Any) -> MpsClient:
    return MpsClient(emulator.url, emulator.access_key_id, emulator.access_key_secret, **options)


def ago(**delta: float) -> str:
    return utc_timestamp(datetime.now(timezone.utc) - timedelta(**delta))


@pytest.fixture
def seeded(mps_emulator: MpsEmulator) -> MpsEmulator:
    mps_emulator.seed(SEED)
    return mps_emulator


# -- answers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("signature", ["v3", "v2"])
@pytest.mark.parametrize("state", ["Queuing", "Analysing", "Success", "Fail"])
def test_query_each_state(seeded: MpsEmulator, state: str, signature: str) -> None:
    if state == "Fail":
        seeded.put_job(JOB, **{k: v for k, v in SEED["mps"]["jobs"][JOB].items() if k != "Result"})
    seeded.set_state(JOB, state)
    with client(seeded, signature=signature) as mps:
        response = mps.request("QueryIProductionJob", {"JobId": JOB})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == TEN_FIELDS
    assert all(isinstance(value, str) for value in body.values())
    assert body["State"] == state and body["JobId"] == JOB and body["UserData"] == "null"
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    if state == "Success":
        assert body["Result"] == DOC_RESULT
        data = json.loads(json.loads(body["Result"])["Data"])
        files = [item["file"] for item in data["result"]]
        assert files == ["iproduction/test-result.jpg", "iproduction/test-origin.jpg"]
    elif state == "Fail":  # no Result seeded: a default failure Result
        assert json.loads(body["Result"])["Code"] != "Success"
    else:
        assert body["Result"] == ""


def test_result_encodings(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    mps_admin.put_job("a" * 32, State="Success", FunctionName="ImageCartoonize", Result=DOC_RESULT, UserData=None)
    with client(seeded) as mps:
        assert mps.query_job("a" * 32)["Result"] == DOC_RESULT  # a string is kept verbatim
        assert mps.query_job("a" * 32)["UserData"] is None
        mps_admin.settings(result_as_object=True)
        as_object = mps.query_job("a" * 32)["Result"]
        assert as_object["Data"]["result"][0] == {"file": "iproduction/test-result.jpg"}
        mps_admin.settings(result_as_object=False, pending_result="seeded")
        assert mps.query_job(JOB)["State"] == "Analysing" and mps.query_job(JOB)["Result"] == DOC_RESULT


def test_unknown_and_foreign_jobs(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    mps_admin.put_job("b" * 32, Type="Transcode", State="Success")
    with client(seeded) as mps:
        for job_id in ("b" * 32, "c" * 32):
            body = mps.query_job(job_id)
            assert set(body) == {"RequestId", "JobId"} and body["JobId"] == job_id
        mps_admin.settings(unknown_job="error")
        response = mps.request("QueryIProductionJob", {"JobId": "c" * 32})
        assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")
        response = mps.request("QueryIProductionJob", {})
        assert response.json()["Code"] == "MissingParameter" and "JobId" in response.json()["Message"]


def test_submit_then_query_then_finish(mps_emulator: MpsEmulator, mps_admin: MpsAdmin) -> None:
    with client(mps_emulator) as mps:
        submitted = mps.submit_job("ImageCartoonize", Input="oss://example-bucket/in.jpg", PipelineId="p" * 32,
                                   JobParams='{"Model":"gif"}')
        assert set(submitted) == {"JobId", "RequestId", "Result"}
        job_id = submitted["JobId"]
        assert len(job_id) == 32 and int(job_id, 16) >= 0
        assert json.loads(submitted["Result"])["Type"] == "IProduction"
        body = mps.query_job(job_id)
        assert (body["State"], body["Input"], body["JobParams"]) == ("Queuing", "oss://example-bucket/in.jpg",
                                                                     '{"Model":"gif"}')
        mps_admin.set_state(job_id, "Analysing")
        assert mps.query_job(job_id)["State"] == "Analysing"
        mps_admin.set_state(job_id, "Success", {"Code": "Success", "Message": "Successful.",
                                                "Data": {"result": [{"file": "out/x.jpg"}]}})
        done = mps.query_job(job_id)
        assert json.loads(json.loads(done["Result"])["Data"]) == {"result": [{"file": "out/x.jpg"}]}
        assert mps.request("SubmitIProductionJob", {}).json()["Code"] == "MissingParameter"
        assert mps.request("SubmitIProductionJob", {"FunctionName": "VideoCensor"}).json()["Code"] == \
            "InvalidParameter"


def test_admin_routes(mps_emulator: MpsEmulator, mps_admin: MpsAdmin) -> None:
    assert mps_admin.seed(SEED["mps"]["jobs"]) == 1
    assert mps_admin.get_job(JOB)["State"] == "Analysing"
    assert mps_admin.get_job("f" * 32) is None
    assert list(mps_admin.jobs()) == [JOB]
    assert mps_admin.set_state(JOB, "Success")["State"] == "Success"
    assert mps_admin.delete_job(JOB) and mps_admin.jobs() == {}
    assert mps_admin.seed(SEED) == 1 and mps_admin.clear_jobs() == 1


def test_patch_changes_fields_and_put_replaces_the_job(seeded: MpsEmulator) -> None:
    """What localcloud/mps/README.md tells a user who wants the seeded job finished."""
    with httpx.Client(base_url=seeded.url) as admin:
        patched = admin.patch(f"/_emulator/jobs/{JOB}", json={"State": "Success"})
        assert patched.status_code == 200
        assert patched.json()["job"] == {**SEED["mps"]["jobs"][JOB], "JobId": JOB, "State": "Success"}
        assert admin.patch(f"/_emulator/jobs/{'f' * 32}", json={"State": "Success"}).status_code == 400
        replaced = admin.put(f"/_emulator/jobs/{JOB}", json={"State": "Success"}).json()["job"]
        assert "Output" not in replaced and "Result" not in replaced


# -- authentication ---------------------------------------------------------------------------
def test_wrong_secret_refused_without_echo(seeded: MpsEmulator) -> None:
    for signature in ("v3", "v2"):
        with client(seeded, signature=signature) as mps:
            response = mps.request("QueryIProductionJob", {"JobId": JOB}, secret="not-the-secret")
        assert response.status_code == 403
        body = response.json()
        assert set(body) == ERROR_FIELDS and body["Code"] == "SignatureDoesNotMatch"
        assert body["HostId"] == "mts.cn-hangzhou.aliyuncs.com"
        assert seeded.access_key_secret not in response.text
    # a client that leaks the secret into a parameter still never sees it echoed
    with client(seeded, signature="v2") as mps:
        leaked = mps.request("QueryIProductionJob", {"JobId": JOB, "Leak": seeded.access_key_secret},
                             secret="wrong")
    assert leaked.json()["Code"] == "SignatureDoesNotMatch" and seeded.access_key_secret not in leaked.text


def test_auth_errors(seeded: MpsEmulator) -> None:
    http = httpx.Client()
    assert http.post(seeded.url + "/?Action=QueryIProductionJob&Format=JSON").json()["Code"] == "MissingParameter"
    bad_auth = http.post(seeded.url + "/", headers={"Authorization": "ACS3-HMAC-SHA256 Credential=x"})
    assert bad_auth.json()["Code"] == "IncompleteSignature"
    with MpsClient(seeded.url, "LTAI-unknown", "whatever") as stranger:
        response = stranger.request("QueryIProductionJob", {"JobId": JOB})
    assert (response.status_code, response.json()["Code"]) == (404, "InvalidAccessKeyId.NotFound")
    # an x-acs-* header that is sent but not signed
    host = seeded.url.split("//")[1]
    headers = sign_v3("POST", host, "QueryIProductionJob", {"JobId": JOB}, seeded.access_key_id,
                      seeded.access_key_secret)
    response = http.post(f"{seeded.url}/?JobId={JOB}", headers={**headers, "x-acs-extra": "1"})
    assert response.json()["Code"] == "IncompleteSignature"
    # a body that does not match x-acs-content-sha256
    response = http.post(f"{seeded.url}/?JobId={JOB}", headers=headers, content=b"JobId=x")
    assert response.json()["Code"] == "SignatureDoesNotMatch"
    http.close()


@pytest.mark.parametrize("signature", ["v3", "v2"])
def test_replayed_nonce_and_timestamps(seeded: MpsEmulator, signature: str) -> None:
    with client(seeded, signature=signature) as mps:
        first = mps.request("QueryIProductionJob", {"JobId": JOB}, nonce="fixed-nonce-1")
        again = mps.request("QueryIProductionJob", {"JobId": JOB}, nonce="fixed-nonce-1")
        assert first.status_code == 200
        assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
        stale = mps.request("QueryIProductionJob", {"JobId": JOB}, timestamp=ago(minutes=32))
        assert stale.json()["Code"] == "InvalidTimeStamp.Expired"
        future = mps.request("QueryIProductionJob", {"JobId": JOB}, timestamp=ago(minutes=-32))
        assert future.json()["Code"] == "InvalidTimeStamp.Expired"
        twenty = mps.request("QueryIProductionJob", {"JobId": JOB}, timestamp=ago(minutes=20))
        # V2 Timestamps are valid 31 minutes (mps.md §4.2); V3 dates 15 minutes (POP gateway)
        assert twenty.status_code == (200 if signature == "v2" else 400)
        malformed = mps.request("QueryIProductionJob", {"JobId": JOB}, timestamp="2024-01-01 00:00:00")
        assert malformed.json()["Code"] == "IllegalTimestamp"


@pytest.mark.parametrize("signature", ["v3", "v2"])
def test_security_token(signature: str) -> None:
    token = "CAIS-local/token+=="
    with MpsEmulator(access_key_id="STS.local", access_key_secret="sts-secret", security_token=token) as emulator:
        emulator.seed(SEED)
        with MpsClient(emulator.url, "STS.local", "sts-secret", security_token=token, signature=signature) as mps:
            assert mps.query_job(JOB)["JobId"] == JOB
        with MpsClient(emulator.url, "STS.local", "sts-secret", signature=signature) as mps:
            missing = mps.request("QueryIProductionJob", {"JobId": JOB})
        assert (missing.status_code, missing.json()["Code"]) == (404, "InvalidAccessKeyId.NotFound")
        with MpsClient(emulator.url, "STS.local", "sts-secret", security_token="other", signature=signature) as mps:
            wrong = mps.request("QueryIProductionJob", {"JobId": JOB})
        assert wrong.json()["Code"] == "InvalidSecurityToken.MismatchWithAccessKey"
        assert token not in wrong.text and token not in missing.text


def test_transports_and_formats(seeded: MpsEmulator) -> None:
    with client(seeded) as mps:
        assert mps.request("QueryIProductionJob", {"JobId": JOB}, body=True).json()["JobId"] == JOB
        assert mps.request("QueryIProductionJob", {"JobId": JOB}, method="GET").json()["JobId"] == JOB
        unknown = mps.request("DescribeNothing", {})
        assert (unknown.status_code, unknown.json()["Code"]) == (404, "InvalidAction.NotFound")
    with client(seeded, signature="v2") as mps:
        assert mps.request("QueryIProductionJob", {"JobId": JOB}, body=True).json()["JobId"] == JOB
        assert mps.request("QueryIProductionJob", {"JobId": JOB}, method="GET").json()["JobId"] == JOB
    # V2 without Format answers XML (the documented default), errors too
    signed = sign_v2("POST", {"JobId": JOB}, seeded.access_key_id, seeded.access_key_secret,
                     action="QueryIProductionJob")
    del signed["Format"]
    signed.pop("Signature")
    from localcloud.mps.client import v2_signature

    signed["Signature"] = v2_signature("POST", signed, seeded.access_key_secret)
    xml = httpx.post(f"{seeded.url}/?{canonical_query(signed)}")
    assert xml.headers["content-type"].startswith("text/xml")
    assert xml.text.startswith('<?xml version="1.0" encoding="UTF-8"?><QueryIProductionJobResponse>')
    assert f"<JobId>{JOB}</JobId>" in xml.text
    signed["Version"] = "2017-01-01"
    error = httpx.post(f"{seeded.url}/?{canonical_query(signed)}")
    assert "<Code>SignatureDoesNotMatch</Code>" in error.text and "<Error>" in error.text


# -- throttling, stats, faults ----------------------------------------------------------------
def test_qps_throttling_and_stats(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    mps_admin.settings(qps=5, retry_after=2000)
    with client(seeded) as mps:
        answers = [mps.request("QueryIProductionJob", {"JobId": JOB}) for _ in range(12)]
        throttled = [r for r in answers if r.status_code != 200]
        assert sum(r.status_code == 200 for r in answers) == 5 and len(throttled) == 7
        assert all(r.json()["Code"] == "Throttling" for r in throttled)
        assert throttled[0].json()["Message"] == "Request was denied due to request throttling."
        assert throttled[0].headers["x-acs-retry-after"] == "2000"
        stats = mps_admin.stats()
        assert stats["throttled"] == 7 and stats["accepted"] == {"QueryIProductionJob": 5}
        assert stats["max_accepted_per_second"] <= 5 and stats["max_calls_per_second"] == 12
        time.sleep(1.05)
        assert mps.request("QueryIProductionJob", {"JobId": JOB}).status_code == 200
    mps_admin.reset_stats()
    assert mps_admin.stats()["total"] == 0


def test_the_qps_cap_is_per_api_for_every_caller_together(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    """MPS limits each API to 100 QPS per account (all its RAM users together): two callers share
    QueryIProductionJob's cap, and SubmitIProductionJob calls do not use it up."""
    mps_admin.settings(qps=3)
    with client(seeded) as first, client(seeded) as second:
        submits = [first.request("SubmitIProductionJob", {"FunctionName": "ImageCartoonize"}) for _ in range(3)]
        assert [r.status_code for r in submits] == [200] * 3
        queries = [mps.request("QueryIProductionJob", {"JobId": JOB}) for mps in (first, second, first, second)]
        assert [r.status_code for r in queries] == [200, 200, 200, 400]
        assert queries[3].json()["Code"] == "Throttling"
    stats = mps_admin.stats()
    assert stats["accepted"] == {"SubmitIProductionJob": 3, "QueryIProductionJob": 3}
    assert stats["throttled_by_action"] == {"QueryIProductionJob": 1}


def test_max_in_window() -> None:
    assert max_in_window([]) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.2, 3.0]) == 4
    assert max_in_window([0.0, 1.0, 2.0]) == 1


def test_faults_and_log(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    mps_admin.faults({"op": "QueryIProductionJob", "sequence": ["503", "500", "throttle_user", "throttle", None,
                                                                "reset"]})
    mps_admin.settings(retry_after=1000)
    with client(seeded) as mps:
        got = [mps.request("QueryIProductionJob", {"JobId": JOB}) for _ in range(5)]
        assert [(r.status_code, r.json().get("Code")) for r in got] == [
            (503, "ServiceUnavailable"), (500, "InternalError"), (400, "Throttling.User"), (400, "Throttling"),
            (200, None)]
        assert got[2].headers["x-acs-retry-after"] == "1000"
        with pytest.raises(httpx.TransportError):
            mps.request("QueryIProductionJob", {"JobId": JOB})
        assert mps.request("QueryIProductionJob", {"JobId": JOB}).status_code == 200
    log = [entry for entry in mps_admin.log() if entry["op"] != "admin"]
    assert [entry.get("fault") for entry in log] == ["503", "500", "throttle_user", "throttle", None, "reset", None]
    assert log[0]["code"] == "ServiceUnavailable" and log[0]["status"] == 503
    assert all(entry["job_id"] == JOB and entry["signature"] == "v3" for entry in log)
    assert mps_admin.stats()["throttled"] == 2


def test_latency_knob(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    """``latency`` delays every answer by at least that much (a correctness bound, not a speed test)."""
    mps_admin.knobs(latency=0.2)
    assert mps_admin.knobs()["latency"] == 0.2
    with client(seeded) as mps:
        started = time.monotonic()
        assert mps.query_job(JOB)["JobId"] == JOB
        assert time.monotonic() - started >= 0.2
    assert seeded.log.entries()[-1]["duration"] >= 0.2
    with MpsEmulator(latency=0.2) as slow, client(slow) as mps:
        started = time.monotonic()
        assert mps.request("QueryIProductionJob", {"JobId": JOB}).status_code == 200
        assert time.monotonic() - started >= 0.2


def test_queueing_profile(mps_emulator: MpsEmulator) -> None:
    """Profile ``queueing``: the latency is a wait before the work (a ``slow`` fault stands for 0.3 s
    of work), so they add up, where the default profile does the work within the latency."""
    mps_emulator.seed(SEED)
    for profile, low, high in (("arrival", 0.3, 0.55), ("queueing", 0.6, 5)):
        mps_emulator.knobs.configure({"latency": 0.3, "profile": profile, "faults": [
            {"op": "QueryIProductionJob", "kind": "slow", "seconds": 0.3, "times": 1}]})
        with client(mps_emulator) as mps:
            started = time.monotonic()
            assert mps.query_job(JOB)["JobId"] == JOB
            assert low <= time.monotonic() - started < high, profile
    with pytest.raises(ValueError, match="unknown profile"):
        mps_emulator.knobs.configure({"profile": "fifo"})


def test_slow_fault_past_the_client_timeout(seeded: MpsEmulator, mps_admin: MpsAdmin) -> None:
    """A ``slow`` answer held back longer than the client's read timeout makes httpx time out; held back
    less, it is the normal answer, late; the next call is not slowed."""
    mps_admin.faults({"op": "QueryIProductionJob", "sequence": ["slow", "slow"], "seconds": 0.6})
    with client(seeded, timeout=0.2) as mps, pytest.raises(httpx.ReadTimeout):
        mps.request("QueryIProductionJob", {"JobId": JOB})
    with client(seeded, timeout=5) as mps:
        started = time.monotonic()
        assert mps.query_job(JOB)["JobId"] == JOB
        assert time.monotonic() - started >= 0.6
        assert mps.query_job(JOB)["JobId"] == JOB
    assert [entry.get("fault") for entry in mps_admin.log() if entry["op"] != "admin"] == ["slow", "slow", None]
    assert mps_admin.knobs()["injected"] == {"slow": 2}


# -- the official SDK -------------------------------------------------------------------------
def sdk(emulator: MpsEmulator, secret: str | None = None, **config: Any) -> MtsClient:
    return MtsClient(Config(access_key_id=emulator.access_key_id,
                            access_key_secret=secret or emulator.access_key_secret,
                            endpoint=emulator.url.split("//")[1], protocol="http", region_id="cn-hangzhou",
                            **config))


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_official_sdk(seeded: MpsEmulator, algorithm: str | None) -> None:
    seeded.set_state(JOB, "Success")
    api = sdk(seeded, signature_algorithm=algorithm)
    body = api.query_iproduction_job(mts_models.QueryIProductionJobRequest(job_id=JOB)).body
    assert (body.job_id, body.state, body.function_name, body.user_data) == (JOB, "Success", "ImageCartoonize",
                                                                            "null")
    assert body.result == DOC_RESULT and body.request_id
    submitted = api.submit_iproduction_job(mts_models.SubmitIProductionJobRequest(
        function_name="ImageCartoonize", input="oss://example-bucket/in 1.jpg", job_params='{"Model":"gif"}')).body
    assert seeded.get_job(submitted.job_id)["Input"] == "oss://example-bucket/in 1.jpg"
    with pytest.raises(ClientException) as refused:
        sdk(seeded, secret="wrong", signature_algorithm=algorithm).query_iproduction_job(
            mts_models.QueryIProductionJobRequest(job_id=JOB))
    assert refused.value.code == "SignatureDoesNotMatch"
    assert [e["signature"] for e in seeded.log.entries()] == ["v2" if algorithm else "v3"] * 3


def test_official_sdk_sts_and_throttling() -> None:
    with MpsEmulator(access_key_id="STS.sdk", access_key_secret="s", security_token="tok/+=", qps=1,
                     retry_after=3000) as emulator:
        emulator.seed(SEED)
        api = sdk(emulator, security_token="tok/+=")
        assert api.query_iproduction_job(mts_models.QueryIProductionJobRequest(job_id=JOB)).body.job_id == JOB
        with pytest.raises(ThrottlingException) as throttled:
            api.query_iproduction_job(mts_models.QueryIProductionJobRequest(job_id=JOB))
        assert throttled.value.code == "Throttling" and throttled.value.retry_after == 3000  # the SDK waits 3000 ms


# -- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_command_line(stop: signal.Signals) -> None:
    """Starts with one command, serves, and on SIGTERM or Ctrl-C exits 0 with its port closed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud.mps", "--port", "0", "--access-key-id", "cli-id",
         "--access-key-secret", "cli-secret", "--seed", str(REPO / "localcloud" / "seed.json"), "--qps", "50"],
        cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline(), process.stderr.readline()]
        assert lines[0].startswith("seeded 1 job(s)")
        url = lines[1].split()[3]
        port = int(url.rsplit(":", 1)[1])
        with MpsClient(url, "cli-id", "cli-secret") as mps:
            assert mps.query_job(JOB)["State"] == "Analysing"
        admin = MpsAdmin(url)
        assert admin.settings()["qps"] == 50
        admin.close()
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_emulator_bug_gives_internal_error(seeded: MpsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise KeyError("bug")

    monkeypatch.setitem(MpsEmulator.actions, "QueryIProductionJob", broken)
    with client(seeded) as mps:
        response = mps.request("QueryIProductionJob", {"JobId": JOB})
    assert (response.status_code, response.json()["Code"]) == (500, "InternalError")
    assert seeded.log.entries()[-1]["exception"] == "KeyError('bug')"
