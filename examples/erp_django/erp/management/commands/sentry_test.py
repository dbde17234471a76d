"""``manage.py sentry_test``: the ERP team's command, now ``otel-sentry-biz send-test``.

    python examples/erp_django/manage.py sentry_test --all
    python examples/erp_django/manage.py sentry_test --error --performance

Sends one real event of each chosen kind to ``SENTRY_DSN`` (or ``--dsn``), tagged with a run
id to search for, and fails when they were not delivered.
"""

from __future__ import annotations

import io
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from otel_sentry_biz.cli import SEND_TEST_KINDS
from otel_sentry_biz.config import ConfigError
from otel_sentry_biz.send_test import KINDS, send_test


class Command(BaseCommand):
    help = "Send test events to Sentry: --error, --message, --performance, --violation, --all."

    def add_arguments(self, parser: CommandParser) -> None:
        for kind in KINDS:
            parser.add_argument(f"--{kind}", action="store_true", help=SEND_TEST_KINDS[kind])
        parser.add_argument("--all", action="store_true", help="one event of each kind")
        parser.add_argument("--dsn", help="where to send them (default: SENTRY_DSN)")

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = [kind for kind in KINDS if options["all"] or options[kind]]
        if not kinds:
            raise CommandError("choose --error, --message, --performance, --violation or --all")
        dsn = options["dsn"] or os.environ.get("SENTRY_DSN", "").strip()
        if not dsn:
            raise CommandError("no DSN to send to: set SENTRY_DSN or pass --dsn")
        out = io.StringIO()
        try:
            failed = send_test(dsn, kinds, out)
        except ConfigError as exc:
            raise CommandError(f"configuration error: {exc}") from None
        self.stdout.write(out.getvalue().rstrip("\n"))
        if failed:
            raise CommandError("the test events were not delivered (see above)")
