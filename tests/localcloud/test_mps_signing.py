"""The reference signer (localcloud/mps/client.py) against the vectors of mps.md §4, the official
``alibabacloud_openapi_util`` functions, and the emulator's server-side verifier."""

from __future__ import annotations

import pytest
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from hypothesis import given, settings
from hypothesis import strategies as st
from Tea.request import TeaRequest

from localcloud.mps import errors
from localcloud.mps.auth import Credentials, NonceCache, Received, verify
from localcloud.mps.client import (
    EMPTY_SHA256,
    canonical_query,
    sign_v2,
    sign_v3,
    utc_timestamp,
    v2_signature,
    v2_string_to_sign,
    v3_authorization,
    v3_canonical_request,
)

DOC_V2 = {
    "AccessKeyId": "testid", "Action": "DescribeDedicatedHosts", "Format": "JSON", "RegionId": "cn-beijing",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
    "SignatureVersion": "1.0", "Timestamp": "2023-03-13T08:34:30Z", "Version": "2014-05-26",
}
MPS_V2 = {
    "AccessKeyId": "testid", "Action": "QueryIProductionJob", "Format": "JSON",
    "JobId": "88c6ca184c0e432bbf5b665e2a150000", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
    "Timestamp": "2024-01-01T00:00:00Z", "Version": "2014-06-18",
}
INPUT = "oss://example-bucket.oss-cn-shanghai.aliyuncs.com/in/photo 1.jpg"
OUTPUT = "oss://example-bucket.oss-cn-shanghai.aliyuncs.com/iproduction/{source}-{timestamp}-{sequenceId}.jpg"
STRESS_V2 = {
    **{k: v for k, v in MPS_V2.items() if k != "JobId"},
    "Action": "SubmitIProductionJob", "FunctionName": "ImageCartoonize", "Input": INPUT, "Output": OUTPUT,
    "JobParams": '{"Model":"3d_cartoon"}', "UserData": "user-data~*+", "SecurityToken": "CAIS-test/token+=",
    "SignatureNonce": "nonce-0001",
}
DOC_V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances", "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": EMPTY_SHA256,
}
DOC_V3_QUERY = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
SUBMIT_V3_QUERY = {"FunctionName": "ImageCartoonize", "Input": INPUT, "Output": OUTPUT,
                   "JobParams": '{"Model":"3d_cartoon"}'}


@pytest.mark.parametrize(("method", "params", "expected"), [
    ("GET", DOC_V2, "9NaGiOspFP5UPcwX8Iwt2YJXXuk="),
    ("POST", DOC_V2, "ZvQ9xGiFnquSJRvj+WE6kdSpTwU="),
    ("GET", MPS_V2, "KGRmaIVQ6P1Z08Dt3GvdlYAtj+E="),
    ("POST", MPS_V2, "y3CUnHB6N8kKvKUoC7Yzu3ZJHfc="),
    ("POST", STRESS_V2, "MNtuO5OkI+nqtKwUBSWdMutF82s="),
])
def test_v2_vectors(method: str, params: dict[str, str], expected: str) -> None:
    assert v2_signature(method, params, "testsecret") == expected
    assert OpenApiUtil.get_rpcsignature(params, method, "testsecret") == expected


def test_v2_canonical_forms() -> None:
    assert canonical_query(DOC_V2) == (
        "AccessKeyId=testid&Action=DescribeDedicatedHosts&Format=JSON&RegionId=cn-beijing"
        "&SignatureMethod=HMAC-SHA1&SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb&SignatureVersion=1.0"
        "&Timestamp=2023-03-13T08%3A34%3A30Z&Version=2014-05-26")
    assert v2_string_to_sign("POST", MPS_V2).endswith("Timestamp%3D2024-01-01T00%253A00%253A00Z%26Version%3D2014-06-18")
    stress = canonical_query(STRESS_V2)
    assert "Input=oss%3A%2F%2Fexample-bucket.oss-cn-shanghai.aliyuncs.com%2Fin%2Fphoto%201.jpg" in stress
    assert "%2F%7Bsource%7D-%7Btimestamp%7D-%7BsequenceId%7D.jpg" in stress
    assert "UserData=user-data~%2A%2B" in stress and "SecurityToken=CAIS-test%2Ftoken%2B%3D" in stress
    assert canonical_query({"test": " ~/*-+"}) == "test=%20~%2F%2A-%2B"
    assert OpenApiUtil.get_rpcsignature({"query": "test", "body": "test"}, "GET", "secret") == \
        v2_signature("GET", {"query": "test", "body": "test"}, "secret") == "XlUyV4sXjOuX5FnjUz9IF9tm5rU="


def test_sign_v2_adds_common_parameters() -> None:
    signed = sign_v2("POST", {"JobId": "88c6ca184c0e432bbf5b665e2a150000"}, "testid", "testsecret",
                     action="QueryIProductionJob", timestamp="2024-01-01T00:00:00Z",
                     nonce="3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf")
    assert signed["Signature"] == "y3CUnHB6N8kKvKUoC7Yzu3ZJHfc="
    with_token = sign_v2("POST", {}, "testid", "testsecret", action="X", security_token="tok")
    assert with_token["SecurityToken"] == "tok"


def _tea_request(query: dict[str, str], headers: dict[str, str]) -> TeaRequest:
    request = TeaRequest()
    request.method, request.pathname, request.query, request.headers = "POST", "/", query, headers
    return request


def test_v3_doc_vector() -> None:
    canonical, signed = v3_canonical_request("POST", "/", DOC_V3_QUERY, DOC_V3_HEADERS, EMPTY_SHA256)
    assert signed == "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    import hashlib

    assert hashlib.sha256(canonical.encode()).hexdigest() == \
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    expected = ("ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
                "x-acs-date;x-acs-signature-nonce;x-acs-version,"
                "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
    ours = v3_authorization("POST", "/", DOC_V3_QUERY, DOC_V3_HEADERS, EMPTY_SHA256, "YourAccessKeyId",
                            "YourAccessKeySecret")
    official = OpenApiUtil.get_authorization(_tea_request(DOC_V3_QUERY, DOC_V3_HEADERS), "ACS3-HMAC-SHA256",
                                             EMPTY_SHA256, "YourAccessKeyId", "YourAccessKeySecret")
    assert ours == official == expected


@pytest.mark.parametrize(("action", "query", "nonce", "token", "signature"), [
    ("QueryIProductionJob", {"JobId": "88c6ca184c0e432bbf5b665e2a150000"}, "3156853299f313e23d1673dc12e1703d",
     None, "774c8962360715008f1ddd43faa966989c9540ef7bf6b3a0dcede493e9d8ef18"),
    ("SubmitIProductionJob", SUBMIT_V3_QUERY, "nonce-0001", "CAIS-test/token+=",
     "ffccc203a2bf9a6d0e86b694605a38969b2c3b86414d4c6780a92308b95a71eb"),
])
def test_v3_mps_vectors(action: str, query: dict[str, str], nonce: str, token: str | None, signature: str) -> None:
    headers = sign_v3("POST", "mts.cn-shanghai.aliyuncs.com", action, query, "testid", "testsecret",
                      security_token=token, date="2024-01-01T00:00:00Z", nonce=nonce)
    assert headers["Authorization"].endswith(f"Signature={signature}")
    if token:
        assert "x-acs-security-token" in headers["Authorization"]
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    official = OpenApiUtil.get_authorization(_tea_request(query, unsigned), "ACS3-HMAC-SHA256", EMPTY_SHA256,
                                             "testid", "testsecret")
    assert official == headers["Authorization"]


# -- the verifier accepts what the signer produces, and nothing else -----------------------------
CREDS = Credentials("testid", "testsecret", v2_window=10**10, v3_window=10**10)
PARAM_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
PARAMS = st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,12}", fullmatch=True), PARAM_TEXT, max_size=5)


def _received_v3(query: dict[str, str], headers: dict[str, str]) -> Received:
    from urllib.parse import parse_qsl

    raw = parse_qsl(canonical_query(query), keep_blank_values=True)
    return Received("POST", "/", raw, {k.lower(): v for k, v in headers.items()}, b"", [])


@settings(max_examples=60, deadline=None)
@given(params=PARAMS)
def test_verifier_accepts_signed_and_refuses_tampered(params: dict[str, str]) -> None:
    params = {k: v for k, v in params.items() if k not in ("Signature", "Action", "Version", "AccessKeyId")}
    headers = sign_v3("POST", "127.0.0.1:9001", "QueryIProductionJob", params, "testid", "testsecret")
    verified = verify(_received_v3(params, headers), CREDS, NonceCache())
    assert (verified.signature, verified.action) == ("v3", "QueryIProductionJob")
    tampered = {**params, "Extra": "1"}
    with pytest.raises(errors.ApiError) as refused:
        verify(_received_v3(tampered, headers), CREDS, NonceCache())
    assert refused.value.code == "SignatureDoesNotMatch"

    from urllib.parse import parse_qsl

    signed = sign_v2("GET", params, "testid", "testsecret", action="QueryIProductionJob")
    received = Received("GET", "/", parse_qsl(canonical_query(signed), keep_blank_values=True), {}, b"", [])
    assert verify(received, CREDS, NonceCache()).signature == "v2"


def test_utc_timestamp_format() -> None:
    assert len(utc_timestamp()) == 20 and utc_timestamp().endswith("Z")
