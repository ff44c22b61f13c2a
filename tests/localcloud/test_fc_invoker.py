"""The local FC invoker against a fixture code root (tests/localcloud/fc_fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localcloud.fc import FunctionInstance, InvokeResult, invoke_concurrently
from localcloud.fc.local import LocalCloud

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "fc_fixture"
CREDS = {"access_key_id": "LTAI-test", "access_key_secret": "test-secret", "security_token": "sts-token"}


def instance(**options: Any) -> FunctionInstance:
    options.setdefault("credentials", CREDS)
    return FunctionInstance(FIXTURE, **options)


def ok(result: InvokeResult) -> Any:
    assert result.ok, result.error
    return result.result


def test_loads_code_root_like_fc() -> None:
    function = instance(env={"FIXTURE_FLAG": "on"})
    first = ok(function.invoke(b'{"action": "echo", "k": 1}', request_id="req-first"))
    assert first["event_type"] == "bytes" and first["event"] == '{"action": "echo", "k": 1}'
    assert first["sys_path0"] == str(FIXTURE) and first["helper"] == "helper-v1"
    assert (first["init_calls"], first["init_request_id"]) == (1, "req-first")
    second = ok(function.invoke({"action": "echo"}))
    assert second["init_calls"] == 1 and second["context"]["request_id"].startswith("1-")
    assert second["event"] == '{"action": "echo"}'
    assert ok(function.invoke([{"action": "echo"}]))["event"] == '[{"action": "echo"}]'
    assert ok(function.invoke('{"action": "text"}')) == "plain text"
    # a fresh instance re-imports the code root's modules and runs the initializer again
    assert ok(instance().invoke({"action": "echo"}))["init_calls"] == 1


def test_other_code_root_replaces_modules(tmp_path: Path) -> None:
    ok(instance().invoke({"action": "echo"}))
    (tmp_path / "index.py").write_text("def handler(event, context):\n    return 'other root'\n")
    other = FunctionInstance(tmp_path, initializer=None)
    assert ok(other.invoke(b"")) == "other root"
    assert ok(instance().invoke({"action": "echo"}))["helper"] == "helper-v1"


def test_modules_do_not_leak_into_the_test_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    outsider = types.ModuleType("index")
    monkeypatch.setitem(sys.modules, "index", outsider)
    function = instance()
    assert ok(function.invoke({"action": "echo"}))["helper"] == "helper-v1"
    assert sys.modules["index"] is outsider and "helper" not in sys.modules and str(FIXTURE) not in sys.path
    assert ok(function.invoke({"action": "echo"}))["init_calls"] == 1  # its own modules come back


def test_context_and_environment_python310() -> None:
    assert "FC_FUNCTION_NAME" not in os.environ
    body = ok(instance(env={"DEST_BUCKET": "dest"}, timeout=60, memory=512, region="cn-shanghai",
                       function_name="fn").invoke({"action": "echo"}, request_id="r-310"))
    context, env = body["context"], body["env"]
    assert context["request_id"] == "r-310" and context["region"] == "cn-shanghai"
    assert context["function"] == {"name": "fn", "handler": "index.handler", "memory": 512, "timeout": 60,
                                   "initializer": "index.initialize", "initialization_timeout": 60,
                                   "version_id": None, "qualifier": "LATEST"}
    assert context["credentials"] == CREDS and context["has_service"]
    assert context["service"]["name"] == "fn" and context["logger"] == "Logger"
    assert env["FC_FUNC_CODE_PATH"] == f"{FIXTURE}/" and env["FC_FUNCTION_HANDLER"] == "index.handler"
    assert (env["FC_FUNCTION_MEMORY_SIZE"], env["FC_REGION"], env["FC_FUNCTION_NAME"]) == ("512", "cn-shanghai", "fn")
    assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "LTAI-test" and env["ALIBABA_CLOUD_SECURITY_TOKEN"] == "sts-token"
    assert env["DEST_BUCKET"] == "dest" and env["FC_INSTANCE_ID"] and "FC_VER_ID" in env
    assert {"FC_ACCOUNT_ID", "FC_INITIALIZER_HANDLER", "FC_RUNTIME"} <= set(env)
    assert "FC_FUNCTION_NAME" not in os.environ and "DEST_BUCKET" not in os.environ  # restored


def test_context_python312_has_no_credentials() -> None:
    body = ok(instance(runtime="python3.12", credentials={"access_key_id": "a", "access_key_secret": "b"})
              .invoke({"action": "echo"}))
    context, env = body["context"], body["env"]
    assert not context["has_credentials"] and not context["has_service"] and context["log_project"] == ""
    assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "a" and "ALIBABA_CLOUD_SECURITY_TOKEN" not in env
    assert "FC_FUNCTION_VERSION" in env and "FC_VER_ID" not in env


def test_unhandled_exception_shape() -> None:
    result = instance().invoke({"action": "raise", "message": "boom"})
    assert (result.error_type, result.exception_type, result.error_message) == (
        "UnhandledInvocationError", "ValueError", "boom")
    assert set(result.body) == {"errorMessage", "errorType", "stackTrace"}
    frame = result.body["stackTrace"][-1]
    assert frame[0] == f'File "{FIXTURE / "index.py"}"' and frame[2] == "in handler" and "raise ValueError" in frame[3]
    assert all(len(f) == 4 for f in result.stack)


def test_initializer_failure_then_retry() -> None:
    function = instance(env={"FIXTURE_INIT_FAIL": "DEST_BUCKET is missing"})
    failed = function.invoke({"action": "echo"})
    assert failed.error_type == "InitializationError" and failed.exception_type == "RuntimeError"
    assert "DEST_BUCKET is missing" in failed.error_message and failed.body["stackTrace"]
    function.config.env.pop("FIXTURE_INIT_FAIL")
    assert ok(function.invoke({"action": "echo"}))["init_calls"] == 1  # a fresh instance
    assert instance(handler="index.missing").invoke(b"").error_type == "InitializationError"


def test_timeouts_in_process() -> None:
    function = instance(timeout=0.4)
    started = time.monotonic()
    result = function.invoke({"action": "sleep", "seconds": 1.5})
    assert result.error_type == "FunctionTimeout" and time.monotonic() - started < 1.2
    assert result.body["errorType"] == "FunctionTimeout" and "0.4 seconds" in result.error_message
    assert json.loads(result.logs[-1])["msg"] == "sleeping"
    assert ok(function.invoke({"action": "echo"}))["init_calls"] == 1  # recycled: fresh instance
    slow_init = instance(env={"FIXTURE_INIT_SLEEP": "1.5"}, initialization_timeout=0.3)
    failed = slow_init.invoke({"action": "echo"})
    assert failed.error_type == "InitializationError" and "timed out" in failed.error_message


def test_logs_captured_and_still_visible(capsys: pytest.CaptureFixture[str]) -> None:
    result = instance().invoke({"action": "log", "lines": 2}, request_id="r-log")
    assert result.logs[0] == '{"msg": "initialize", "calls": 1}'
    assert [line["index"] for line in result.json_logs() if line["msg"] == "line"] == [0, 1]
    assert "plain stderr line" in result.logs and result.logs[-1] == "no newline at the end"
    logger_line = next(line for line in result.logs if "via context.logger" in line)
    assert " r-log [INFO] via context.logger" in logger_line
    seen = capsys.readouterr()
    assert '"index": 1' in seen.out and "plain stderr line" in seen.err
    quiet = instance(echo_logs=False).invoke({"action": "log", "lines": 1})
    assert len(quiet.json_logs()) == 2 and '"index": 0' not in capsys.readouterr().out


def test_isolated_instance() -> None:
    with instance(isolated=True, timeout=0.5) as function:
        first = ok(function.invoke({"action": "echo"}))
        assert first["pid"] != os.getpid() and first["cwd"] == str(FIXTURE)
        assert ok(function.invoke({"action": "echo"}))["pid"] == first["pid"]
        assert ok(function.invoke({"action": "echo"}))["init_calls"] == 1
        started = time.monotonic()
        timed_out = function.invoke({"action": "sleep", "seconds": 5})
        assert timed_out.error_type == "FunctionTimeout" and time.monotonic() - started < 2.5
        assert json.loads(timed_out.logs[-1])["msg"] == "sleeping"
        after = ok(function.invoke({"action": "echo"}))
        assert after["pid"] != first["pid"] and after["init_calls"] == 1  # killed and restarted
        failed = function.invoke({"action": "raise"})
        assert failed.error_type == "UnhandledInvocationError" and failed.body["errorType"] == "ValueError"


def test_isolated_instance_on_another_interpreter(tmp_path: Path) -> None:
    """``python=``: the instance's process runs that interpreter (here a wrapper that leaves a mark)."""
    mark, wrapper = tmp_path / "ran", tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\necho "$$" > {mark}\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    with instance(isolated=True, python=str(wrapper)) as function:
        pid = ok(function.invoke({"action": "echo"}))["pid"]
    assert mark.read_text().strip() == str(pid)


def test_isolated_instances_run_concurrently() -> None:
    functions = [instance(isolated=True) for _ in range(3)]
    for function in functions:
        ok(function.invoke({"action": "echo"}))  # start the processes first
    started = time.monotonic()
    results = invoke_concurrently(functions, {"action": "sleep", "seconds": 1})
    assert time.monotonic() - started < 2.0
    assert [r.result for r in results] == [{"slept": 1}] * 3
    assert len({f.pid for f in functions}) == 3 and os.getpid() not in {f.pid for f in functions}
    for function in functions:
        function.close()


class _StubOss:
    def __init__(self) -> None:
        self.url, self.seeded = "http://127.0.0.1:1", None

    def start(self) -> _StubOss:
        return self

    def seed(self, document: Any) -> None:
        self.seeded = document

    def stop(self) -> None:
        pass


def test_local_cloud_environment() -> None:
    with LocalCloud(mps_state="Success", oss_factory=lambda creds: _StubOss()) as cloud:
        env = cloud.env()
        assert env["MPS_ENDPOINT"] == cloud.mps.url and env["DEST_BUCKET"] == "dest-bucket"
        assert env["FC_REGION"] == "cn-hangzhou" and cloud.oss.seeded["buckets"]
        assert cloud.mps.get_job("88c6ca184c0e432bbf5b665e2a150000")["State"] == "Success"


def run_cli(*args: str, event: Path = REPO / "events" / "timer-jobids.json") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localcloud.fc", "invoke", str(event), "--code-root", str(FIXTURE),
                           *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli(tmp_path: Path) -> None:
    done = run_cli("--env", "FIXTURE_X=1", "--request-id", "r-cli", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["event"] == (REPO / "events" / "timer-jobids.json").read_text()
    assert body["env"]["FIXTURE_X"] == "1" and body["context"]["request_id"] == "r-cli"
    assert "FC Invoke Start RequestId: r-cli" in done.stderr and '"msg": "initialize"' in done.stderr
    event = tmp_path / "raise.json"
    event.write_text('{"action": "raise", "message": "cli boom"}')
    failed = run_cli("--isolated", event=event)
    assert failed.returncode == 1 and json.loads(failed.stdout)["errorMessage"] == "cli boom"


def test_cli_local() -> None:
    pytest.importorskip("localcloud.oss", reason="the OSS emulator is not there yet")
    from localcloud import oss

    if not hasattr(oss, "OssEmulator"):
        pytest.skip("the OSS emulator is not there yet")
    done = run_cli("--local", "--mps-state", "Success")
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)["env"]
    assert env["MPS_ENDPOINT"].startswith("http://127.0.0.1:") and env["OSS_ENDPOINT"].startswith("http://127.0.0.1:")
    assert env["DEST_BUCKET"] == "dest-bucket" and env["ALIBABA_CLOUD_ACCESS_KEY_ID"]


@pytest.mark.parametrize(("args", "message"), [
    (["missing-event.json"], "event file not found: missing-event.json"),
    ([str(REPO / "events" / "timer-jobids.json"), "--local", "--seed", "missing-seed.json"],
     "seed file not found: missing-seed.json"),
    ([str(REPO / "events" / "timer-jobids.json"), "--local", "--seed", str(REPO / "README.md")],
     "is not JSON"),
])
def test_cli_a_file_that_is_not_there_is_one_line_and_status_2(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "localcloud.fc", "invoke", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr


def test_cli_without_the_project_dependencies_says_how_to_get_them() -> None:
    """``-S``: this Python without its site-packages, as the system's Python outside the venv would be."""
    done = subprocess.run([sys.executable, "-S", "-m", "localcloud.fc", "invoke", "events/timer-jobids.json",
                           "--local"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "lacks the project's dependencies (httpx, oss2)" in done.stderr
    assert "bash scripts/invoke.sh" in done.stderr


@pytest.mark.skipif(Path(sys.prefix).resolve() != (REPO / ".venv").resolve(),
                    reason="the script runs the project's own .venv (scripts/env.sh); these tests run elsewhere")
def test_invoke_script_delivers_the_seeded_job_and_shows_where(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_bytes((REPO / "events" / "timer-jobids.json").read_bytes())
    done = subprocess.run(["bash", str(REPO / "scripts" / "invoke.sh"), "event.json", "--mps-state", "Success",
                           "--pretty"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (job,) = json.loads(done.stdout)["jobs"]
    assert job["outcome"] == "committed" and job["files"] == 2
    assert "Destination oss://dest-bucket/ on the OSS emulator (3 object(s)" in done.stderr
    assert f"  {job['manifest']}  (" in done.stderr
    assert f"[{job['jobId']}] job.outcome outcome=committed " in done.stderr  # --pretty
    pending = subprocess.run(["bash", str(REPO / "scripts" / "invoke.sh"), "event.json"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert json.loads(pending.stdout)["jobs"][0]["outcome"] == "pending"
    assert "add --mps-state Success" in pending.stderr and '"event": "job.outcome"' in pending.stderr
