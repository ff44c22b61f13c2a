"""iproduction: where is a job, is everything delivered intact, collect these jobs now.

    iproduction status  [JOBID...] [--json]
    iproduction collect JOBID... [--wait] [--timeout S] [--json]
    iproduction verify  [JOBID...] [--since DATE] [--all] [-v]
    iproduction report  --since DATE [--until DATE] [--format table|csv|json] [--output FILE]

Configured like the function, from its variables (DEST_BUCKET, DEST_PREFIX, DEST_REGION/FC_REGION,
MPS_REGION, OSS_ENDPOINT, MPS_ENDPOINT, SOURCE_BUCKETS, ...), each of which a flag overrides;
credentials from the standard Alibaba Cloud chain. Exit codes: 0 all good, 1 differences or failed
jobs, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, TextIO

from . import collect, report, status, verify
from .auth import CredentialsMissingError, chain
from .core import Core, CoreError, load_target
from .output import Context, UsageError

#: ``--local``: the emulators' default ports (``python -m localcloud.oss`` / ``localcloud.mps``) and
#: the local cloud's bucket and region, for whatever the environment leaves unset.
LOCAL_DEFAULTS = {"OSS_ENDPOINT": "http://127.0.0.1:9000", "MPS_ENDPOINT": "http://127.0.0.1:9001",
                  "DEST_BUCKET": "dest-bucket", "FC_REGION": "cn-hangzhou"}

#: Flags that override one of the function's variables.
OVERRIDES = (("--dest-bucket", "DEST_BUCKET"), ("--dest-prefix", "DEST_PREFIX"), ("--region", "FC_REGION"),
             ("--dest-region", "DEST_REGION"), ("--mps-region", "MPS_REGION"), ("--oss-endpoint", "OSS_ENDPOINT"),
             ("--mps-endpoint", "MPS_ENDPOINT"), ("--source-buckets", "SOURCE_BUCKETS"))

COMMANDS = {"status": status, "collect": collect, "verify": verify, "report": report}


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("configuration (the function's variables; a flag overrides)")
    for flag, variable in OVERRIDES:
        group.add_argument(flag, metavar=variable, dest=variable)
    group.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="any other of the function's variables, e.g. --set PENDING_MAX_AGE_SECONDS=86400")
    group.add_argument("--local", action="store_true",
                       help="the local emulators: OSS_ENDPOINT http://127.0.0.1:9000, MPS_ENDPOINT "
                            "http://127.0.0.1:9001, DEST_BUCKET dest-bucket, FC_REGION cn-hangzhou, each "
                            "unless the environment sets it (nothing is started)")
    out = parent.add_argument_group("output")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no notes on stderr")
    out.add_argument("--concurrency", type=int, default=32, metavar="N",
                     help="requests at once for reads and HEADs (1-256, default 32)")
    out.add_argument("--log-level", default="ERROR", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="the function's own JSON log lines, on stderr (default ERROR)")
    return parent


def build_parser() -> Parser:
    parser = Parser(prog="iproduction", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    parent = common_options()
    for name, module in COMMANDS.items():
        sub = commands.add_parser(name, parents=[parent], help=module.HELP, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
    return parser


def environment(args: argparse.Namespace, base: Mapping[str, str]) -> dict[str, str]:
    """The function's variables: the environment, ``--local``'s defaults where it is silent, the flags."""
    env = dict(base)
    if args.local:
        for name, value in LOCAL_DEFAULTS.items():
            if not (env.get(name) or "").strip():
                env[name] = value
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set wants NAME=VALUE, got {item!r}")
        env[name.strip()] = value
    for _, variable in OVERRIDES:
        value = getattr(args, variable)
        if value is not None:
            env[variable] = value
    return env


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         environ: Mapping[str, str] | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"iproduction {args.command}"
    try:
        if not 1 <= args.concurrency <= 256:
            raise UsageError("--concurrency must be from 1 to 256")
        module = COMMANDS[args.command]
        module.check(args)
        env = environment(args, os.environ if environ is None else environ)
        load_target(env)  # a configuration error is reported before any credentials are looked for

        def open_core() -> Core:
            return Core(env, chain(), log_level=args.log_level, concurrency=args.concurrency)

        interactive = not args.quiet and out.isatty() and err.isatty()
        return module.run(args, Context(out, err, args.quiet, interactive, open_core))
    except UsageError as exc:
        err.write(f"{prog}: error: {exc}\n")
        return 2
    except CredentialsMissingError as exc:
        err.write(f"{prog}: error: {exc}\n")
        return 2
    except CoreError as exc:
        err.write(f"{prog}: {'configuration ' if exc.configuration else ''}error: {exc}\n")
        return 2 if exc.configuration else 1
    except KeyboardInterrupt:
        err.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1


def entry() -> NoReturn:
    """The console script."""
    sys.exit(main())
