"""``manage.py demo``: a scripted ERP session through Django, and what Sentry got from it.

    python examples/erp_django/manage.py demo
    SENTRY_DSN=https://<key>@<host>/<project> python examples/erp_django/manage.py demo

Without ``SENTRY_DSN`` the events go to a local Sentry-protocol receiver on 127.0.0.1 and the
report lists them; with it they go to your project.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.wsgi import get_wsgi_application

from erp.monitoring import start_monitoring
from erp.session import run_session, seed, serve
from otel_sentry_biz.receiver import LocalReceiver


class Command(BaseCommand):
    help = "Play a scripted ERP session over HTTP and report what Sentry received."

    def handle(self, *args: Any, **options: Any) -> None:
        receiver = None if os.environ.get("SENTRY_DSN", "").strip() else LocalReceiver().start()
        try:
            # Every request traced, so the report shows the whole session.
            pipeline = start_monitoring(
                dsn=receiver.dsn if receiver else None, traces_sample_rate=1.0
            )
            call_command("migrate", verbosity=0)
            seed()
            with serve(get_wsgi_application()) as base_url:
                results = run_session(base_url)
            delivered = pipeline.force_flush(30_000)
            stats = pipeline.exporter.stats()
            pipeline.shutdown()
            self.stdout.write(f"ERP session on {base_url}:")
            for step, path, status in results:
                self.stdout.write(
                    f"  {step.user:<4} {step.method:<4} {path:<24} {status}  {step.shows}"
                )
            if receiver is None:
                self.stdout.write(f"Sent to SENTRY_DSN: {stats['events']}")
            else:
                self.stdout.write("\n".join(report(receiver.events())))
        finally:
            if receiver is not None:
                receiver.stop()
        if not delivered:
            raise CommandError(f"not everything was delivered: {stats}")


def report(events: list[dict[str, Any]]) -> list[str]:
    """What Sentry shows: transactions by route, then each issue with its module."""
    routes = Counter(e["transaction"] for e in events if e.get("type") == "transaction")
    lines = [f"Sentry received {sum(routes.values())} transactions:"]
    lines += [f"  {count} x {route}" for route, count in routes.items()]
    issues = [e for e in events if e.get("type") != "transaction"]
    lines.append(f"and {len(issues)} issues:")
    for event in issues:
        tags = event.get("tags", {})
        if "exception" in event:
            last = event["exception"]["values"][-1]
            what = f"{last['type']}: {last['value']}"
        else:
            what = f"{tags.get('violation_rule')}: {event['logentry']['formatted']}"
        where = f"module:{tags['module']}, " if "module" in tags else ""
        lines.append(f"  {event['level']:<7} {what} ({where}{event.get('transaction')})")
    return lines
