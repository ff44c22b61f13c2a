"""python -m localcloud.mps --port 9001 --access-key-id ID --access-key-secret SECRET [...]

The MPS emulator in the foreground (QueryIProductionJob, SubmitIProductionJob, V2 and V3 signatures) with
its admin routes under /_emulator/ (localcloud/mps/README.md).
"""

from __future__ import annotations

import argparse
import sys

from ..common import PROFILES
from .server import MpsEmulator


def parser() -> argparse.ArgumentParser:
    """The command line (``main`` parses with it; tests read its options)."""
    top = argparse.ArgumentParser(prog="python -m localcloud.mps", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add = top.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=9001, help="port (default 9001; 0 picks a free one)")
    add("--access-key-id", required=True, help="the only AccessKeyId accepted")
    add("--access-key-secret", required=True, help="signatures are verified with this secret")
    add("--security-token", help="emulate STS: requests must carry this token")
    add("--seed", help="seed file (the format of localcloud/seed.json, or just its jobs map)")
    add("--qps", type=int, help="accepted calls per sliding second (default unlimited)")
    add("--retry-after", type=int, metavar="MS", help="x-acs-retry-after on Throttling answers (ms)")
    add("--latency", type=float, default=0.0,
        help="seconds from a call's arrival before its answer may leave (its own work included)")
    add("--profile", choices=PROFILES, default=PROFILES[0],
        help="latency model: 'arrival' (default, as --latency says) or 'queueing' (the latency is a wait "
             "before the work, on the call's thread)")
    add("--region", default="cn-hangzhou", help="region named in answers' HostId (default cn-hangzhou)")
    add("--unknown-job", choices=["empty", "error"], default="empty",
        help="answer for a JobId it does not hold: empty (200 with RequestId and JobId only; the default) or "
             "error (400 InvalidParameter)")
    add("--pending-result", choices=["empty", "seeded"], default="empty",
        help="Result of a job in Queuing or Analysing: empty (an empty string; the default) or "
             "seeded (the stored Result in every state)")
    add("--result-as-object", action="store_true",
        help="answer Result and Result.Data as JSON objects (default: JSON strings, like the real API)")
    add("--verbose", action="store_true", help="log every request to stderr")
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    emulator = MpsEmulator(
        args.host, args.port, latency=args.latency, profile=args.profile, verbose=args.verbose,
        access_key_id=args.access_key_id, access_key_secret=args.access_key_secret,
        security_token=args.security_token, qps=args.qps, retry_after=args.retry_after, region=args.region,
        unknown_job=args.unknown_job, pending_result=args.pending_result,
        result_as_object=args.result_as_object,
    )
    if args.seed:
        count = emulator.seed_file(args.seed)
        print(f"seeded {count} job(s) from {args.seed}", file=sys.stderr)
    emulator.serve_forever(ready=lambda url: print(f"MPS emulator on {url} (admin: {url}/_emulator/)",
                                                   file=sys.stderr, flush=True))

if __name__ == "__main__":
    main()
