"""python -m localcloud.fc invoke EVENT_FILE [--local [--mps-state Success]] [--pretty] [--env KEY=VAL ...]

Invokes the function once, as FC would. Prints the captured logs (between FC's "FC Invoke Start" and
"End" lines) on stderr and the answer (the handler's return value, or FC's error body) as JSON on
stdout; with --local, also what the destination bucket holds at the end. Exit status 1 on a function
error, 2 on a usage error (a missing event or seed file). Without --local the environment is used as
it is (real credentials, DEST_BUCKET, ... : the real cloud).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .context import Credentials
from .instance import DEFAULT_CODE_ROOT, FunctionInstance, InvokeResult
from .local import DEFAULT_SEED, DEST_BUCKET, LocalCloud


def _parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env expects KEY=VAL, got {item!r}")
        env[name] = value
    return env


def _env_credentials() -> Credentials | None:
    key, secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not key or not secret:
        return None
    return Credentials(key, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)


class UsageError(Exception):
    """The command line names something that is not there: one line on stderr, exit status 2."""


def _readable(path: str, what: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{what} not found: {path}")
    return file


def _check_dependencies(args: argparse.Namespace) -> None:
    """The function (and the emulators) need the project's pinned packages: say so in one line, not with a
    traceback from inside the function, when this Python does not have them."""
    needed = ["oss2", "httpx"] if args.local else []
    if Path(args.code_root).resolve() == DEFAULT_CODE_ROOT.resolve():
        needed.append("oss2")
    missing = sorted({name for name in needed if importlib.util.find_spec(name) is None})
    if missing:
        raise UsageError(f"this Python ({sys.executable}) lacks the project's dependencies ({', '.join(missing)}): "
                         "activate the project's virtualenv first (source scripts/env.sh), or run "
                         "bash scripts/invoke.sh EVENT_FILE")


def _results(local: LocalCloud, answer: Any) -> None:
    """Where the results are: the destination bucket's objects, as the emulator holds them now."""
    from ..oss import OssAdmin

    err = sys.stderr
    bucket = DEST_BUCKET
    admin = OssAdmin(local.oss.url)
    try:
        objects = admin.objects(bucket)
    finally:
        admin.close()
    print(f"Destination oss://{bucket}/ on the OSS emulator ({len(objects)} object(s); gone when this command "
          "ends):", file=err)
    for item in objects:
        print(f"  {item['key']}  ({item['size']} bytes)", file=err)
    jobs = answer.get("jobs", []) if isinstance(answer, dict) else []
    if any(job.get("outcome") == "pending" for job in jobs) and not local.mps_state:
        print("A pending job waits for MPS to finish it: add --mps-state Success to have it delivered.", file=err)


def _print(result: InvokeResult, local: LocalCloud | None) -> None:
    err = sys.stderr
    print(f"FC Invoke Start RequestId: {result.request_id}", file=err)
    for line in result.logs:
        print(line, file=err)
    print(f"FC Invoke End RequestId: {result.request_id}", file=err)
    summary = f"Duration: {result.duration * 1000:.1f} ms"
    if result.init_duration is not None:
        summary += f", Init Duration: {result.init_duration * 1000:.1f} ms"
    if result.error_type:
        summary += f", Error Type: {result.error_type}"
    print(summary, file=err)
    if local is not None and local.mps is not None:
        calls = Counter(entry.get("op") for entry in local.mps.log.entries())
        print(f"MPS emulator calls: {dict(calls)}", file=err)
    body: Any = result.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if local is not None and local.oss is not None:
        _results(local, result.result if result.ok else None)
    print(json.dumps(body, indent=2, ensure_ascii=False, default=str))


def invoke(args: argparse.Namespace) -> int:
    event = sys.stdin.buffer.read() if args.event_file == "-" else _readable(args.event_file, "event file").read_bytes()
    _check_dependencies(args)
    env: dict[str, str | None] = {}
    local: LocalCloud | None = None
    credentials = _env_credentials()
    region = os.environ.get("FC_REGION") or os.environ.get("ALIBABA_CLOUD_REGION_ID") or "cn-hangzhou"
    if args.local:
        seed = _readable(args.seed, "seed file")
        try:
            local = LocalCloud(seed, mps_state=args.mps_state).start()
        except json.JSONDecodeError as exc:
            raise UsageError(f"seed file {seed} is not JSON: {exc}") from None
        env.update(local.env())
        credentials = local.credentials
        region = str(env["FC_REGION"])
    if args.pretty:
        env["LOG_FORMAT"] = "pretty"
    env.update(_parse_env(args.env))
    try:
        with FunctionInstance(args.code_root, args.handler, args.initializer or None, env=env,
                              timeout=args.timeout, memory=args.memory, runtime=args.runtime, region=region,
                              credentials=credentials, isolated=args.isolated, echo_logs=False,
                              function_name=args.function_name) as instance:
            result = instance.invoke(event, request_id=args.request_id)
        _print(result, local)
    finally:
        if local is not None:
            local.stop()
    return 0 if result.ok else 1


def parser() -> argparse.ArgumentParser:
    """The command line (``main`` parses with it; tests read its options)."""
    top = argparse.ArgumentParser(prog="python -m localcloud.fc", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, help="what to do (only invoke for now)")
    run = commands.add_parser("invoke", help="invoke the function once with an event file",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("event_file", metavar="EVENT_FILE", help="event file (e.g. events/timer-jobids.json), - = stdin")
    run.add_argument("--local", action="store_true", help="run against in-process OSS and MPS emulators")
    run.add_argument("--seed", default=str(DEFAULT_SEED),
                     help="seed file for --local (default localcloud/seed.json: a job in Analysing and its files)")
    run.add_argument("--mps-state", help="with --local: set every seeded MPS job to this State (Success delivers it)")
    run.add_argument("--pretty", action="store_true",
                     help="human-readable log lines, as FC's console shows them (LOG_FORMAT=pretty)")
    run.add_argument("--env", action="append", default=[], metavar="KEY=VAL", help="function env var (repeat)")
    run.add_argument("--timeout", type=float, default=300, help="function timeout in seconds (default 300)")
    run.add_argument("--request-id", help="request id to use (default: a fresh FC-style id)")
    run.add_argument("--code-root", default=str(DEFAULT_CODE_ROOT), help="code root (default <repo>/handler)")
    run.add_argument("--handler", default="index.handler", help="handler, module.function (default index.handler)")
    run.add_argument("--initializer", default="index.initialize",
                     help='initializer, module.function (default index.initialize; "" for none)')
    run.add_argument("--runtime", default="python3.10", choices=["python3.9", "python3.10", "python3.12"],
                     help="FC runtime to imitate: its context object and variables (default python3.10)")
    run.add_argument("--memory", type=int, default=1024, help="memory size in MB, as FC reports it (default 1024)")
    run.add_argument("--function-name", default="iproduction-collector",
                     help="function name, as FC reports it (default iproduction-collector)")
    run.add_argument("--isolated", action="store_true", help="run the instance in its own process")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return invoke(args)
    except UsageError as exc:
        print(f"python -m localcloud.fc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
