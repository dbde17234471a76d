"""The ``otel-sentry-biz`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Optional

from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.version import __version__

DESCRIPTION = """\
Business-aware monitoring for OpenTelemetry, with a Sentry bridge.

Commands:
  demo         run a billing workload through the whole pipeline and show what Sentry
               receives (a local receiver on 127.0.0.1 unless SENTRY_DSN or --dsn is given)
  rules check  validate rules files (or shipped sets such as "billing") and list every problem

Configuration comes from SENTRY_* and OTEL_SENTRY_BIZ_* variables; see docs/configuration.md.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-sentry-biz",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the billing demo and print what Sentry would show",
        description="Run the billing demo workload (work requests on SQLite, planted anomalies, "
        "a declined payment, a failing ERP upload) through the whole pipeline.",
    )
    demo.add_argument(
        "--dsn",
        default=os.environ.get("SENTRY_DSN") or None,
        help="send to this Sentry DSN instead of a local receiver (default: SENTRY_DSN)",
    )
    demo.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for delivery (default 30)"
    )
    rules = commands.add_parser(
        "rules",
        help="work with business rules files",
        description="Work with business rules files (see docs/rules.md).",
    )
    rules_commands = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    rules_commands.required = True
    check = rules_commands.add_parser(
        "check",
        help="validate rules files and list every problem",
        description="Validate rules files or shipped rule sets; exit 1 when any has a problem.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a rules file or a set name")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            from otel_sentry_biz.demo import run_demo

            return run_demo(args.dsn, timeout=args.timeout)
        if args.command == "rules":
            from otel_sentry_biz.rules.command import check_command

            return check_command(args.files)
    except ConfigError as exc:
        print(f"otel-sentry-biz: configuration error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
