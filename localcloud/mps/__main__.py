"""``python -m localcloud.mps --port 9001 --access-key-id ID --access-key-secret SECRET [...]``."""

from __future__ import annotations

import argparse
import sys

from ..common import PROFILES
from .server import MpsEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localcloud.mps", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--security-token", help="emulate STS: requests must carry this token")
    parser.add_argument("--seed", help="seed file (events/seed.json format, or just the jobs map)")
    parser.add_argument("--qps", type=int, help="accepted calls per sliding second (default unlimited)")
    parser.add_argument("--retry-after", type=int, metavar="MS", help="x-acs-retry-after on Throttling answers (ms)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds from a call's arrival before its answer may leave (its own work included)")
    parser.add_argument("--profile", choices=PROFILES, default=PROFILES[0],
                        help="latency model: 'arrival' (default, as --latency says) or 'queueing' (the latency "
                             "is a wait before the work, on the call's thread)")
    parser.add_argument("--region", default="cn-hangzhou")
    parser.add_argument("--unknown-job", choices=["empty", "error"], default="empty")
    parser.add_argument("--pending-result", choices=["empty", "seeded"], default="empty")
    parser.add_argument("--result-as-object", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
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
