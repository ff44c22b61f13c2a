"""``iproduction`` status, collect, verify and report through the emulators."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iproduction.cli.main import main
from tests.cli.conftest import HANDLER, base_env
from tests.functional.harness import AK, DEST, SECRET, TOKEN, Cloud, job_id

COMMITTED, PENDING, FAILED, EXPIRED, UNKNOWN = (job_id(n) for n in (0xA1, 0xA2, 0xA3, 0xA4, 0xA5))
FILES = {"iproduction/out/a.jpg": b"a" * 100, "iproduction/out/b.jpg": b"b" * 200,
         "iproduction/out/sub/c.jpg": b"c" * 300}


def dest_key(job: str, name: str) -> str:
    return f"iproduction/{job}/{name}"


def seed_jobs(cloud: Cloud) -> None:
    cloud.seed_job_with_files(COMMITTED, FILES)
    cloud.job(PENDING, ["iproduction/out/x.jpg"], state="Analysing")
    cloud.job(FAILED, [], state="Fail")
    cloud.job(EXPIRED, ["iproduction/out/y.jpg"], state="Queuing")
    # Seen two days ago and checked since: past PENDING_MAX_AGE_SECONDS (two days) at its next check.
    record = {"jobId": EXPIRED, "firstSeen": "2020-01-01T00:00:00Z", "lastChecked": "2020-01-02T00:00:00Z",
              "attempts": 7, "lastState": "Queuing"}
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{EXPIRED}", json.dumps(record),
                               content_type="application/json")


# -- collect and status -----------------------------------------------------------------------------
def test_collect_processes_jobs_as_the_function_does_and_status_tells_where_each_stands(cloud: Cloud, cli) -> None:
    seed_jobs(cloud)
    ran = cli("collect", COMMITTED, PENDING, FAILED, EXPIRED.upper())
    assert ran.code == 0, ran.err  # pending, job-failed and expired are outcomes, not errors
    lines = {line.split()[0]: line.split()[1] for line in ran.out.splitlines()}
    assert lines == {COMMITTED: "committed", PENDING: "pending", FAILED: "job-failed", EXPIRED: "expired"}
    assert "3 file(s), 600 B (3 copied, 0 already there)" in ran.out
    manifest = cloud.manifest(COMMITTED)
    assert manifest is not None and manifest["fileCount"] == 3  # the function's commit, not a copy of it
    assert cloud.oss_admin.object(DEST, f"iproduction/_expired/{EXPIRED}") is not None
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{PENDING}") is not None

    again = cli("collect", COMMITTED, "--json")
    assert again.code == 0
    assert json.loads(again.out)["jobs"] == [{"jobId": COMMITTED, "outcome": "already-committed",
                                              "manifest": dest_key(COMMITTED, "manifest.json"),
                                              "seconds": json.loads(again.out)["jobs"][0]["seconds"]}]

    ran = cli("status", COMMITTED, PENDING, FAILED, EXPIRED, UNKNOWN, "--json")
    assert ran.code == 1  # not every job named is committed with Success
    docs = {d["jobId"]: d for d in json.loads(ran.out)["jobs"]}
    assert {j: d["status"] for j, d in docs.items()} == {
        COMMITTED: "committed", PENDING: "pending", FAILED: "committed", EXPIRED: "expired", UNKNOWN: "unknown"}
    assert docs[COMMITTED]["files"] == 3 and docs[COMMITTED]["bytes"] == 600
    assert docs[COMMITTED]["committedAt"] == manifest["committedAt"]
    assert docs[FAILED]["state"] == "Fail" and docs[FAILED]["code"] == "JobFailed"
    assert docs[PENDING]["lastState"] == "Analysing" and docs[PENDING]["attempts"] == 1
    assert docs[EXPIRED]["attempts"] == 8 and docs[EXPIRED]["firstSeen"] == "2020-01-01T00:00:00Z"

    table = cli("status", COMMITTED, PENDING)
    assert table.code == 1
    rows = table.out.splitlines()
    assert rows[0].split()[:3] == ["JOB", "STATUS", "STATE"]
    assert rows[1].split()[:3] == [COMMITTED, "committed", "Success"]
    assert rows[2].split()[:3] == [PENDING, "pending", "Analysing"]
    assert cli("status", COMMITTED).code == 0

    registry = cli("status", "--json")
    assert registry.code == 0
    doc = json.loads(registry.out)
    assert [r["jobId"] for r in doc["pending"]] == [PENDING]
    assert doc["expired"] == [EXPIRED] and doc["expiredCount"] == 1
    assert "1 pending, 1 expired" in cli("status").out


def test_collect_exits_1_when_a_job_is_rejected(cloud: Cloud, cli) -> None:
    cloud.seed_job_with_files(COMMITTED, FILES)
    ran = cli("collect", COMMITTED, UNKNOWN)  # MPS knows no such job: rejected, as the function says
    assert ran.code == 1
    outcomes = {line.split()[0]: line.split()[1] for line in ran.out.splitlines()}
    assert outcomes == {COMMITTED: "committed", UNKNOWN: "rejected"}


def test_collect_exits_1_on_error_and_names_it(cloud: Cloud, cli) -> None:
    cloud.seed_job_with_files(COMMITTED, FILES)
    cloud.mps_admin.faults({"op": "*", "kind": "503"})  # MPS down for good: error after retries
    ran = cli("collect", COMMITTED, "--timeout", "3", "--json")
    assert ran.code == 1
    job = json.loads(ran.out)["jobs"][0]
    assert job["outcome"] == "error" and "ServiceUnavailable" in job["reason"]


def test_collect_wait_polls_until_the_job_finishes(cloud: Cloud, tmp_path: Path) -> None:
    cloud.put_source("iproduction/out/w.jpg", b"w" * 10)
    cloud.job(PENDING, ["iproduction/out/w.jpg"], state="Analysing")
    env = {**base_env(tmp_path), **cloud.env}
    process = subprocess.Popen([sys.executable, "-m", "iproduction.cli", "collect", PENDING, "--wait",
                                "--interval", "0.3", "--timeout", "60"], cwd=HANDLER, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while cloud.oss_admin.object(DEST, f"iproduction/_pending/{PENDING}") is None:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        cloud.mps_admin.set_state(PENDING, "Success")
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out.split()[:2] == [PENDING, "committed"]
    assert "still pending" in err
    assert cloud.manifest(PENDING) is not None


def test_collect_wait_that_runs_out_of_time_exits_1(cloud: Cloud, cli) -> None:
    cloud.job(PENDING, ["iproduction/out/x.jpg"], state="Analysing")
    ran = cli("collect", PENDING, "--wait", "--interval", "0.5", "--timeout", "2")
    assert ran.code == 1
    assert ran.out.split()[:2] == [PENDING, "pending"] and "[--timeout reached]" in ran.out
    assert cli("collect", PENDING).code == 0  # without --wait, pending is reported, not an error


# -- verify -----------------------------------------------------------------------------------------
def test_verify_reports_a_file_deleted_changed_or_added_behind_the_manifest(cloud: Cloud, cli) -> None:
    cloud.seed_job_with_files(COMMITTED, FILES)
    cloud.job(FAILED, [], state="Fail")
    assert cli("collect", COMMITTED, FAILED).code == 0
    ok = cli("verify", COMMITTED, FAILED)
    assert ok.code == 0 and ok.out == ""
    assert "2 job(s), 3 file(s): 3 ok, 0 differ, 0 missing, 0 extra" in ok.err
    verbose = cli("verify", "--all", "-v")
    assert verbose.code == 0
    assert sorted(verbose.out.splitlines()) == [f"= {dest_key(COMMITTED, n)}" for n in ("a.jpg", "b.jpg", "sub/c.jpg")]

    cloud.oss_admin.delete_object(DEST, dest_key(COMMITTED, "a.jpg"))
    cloud.oss_admin.put_object(DEST, dest_key(COMMITTED, "b.jpg"), b"B" * 200)  # same size, other bytes
    cloud.oss_admin.put_object(DEST, dest_key(COMMITTED, "sub/c.jpg"), b"c" * 301)
    cloud.oss_admin.put_object(DEST, dest_key(COMMITTED, "stray.txt"), b"?")
    for args in ((COMMITTED,), ("--all",), ("--since", "1h")):
        ran = cli("verify", *args)
        assert ran.code == 1, args
        lines = ran.out.splitlines()
        assert f"- {dest_key(COMMITTED, 'a.jpg')}" in lines
        assert any(line.startswith(f"* {dest_key(COMMITTED, 'b.jpg')}  (ETag ") and "CRC-64" in line for line in lines)
        assert any(line.startswith(f"* {dest_key(COMMITTED, 'sub/c.jpg')}  (size 301, manifest 300") for line in lines)
        assert f"+ {dest_key(COMMITTED, 'stray.txt')}" in lines
        assert len(lines) == 4, lines
        assert "0 ok, 2 differ, 1 missing, 1 extra" in ran.err
    as_json = json.loads(cli("verify", COMMITTED, "--json").out)
    assert as_json["differences"] == 4 and {f["kind"] for f in as_json["findings"]} == {"missing", "differs", "extra"}
    quiet = cli("verify", "--since", "2000-01-01", "-q")
    assert quiet.code == 1 and quiet.err == "" and len(quiet.out.splitlines()) == 4


def test_verify_of_a_job_without_manifest_is_a_difference(cloud: Cloud, cli) -> None:
    ran = cli("verify", UNKNOWN)
    assert ran.code == 1
    assert ran.out.strip() == f"- iproduction/{UNKNOWN}/manifest.json  (no manifest: the job is not committed)"


def test_progress_bar_only_on_a_terminal(cloud: Cloud, tmp_path: Path) -> None:
    cloud.seed_job_with_files(COMMITTED, FILES)
    env = {**base_env(tmp_path), **cloud.env}
    assert subprocess.run([sys.executable, "-m", "iproduction.cli", "collect", COMMITTED], cwd=HANDLER,
                          env=env, capture_output=True).returncode == 0
    piped = subprocess.run([sys.executable, "-m", "iproduction.cli", "verify", "--all"], cwd=HANDLER, env=env,
                           capture_output=True, text=True)
    assert piped.returncode == 0 and "\r" not in piped.stderr and "[" not in piped.stderr

    def on_terminal(*extra: str) -> str:
        main, secondary = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "iproduction.cli", "verify", "--all", *extra],
                                   cwd=HANDLER, env=env, stdin=subprocess.DEVNULL, stdout=secondary,
                                   stderr=secondary)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(main)
        assert process.wait(timeout=60) == 0
        return b"".join(chunks).decode()

    shown = on_terminal()
    assert "\rfiles [" in shown and "3/3" in shown
    assert "\r" not in on_terminal("--quiet")


# -- report -----------------------------------------------------------------------------------------
def test_report_rolls_up_manifests_in_range(cloud: Cloud, cli, tmp_path: Path) -> None:
    seed_jobs(cloud)
    assert cli("collect", COMMITTED, PENDING, FAILED, EXPIRED).code == 0
    ran = cli("report", "--since", "1h", "--format", "json")
    assert ran.code == 0
    doc = json.loads(ran.out)
    assert doc["jobs"] == 2 and doc["files"] == 3 and doc["bytes"] == 600
    assert doc["byState"] == {"Success": {"jobs": 1, "files": 3, "bytes": 600},
                              "Fail": {"jobs": 1, "files": 0, "bytes": 0}}
    assert doc["byFunction"] == {"ImageCartoonize": {"jobs": 2, "files": 3, "bytes": 600}}
    assert [(f["jobId"], f["code"]) for f in doc["failed"]] == [(FAILED, "JobFailed")]
    assert (doc["pendingNow"], doc["expiredNow"]) == (1, 1)
    empty = json.loads(cli("report", "--since", "2000-01-01", "--until", "2000-01-02", "--format", "json").out)
    assert empty["jobs"] == 0 and empty["pendingNow"] == 1

    out = tmp_path / "report.csv"
    assert cli("report", "--since", "1h", "--format", "csv", "--output", str(out)).code == 0
    rows = out.read_text().splitlines()
    assert rows[0] == "kind,name,jobs,files,bytes,code,message,committedAt"
    assert "total,,2,3,600,,," in rows and "registry,expired,1,,,,," in rows
    assert any(r.startswith(f"failed,{FAILED},1,0,0,JobFailed,") for r in rows)
    table = cli("report", "--since", "1h")
    assert "2 job(s), 3 file(s)" in table.out and "now: 1 pending, 1 expired" in table.out


def seed_many(cloud: Cloud, count: int) -> None:
    """``count`` committed jobs of one file each, a minute apart from 2026-11-01T00:00:00Z; every
    hundredth failed. Seeded straight into the emulator (two admin requests)."""
    files = [{"bucket": DEST, "key": dest_key(job_id(i), "r.jpg"), "text": f"result {i}", "content_type": "image/jpeg"}
             for i in range(count) if i % 100]
    cloud.oss_admin.seed({"objects": files})
    stored = {o["key"]: o for o in cloud.oss_admin.objects(DEST, "iproduction/")}
    manifests = []
    for i in range(count):
        job = job_id(i)
        failed = i % 100 == 0
        entries = [] if failed else [{"key": dest_key(job, "r.jpg"), "size": stored[dest_key(job, "r.jpg")]["size"],
                                      "etag": stored[dest_key(job, "r.jpg")]["etag"],
                                      "crc64": str(stored[dest_key(job, "r.jpg")]["crc64"])}]
        doc = {"schema": "iproduction-manifest/1", "jobId": job, "state": "Fail" if failed else "Success",
               "functionName": "ImageCartoonize" if i % 2 else "VideoHighlight",
               "result": {"code": "JobFailed" if failed else "Success", "message": None},
               "committedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1793491200 + 60 * i)),
               "files": entries, "fileCount": len(entries), "totalBytes": sum(e["size"] for e in entries)}
        manifests.append({"bucket": DEST, "key": dest_key(job, "manifest.json"), "text": json.dumps(doc),
                          "content_type": "application/json"})
    cloud.oss_admin.seed({"objects": manifests})


def test_report_and_verify_page_through_thousands_of_manifests(cloud: Cloud, cli) -> None:
    count = 2500
    seed_many(cloud, count)
    before = len(cloud.oss_log("ListObjectsV2"))
    # [10:00, 24:00) on 2026-11-01: jobs 600..1439, of which 600, 700, ... 1400 failed (9).
    ran = cli("report", "--since", "2026-11-01T10:00:00Z", "--until", "2026-11-02", "--format", "json")
    assert ran.code == 0, ran.err
    doc = json.loads(ran.out)
    assert doc["jobs"] == 840
    assert doc["byState"]["Fail"]["jobs"] == 9 and doc["byState"]["Success"]["jobs"] == 831
    assert doc["byFunction"]["ImageCartoonize"]["jobs"] == 420
    assert doc["files"] == 831
    assert sorted(f["jobId"] for f in doc["failed"]) == [job_id(i) for i in range(600, 1440, 100)]
    listings = len(cloud.oss_log("ListObjectsV2")) - before
    assert listings >= 5  # ~4975 keys under the prefix, 1000 a page

    ran = cli("verify", "--all", "--concurrency", "64")
    assert ran.code == 0, ran.err
    assert f"{count} job(s), {count - count // 100} file(s): {count - count // 100} ok" in ran.err
    cloud.oss_admin.delete_object(DEST, dest_key(job_id(2345), "r.jpg"))
    ran = cli("verify", "--all", "--concurrency", "64")
    assert ran.code == 1
    assert ran.out.splitlines() == [f"- {dest_key(job_id(2345), 'r.jpg')}"]


# -- bad input, configuration, credentials ------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Checked before any configuration, credentials or request (so in process, without a cloud)."""
    cases = {("status", "not-a-job"): "not a job id: 'not-a-job'", ("collect", COMMITTED, "0123"): "not a job id",
             ("verify", "g" * 32): "not a job id", ("verify",): "name the jobs",
             ("verify", COMMITTED, "--all"): "name the jobs", ("report", "--since", "yesterday"): "not a date",
             ("report",): "--since", ("report", "--since", "2026-12-02", "--until", "2026-12-01"): "later than",
             ("verify", "--since", "2026-13-01"): "not a date", ("status", "--bogus"): "unrecognized arguments",
             ("collect", COMMITTED, "--timeout", "0"): "must be positive", ("collect",): "JOBID",
             ("status", "--concurrency", "0"): "--concurrency", ("status", "--set", "NOVALUE"): "NAME=VALUE"}
    for args, why in cases.items():
        try:
            code = main(list(args), environ={})
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        out, err = capsys.readouterr()
        assert code == 2, args
        assert out == "" and len(err.strip().splitlines()) == 1 and "error:" in err and why in err, (args, err)


def test_configuration_and_credentials_errors_name_what_is_wrong(cloud: Cloud, cli) -> None:
    ran = cli("status", env={"DEST_BUCKET": ""})
    assert ran.code == 2 and "DEST_BUCKET is required" in ran.err
    ran = cli("status", "--mps-endpoint", "ftp://nowhere")
    assert ran.code == 2 and "MPS_ENDPOINT must be an http(s) URL" in ran.err
    ran = cli("status", "--local", replace_env=True)  # no credentials anywhere
    assert ran.code == 2
    assert "no Alibaba Cloud credentials found" in ran.err
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in ran.err and ".aliyun/config.json" in ran.err and "RAM role" in ran.err
    assert len(ran.err.splitlines()) == 1  # the library's own tracebacks are not shown
    ran = cli("status", env={"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-secret-0123456789"})
    assert ran.code == 2 and "SignatureDoesNotMatch" in ran.err
    assert "wrong-secret-0123456789" not in ran.err + ran.out
    ran = cli("status", "--dest-bucket", "no-such-bucket")
    assert ran.code == 2 and "NoSuchBucket" in ran.err


def test_credentials_from_the_aliyun_cli_profile(cloud: Cloud, cli, tmp_path: Path) -> None:
    """The standard chain: with nothing in the environment, the aliyun CLI's current profile."""
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({"current": "ops", "profiles": [
        {"name": "ops", "mode": "StsToken", "access_key_id": AK, "access_key_secret": SECRET, "sts_token": TOKEN}]}))
    env = {k: v for k, v in cloud.env.items() if not k.startswith("ALIBABA_CLOUD_")}
    ran = cli("status", "--json", replace_env=True, env=env)
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["pendingCount"] == 0


def test_local_takes_the_emulators_defaults_where_the_environment_is_silent(cloud: Cloud, cli) -> None:
    env = {k: v for k, v in cloud.env.items() if k not in ("DEST_BUCKET", "FC_REGION")}
    ran = cli("status", "--json", "--local", replace_env=True, env=env)
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["bucket"] == "dest-bucket"
    assert cli("status", "--json", replace_env=True, env=env).code == 2  # DEST_BUCKET is required without --local


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "iproduction"
    ran = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert ran.returncode == 0 and "status" in ran.stdout and "report" in ran.stdout
