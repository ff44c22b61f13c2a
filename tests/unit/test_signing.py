"""The signer reproduces the published vectors of mps.md §4 (and the MPS ones computed there)."""

from __future__ import annotations

from iproduction import signing
from iproduction.credentials import Credentials

V2_DOC_PARAMS = {
    "AccessKeyId": "testid", "Action": "DescribeDedicatedHosts", "Format": "JSON", "RegionId": "cn-beijing",
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
    "SignatureVersion": "1.0", "Timestamp": "2023-03-13T08:34:30Z", "Version": "2014-05-26",
}
MPS_V2_PARAMS = {
    "AccessKeyId": "testid", "Action": "QueryIProductionJob", "Format": "JSON",
    "JobId": "88c6ca184c0e432bbf5b665e2a150000", "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
    "Timestamp": "2024-01-01T00:00:00Z", "Version": "2014-06-18",
}


def test_v2_published_doc_vector() -> None:
    assert signing.canonical_query(V2_DOC_PARAMS) == (
        "AccessKeyId=testid&Action=DescribeDedicatedHosts&Format=JSON&RegionId=cn-beijing&SignatureMethod=HMAC-SHA1"
        "&SignatureNonce=edb2b34af0af9a6d14deaf7c1a5315eb&SignatureVersion=1.0&Timestamp=2023-03-13T08%3A34%3A30Z"
        "&Version=2014-05-26")
    assert signing.v2_signature(V2_DOC_PARAMS, "GET", "testsecret") == "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
    assert signing.v2_signature(V2_DOC_PARAMS, "POST", "testsecret") == "ZvQ9xGiFnquSJRvj+WE6kdSpTwU="


def test_v2_library_unit_vector() -> None:
    assert signing.v2_signature({"query": "test", "body": "test"}, "GET", "secret") == "XlUyV4sXjOuX5FnjUz9IF9tm5rU="


def test_v2_mps_vectors() -> None:
    assert signing.v2_signature(MPS_V2_PARAMS, "GET", "testsecret") == "KGRmaIVQ6P1Z08Dt3GvdlYAtj+E="
    assert signing.v2_signature(MPS_V2_PARAMS, "POST", "testsecret") == "y3CUnHB6N8kKvKUoC7Yzu3ZJHfc="
    assert signing.v2_string_to_sign(MPS_V2_PARAMS, "POST") == (
        "POST&%2F&AccessKeyId%3Dtestid%26Action%3DQueryIProductionJob%26Format%3DJSON%26JobId%3D"
        "88c6ca184c0e432bbf5b665e2a150000%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D"
        "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T00%253A00%253A00Z"
        "%26Version%3D2014-06-18")


def test_v2_encoding_stress_vector_with_sts_token() -> None:
    creds = Credentials("testid", "testsecret", "CAIS-test/token+=")
    query = signing.v2_query("SubmitIProductionJob", "2014-06-18", {
        "FunctionName": "ImageCartoonize",
        "Input": "oss://example-bucket.oss-cn-shanghai.aliyuncs.com/in/photo 1.jpg",
        "Output": "oss://example-bucket.oss-cn-shanghai.aliyuncs.com/iproduction/{source}-{timestamp}-{sequenceId}.jpg",
        "JobParams": '{"Model":"3d_cartoon"}', "UserData": "user-data~*+",
    }, creds, timestamp="2024-01-01T00:00:00Z", nonce="nonce-0001")
    assert query["SecurityToken"] == "CAIS-test/token+="
    assert query["Signature"] == "MNtuO5OkI+nqtKwUBSWdMutF82s="
    cqs = signing.canonical_query({k: v for k, v in query.items() if k != "Signature"})
    assert "Input=oss%3A%2F%2Fexample-bucket.oss-cn-shanghai.aliyuncs.com%2Fin%2Fphoto%201.jpg" in cqs
    assert "UserData=user-data~%2A%2B" in cqs
    assert "SecurityToken=CAIS-test%2Ftoken%2B%3D" in cqs


def test_v3_published_doc_vector() -> None:
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances", "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": signing.EMPTY_SHA256,
    }
    query = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
    request, _ = signing.v3_canonical_request("POST", "/", query, headers, signing.EMPTY_SHA256)
    assert request == (
        "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
        "host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n"
        f"x-acs-content-sha256:{signing.EMPTY_SHA256}\nx-acs-date:2023-10-26T10:22:32Z\n"
        "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        f"{signing.EMPTY_SHA256}")
    assert signing.v3_authorization("POST", "/", query, headers, signing.EMPTY_SHA256, "YourAccessKeyId",
                                    "YourAccessKeySecret") == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")


def test_v3_mps_query_vector() -> None:
    headers = signing.v3_headers("QueryIProductionJob", "2014-06-18", "mts.cn-shanghai.aliyuncs.com",
                                 {"JobId": "88c6ca184c0e432bbf5b665e2a150000"}, Credentials("testid", "testsecret"),
                                 date="2024-01-01T00:00:00Z", nonce="3156853299f313e23d1673dc12e1703d")
    assert headers["Authorization"].endswith(
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=774c8962360715008f1ddd43faa966989c9540ef7bf6b3a0dcede493e9d8ef18")


def test_v3_mps_submit_vector_with_sts_token() -> None:
    query = {
        "FunctionName": "ImageCartoonize",
        "Input": "oss://example-bucket.oss-cn-shanghai.aliyuncs.com/in/photo 1.jpg",
        "Output": "oss://example-bucket.oss-cn-shanghai.aliyuncs.com/iproduction/{source}-{timestamp}-{sequenceId}.jpg",
        "JobParams": '{"Model":"3d_cartoon"}',
    }
    headers = signing.v3_headers("SubmitIProductionJob", "2014-06-18", "mts.cn-shanghai.aliyuncs.com", query,
                                 Credentials("testid", "testsecret", "CAIS-test/token+="),
                                 date="2024-01-01T00:00:00Z", nonce="nonce-0001")
    assert headers["Authorization"] == (
        "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-accesskey-id;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,"
        "Signature=ffccc203a2bf9a6d0e86b694605a38969b2c3b86414d4c6780a92308b95a71eb")


def test_fresh_nonce_and_timestamp_every_call() -> None:
    creds = Credentials("testid", "testsecret")
    first = signing.v3_headers("QueryIProductionJob", "2014-06-18", "h", {}, creds)
    second = signing.v3_headers("QueryIProductionJob", "2014-06-18", "h", {}, creds)
    assert first["x-acs-signature-nonce"] != second["x-acs-signature-nonce"]
    assert first["Authorization"] != second["Authorization"]
