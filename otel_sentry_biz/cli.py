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
  outbox       status | show | flush: the durable outbox (OTEL_SENTRY_BIZ_OUTBOX) of an app
  send-test    send real test events (--error, --message, --performance, --violation, --all)
               and say where to find them in Sentry
  doctor       check the configuration, the DSN's host, the instrumentors; estimate the
               monthly event volume and cost (exit 1 on any problem)

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
    outbox = commands.add_parser(
        "outbox",
        help="see and drain a durable outbox",
        description="See and drain the SQLite outbox an app queues its envelopes in "
        "(OTEL_SENTRY_BIZ_OUTBOX).",
    )
    outbox_commands = outbox.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND")
    outbox_commands.required = True
    for name, text in (
        ("status", "queued envelopes by category, bytes, oldest age, drops"),
        ("show", "one line per queued envelope, oldest first"),
        ("flush", "deliver everything queued now, then exit (1 if something is left)"),
    ):
        sub = outbox_commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--path",
            default=os.environ.get("OTEL_SENTRY_BIZ_OUTBOX") or None,
            help="the outbox file (default: OTEL_SENTRY_BIZ_OUTBOX)",
        )
        if name == "show":
            sub.add_argument("--limit", type=int, default=50, help="at most this many lines")
        if name == "flush":
            sub.add_argument(
                "--dsn",
                default=os.environ.get("SENTRY_DSN") or None,
                help="deliver to this DSN (default: SENTRY_DSN)",
            )
            sub.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    send = commands.add_parser(
        "send-test",
        help="send real test events and say where to find them",
        description="Send real test events to the DSN and print how to find them in Sentry.",
    )
    for kind in ("error", "message", "performance", "violation"):
        send.add_argument(f"--{kind}", action="store_true", help=f"send a test {kind}")
    send.add_argument("--all", action="store_true", help="send one of each")
    send.add_argument(
        "--dsn",
        default=os.environ.get("SENTRY_DSN") or None,
        help="send to this DSN (default: SENTRY_DSN)",
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the setup and estimate monthly volume and cost",
        description="Check SENTRY_* / OTEL_SENTRY_BIZ_* settings (every problem is listed), "
        "production hazards, the DSN's host, the outbox path and the instrumentors that "
        "would load; estimate monthly events and cost. Exit 1 when there is a problem.",
    )
    doctor.add_argument("--rps", type=float, default=10.0, help="requests per second (10)")
    doctor.add_argument(
        "--error-rate", type=float, default=0.01, help="share of requests failing (0.01)"
    )
    doctor.add_argument(
        "--price", type=float, default=0.000045, help="$ per event on your plan (0.000045)"
    )
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
        if args.command == "outbox":
            return _outbox(args)
        if args.command == "send-test":
            from otel_sentry_biz.send_test import KINDS, send_test

            kinds = [k for k in KINDS if args.all or getattr(args, k)]
            if not kinds:
                parser.error(
                    "send-test: choose --error, --message, --performance, --violation or --all"
                )
            if not args.dsn:
                raise ConfigError("no DSN to send to: pass --dsn or set SENTRY_DSN")
            return send_test(args.dsn, kinds, sys.stdout)
        if args.command == "doctor":
            from otel_sentry_biz.doctor import report

            return report(
                sys.stdout,
                requests_per_second=args.rps,
                error_rate=args.error_rate,
                price=args.price,
            )
    except ConfigError as exc:
        print(f"otel-sentry-biz: configuration error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


def _outbox(args: argparse.Namespace) -> int:
    from otel_sentry_biz.sentry import outbox_command

    outbox = outbox_command.open_outbox(args.path)
    try:
        if args.outbox_command == "status":
            return outbox_command.status(outbox, sys.stdout)
        if args.outbox_command == "show":
            return outbox_command.show(outbox, sys.stdout, args.limit)
        return outbox_command.flush(outbox, args.dsn, args.timeout, sys.stdout)
    finally:
        outbox.close()


if __name__ == "__main__":
    sys.exit(main())
