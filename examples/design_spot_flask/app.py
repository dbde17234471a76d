"""Design spot: the design-spot seed's Flask site, monitored with otel-sentry-biz.

    python examples/design_spot_flask/app.py            # a scripted session; prints a report
    python examples/design_spot_flask/app.py --serve    # just serve, on 127.0.0.1:5000
    SENTRY_DSN=https://<key>@<host>/<project> python examples/design_spot_flask/app.py

Sign-up, sign-in, posts and publishing, served by werkzeug on 127.0.0.1 and driven by real
HTTP clients (``visitors.py``). What the seed wrote by hand comes from the package: user
journeys across requests, the onboarding funnel, feature usage, failed sign-ins as security
events judged by the shipped ``security`` rules, errors grouped by operation and user type by
``fingerprints.toml``. Without ``SENTRY_DSN`` a local receiver stands in for Sentry.

Metrics (journeys, funnel, features) go through the OTel metrics API; set
``DESIGN_SPOT_METRICS_FILE=metrics.jsonl`` to have the SDK's console exporter write them
there too (with exemplars: the trace of a request that counted).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Optional

import report
from flask import Flask
from onboarding import ONBOARDING
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from visitors import Visitor, run_session
from webapp import create_app
from werkzeug.serving import make_server

import otel_sentry_biz as biz
from otel_sentry_biz.receiver import LocalReceiver

HERE = Path(__file__).resolve().parent
RESOURCE = {
    "service.name": "design-spot",
    "service.version": "1.0.0",
    "deployment.environment.name": "example",
}
#: What a deployment would set in its environment; the example defaults them, so one command
#: runs it. The security rules count failed sign-ins; the fingerprint rules group errors.
DEFAULTS = {
    "OTEL_SENTRY_BIZ_RULES": "security",
    "OTEL_SENTRY_BIZ_FINGERPRINTS": str(HERE / "fingerprints.toml"),
}
METRICS_FILE = "DESIGN_SPOT_METRICS_FILE"


@contextmanager
def metered() -> Iterator[InMemoryMetricReader]:
    """Set the app's OTel meter provider; yields its in-memory reader (for the report).

    With ``$DESIGN_SPOT_METRICS_FILE`` set, the SDK's console exporter also writes the
    metrics there, one JSON document per export. On exit, the provider's last export.
    """
    in_memory = InMemoryMetricReader()
    readers: list[MetricReader] = [in_memory]
    with ExitStack() as stack:
        path = os.environ.get(METRICS_FILE, "").strip()
        if path:
            out = stack.enter_context(open(path, "w", encoding="utf-8"))
            exporter = ConsoleMetricExporter(
                out=out, formatter=lambda data: data.to_json(None) + "\n"
            )
            # Exported when the provider shuts down: the example runs for seconds, not hours.
            readers.append(
                PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
            )
        provider = MeterProvider(metric_readers=readers, resource=Resource.create(RESOURCE))
        metrics.set_meter_provider(provider)
        try:
            yield in_memory
        finally:
            provider.shutdown()


@contextmanager
def serving(app: Flask, port: int) -> Iterator[str]:
    """Serve ``app`` from a werkzeug server thread on 127.0.0.1; yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="design-spot-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def drive(database: Path, *, serve: bool, port: Optional[int]) -> list[Visitor]:
    """Serve the site; play the scripted session, or (``serve``) wait for Ctrl-C."""
    app = create_app(database)
    with serving(app, port if port is not None else (5000 if serve else 0)) as base_url:
        if not serve:
            return run_session(base_url)
        print(f"Serving on {base_url} (Ctrl-C to stop)", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
        return []


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve until interrupted")
    parser.add_argument("--port", type=int, default=None, help="port (--serve: 5000)")
    args = parser.parse_args(argv)

    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    # INFO records of the app become breadcrumbs of the errors that follow.
    logging.getLogger("design_spot").setLevel(logging.INFO)
    if not args.serve:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log in the report

    receiver = None if os.environ.get("SENTRY_DSN", "").strip() else LocalReceiver().start()
    with metered() as metric_reader:
        pipeline = biz.configure(
            dsn=receiver.dsn if receiver else None, traces_sample_rate=1.0, resource=RESOURCE
        )
        with tempfile.TemporaryDirectory(prefix="design-spot-") as scratch:
            visitors = drive(
                Path(scratch) / "design_spot.sqlite3", serve=args.serve, port=args.port
            )
        funnel = ONBOARDING.snapshot()
        delivered = pipeline.force_flush(30_000)
        stats = pipeline.exporter.stats()
        metric_data = metric_reader.get_metrics_data()
    pipeline.shutdown()

    lines = [*report.session(visitors), ""] if visitors else []
    lines += [*report.funnel(funnel), "", *report.metric_totals(metric_data), ""]
    if receiver is None:
        lines.append(f"Sent to SENTRY_DSN: {stats['events']}")
    else:
        lines += report.sentry(receiver.events())
        receiver.stop()
    print("\n".join(lines))
    if not delivered:
        print(f"Not everything was delivered: {stats}", file=sys.stderr)
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
