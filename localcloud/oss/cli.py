"""Command line: ``python -m localcloud.oss --port 9000 [--seed localcloud/seed.json] [...]``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..common import PROFILES
from .emulator import OssEmulator


def parser() -> argparse.ArgumentParser:
    """The command line (``parse_args`` parses with it; tests read its options)."""
    top = argparse.ArgumentParser(prog="python -m localcloud.oss",
                                  description="Local Alibaba Cloud OSS emulator for oss2, in the foreground, "
                                              "with its admin routes under /_emulator/ (localcloud/oss/README.md).")
    add = top.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=9000, help="port (default 9000; 0 picks a free one)")
    add("--seed", metavar="FILE", help='seed file; its "oss" section is loaded')
    add("--latency", type=float, default=0.0,
        help="seconds from a request's arrival before its answer may leave (the emulator's own work included)")
    add("--profile", choices=PROFILES, default=PROFILES[0],
        help="latency model: 'arrival' (default, as --latency says) or 'queueing' (the latency is a wait "
             "before the work, on the request's thread)")
    add("--copy-rate", type=float, help="bytes/s of CopyObject and UploadPartCopy (default instant)")
    add("--bandwidth", type=float, help="bytes/s per GET/PUT body (default unlimited)")
    add("--region", help="region of buckets created on demand (default cn-hangzhou)")
    add("--access-key-id", help="only this AccessKeyId is accepted (default: any)")
    add("--access-key-secret", help="signatures are verified with this secret (default: not verified)")
    add("--security-token", help="required x-oss-security-token (STS)")
    add("--no-crc-on-copy", action="store_true", help="copies carry no x-oss-hash-crc64ecma, like some OSS")
    add("--no-auto-create-buckets", action="store_true", help="only seeded/admin-created buckets exist")
    add("--data-dir", help="where bodies above the spill threshold are stored (default: a temp dir)")
    add("--fault", action="append", default=[], metavar="JSON",
        help='fault rule, e.g. \'{"op": "GetObject", "kind": "503", "times": 1}\' (repeatable)')
    add("--setting", action="append", default=[], metavar="NAME=JSON", help="any other setting")
    add("--random-seed", type=int, default=0, help="seed of the fault-injection random draws")
    add("--verbose", action="store_true", help="log every request to stderr")
    return top


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def settings_from(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    pairs = {"copy_rate": args.copy_rate, "bandwidth": args.bandwidth, "default_region": args.region,
             "access_key_id": args.access_key_id, "access_key_secret": args.access_key_secret,
             "security_token": args.security_token, "data_dir": args.data_dir}
    settings.update({name: value for name, value in pairs.items() if value is not None})
    if args.no_crc_on_copy:
        settings["crc_on_copy"] = False
    if args.no_auto_create_buckets:
        settings["auto_create_buckets"] = False
    for item in args.setting:
        name, _, value = item.partition("=")
        settings[name.strip()] = json.loads(value)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    emulator = OssEmulator(args.host, args.port, latency=args.latency, profile=args.profile,
                           seed=args.random_seed,
                           verbose=args.verbose, **settings_from(args))
    if args.fault:
        emulator.knobs.configure({"faults": [json.loads(rule) for rule in args.fault]})
    if args.seed:
        with open(args.seed, encoding="utf-8") as handle:
            emulator.seed(json.load(handle).get("oss") or {})
    try:
        emulator.serve_forever(ready=lambda url: print(f"oss emulator listening on {url}", flush=True))
    finally:
        emulator.remove_temp_dir()
    return 0
