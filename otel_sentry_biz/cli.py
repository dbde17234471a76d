"""The ``otel-sentry-biz`` command.

Each command's ``--help`` is its manual (what it does, examples, exit status, environment);
``docs/cli.md`` is generated from the same parser by ``docs/_gen_cli.py``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from typing import Optional

from otel_sentry_biz.config import ConfigError, Settings
from otel_sentry_biz.version import __version__

PROG = "otel-sentry-biz"

DESCRIPTION = """\
Business-aware monitoring for OpenTelemetry, with a Sentry bridge.

See it work with `demo` (no Sentry account needed), check a deployment with `doctor` and
`send-test`, validate rules files before they ship, and look into an app's durable outbox.
"""

EPILOG = """\
examples:
  otel-sentry-biz demo                     what Sentry would show, on a local receiver
  otel-sentry-biz doctor --rps 50          check this environment, estimate the monthly cost
  otel-sentry-biz send-test --all          one test event of each kind to SENTRY_DSN
  otel-sentry-biz rules check rules.toml   validate a rules file before deploying it
  otel-sentry-biz outbox status            what waits in OTEL_SENTRY_BIZ_OUTBOX
  otel-sentry-biz COMMAND --help           the manual of one command

exit status:
  0  success
  1  the command ran and found a problem (each command's --help says which)
  2  bad usage, or a configuration error (stderr names the setting and the fix)

environment:
  SENTRY_DSN               where events go (demo, send-test, outbox flush, doctor)
  OTEL_SENTRY_BIZ_OUTBOX   the app's durable outbox file (outbox, demo, doctor)
  SENTRY_*, OTEL_SENTRY_BIZ_*
                           every setting, with its default per profile:
                           docs/configuration.md (doctor checks the core ones)

documentation: docs/quickstart.md, docs/cli.md (these manuals), docs/on-call.md
"""

DEMO = """\
Run the billing demo through the whole pipeline: work requests priced and checked on SQLite,
with the billing seed's anomalies planted (a work request over $15,000, an implausible unit
price, two foremen on one work request), a declined payment (handled, CRITICAL) and a failing
ERP upload (unhandled, HIGH). Business context, rules, the Sentry bridge and a durable SQLite
outbox all run as they would in an app.

Without a DSN, a local Sentry-protocol receiver on 127.0.0.1 takes the events and the demo
prints what Sentry would show: transactions with their spans, errors with business impact and
category, violations by impact, and the tags you can search on. With --dsn (or SENTRY_DSN)
the same events go to your Sentry project: environment "demo", service billing-demo.
"""

DEMO_EPILOG = """\
examples:
  otel-sentry-biz demo
  otel-sentry-biz demo --dsn https://<key>@<host>/<project>

exit status:
  0  everything was delivered
  1  something was not delivered within --timeout (the delivery counts are printed)
  2  bad usage, or an invalid DSN or setting

environment:
  SENTRY_DSN               default of --dsn
  OTEL_SENTRY_BIZ_OUTBOX   the outbox file to queue in (default: a temporary file)
"""

RULES = """\
Work with business rules files: TOML files of thresholds, aggregates, rates and the other
rule kinds (docs/rules.md), or the rule sets shipped with the package, by name.
"""

RULES_EPILOG = """\
examples:
  otel-sentry-biz rules check billing /etc/billing/rules.toml
"""

CHECK = """\
Validate rules files, and shipped rule sets by name (e.g. billing), exactly as start-up does:
every problem of every file is listed with the rule, the field and the fix, not just the
first. A valid file prints "<path>: ok, <n> rules".
"""

CHECK_EPILOG = """\
examples:
  otel-sentry-biz rules check rules.toml
  otel-sentry-biz rules check billing /etc/billing/rules.toml
  otel-sentry-biz rules check $(echo "$OTEL_SENTRY_BIZ_RULES" | tr , ' ')   # what the app loads

exit status:
  0  every file is valid
  1  a file has a problem, or is not found (each is listed)
  2  bad usage (no FILE)
"""

OUTBOX = """\
Look into, and drain, the SQLite outbox an app queues its Sentry envelopes in when
OTEL_SENTRY_BIZ_OUTBOX names a file. Safe while the app runs: each envelope is leased to one
sender at a time.
"""

OUTBOX_EPILOG = """\
examples:
  otel-sentry-biz outbox status --path /var/lib/billing/sentry-outbox.sqlite3
  OTEL_SENTRY_BIZ_OUTBOX=/var/lib/billing/sentry-outbox.sqlite3 otel-sentry-biz outbox show
  otel-sentry-biz outbox flush --timeout 120

exit status:
  0  done (flush: the outbox is empty)
  1  flush: envelopes are left after --timeout (the last delivery error is printed)
  2  bad usage, no outbox file, or (flush) no DSN

environment:
  OTEL_SENTRY_BIZ_OUTBOX   default of --path
  SENTRY_DSN               default of flush's --dsn
  OTEL_SENTRY_BIZ_PIPELINE_DEPTH
                           envelopes flush writes before reading answers (8; 1: one at a time)
"""

#: The outbox subcommands: (name, one-line summary, description).
OUTBOX_COMMANDS = (
    (
        "status",
        "queued envelopes by category, bytes, oldest age, drops",
        "Queued envelopes by category (error, transaction, ...), their bytes and the oldest\n"
        "one's age, then everything dropped so far, by reason and category.\n",
    ),
    (
        "show",
        "one line per queued envelope, oldest first",
        "One line per queued envelope, oldest first: row id, event id, category, bytes, age,\n"
        "delivery attempts, and the process sending it now if any.\n",
    ),
    (
        "flush",
        "deliver everything queued now, then exit (1 if something is left)",
        "Deliver everything queued to the DSN now, then exit: before retiring a host, or to\n"
        "check that Sentry takes what is waiting. Prints how many envelopes were delivered\n"
        "and how many are left.\n",
    ),
)

SEND_TEST = """\
Send real test events through the whole pipeline to the DSN, and say where to find them:
an error, a message, a performance transaction and a LOW business violation, each with its
transaction. Every event of one run is tagged otel_sentry_biz_test:<run id> (service
otel-sentry-biz-test), so one search in Sentry shows exactly what this run sent.
"""

#: The kinds of test event, as ``send_test.KINDS`` names them: what each sends.
SEND_TEST_KINDS = {
    "error": "an exception raised in a span: an error event",
    "message": "a message event (an issue grouped by its text)",
    "performance": "a transaction with a database span",
    "violation": "a LOW business-rule violation (an issue)",
}

SEND_TEST_EPILOG = """\
examples:
  otel-sentry-biz send-test --all
  otel-sentry-biz send-test --error --violation --dsn https://<key>@<host>/<project>

exit status:
  0  every event was delivered
  1  not delivered within 30 s (the last delivery error is printed)
  2  no kind chosen, no DSN, or an invalid DSN

environment:
  SENTRY_DSN               default of --dsn
"""

DOCTOR = """\
Check this environment's monitoring setup, then estimate what it will send:

  - every SENTRY_* / OTEL_SENTRY_BIZ_* setting (all problems listed, not just the first)
  - production hazards: SENTRY_DEBUG or SENTRY_SEND_DEFAULT_PII on
  - that the DSN's host answers (a TCP connection, 3 s timeout; nothing is sent)
  - that the outbox folder is writable (OTEL_SENTRY_BIZ_OUTBOX)
  - which instrumentors opentelemetry-instrument would load here
  - transactions, errors, events and cost over 30 days at --rps and --error-rate

Run it with the app's environment, where the app runs.
"""

DOCTOR_EPILOG = """\
examples:
  otel-sentry-biz doctor
  SENTRY_ENVIRONMENT=production otel-sentry-biz doctor --rps 40 --error-rate 0.002

exit status:
  0  no problem (notes may still be printed)
  1  at least one problem, each listed with its fix
  2  bad usage

environment:
  SENTRY_*, OTEL_SENTRY_BIZ_*
                           the settings checked: docs/configuration.md
"""


def build_parser(width: Optional[int] = None) -> argparse.ArgumentParser:
    """The command's parser; ``width`` fixes the help's line width (default: the terminal's)."""
    # One formatter for every parser: the manuals are laid out by hand, so keep their lines.
    formatter = functools.partial(argparse.RawDescriptionHelpFormatter, width=width)
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    manual = functools.partial(commands.add_parser, formatter_class=formatter)

    demo = manual(
        "demo",
        help="run the billing demo and print what Sentry would show",
        description=DEMO,
        epilog=DEMO_EPILOG,
    )
    _dsn_option(demo, "send to this Sentry DSN instead of a local receiver")
    _timeout_option(demo)

    rules = manual(
        "rules", help="work with business rules files", description=RULES, epilog=RULES_EPILOG
    )
    rules_commands = rules.add_subparsers(
        title="commands", dest="rules_command", metavar="SUBCOMMAND"
    )
    rules_commands.required = True
    check = rules_commands.add_parser(
        "check",
        help="validate rules files and list every problem",
        description=CHECK,
        epilog=CHECK_EPILOG,
        formatter_class=formatter,
    )
    check.add_argument(
        "files", nargs="+", metavar="FILE", help="a rules file, or a shipped set such as billing"
    )

    outbox = manual(
        "outbox", help="see and drain a durable outbox", description=OUTBOX, epilog=OUTBOX_EPILOG
    )
    outbox_commands = outbox.add_subparsers(
        title="commands", dest="outbox_command", metavar="SUBCOMMAND"
    )
    outbox_commands.required = True
    for name, summary, description in OUTBOX_COMMANDS:
        sub = outbox_commands.add_parser(
            name,
            help=summary,
            description=description,
            epilog=OUTBOX_EPILOG,
            formatter_class=formatter,
        )
        sub.add_argument(
            "--path",
            default=os.environ.get("OTEL_SENTRY_BIZ_OUTBOX") or None,
            metavar="FILE",
            help="the outbox file (default: OTEL_SENTRY_BIZ_OUTBOX)",
        )
        if name == "show":
            sub.add_argument(
                "--limit", type=int, default=50, metavar="N", help="at most N lines (default 50)"
            )
        if name == "flush":
            _dsn_option(sub, "deliver to this DSN")
            _timeout_option(sub)

    send = manual(
        "send-test",
        help="send real test events and say where to find them",
        description=SEND_TEST,
        epilog=SEND_TEST_EPILOG,
    )
    for kind, what in SEND_TEST_KINDS.items():
        send.add_argument(f"--{kind}", action="store_true", help=f"send {what}")
    send.add_argument("--all", action="store_true", help="send one of each")
    _dsn_option(send, "send to this DSN")

    doctor = manual(
        "doctor",
        help="check the setup and estimate monthly volume and cost",
        description=DOCTOR,
        epilog=DOCTOR_EPILOG,
    )
    doctor.add_argument(
        "--rps",
        type=float,
        default=10.0,
        metavar="N",
        help="requests per second the app serves (default 10)",
    )
    doctor.add_argument(
        "--error-rate",
        type=float,
        default=0.01,
        metavar="SHARE",
        help="share of requests that fail, 0 to 1 (default 0.01)",
    )
    doctor.add_argument(
        "--price",
        type=float,
        default=0.000045,
        metavar="DOLLARS",
        help="dollars per event on your Sentry plan (default 0.000045)",
    )
    return parser


def _dsn_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--dsn", default=os.environ.get("SENTRY_DSN") or None, help=f"{text} (default: SENTRY_DSN)"
    )


def _timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds to wait for delivery (default 30)",
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
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
        # As the app would send them: OTEL_SENTRY_BIZ_PIPELINE_DEPTH (validated) applies,
        # and only it: the app's other settings are not the flush's business.
        variable = "OTEL_SENTRY_BIZ_PIPELINE_DEPTH"
        given = {variable: os.environ[variable]} if variable in os.environ else {}
        depth = Settings.load(given).pipeline_depth
        return outbox_command.flush(
            outbox, args.dsn, args.timeout, sys.stdout, pipeline_depth=depth
        )
    finally:
        outbox.close()


if __name__ == "__main__":
    sys.exit(main())
