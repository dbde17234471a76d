"""``otel-sentry-biz send-test``: send real test events and say where to find them.

Each run tags its events ``otel_sentry_biz_test=<run id>``, so one search in Sentry shows
exactly what this run sent (the ERP seed's ``sentry_test`` command, without the glue).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_sentry_biz as biz
from otel_sentry_biz.pipeline import configure

KINDS = ("error", "message", "performance", "violation")


class SendTestError(RuntimeError):
    """The exception the ``--error`` test raises (and reports): harmless by design."""


def send_test(dsn: str, kinds: Sequence[str], out: TextIO, timeout: float = 30.0) -> int:
    """Send one event of each kind in ``kinds`` to ``dsn``; 0 when all were delivered."""
    run = uuid.uuid4().hex[:12]
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-sentry-biz-test"}))
    pipeline = configure(dsn=dsn, traces_sample_rate=1.0, sample_rate=1.0, tracer_provider=provider)
    tracer = provider.get_tracer("otel_sentry_biz.send_test")
    with biz.context(otel_sentry_biz_test=run):
        if "error" in kinds:
            try:
                with tracer.start_as_current_span("send-test error", kind=SpanKind.SERVER):
                    raise SendTestError(f"otel-sentry-biz test error (run {run}); ignore it")
            except SendTestError:
                pass
        if "message" in kinds:
            with tracer.start_as_current_span("send-test message"):
                biz.capture_message(f"otel-sentry-biz test message (run {run}); ignore it")
        if "performance" in kinds:
            with tracer.start_as_current_span(
                "GET /send-test/{run}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": "GET", "http.route": "/send-test/{run}"},
            ) as root:
                with tracer.start_as_current_span(
                    "SELECT 1",
                    kind=SpanKind.CLIENT,
                    attributes={"db.system.name": "sqlite", "db.query.text": "SELECT 1"},
                ):
                    time.sleep(0.05)
                root.set_attribute("http.response.status_code", 200)
                root.set_status(Status(StatusCode.OK))
        if "violation" in kinds:
            with tracer.start_as_current_span("send-test violation"):
                biz.violation(
                    "otel_sentry_biz_test",
                    "LOW",
                    f"otel-sentry-biz test violation (run {run}); ignore it",
                    group=run,
                )
    delivered = pipeline.force_flush(int(timeout * 1000))
    stats = pipeline.exporter.stats() if pipeline.exporter is not None else {}
    pipeline.shutdown()
    print(f"sent {', '.join(kinds)} test events (run {run}): {stats.get('sent', {})}", file=out)
    print(
        f"find them in Sentry: search the Issues and Performance pages for "
        f"otel_sentry_biz_test:{run} (service otel-sentry-biz-test)",
        file=out,
    )
    if not delivered:
        print(f"not delivered within {timeout:.0f} s: {stats.get('last_error')}", file=out)
        return 1
    return 0
