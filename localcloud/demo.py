"""The whole flow on the local emulators, as the README's first command shows it.

A job seeded in ``Analysing`` (localcloud/seed.json) is announced through every trigger format in
events/: it is ``pending`` at first, MPS then moves it to ``Success``, the next event copies its
result files and commits the manifest, and every later event finds it ``already-committed``.

    python -m localcloud.demo [--logs]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .fc import FunctionInstance
from .fc.local import LocalCloud
from .oss import OssAdmin

EVENTS = Path(__file__).resolve().parents[1] / "events"
JOB = "88c6ca184c0e432bbf5b665e2a150000"
STEPS = [
    ("mns-topic-stream.json", "MNS topic (STREAM) says the job succeeded, but MPS still reports Analysing"),
    ("timer-sweep.json", "the timer sweeps the pending registry"),
    ("MPS", "MPS finishes the job: Analysing → Success"),
    ("mns-queue-cloudevents.json", "MNS queue (EventBridge CloudEvents): the job is copied and committed"),
    ("mns-topic-json.json", "MNS topic (JSON) delivers the same notification again"),
    ("mns-topic-stream-attrs.json", "MNS topic (STREAM with attributes), once more"),
    ("timer-jobids.json", "a timer with {\"jobIds\": [...]} replays the job"),
    ("timer-sweep.json", "the next sweep finds nothing pending"),
]


def _show(title: str, body: object) -> None:
    print(f"\n== {title}")
    print(json.dumps(body, indent=2, ensure_ascii=False))


def _detail(job: dict[str, object]) -> str:
    if job["outcome"] == "already-committed":
        return "its manifest exists: MPS not queried, nothing copied"
    if job.get("reason"):
        return str(job["reason"])
    return f"{job.get('files', 0)} file(s), {job.get('bytes', 0)} bytes copied"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", action="store_true", help="also print the function's JSON log lines")
    args = parser.parse_args(argv)

    with LocalCloud() as cloud, FunctionInstance(env=cloud.env(), credentials=cloud.credentials, timeout=60,
                                                 echo_logs=args.logs) as function:
        assert cloud.mps is not None and cloud.oss is not None
        print(f"OSS emulator {cloud.oss.url}, MPS emulator {cloud.mps.url}; function loaded from handler/")
        for number, (name, what) in enumerate(STEPS, start=1):
            print(f"\n[{number}] {what}")
            if name == "MPS":
                cloud.mps.set_state(JOB, "Success")
                continue
            result = function.invoke((EVENTS / name).read_bytes())
            print(f"    event: events/{name}")
            if not result.ok:
                _show("the function failed", result.body)
                return 1
            if not result.result["jobs"]:
                print("    → no job to look at")
            for job in result.result["jobs"]:
                print(f"    → {job.get('jobId', '-')}: {job['outcome']} ({_detail(job)})")
        admin = OssAdmin(cloud.oss.url)
        try:
            listing = {o["key"]: o["size"] for o in admin.objects("dest-bucket")}
            manifest = json.loads(admin.read("dest-bucket", f"iproduction/{JOB}/manifest.json"))
        finally:
            admin.close()
        _show("dest-bucket now holds", listing)
        _show(f"iproduction/{JOB}/manifest.json", manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
