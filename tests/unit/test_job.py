"""Job answers: double-encoded Result, the state machine, result files, output URLs."""

from __future__ import annotations

import json

import pytest

from iproduction.errors import RejectedError
from iproduction.job import (
    Action,
    decode_result,
    job_from_answer,
    next_action,
    parse_output,
    result_files,
    result_missing,
)
from iproduction.models import QueryJobAnswer

# mps.md §1.2, verbatim (the real API: Result and its Data are JSON strings).
REAL_ANSWER = r'''{
"FunctionName": "ImageCartoonize",
"Input": "oss://example-****.oss-cn-hangzhou.aliyuncs.com/example.mp4",
"RequestId": "D127C68E-F1A1-4CE5-A874-8FF724881A12",
"UserData": "null",
"State": "Success",
"Output": "oss://example-****.oss-cn-hangzhou.aliyuncs.com/iproduction/{source}-{timestamp}-{sequenceId}.srt",
"PipelineId": "39f8e0bc005e4f309379701645f4****",
"JobParams": "{mode:\"gif\"}",
"JobId": "88c6ca184c0e432bbf5b665e2a15****",
"Result": "{\"Code\":\"Success\",\"Data\":\"{\\\"result\\\":[{\\\"file\\\":\\\"iproduction/test-result.jpg\\\"},{\\\"file\\\":\\\"iproduction/test-origin.jpg\\\"}]}\",\"Message\":\"Successful.\"}"
}'''  # noqa: E501
# ../shared/seed/QueryIProductionJob.txt, verbatim (the doc page shows objects).
SEED_ANSWER = '''{
"FunctionName": "ImageCartoonize",
"Input": "oss://example-****.oss-cn-hangzhou.aliyuncs.com/example.mp4",
"RequestId": "D127C68E-F1A1-4CE5-A874-8FF724881A12",
"UserData": null,
"State": "Success",
"Output": "oss://example-****.oss-cn-hangzhou.aliyuncs.com/iproduction/{source}-{timestamp}-{sequenceId}.srt",
"PipelineId": "39f8e0bc005e4f309379701645f4****",
"JobParams": "{mode:\\"gif\\"}",
"JobId": "88c6ca184c0e432bbf5b665e2a15****",
"Result": {
"Code": "Success",
"Data": {
"result": [
{
"file": "iproduction/test-result.jpg"
},
{
"file": "iproduction/test-origin.jpg"
}
]
},
"Message": "Successful."
}
}'''
JOB_ID = "88c6ca184c0e432bbf5b665e2a15****"
FILES = ["iproduction/test-result.jpg", "iproduction/test-origin.jpg"]


@pytest.mark.parametrize("raw", [REAL_ANSWER, SEED_ANSWER])
def test_both_result_encodings(raw: str) -> None:
    job = job_from_answer(JOB_ID, QueryJobAnswer.model_validate(json.loads(raw)))
    assert job.action is Action.COPY
    assert (job.result.code, job.result.message) == ("Success", "Successful.")
    assert result_files(job.result) == FILES
    assert job.job_params == '{mode:"gif"}'
    assert job.request_id == "D127C68E-F1A1-4CE5-A874-8FF724881A12"


def test_user_data_kept_as_returned() -> None:
    assert job_from_answer(JOB_ID, QueryJobAnswer.model_validate(json.loads(REAL_ANSWER))).user_data == "null"
    assert job_from_answer(JOB_ID, QueryJobAnswer.model_validate(json.loads(SEED_ANSWER))).user_data is None


def test_state_machine() -> None:
    assert next_action("Success") is Action.COPY
    assert next_action("Fail") is Action.FAIL
    for state in ("Queuing", "Analysing", "Processing", "Succes", "", " Success\n", " Success ", "Fail "):
        assert next_action(state) is Action.WAIT


@pytest.mark.parametrize("state", ["SUCCESS", "success", "Failed", "fail", "FAIL", "queuing"])
def test_state_machine_is_case_sensitive(state: str) -> None:
    """Only the documented spellings act: any other is an unknown state, kept pending (and logged)."""
    assert next_action(state) is Action.WAIT


@pytest.mark.parametrize("raw", [None, "", "  ", "{}", {"Code": "Success"}, {"Code": "Success", "Data": ""},
                                 {"Code": "Success", "Data": "{}"}, {"Code": "Success", "Data": {"other": 1}},
                                 {"Code": "Success", "Data": "[]"}, {"Code": "Success", "Data": {"result": None}}])
def test_a_result_without_a_result_list_is_not_ready(raw: object) -> None:
    """MPS does not promise that Result is filled in when State turns Success: wait, do not commit."""
    assert result_missing(decode_result(raw)) is not None


@pytest.mark.parametrize("raw", [{"Code": "Success", "Data": {"result": []}},
                                 {"Code": "Success", "Data": json.dumps({"result": [{"timestamp": 1}]})},
                                 {"Code": "Success", "Data": {"Result": [{"File": "a.jpg"}]}},
                                 "[1, 2]", "{not json", {"Data": {"result": 5}}])
def test_a_result_list_or_an_unreadable_result_is_an_answer(raw: object) -> None:
    """A list (empty or not) is final; an unreadable Result is for result_files to reject."""
    assert result_missing(decode_result(raw)) is None


def test_unknown_or_other_job_type_is_rejected() -> None:
    with pytest.raises(RejectedError, match="unknown job"):
        job_from_answer(JOB_ID, QueryJobAnswer.model_validate({"RequestId": "r", "JobId": JOB_ID}))


def test_result_files_tolerate_extra_keys_and_non_file_entries() -> None:
    data = {"result": [{"file": "a/x.jpg", "score": 1}, {"timestamp": 12.5}, "text", {"file": 5}, {"file": "a/x.jpg"},
                       {"file": "a/y.jpg"}], "extra": True}
    assert result_files(decode_result({"Code": "Success", "Data": json.dumps(data)})) == ["a/x.jpg", "a/y.jpg"]
    assert result_files(decode_result({"Code": "Success", "Data": ""})) == []
    assert result_files(decode_result(None)) == []


@pytest.mark.parametrize("raw", ["{not json", '{"Data": "{broken"}', '{"Data": {"result": 5}}'])
def test_unreadable_data_is_rejected(raw: str) -> None:
    with pytest.raises(RejectedError, match="unreadable"):
        result_files(decode_result(raw))


def test_output_urls() -> None:
    loc = parse_output("oss://example-bucket.oss-cn-shanghai.aliyuncs.com/iproduction/{source}.jpg", "cn-hangzhou")
    assert (loc.bucket, loc.region) == ("example-bucket", "cn-shanghai")
    loc = parse_output("oss://example-bucket.oss-cn-shanghai-internal.aliyuncs.com/x", "cn-hangzhou")
    assert (loc.bucket, loc.region) == ("example-bucket", "cn-shanghai")
    loc = parse_output("oss://example-bucket/iproduction/x.jpg", "cn-beijing")
    assert (loc.bucket, loc.region) == ("example-bucket", "cn-beijing")
    for bad in (None, "", "http://x/y", "oss://Bad_Bucket/x", "oss://example-****.oss-cn-hangzhou.aliyuncs.com/x"):
        with pytest.raises(RejectedError):
            parse_output(bad, "cn-hangzhou")
