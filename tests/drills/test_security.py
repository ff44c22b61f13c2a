"""Drill 5 — security, from the emulators' request logs and everything the function let out."""

from __future__ import annotations

from drills import security
from drills.common import DrillReport, Ledger, audit_oss, scan_secrets


def test_nothing_read_or_written_where_it_must_not_be_and_no_secret_let_out() -> None:
    report = DrillReport("security", "ci")
    ledger = Ledger()
    figures = security.workload_run("ci", report, ledger)
    assert report.problems == []
    assert figures["requestsToDecoyBucket"] == 0
    assert scan_secrets(ledger.texts) == []
    used = set(figures["requestsByOperation"])
    assert {"CopyObject", "UploadPartCopy", "ListMultipartUploads", "DeleteObject"} <= used


def test_wrong_mps_credentials_end_in_a_non_retried_error_that_names_the_refusal() -> None:
    report = DrillReport("security", "ci")
    refusals = security.refusals_run(report, Ledger())
    assert report.problems == []
    assert set(refusals) == set(security.REFUSALS)
    assert all(r["mpsCalls"] == 2 and r["raised"] for r in refusals.values())


def test_the_audit_catches_what_it_must() -> None:
    """The audit itself, on a hand-made log: it is what the other drills trust."""
    entries = [
        {"op": "GetObject", "bucket": "src", "key": "a"},
        {"op": "HeadObject", "bucket": "other", "key": "a"},
        {"op": "PutObject", "bucket": "dest", "key": "p/x"},
        {"op": "PutObject", "bucket": "dest", "key": "q/x"},
        {"op": "CopyObject", "bucket": "dest", "key": "p/y", "source_bucket": "other"},
        {"op": "ListObjectsV2", "bucket": "dest", "key": None, "path": "/dest/?list-type=2&prefix=q%2F"},
        {"op": "ListObjectsV2", "bucket": "dest", "key": None, "path": "/dest/?list-type=2&prefix=p%2Fj%2F"},
    ]
    problems, ops = audit_oss(entries, dest_bucket="dest", dest_prefix="p/", source_buckets=["src"])
    assert len(problems) == 4
    assert ops["PutObject"] == 2
    assert scan_secrets(["x LTAI5tFunctionalTestKey01 y", "functional-secret-do-not-log-0123456789"[::-1]]) != []
