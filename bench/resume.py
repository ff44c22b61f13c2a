"""How a job too big for one invocation finishes: invoke it again and again, as the trigger does after
``error``, and count the invocations until ``committed`` and the result files at the destination after each.

    python -m bench.resume [--files 3000] [--timeouts 3 1] [--latency 0.02] [--tries 15] [--precopied] [--verbose]
                           [--code DIR]   (another version's handler/, e.g. from `git archive <commit> handler`)

Every invocation runs on the same warm instance (a retry often lands on one), against the local emulators
with ``--latency`` per request on OSS and MPS. ``--precopied`` puts every file at the destination first (a
job whose earlier invocations copied everything and then ran out of time before the commit).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import localcloud.fc.instance
from tests.functional.harness import DEST, JOB, SOURCE, Cloud, outcomes, started_cloud, topic_json


def seed(cloud: Cloud, files: int, precopied: bool) -> None:
    keys = [f"out/f{i:05d}.jpg" for i in range(files)]
    objects = [{"bucket": SOURCE, "key": k, "text": f"file {k} " * 8, "content_type": "image/jpeg"} for k in keys]
    if precopied:
        objects += [{**o, "bucket": DEST, "key": f"iproduction/{JOB}/{o['key'][4:]}"} for o in objects]
    cloud.oss_admin.seed({"objects": objects})
    cloud.job(JOB, keys)


def run(files: int, timeout: int, latency: float, tries: int, precopied: bool, verbose: bool) -> list[str]:
    lines = []
    with started_cloud() as cloud:
        seed(cloud, files, precopied)
        cloud.oss.knobs.configure({"latency": latency})
        cloud.mps.knobs.configure({"latency": latency})
        instance = cloud.function(timeout=timeout)
        for n in range(1, tries + 1):
            started = time.monotonic()
            result = instance.invoke(topic_json(JOB))
            seconds = time.monotonic() - started
            outcome = outcomes(result).get(JOB, "?")
            reason = next((line.get("reason") for line in result.json_logs() if line.get("event") == "job.outcome"),
                          result.error_type)
            there = len(cloud.oss_admin.objects(DEST, f"iproduction/{JOB}/"))
            lines.append(f"  invocation {n:2d}: {outcome:<9} {seconds:5.2f} s, {there} objects under the job's prefix"
                         + (f" ({reason})" if outcome == "error" and verbose else ""))
            if outcome != "error":
                break
        else:
            lines.append(f"  not committed after {tries} invocations")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--timeouts", type=int, nargs="+", default=[3, 1])
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--tries", type=int, default=15)
    parser.add_argument("--precopied", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="say why each invocation ended in error")
    parser.add_argument("--code", help="the function's code root (default: this checkout's handler/)")
    args = parser.parse_args()
    if args.code:
        localcloud.fc.instance.DEFAULT_CODE_ROOT = Path(args.code)
    for timeout in args.timeouts:
        print(f"{args.files} files, FC timeout {timeout} s, {args.latency * 1000:g} ms per request"
              f"{', all at the destination already' if args.precopied else ''}:", flush=True)
        for line in run(args.files, timeout, args.latency, args.tries, args.precopied, args.verbose):
            print(line, flush=True)


if __name__ == "__main__":
    main()
